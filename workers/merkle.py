"""Merkle trees in the OpenZeppelin StandardMerkleTree format (DESIGN.md §3.6, §4).

Two leaf encodings: `PayoutTree` leaves are `(uint256 index, address account, uint256 amount)`
(Staking's slash pools), `ClaimTree` leaves are `(address account, uint256 cumulative)` (the
Marketplace's one cumulative member root, SPEC15 §4). A leaf hash is
`keccak256(keccak256(abi.encode(...values)))`, leaves are sorted by hash and laid out
in one heap array (children of node i at 2i+1 and 2i+2, leaf k of the sorted order at
`len - 1 - k`), and inner nodes hash their children as a sorted pair. That is exactly what
`StandardMerkleTree.of(values, ["uint256", "address", "uint256"])` of `@openzeppelin/merkle-tree`
(or `StandardMerkleTree.of(values, ["address", "uint256"])`) builds, so both produce the same root
and proofs, and `dump()` / `load()` read and write its JSON. Staking's slash pools and the
Marketplace's cumulative claims verify these proofs with OpenZeppelin's `MerkleProof`.

Built for size: one keccak call per hash on raw bytes (no ABI library), the tree kept as a
single bytes blob and tree positions in an integer array, so a million leaves build in seconds.
"""

from __future__ import annotations

import json
from array import array
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Generic, Self, TypeVar

from workers.protocol import UINT256_MAX

try:  # safe-pysha3: the C keccak that eth-hash uses when installed (pinned in requirements)
    from sha3 import keccak_256 as _new_keccak
except ImportError:  # pragma: no cover - pycryptodome, eth-hash's other backend
    from Crypto.Hash import keccak as _pycryptodome_keccak

    def _new_keccak(data: bytes) -> Any:
        return _pycryptodome_keccak.new(data=data, digest_bits=256)


def keccak(data: bytes) -> bytes:
    """keccak256 of `data`."""
    return _new_keccak(data).digest()


#: The payout leaf encoding, as `@openzeppelin/merkle-tree` names it.
LEAF_ENCODING = ("uint256", "address", "uint256")
#: The cumulative claim leaf encoding (Marketplace.claim).
CLAIM_LEAF_ENCODING = ("address", "uint256")
#: The dump format of StandardMerkleTree.
FORMAT = "standard-v1"

WORD = 32
ADDRESS_BYTES = 20
_ADDRESS_PAD = b"\x00" * (WORD - ADDRESS_BYTES)
_ADDRESS_HEX_CHARS = 2 + 2 * ADDRESS_BYTES

#: One payout leaf: (index, account as 0x-hex, amount).
Leaf = tuple[int, str, int]
#: One claim leaf: (account as 0x-hex, cumulative amount owed).
ClaimLeaf = tuple[str, int]
V = TypeVar("V", bound=tuple[Any, ...])


class MerkleTreeError(ValueError):
    """Leaves or a dump that do not make a valid tree."""


# ---------------------------------------------------------------------------- hashing


def encode_leaf(index: int, account: str, amount: int) -> bytes:
    """`abi.encode(uint256 index, address account, uint256 amount)`: three 32-byte words."""
    try:
        return (
            index.to_bytes(WORD, "big")
            + _ADDRESS_PAD
            + _address_bytes(account)
            + amount.to_bytes(WORD, "big")
        )
    except (OverflowError, AttributeError, TypeError) as exc:
        raise MerkleTreeError(
            f"({index!r}, {account!r}, {amount!r}) is not (uint256, address, uint256)"
        ) from exc


def leaf_hash(index: int, account: str, amount: int) -> bytes:
    """The StandardMerkleTree leaf: keccak256(keccak256(abi.encode(index, account, amount)))."""
    return keccak(keccak(encode_leaf(index, account, amount)))


def encode_claim_leaf(account: str, cumulative: int) -> bytes:
    """`abi.encode(address account, uint256 cumulative)`: two 32-byte words."""
    try:
        return _ADDRESS_PAD + _address_bytes(account) + cumulative.to_bytes(WORD, "big")
    except (OverflowError, AttributeError, TypeError) as exc:
        raise MerkleTreeError(f"({account!r}, {cumulative!r}) is not (address, uint256)") from exc


def claim_leaf_hash(account: str, cumulative: int) -> bytes:
    """The Marketplace's claim leaf: keccak256(bytes.concat(keccak256(abi.encode(account,
    cumulative)))), the StandardMerkleTree leaf of ("address", "uint256")."""
    return keccak(keccak(encode_claim_leaf(account, cumulative)))


def node_hash(a: bytes, b: bytes) -> bytes:
    """An inner node: keccak256 of the two children, smaller first."""
    return keccak(a + b if a < b else b + a)


