"""The Python kernel (`workers.protocol`, and the permission bit of each signal class) against
the contracts as compiled: ape's build (`.build/__local__.json`) holds every ABI and the
sources it compiled. Enums are uint8 in an ABI, so their members come from the sources
(`enum Kind {...}`), as do the constants (`uint256 internal constant LOCK = 1 << 0;`), read
with a small parser of the few expression forms the contracts use. A contract change the
kernel does not follow fails here."""

from __future__ import annotations

import ast
import json
import operator
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
from eth_utils import keccak

from workers import protocol
from workers.chain.artifacts import ARTIFACTS_FILE
from workers.protocol import Kind, Role, SlashStatus, SlashSubject, Tier, Use, permissions
from workers.protocol.terms import FIELDS, terms
from workers.signals.catalogue import CLASS_BITS

#: Solidity's time and ether units, in seconds and wei.
UNITS = {"minutes": 60, "hours": 3_600, "days": 86_400, "weeks": 604_800, "ether": 10**18}
WORD = 2**256 - 1

Value = int | bytes


@cache
def build() -> dict[str, Any]:
    return json.loads(ARTIFACTS_FILE.read_text())


def abi(contract: str) -> list[dict[str, Any]]:
    return build()["contractTypes"][contract]["abi"]


def _without_comments(source: str) -> str:
    return re.sub(r"//[^\n]*|/\*.*?\*/", "", source, flags=re.DOTALL)


def _declarations(source: str) -> Iterator[tuple[str, str]]:
    """(contract, body) for each contract, library or interface of a source (comments gone)."""
    code = _without_comments(source)
    starts = [(m.start(), m[1]) for m in re.finditer(r"\b(?:contract|library|interface)\s+(\w+)", code)]
    ends = [start for start, _ in starts[1:]] + [len(code)] if starts else []
    for (start, name), end in zip(starts, ends, strict=True):
        yield name, code[start:end]


@cache
def enums() -> dict[str, list[str]]:
    """`Contract.Enum` -> its members, in order."""
    found = {}
    for body in build()["sources"].values():
        for contract, code in _declarations(body["content"]):
            for name, members in re.findall(r"\benum\s+(\w+)\s*\{([^}]*)\}", code):
                found[f"{contract}.{name}"] = [m.strip() for m in members.split(",") if m.strip()]
    return found


#: The binary operators the contracts' constant expressions use.
BINARY = {
    ast.LShift: operator.lshift,
    ast.BitOr: operator.or_,
    ast.BitAnd: operator.and_,
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
}


def _evaluate(node: ast.AST, contract: str, known: dict[str, Value]) -> Value:
    """A Solidity constant expression (as Python syntax) over the constants known so far."""
    match node:
        case ast.BinOp(left=left, op=op, right=right) if type(op) in BINARY:
            a, b = _evaluate(left, contract, known), _evaluate(right, contract, known)
            return BINARY[type(op)](_int(a), _int(b))
        case ast.UnaryOp(op=ast.Invert(), operand=operand):
            return WORD ^ _int(_evaluate(operand, contract, known))
        case ast.Call(func=ast.Name(id="keccak256"), args=[ast.Constant(value=str() as text)]):
            return keccak(text=text)
        case ast.Constant(value=int() as number):
            return number
        case ast.Attribute(value=ast.Call(func=ast.Name(id="type"), args=[ast.Name(id=kind)]), attr="max"):
            return 2 ** int(kind.removeprefix("uint")) - 1
    return known[_qualified(node, contract)]


def _qualified(node: ast.AST, contract: str) -> str:
    """`Contract.NAME` of a constant named in an expression: its own (NAME) or another's."""
    match node:
        case ast.Name(id=name):
            return f"{contract}.{name}"
        case ast.Attribute(value=ast.Name(id=owner), attr=name):
            return f"{owner}.{name}"
    raise ValueError(f"{ast.unparse(node)} is not a constant expression this parser reads")


def _int(value: Value) -> int:
    assert isinstance(value, int), value
    return value


