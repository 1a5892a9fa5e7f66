"""Raw logs → events, with decoders built once per (address, topic0) from the ABIs.

A log of a deployment contract whose topic0 is one of its ABI's events must decode exactly:
wrong topic count, short or ragged data, or bytes the ABI cannot read raise
MalformedLogError naming the log; the whole batch is then refused (nothing is applied).
Logs whose topic0 is not in the ABI (or anonymous logs) are skipped and counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import keccak

from workers.chain.artifacts import abi_type, load_artifact
from workers.chain.deployment import Manifest

WORD = 32
HEX_WORD = 64


class MalformedLogError(ValueError):
    """A log claims to be a known event but does not decode as that event."""


@dataclass(slots=True, frozen=True)
class Event:
    """One decoded event, in chain order by (block_number, log_index)."""

    contract: str
    name: str
    args: dict[str, Any]
    address: str
    block_number: int
    block_hash: str
    block_timestamp: int | None
    log_index: int
    tx_hash: str
    #: What a view returned at this event's block, for events that need one (views.py).
    view: dict[str, Any] | None = None


Converter = Callable[[bytes], Any]


def _uint(word: bytes) -> int:
    return int.from_bytes(word, "big")


def _int(word: bytes) -> int:
    return int.from_bytes(word, "big", signed=True)


def _address(word: bytes) -> str:
    return "0x" + word[12:].hex()


def _bool(word: bytes) -> bool:
    return word[31] != 0


def _word_converter(kind: str) -> Converter | None:
    """A converter of one 32-byte word for static elementary types; None for the rest."""
    if "[" in kind or kind.startswith("(") or kind in ("string", "bytes"):
        return None
    if kind.startswith("bytes"):
        size = int(kind[5:])
        return lambda w: "0x" + w[:size].hex()
    simple: dict[str, Converter] = {"address": _address, "bool": _bool}
    if kind in simple:
        return simple[kind]
    return _uint if kind.startswith("uint") else _int if kind.startswith("int") else None


def _to_python(value: Any, item: dict[str, Any]) -> Any:
    """eth_abi values → JSON-friendly Python: bytes as 0x-hex, structs as dicts."""
    kind = item["type"]
    if kind.endswith("]"):
        inner = {**item, "type": kind[: kind.rindex("[")]}
        return [_to_python(v, inner) for v in value]
    if kind == "tuple":
        return {c["name"]: _to_python(v, c) for c, v in zip(item["components"], value, strict=True)}
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if kind == "address":
        return value.lower()
    return value


@dataclass(frozen=True)
class EventDecoder:
    """Decodes the logs of one event of one contract."""

    contract: str
    name: str
    signature: str
    topic_names: tuple[str, ...]
    topic_converters: tuple[Converter | None, ...]
    data_items: tuple[dict[str, Any], ...]
    data_types: tuple[str, ...]
    #: Per-word converters when every data field is one static word (the fast path).
    word_converters: tuple[Converter, ...] | None

    @classmethod
    def from_abi(cls, contract: str, item: dict[str, Any]) -> EventDecoder:
        inputs = item.get("inputs", [])
        signature = f"{item['name']}({','.join(abi_type(i) for i in inputs)})"
        indexed = [i for i in inputs if i.get("indexed")]
        data = [i for i in inputs if not i.get("indexed")]
        data_types = tuple(abi_type(i) for i in data)
        words = [_word_converter(t) for t in data_types]
        return cls(
            contract=contract,
            name=item["name"],
            signature=signature,
            topic_names=tuple(i["name"] for i in indexed),
            # Indexed dynamic values (string, bytes, arrays, structs) are only their hash.
            topic_converters=tuple(_word_converter(abi_type(i)) for i in indexed),
            data_items=tuple(data),
            data_types=data_types,
            word_converters=tuple(words) if all(w is not None for w in words) else None,  # type: ignore[arg-type]
        )

    @property
    def topic0(self) -> str:
        return "0x" + keccak(text=self.signature).hex()

    def decode(self, log: dict[str, Any]) -> dict[str, Any]:
        topics = log["topics"]
        if len(topics) != len(self.topic_names) + 1:
            raise MalformedLogError(
                f"{_where(log)}: {self.contract}.{self.signature} has {len(self.topic_names)} indexed "
                f"arguments but the log has {len(topics) - 1} topics"
            )
        args: dict[str, Any] = {}
        for name, convert, topic in zip(self.topic_names, self.topic_converters, topics[1:], strict=True):
            if len(topic) != 2 + HEX_WORD:
                raise MalformedLogError(f"{_where(log)}: topic {topic!r} is not 32 bytes")
            args[name] = convert(bytes.fromhex(topic[2:])) if convert else topic.lower()
        data = log["data"]
        try:
            raw = bytes.fromhex(data[2:])
        except (ValueError, TypeError) as exc:
            raise MalformedLogError(f"{_where(log)}: data is not hex: {str(data)[:80]!r}") from exc
        if self.word_converters is not None:
            if len(raw) != WORD * len(self.word_converters):
                raise MalformedLogError(
                    f"{_where(log)}: {self.contract}.{self.signature} needs "
                    f"{WORD * len(self.word_converters)} bytes of data, the log has {len(raw)}"
                )
            for i, (item, convert) in enumerate(zip(self.data_items, self.word_converters, strict=True)):
                args[item["name"]] = convert(raw[i * WORD : (i + 1) * WORD])
            return args
        try:
            values = abi_decode(list(self.data_types), raw, strict=True)
        except Exception as exc:
            raise MalformedLogError(
                f"{_where(log)}: data does not decode as {self.contract}.{self.signature}: {exc}"
            ) from exc
        for item, value in zip(self.data_items, values, strict=True):
            args[item["name"]] = _to_python(value, item)
        return args


def _where(log: dict[str, Any]) -> str:
    return (
        f"log {log.get('logIndex')} of block {log.get('blockNumber')} "
        f"(tx {log.get('transactionHash')}, address {log.get('address')})"
    )


class Decoder:
    """Every event of every contract of a deployment, by (address, topic0)."""

    def __init__(self, decoders: dict[tuple[str, str], EventDecoder]) -> None:
        self.decoders = decoders
        self.skipped = 0

    @classmethod
    def for_manifest(cls, manifest: Manifest) -> Decoder:
        decoders: dict[tuple[str, str], EventDecoder] = {}
        for name, address in manifest.contracts.items():
            for item in load_artifact(name).events():
                if item.get("anonymous"):
                    continue
                decoder = EventDecoder.from_abi(name, item)
                decoders[(address.lower(), decoder.topic0)] = decoder
        return cls(decoders)

    def decode(self, log: dict[str, Any]) -> Event | None:
        """The event of `log`, None when its topic0 is no event of that contract's ABI."""
        try:
            address = log["address"].lower()
            topics = log["topics"]
            key = (address, topics[0].lower()) if topics else None
            block_number = int(log["blockNumber"], 16)
            log_index = int(log["logIndex"], 16)
            block_hash = log["blockHash"].lower()
            tx_hash = log["transactionHash"].lower()
            stamp = log.get("blockTimestamp")
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise MalformedLogError(
                f"{_where(log) if isinstance(log, dict) else log!r}: missing field {exc}"
            ) from exc
        decoder = self.decoders.get(key) if key else None
        if decoder is None:
            self.skipped += 1
            return None
        return Event(
            contract=decoder.contract,
            name=decoder.name,
            args=decoder.decode(log),
            address=address,
            block_number=block_number,
            block_hash=block_hash,
            block_timestamp=int(stamp, 16) if stamp else None,
            log_index=log_index,
            tx_hash=tx_hash,
        )