def process_proof(leaf: bytes, proof: Iterable[bytes]) -> bytes:
    """The root a proof leads to from `leaf` (OpenZeppelin MerkleProof.processProof)."""
    computed = leaf
    for sibling in proof:
        computed = node_hash(computed, sibling)
    return computed


def verify(root: bytes | str, leaf: Leaf, proof: Sequence[bytes | str]) -> bool:
    """Whether `proof` proves `(index, account, amount)` under `root`."""
    return process_proof(leaf_hash(*leaf), [_to_bytes32(p) for p in proof]) == _to_bytes32(root)


def verify_claim(root: bytes | str, leaf: ClaimLeaf, proof: Sequence[bytes | str]) -> bool:
    """Whether `proof` proves `(account, cumulative)` under `root` (what Marketplace.claim checks)."""
    return process_proof(claim_leaf_hash(*leaf), [_to_bytes32(p) for p in proof]) == _to_bytes32(root)


def _address_bytes(account: str) -> bytes:
    if len(account) != _ADDRESS_HEX_CHARS or not account.startswith(("0x", "0X")):
        raise MerkleTreeError(f"account {account!r} is not a 0x-prefixed 20-byte address")
    try:
        return bytes.fromhex(account[2:])
    except ValueError as exc:
        raise MerkleTreeError(f"account {account!r} is not hex") from exc


def _to_bytes32(value: bytes | str) -> bytes:
    raw = (
        bytes.fromhex(value[2:] if value[:2] in ("0x", "0X") else value) if isinstance(value, str) else value
    )
    if len(raw) != WORD:
        raise MerkleTreeError(f"{value!r} is not 32 bytes")
    return raw


def _hex(node: bytes) -> str:
    return "0x" + node.hex()


def _leaf_hashes(values: Sequence[Leaf]) -> list[bytes]:
    """Every leaf hash, in value order: the hot loop of a build, one comprehension.

    Malformed values fall through to a per-value pass that names the first bad one.
    """
    new, pad = _new_keccak, _ADDRESS_PAD
    try:
        if all(len(a) == _ADDRESS_HEX_CHARS and a[1] in "xX" for _, a, _ in values):
            return [
                new(
                    new(
                        i.to_bytes(WORD, "big") + pad + bytes.fromhex(a[2:]) + m.to_bytes(WORD, "big")
                    ).digest()
                ).digest()
                for i, a, m in values
            ]
    except (OverflowError, AttributeError, TypeError, ValueError):
        pass
    for position, value in enumerate(values):
        try:
            index, account, amount = value
            encode_leaf(index, account, amount)
        except (MerkleTreeError, TypeError, ValueError) as exc:
            raise MerkleTreeError(f"value {position} {value!r}: {exc}") from exc
    raise MerkleTreeError("values are not (uint256, address, uint256) leaves")  # pragma: no cover


def _claim_leaf_hashes(values: Sequence[ClaimLeaf]) -> list[bytes]:
    """Every claim leaf hash, in value order (the hot loop of a ClaimTree build)."""
    new, pad = _new_keccak, _ADDRESS_PAD
    try:
        if all(len(a) == _ADDRESS_HEX_CHARS and a[1] in "xX" for a, _ in values):
            return [
                new(new(pad + bytes.fromhex(a[2:]) + m.to_bytes(WORD, "big")).digest()).digest()
                for a, m in values
            ]
    except (OverflowError, AttributeError, TypeError, ValueError):
        pass
    for position, value in enumerate(values):
        try:
            account, cumulative = value
            encode_claim_leaf(account, cumulative)
        except (MerkleTreeError, TypeError, ValueError) as exc:
            raise MerkleTreeError(f"value {position} {value!r}: {exc}") from exc
    raise MerkleTreeError("values are not (address, uint256) leaves")  # pragma: no cover


def _inner_nodes(tree: list[bytes], count: int) -> None:
    """Fills tree[0 : count - 1] from the leaves at tree[count - 1 :].

    Works in blocks [hi // 2, hi) whose children all lie at or beyond hi, so each block is one
    comprehension over two strided slices instead of a Python loop with index arithmetic.
    """
    new = _new_keccak
    hi = count - 1
    while hi > 0:
        lo = hi // 2
        lefts, rights = tree[2 * lo + 1 : 2 * hi + 1 : 2], tree[2 * lo + 2 : 2 * hi + 2 : 2]
        tree[lo:hi] = [new(a + b if a < b else b + a).digest() for a, b in zip(lefts, rights, strict=True)]
        hi = lo


# ---------------------------------------------------------------------------- the tree


