"""DIMO token gas: transfer (to a fresh and to a funded address), approve, permit, delegate,
beside the same operations on a plain OpenZeppelin ERC20 baseline."""

from __future__ import annotations

from eth_account import Account
from eth_account.messages import encode_typed_data

from benchmarks.framework import BenchContext, Table, gas_used, ratio
from workers.protocol import DIMO

AMOUNT = DIMO


def _permit_signature(ctx: BenchContext, owner_key: str, spender: str, value: int, deadline: int) -> tuple:
    token = ctx.contract("DimoToken")
    owner = Account.from_key(owner_key)
    typed = {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            "Permit": [
                {"name": "owner", "type": "address"},
                {"name": "spender", "type": "address"},
                {"name": "value", "type": "uint256"},
                {"name": "nonce", "type": "uint256"},
                {"name": "deadline", "type": "uint256"},
            ],
        },
        "primaryType": "Permit",
        "domain": {
            "name": "Dimo",
            "version": "1",
            "chainId": ctx.w3.eth.chain_id,
            "verifyingContract": token.address,
        },
        "message": {
            "owner": owner.address,
            "spender": spender,
            "value": value,
            "nonce": token.functions.nonces(owner.address).call(),
            "deadline": deadline,
        },
    }
    signed = Account.sign_message(encode_typed_data(full_message=typed), owner_key)
    return signed.v, signed.r.to_bytes(32, "big"), signed.s.to_bytes(32, "big")


def run(ctx: BenchContext) -> list[Table]:
    token = ctx.contract("DimoToken")
    baseline = ctx.deploy_forge("BaselineERC20.sol", "BaselineERC20", [ctx.deployer.account.address, 10**27])
    holder_key, spender_key = ctx.keys[1], ctx.keys[2]
    holder = Account.from_key(holder_key).address
    spender = Account.from_key(spender_key).address

    def measure(contract, fn: str, *args: object, sender=None) -> int:  # noqa: ANN001
        return gas_used((sender or ctx.deployer).call(contract, fn, *args))

    table = Table("DIMO token gas", ["operation", "DimoToken", "OZ ERC20", "ratio"])
    for label, fn, args in (
        ("transfer to an empty address", "transfer", (holder, AMOUNT)),
        ("transfer to a funded address", "transfer", (holder, AMOUNT)),
        ("approve", "approve", (spender, AMOUNT)),
    ):
        ours, theirs = measure(token, fn, *args), measure(baseline, fn, *args)
        table.add(label, ours, theirs, ratio(ours, theirs))

    deadline = ctx.w3.eth.get_block("latest")["timestamp"] + 3600
    v, r, s = _permit_signature(ctx, holder_key, spender, AMOUNT, deadline)
    table.add(
        "permit (EIP-2612)", measure(token, "permit", holder, spender, AMOUNT, deadline, v, r, s), "-", "-"
    )
    table.add(
        "delegate (first checkpoint)",
        measure(token, "delegate", holder, sender=ctx.sender(holder_key)),
        "-",
        "-",
    )
    table.add(
        "transfer to a holder who delegated",
        measure(token, "transfer", holder, AMOUNT),
        "-",
        "-",
    )
    table.notes.append(
        "DimoToken carries ERC20Votes checkpoints on every transfer between delegates; the baseline has none."
    )
    return [table]
