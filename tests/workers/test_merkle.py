"""workers/merkle.py against the reference: `@openzeppelin/merkle-tree` run by node
(tools/merkle-tree.js) builds the same root and proofs on random sets, each side loads the
other's dump, and a Python proof pays out on-chain through Staking.claimSlash."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from web3 import Web3
from web3.exceptions import ContractCustomError

from devkit.deployment import Deployer
from tests.support.anvil import ANVIL_KEYS
from workers.chain.artifacts import load_artifact
from workers.config import PROJECT_ROOT
from workers.merkle import (
    CLAIM_LEAF_ENCODING,
    LEAF_ENCODING,
    ClaimTree,
    MerkleTreeError,
    PayoutTree,
    claim_leaf_hash,
    leaf_hash,
    node_hash,
    process_proof,
    verify,
    verify_claim,
)
from workers.protocol import DIMO, UINT256_MAX, SlashSubject

NODE_SCRIPT = PROJECT_ROOT / "tools" / "merkle-tree.js"


def reference(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Answers from @openzeppelin/merkle-tree, one per request."""
    node = shutil.which("node")
    assert node, "node is part of the toolchain (solc-js runs on it)"
    result = subprocess.run(
        [node, str(NODE_SCRIPT)],
        input=json.dumps(requests),
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def random_values(rnd: random.Random, count: int, *, sparse: bool = False) -> list[tuple[int, str, int]]:
    """Random leaves: checksummed and lower-case accounts, edge amounts, dense or sparse indexes."""
    indexes = rnd.sample(range(10**9), count) if sparse else list(range(count))
    values = []
    for index in indexes:
        raw = rnd.randbytes(20)
        account = Web3.to_checksum_address(raw) if rnd.random() < 0.5 else "0x" + raw.hex()
        amount = rnd.choice([0, 1, UINT256_MAX, rnd.randrange(DIMO, 10**6 * DIMO), rnd.getrandbits(256)])
        values.append((index, account, amount))
    return values


def as_json(values: list[tuple[int, str, int]]) -> list[list[str]]:
    return [[str(i), a, str(m)] for i, a, m in values]


SIZES = (1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 33, 64, 100, 255, 256, 257, 1000)


def test_root_and_every_proof_match_openzeppelin_on_random_sets():
    rnd = random.Random(20261126)
    cases = [random_values(rnd, size, sparse=size % 2 == 1) for size in SIZES]
    cases.append([(0, "0x" + "11" * 20, 5)] * 3)  # duplicate leaves
    answers = reference([{"build": as_json(values)} for values in cases])
    for values, expected in zip(cases, answers, strict=True):
        tree = PayoutTree.build(values)
        assert tree.root == expected["root"], f"{len(values)} leaves"
        assert [tree.proof(i) for i in range(len(values))] == expected["proofs"], f"{len(values)} leaves"
        assert tree.dump()["tree"] == expected["dump"]["tree"]
        assert [v["treeIndex"] for v in tree.dump()["values"]] == [
            v["treeIndex"] for v in expected["dump"]["values"]
        ]


def test_openzeppelin_loads_our_dump_and_we_load_its_dump(tmp_path: Path):
    rnd = random.Random(7)
    ours = PayoutTree.build(random_values(rnd, 50))
    theirs_values = random_values(rnd, 40, sparse=True)
    loaded_by_js, built_by_js = reference([{"load": ours.dump()}, {"build": as_json(theirs_values)}])
    assert loaded_by_js["root"] == ours.root
    assert loaded_by_js["proofs"] == [ours.proof(i) for i in range(len(ours))]

    from_js = PayoutTree.load(built_by_js["dump"])
    assert from_js.root == built_by_js["root"]
    assert from_js.values == theirs_values
    assert [from_js.proof(i) for i in range(len(from_js))] == built_by_js["proofs"]

    path = tmp_path / "tree.json"
    ours.write(path, slashId=3)
    again = PayoutTree.read(path)
    assert again.root == ours.root and list(again.values) == list(ours.values)
    assert json.loads(path.read_text())["slashId"] == 3


def random_claims(rnd: random.Random, count: int) -> list[tuple[str, int]]:
    """Random cumulative claim leaves: checksummed and lower-case accounts, edge amounts."""
    out = []
    for _ in range(count):
        raw = rnd.randbytes(20)
        account = Web3.to_checksum_address(raw) if rnd.random() < 0.5 else "0x" + raw.hex()
        out.append((account, rnd.choice([0, 1, UINT256_MAX, rnd.randrange(DIMO, 10**6 * DIMO)])))
    return out


def test_claim_trees_match_openzeppelin_with_the_address_uint256_encoding():
    rnd = random.Random(20261206)
    cases = [random_claims(rnd, size) for size in SIZES]
    requests = [
        {"build": [[a, str(c)] for a, c in values], "encoding": list(CLAIM_LEAF_ENCODING)} for values in cases
    ]
    answers = reference(requests)
    for values, expected in zip(cases, answers, strict=True):
        tree = ClaimTree.build(values)
        assert tree.root == expected["root"], f"{len(values)} leaves"
        assert [tree.proof(i) for i in range(len(values))] == expected["proofs"]
        assert tree.dump() == {**expected["dump"], "values": tree.dump()["values"]}
        assert ClaimTree.load(expected["dump"]).root == tree.root
    (loaded,) = reference([{"load": ClaimTree.build(cases[5]).dump()}])
    assert loaded["root"] == ClaimTree.build(cases[5]).root


def test_the_claim_leaf_is_the_marketplaces():
    # keccak256(bytes.concat(keccak256(abi.encode(account, cumulative)))), as Marketplace.claim
    account, cumulative = "0x" + "ab" * 20, 123 * DIMO
    encoded = Web3.solidity_keccak(
        ["bytes"], [bytes(12) + bytes.fromhex("ab" * 20) + cumulative.to_bytes(32, "big")]
    )
    assert claim_leaf_hash(account, cumulative) == Web3.keccak(encoded)
    tree = ClaimTree.build([(account, cumulative), ("0x" + "cd" * 20, 1)])
    assert verify_claim(tree.root, (account, cumulative), tree.proof(0))
    assert not verify_claim(tree.root, (account, cumulative + 1), tree.proof(0))
    assert tree.indexes_of(account.upper().replace("0X", "0x")) == [0] and tree.total == cumulative + 1
    with pytest.raises(MerkleTreeError, match="leaf encoding"):
        PayoutTree.load(tree.dump())


def test_from_amounts_numbers_the_leaves():
    tree = PayoutTree.from_amounts([("0x" + "aa" * 20, 10), ("0x" + "bb" * 20, 20)])
    assert list(tree.values) == [(0, "0x" + "aa" * 20, 10), (1, "0x" + "bb" * 20, 20)]
    assert tree.total == 30
    assert tree.indexes_of("0x" + "BB" * 20) == [1]


def test_proofs_verify_and_tampering_does_not():
    rnd = random.Random(3)
    values = random_values(rnd, 37)
    tree = PayoutTree.build(values)
    for i in range(len(values)):
        proof = tree.proof(i)
        assert tree.verify(i, proof)
        assert verify(tree.root, values[i], proof)
        assert process_proof(leaf_hash(*values[i]), tree.proof_bytes(i)) == tree.root_bytes
    index, account, amount = values[5]
    assert not verify(tree.root, (index, account, amount + 1), tree.proof(5))
    assert not verify(tree.root, (index + 1, account, amount), tree.proof(5))
    assert not verify(tree.root, values[5], tree.proof(6))
    assert not verify(tree.root, values[5], tree.proof(5)[:-1])


def test_single_leaf_tree_is_its_leaf():
    tree = PayoutTree.build([(0, "0x" + "01" * 20, 1)])
    assert tree.root_bytes == leaf_hash(0, "0x" + "01" * 20, 1)
    assert tree.proof(0) == []


def test_node_hash_is_order_independent():
    a, b = bytes(range(32)), bytes(range(1, 33))
    assert node_hash(a, b) == node_hash(b, a)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([], "at least one leaf"),
        ([(0, "0x1234", 1)], "address"),
        ([(0, "1" * 42, 1)], "address"),
        ([(0, "0x" + "zz" * 20, 1)], "value 0"),
        ([(0, "0x" + "11" * 20, 1), (-1, "0x" + "11" * 20, 1)], "value 1"),
        ([(0, "0x" + "11" * 20, UINT256_MAX + 1)], "value 0"),
        ([(0, 1234, 1)], "value 0"),
    ],
)
def test_bad_leaves_are_refused_with_the_culprit(values, message):
    with pytest.raises(MerkleTreeError, match=message):
        PayoutTree.build(values)