class _StandardTree(Generic[V]):
    """A StandardMerkleTree of one leaf encoding, built once, read many times. Subclasses say
    the encoding: its name, how its values hash, parse from and write to a dump."""

    __slots__ = ("_nodes", "_positions", "values")

    #: The leaf encoding, as `@openzeppelin/merkle-tree` names it.
    ENCODING: tuple[str, ...] = ()

    def __init__(self, nodes: bytes, positions: array, values: Sequence[V]) -> None:
        self._nodes = nodes  # (2n - 1) * 32 bytes: the heap array of StandardMerkleTree
        self._positions = positions  # value index -> node index of its leaf
        self.values: Sequence[V] = values

    # --------------------------------------------------------------- the encoding

    @staticmethod
    def _hashes(values: Sequence[V]) -> list[bytes]:
        raise NotImplementedError

    @staticmethod
    def _account(value: V) -> str:
        raise NotImplementedError

    @staticmethod
    def _amount(value: V) -> int:
        return int(value[-1])

    @staticmethod
    def _parse(raw: list[Any]) -> V:
        raise NotImplementedError

    @staticmethod
    def _json(value: V) -> list[str]:
        raise NotImplementedError

    # --------------------------------------------------------------- building

    @classmethod
    def build(cls, values: Sequence[V]) -> Self:
        """The tree of `values`, in the order given (proofs are asked for by that order).

        The values are kept as given (not copied): do not mutate them afterwards.
        """
        count = len(values)
        if count == 0:
            raise MerkleTreeError("a tree needs at least one leaf")
        hashes = cls._hashes(values)
        order = sorted(range(count), key=hashes.__getitem__)
        size = 2 * count - 1
        tree: list[bytes] = [b""] * (count - 1)
        tree.extend(hashes[i] for i in reversed(order))  # sorted leaf k sits at size - 1 - k
        del hashes
        positions = array("q", bytes(8 * count))
        for k, value_index in enumerate(order):
            positions[value_index] = size - 1 - k
        del order
        _inner_nodes(tree, count)
        return cls(b"".join(tree), positions, values)

    # --------------------------------------------------------------- reading

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self) -> Iterator[V]:
        return iter(self.values)

    @property
    def root_bytes(self) -> bytes:
        return self._nodes[:WORD]

    @property
    def root(self) -> str:
        """The root as 0x-hex, what `slash` / `proposeRoot` take."""
        return _hex(self.root_bytes)

    @property
    def total(self) -> int:
        """The sum of every leaf's amount: what the root promises."""
        return sum(self._amount(value) for value in self.values)

    def node(self, tree_index: int) -> bytes:
        return self._nodes[tree_index * WORD : (tree_index + 1) * WORD]

    def tree_index(self, value_index: int) -> int:
        """Where value `value_index`'s leaf sits in the heap array."""
        if not 0 <= value_index < len(self.values):
            raise IndexError(f"value {value_index} is not in a tree of {len(self.values)} leaves")
        return self._positions[value_index]

    def proof_bytes(self, value_index: int) -> list[bytes]:
        """The sibling hashes from value `value_index`'s leaf up to the root."""
        position = self.tree_index(value_index)
        proof: list[bytes] = []
        while position > 0:
            sibling = position + 1 if position % 2 else position - 1
            proof.append(self.node(sibling))
            position = (position - 1) // 2
        return proof

    def proof(self, value_index: int) -> list[str]:
        """Value `value_index`'s proof as 0x-hex (StandardMerkleTree.getProof)."""
        return [_hex(node) for node in self.proof_bytes(value_index)]

    def leaf(self, value_index: int) -> V:
        return self.values[value_index]

    def verify(self, value_index: int, proof: Sequence[bytes | str]) -> bool:
        """Whether `proof` proves value `value_index` under this root."""
        leaf = self._hashes([self.values[value_index]])[0]
        return process_proof(leaf, [_to_bytes32(p) for p in proof]) == self.root_bytes

    def indexes_of(self, account: str) -> list[int]:
        """The value indexes whose leaf pays `account` (case-insensitive)."""
        wanted = account.lower()
        return [i for i, value in enumerate(self.values) if self._account(value).lower() == wanted]

    # --------------------------------------------------------------- dump and load

    def dump(self) -> dict[str, Any]:
        """StandardMerkleTree.dump(): loadable by `StandardMerkleTree.load` of the npm library.

        uint256 values are written as decimal strings (JSON numbers would lose precision).
        """
        nodes = self._nodes
        return {
            "format": FORMAT,
            "leafEncoding": list(self.ENCODING),
            "tree": ["0x" + nodes[i : i + WORD].hex() for i in range(0, len(nodes), WORD)],
            "values": [
                {"value": self._json(value), "treeIndex": position}
                for value, position in zip(self.values, self._positions, strict=True)
            ],
        }

    def write(self, path: Path, **extra: Any) -> None:
        """Writes the dump (plus `extra` top-level keys, ignored by loaders) atomically."""
        body = {**self.dump(), **extra}
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(body, separators=(",", ":")) + "\n")
        tmp.replace(path)

    @classmethod
    def load(cls, data: dict[str, Any], *, validate: bool = True) -> Self:
        """A tree from a StandardMerkleTree dump (ours or the npm library's).

        With `validate` (the default, as StandardMerkleTree.load does) every leaf and inner
        node is recomputed; a dump that does not hold together is refused.
        """
        if data.get("format") != FORMAT:
            raise MerkleTreeError(f"unknown format {data.get('format')!r}, expected {FORMAT!r}")
        if tuple(data.get("leafEncoding") or ()) != cls.ENCODING:
            raise MerkleTreeError(f"leaf encoding {data.get('leafEncoding')!r} is not {list(cls.ENCODING)}")
        try:
            nodes = b"".join(_to_bytes32(node) for node in data["tree"])
            values = [cls._parse(entry["value"]) for entry in data["values"]]
            positions = array("q", (int(entry["treeIndex"]) for entry in data["values"]))
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise MerkleTreeError(f"not a StandardMerkleTree dump: {exc}") from exc
        tree = cls(nodes, positions, values)
        if validate:
            tree.validate()
        return tree

    @classmethod
    def read(cls, path: Path, *, validate: bool = True) -> Self:
        return cls.load(json.loads(path.read_text()), validate=validate)

    def validate(self) -> None:
        """Raises MerkleTreeError unless every leaf and every inner node is what it should be."""
        count = len(self.values)
        size = len(self._nodes) // WORD
        if count == 0 or size != 2 * count - 1 or len(self._nodes) % WORD:
            raise MerkleTreeError(f"{size} nodes cannot hold {count} leaves")
        hashes = self._hashes(self.values)
        for value_index, position in enumerate(self._positions):
            if not count - 1 <= position < size or self.node(position) != hashes[value_index]:
                raise MerkleTreeError(f"value {value_index} does not match its leaf at {position}")
        if len(set(self._positions)) != count:
            raise MerkleTreeError("two values share one leaf position")
        for i in range(count - 1):
            if self.node(i) != node_hash(self.node(2 * i + 1), self.node(2 * i + 2)):
                raise MerkleTreeError(f"inner node {i} is not the hash of its children")