@cache
def constants() -> dict[str, Value]:
    """`Contract.NAME` -> value, for every constant of the compiled sources that this parser
    reads (the others, like `uint8(type(Role).max) + 1`, are left out)."""
    pending = []
    declaration = re.compile(r"\b\w+\s+(?:public|internal|private)\s+constant\s+(\w+)\s*=\s*([^;]+);")
    for body in build()["sources"].values():
        for contract, code in _declarations(body["content"]):
            for name, expression in declaration.findall(code):
                python = re.sub(r"(\d[\d_]*)\s+(" + "|".join(UNITS) + r")\b", r"(\1 * \2)", expression)
                python = re.sub("|".join(rf"\b{u}\b" for u in UNITS), lambda m: str(UNITS[m[0]]), python)
                pending.append((f"{contract}.{name}", contract, ast.parse(python.strip(), mode="eval").body))
    known: dict[str, Value] = {}
    while pending:  # constants may name others (Permissions.ALL, Roles.GOVERNOR_ROLE): until none resolves
        left = []
        for key, contract, node in pending:
            try:
                known[key] = _evaluate(node, contract, known)
            except (KeyError, ValueError, AssertionError):
                left.append((key, contract, node))
        if len(left) == len(pending):
            break
        pending = left
    return known


def of(contract: str) -> dict[str, Value]:
    """The readable constants of one contract or library, by name."""
    prefix = f"{contract}."
    return {key.removeprefix(prefix): value for key, value in constants().items() if key.startswith(prefix)}


# --- enums -----------------------------------------------------------------------------------


def test_kinds_are_the_kind_enum_of_idataproducts():
    solidity = enums()["IDataProducts.Kind"]
    assert [(k.name, k.value) for k in Kind] == [(name.upper(), i) for i, name in enumerate(solidity)]
    assert [k.name.title() for k in Kind] == solidity  # the catalogue serves the Solidity names


def test_roles_are_the_role_enum_of_istaking():
    solidity = enums()["IStaking.Role"]
    assert [(r.name, r.value) for r in Role] == [(name.upper(), i) for i, name in enumerate(solidity)]


@pytest.mark.parametrize(
    ("python", "solidity"), [(SlashSubject, "IStaking.SlashSubject"), (SlashStatus, "IStaking.SlashStatus")]
)
def test_slash_enums_are_istakings(python: Any, solidity: str):
    assert [(m.name, m.value) for m in python] == [
        (name.upper(), i) for i, name in enumerate(enums()[solidity])
    ]


def test_every_enum_in_an_abi_is_mirrored():
    """ABIs show enums as uint8 with their Solidity type: any enum the contracts take or emit
    is one the kernel mirrors (a new one fails until it is added)."""
    found: set[str] = set()

    def walk(item: Any) -> None:
        if isinstance(item, dict):
            if str(item.get("internalType", "")).startswith("enum "):
                found.add(item["internalType"].removeprefix("enum "))
                assert item["type"] == "uint8", item
            for value in item.values():
                walk(value)
        elif isinstance(item, list):
            for value in item:
                walk(value)

    for contract_type in build()["contractTypes"].values():
        walk(contract_type["abi"])
    assert found == {
        "IDataProducts.Kind",
        "IStaking.Role",
        "IStaking.SlashSubject",
        "IStaking.SlashStatus",
        "IGovernor.ProposalState",
        "TimelockController.OperationState",
    }


def test_tiers_are_the_tiers_of_marketmath():
    tiers = {
        name.removeprefix("TIER_"): value
        for name, value in of("MarketMath").items()
        if name.startswith("TIER_")
    }
    assert tiers == {t.name: t.value for t in Tier}
    assert of("Staking")["TIER_COUNT"] == len(Tier)


def test_permitted_uses_are_the_known_uses_of_dataproducts():
    assert of("DataProducts")["KNOWN_USES"] == protocol.KNOWN_USES
    notice = build()["contractTypes"]["DataProducts"]["userdoc"]["methods"]["KNOWN_USES()"]["notice"]
    named = {int(bit): name.strip() for bit, name in re.findall(r"(\d+) ([a-z ]+)", notice)}
    assert named == {u.value: u.name.lower().replace("_", " ") for u in Use}


# --- bits, roles, constants -------------------------------------------------------------------


def test_permission_bits_are_the_bits_of_permissions_sol():
    solidity = of("Permissions")
    python = {name: getattr(permissions, name) for name in dir(permissions) if name.isupper()}
    assert python == solidity
    assert of("DataProducts")["KNOWN_PERMISSIONS"] == permissions.TERMS
    # HISTORY is a terms bit: no key, not even the owner's, carries it
    assert permissions.HISTORY & permissions.ALL == 0