def test_load_refuses_a_tampered_dump():
    dump = PayoutTree.build(random_values(random.Random(5), 9)).dump()
    wrong_amount = json.loads(json.dumps(dump))
    wrong_amount["values"][0]["value"][2] = str(int(wrong_amount["values"][0]["value"][2]) + 1)
    with pytest.raises(MerkleTreeError, match="value 0"):
        PayoutTree.load(wrong_amount)
    wrong_node = json.loads(json.dumps(dump))
    wrong_node["tree"][1] = "0x" + "00" * 32
    with pytest.raises(MerkleTreeError, match="inner node"):
        PayoutTree.load(wrong_node)
    with pytest.raises(MerkleTreeError, match="format"):
        PayoutTree.load({**dump, "format": "simple-v1"})
    with pytest.raises(MerkleTreeError, match="leaf encoding"):
        PayoutTree.load({**dump, "leafEncoding": ["uint256", "address"]})
    assert list(LEAF_ENCODING) == dump["leafEncoding"]


def test_a_python_proof_pays_out_through_claim_slash(deployment):
    """Staking verifies Python-built proofs: slash into a 300-leaf pool (two bitmap words),
    claim leaves in both words, refuse a replay and a forged amount."""
    anvil, manifest, _ = deployment
    w3 = anvil.w3
    dao = Deployer(w3, Account.from_key(ANVIL_KEYS[0]))
    token = w3.eth.contract(address=manifest.address("DimoToken"), abi=load_artifact("DimoToken").abi)
    staking = w3.eth.contract(address=manifest.address("Staking"), abi=load_artifact("Staking").abi)
    operator = Deployer(w3, Account.from_key(ANVIL_KEYS[1]))
    stake = 1_000 * DIMO
    dao.call(token, "transfer", operator.account.address, stake)
    operator.call(token, "approve", staking.address, stake)
    operator.call(staking, "stake", stake)

    rnd = random.Random(11)
    owners = [Account.create().address for _ in range(300)]
    tree = PayoutTree.from_amounts((owner, rnd.randrange(1, DIMO)) for owner in owners)
    target = operator.account.address
    dao.call(staking, "proposeSlash", target, stake, SlashSubject.PRODUCT, 0, "python proof")
    slash_id = staking.functions.slashCount().call()
    dao.call(staking, "slash", slash_id, tree.total, tree.root_bytes)

    for i in (0, 255, 256, 299):
        index, account, amount = tree.leaf(i)
        dao.call(staking, "claimSlash", slash_id, index, account, amount, tree.proof_bytes(i))
        assert token.functions.balanceOf(account).call() == amount
        assert staking.functions.isSlashClaimed(slash_id, index).call()
    assert not staking.functions.isSlashClaimed(slash_id, 1).call()

    index, account, amount = tree.leaf(0)
    replay = staking.functions.claimSlash(slash_id, index, account, amount, tree.proof_bytes(0))
    _, second_account, second_amount = tree.leaf(1)
    forged = staking.functions.claimSlash(slash_id, 1, second_account, second_amount + 1, tree.proof_bytes(1))
    for call, error in (
        (replay, "AlreadyClaimed(uint256,uint256)"),
        (forged, "InvalidProof(uint256,uint256,address,uint256)"),
    ):
        with pytest.raises(ContractCustomError) as refused:
            call.call({"from": dao.account.address})
        assert str(refused.value.data).startswith("0x" + Web3.keccak(text=error)[:4].hex())
    paid = sum(tree.leaf(i)[2] for i in (0, 255, 256, 299))
    assert staking.functions.slashPool(slash_id).call()[1] == tree.total - paid