class PayoutTree(_StandardTree[Leaf]):
    """A StandardMerkleTree of `(index, account, amount)` leaves (Staking's slash pools)."""

    __slots__ = ()
    ENCODING = LEAF_ENCODING

    _hashes = staticmethod(_leaf_hashes)

    @staticmethod
    def _account(value: Leaf) -> str:
        return value[1]

    @staticmethod
    def _parse(raw: list[Any]) -> Leaf:
        return (_uint(raw[0]), str(raw[1]), _uint(raw[2]))

    @staticmethod
    def _json(value: Leaf) -> list[str]:
        return [str(value[0]), value[1], str(value[2])]

    @classmethod
    def from_amounts(cls, payouts: Iterable[tuple[str, int]]) -> PayoutTree:
        """The tree of `(i, account, amount)` for the i-th `(account, amount)`: indexes 0..n-1."""
        return cls.build([(i, account, amount) for i, (account, amount) in enumerate(payouts)])


class ClaimTree(_StandardTree[ClaimLeaf]):
    """A StandardMerkleTree of `(account, cumulative)` leaves: the Marketplace's one cumulative
    member root (SPEC15 §4), `claim(account, cumulative, proof)` pays `cumulative - claimed`."""

    __slots__ = ()
    ENCODING = CLAIM_LEAF_ENCODING

    _hashes = staticmethod(_claim_leaf_hashes)

    @staticmethod
    def _account(value: ClaimLeaf) -> str:
        return value[0]

    @staticmethod
    def _parse(raw: list[Any]) -> ClaimLeaf:
        return (str(raw[0]), _uint(raw[1]))

    @staticmethod
    def _json(value: ClaimLeaf) -> list[str]:
        return [value[0], str(value[1])]


def _uint(value: Any) -> int:
    """A uint256 from a dump: a decimal or 0x-hex string, or a JSON integer."""
    number = int(value, 0) if isinstance(value, str) else int(value)
    if not 0 <= number <= UINT256_MAX:
        raise MerkleTreeError(f"{value!r} is not a uint256")
    return number