def test_each_signal_class_is_read_under_a_read_permission():
    """CLASS_BITS (workers.signals.catalogue) maps signal classes onto exactly the bits whose
    NatSpec in Permissions.sol says they read data."""
    (source,) = (b["content"] for path, b in build()["sources"].items() if path.endswith("/Permissions.sol"))
    notices = dict(re.findall(r"@notice\s+([^\n]*)\n\s*uint256 internal constant (\w+)", source))
    reading = {getattr(permissions, name) for notice, name in notices.items() if notice.startswith("Read ")}
    assert set(CLASS_BITS.values()) == reading


def test_role_ids_are_the_contracts():
    exposed = {
        item["name"]
        for name in build()["contractTypes"]
        for item in abi(name)
        if item.get("type") == "function"
    }
    assert {name for name in exposed if name.endswith("_ROLE")} == set(protocol.ROLE_IDS)
    for name, value in of("Roles").items():
        assert protocol.ROLE_IDS[name] == value, name
    for key, value in constants().items():
        if key.endswith("_ROLE"):
            assert protocol.ROLE_IDS[key.split(".")[1]] == value, key


@pytest.mark.parametrize(
    ("contract", "name", "python"),
    [
        ("Marketplace", "MONTH", protocol.MONTH_SECONDS),
        ("Marketplace", "DATASET_TERM", protocol.DATASET_TERM_SECONDS),
        ("Marketplace", "DATASET_DELIVERY_WINDOW", protocol.DATASET_DELIVERY_WINDOW),
        ("Vesting", "DAY", protocol.DAY_SECONDS),
        ("Marketplace", "MIN_ROOT_DELAY", protocol.MIN_ROOT_DELAY),
        ("Marketplace", "MAX_ROOT_DELAY", protocol.MAX_ROOT_DELAY),
        ("Marketplace", "DEFAULT_ROOT_DELAY", protocol.DEFAULT_ROOT_DELAY),
        ("DataProducts", "MIN_CREDIT_VALIDITY", protocol.MIN_CREDIT_VALIDITY),
        ("DataProducts", "MAX_CREDIT_VALIDITY", protocol.MAX_CREDIT_VALIDITY),
        ("MarketMath", "MAX_BPS", protocol.MAX_BPS),
        ("LockupCurve", "BPS", protocol.MAX_BPS),
        ("DataProducts", "DEFAULT_PROTOCOL_FEE_BPS", protocol.DEFAULT_PROTOCOL_FEE_BPS),
        ("DataProducts", "MAX_PROTOCOL_FEE_BPS", protocol.MAX_PROTOCOL_FEE_BPS),
        ("DimoToken", "MAX_SUPPLY", 1_000_000_000 * protocol.DIMO),  # the token counts in ether units
    ],
)
def test_market_constants_are_the_contracts(contract, name, python):
    assert of(contract)[name] == python


# --- terms ------------------------------------------------------------------------------------


def test_terms_follow_the_terms_struct():
    (create,) = (item for item in abi("DataProducts") if item.get("name") == "createProduct")
    (struct,) = create["inputs"]
    assert struct["internalType"] == "struct IDataProducts.Terms"
    assert tuple(c["name"] for c in struct["components"]) == FIELDS
    assert struct["components"][0]["internalType"] == "enum IDataProducts.Kind"


def test_default_terms_add_up_with_the_default_fee():
    values = dict(zip(FIELDS, terms(Kind.STREAM, 1), strict=True))
    shares = values["membersBps"] + values["operatorBps"] + values["brokerBps"]
    assert shares + protocol.DEFAULT_PROTOCOL_FEE_BPS == protocol.MAX_BPS
    assert values["permittedUses"] & ~protocol.KNOWN_USES == 0
    assert values["requiredPermissions"] & ~permissions.TERMS == 0


def test_the_parser_reads_what_the_kernel_is_checked_against():
    """Guards the guard: the forms this file parses still find the constants it compares."""
    assert {"LOCK", "MANAGE_KEYS", "ALL", "USER", "DELEGABLE"} <= set(of("Permissions"))
    assert set(of("Roles")) == {
        "GOVERNOR_ROLE",
        "MINTER_ROLE",
        "SLASHER_ROLE",
        "MARKET_ROLE",
        "SETTLER_ROLE",
        "GUARDIAN_ROLE",
    }
    assert of("Permissions")["DELEGABLE"] == 0x7F
    assert of("Staking")["DEFAULT_UNBONDING_PERIOD"] == 7 * 86_400
    # A source of file-level declarations only (contracts/types/: `type ProductId is uint256;`).
    assert list(_declarations("pragma solidity 0.8.30;\ntype ProductId is uint256;\n")) == []
    assert [name for name, _ in _declarations("library A { } interface B { }")] == ["A", "B"]
