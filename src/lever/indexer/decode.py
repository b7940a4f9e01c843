"""Logs to events: the protocol's event ABIs (from the build manifest) decoded with eth_abi.

Pure: a `Decoder` maps (address, topic0) to an event shape once, then decodes raw JSON-RPC logs
(hex strings, as `eth_getLogs` returns them) without web3's per-log formatters.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.crypto import keccak

from lever.artifacts import Artifacts, abi_type, signature

# Deployment record key -> contract name in the build manifest. The token and the pull oracle
# are not the protocol's: their events are not indexed.
CONTRACTS = {
    "engine": "PerpEngine",
    "order_book": "OrderBook",
    "vault": "LeverVault",
    "liquidator": "Liquidator",
    "oracle": "OracleAdapter",
    "timelock": "LeverTimelock",
}


@dataclass(frozen=True)
class EventShape:
    contract: str
    name: str
    indexed: tuple[tuple[str, str], ...]  # (name, type)
    data_names: tuple[str, ...]
    data_types: tuple[str, ...]
    words: tuple[Callable[[bytes], Any], ...] | None  # one converter per 32-byte word, if all static
    flat_names: tuple[str, ...] | None = None  # every input's name, in word order, if none is a tuple


_STATIC = re.compile(r"^(uint|int)(\d*)$|^address$|^bool$|^bytes(\d+)$")


def _word(kind: str) -> Callable[[bytes], Any] | None:
    """A converter of one ABI head word for a static value type, or None (then eth_abi decodes).
    The common case of the protocol's events, where eth_abi's per-call machinery dominates."""
    match = _STATIC.match(kind)
    if match is None:
        return None
    if kind == "address":
        return lambda w: "0x" + w[12:].hex()
    if kind == "bool":
        return lambda w: w[31] == 1
    if kind.startswith("bytes"):
        n = int(match.group(3))
        return lambda w: w[:n]
    if kind.startswith("int"):
        return lambda w: int.from_bytes(w, "big", signed=True)
    return lambda w: int.from_bytes(w, "big")


def _members(kind: str) -> list[str]:
    """A tuple type's member types, one level deep: `(a,(b,c))` -> `a`, `(b,c)`."""
    depth, parts, cur = 0, [], ""
    for ch in kind[1:-1]:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


@functools.cache
def _flat(kind: str) -> tuple[str, ...] | None:
    """A static tuple's member types, flattened; a plain type as itself (cached: the decoder asks
    for the same few types on every log)."""
    if kind.startswith("(") and kind.endswith(")"):
        out: tuple[str, ...] = ()
        for part in _members(kind):
            sub = _flat(part)
            if sub is None:
                return None
            out += sub
        return out
    return (kind,) if _word(kind) is not None else None


@dataclass(frozen=True)
class RawLog:
    block: int
    log_index: int
    tx_hash: str
    block_hash: str
    address: str  # lower case
    topics: tuple[str, ...]
    data: str

    @classmethod
    def from_rpc(cls, log: dict[str, Any]) -> RawLog:
        return cls(
            int(log["blockNumber"], 16),
            int(log["logIndex"], 16),
            log["transactionHash"],
            log["blockHash"],
            log["address"].lower(),
            tuple(log["topics"]),
            log["data"],
        )


@dataclass(frozen=True)
class Event:
    block: int
    log_index: int
    tx_hash: str
    timestamp: int
    contract: str
    name: str
    args: dict[str, Any]


def _normalise(value: Any) -> Any:
    """eth_abi's values with addresses checksum-free lower case and tuples kept as tuples."""
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return value.lower()
    if isinstance(value, tuple | list):
        return tuple(_normalise(v) for v in value)
    return value


class Decoder:
    def __init__(self, arts: Artifacts, addresses: dict[str, str]):
        """`addresses`: deployment key (see CONTRACTS) -> address."""
        self.contract_of = {addresses[key].lower(): name for key, name in CONTRACTS.items() if key in addresses}
        self.shapes: dict[tuple[str, str], EventShape] = {}
        for address, contract in self.contract_of.items():
            for item in arts.abi(contract):
                if item.get("type") != "event" or item.get("anonymous"):
                    continue
                topic = "0x" + keccak(text=signature(item)).hex()
                inputs = item["inputs"]
                indexed = tuple((i["name"], abi_type(i)) for i in inputs if i["indexed"])
                data_types = tuple(abi_type(i) for i in inputs if not i["indexed"])
                flat = [_flat(k) for _, k in indexed] + [_flat(k) for k in data_types]
                words = None
                if all(f is not None for f in flat) and all(not k.startswith("(") for _, k in indexed):
                    words = tuple(conv for f in flat for conv in map(_word, f or []) if conv is not None)
                data_names = tuple(i["name"] for i in inputs if not i["indexed"])
                plain = words is not None and not any(k.startswith("(") for k in data_types)
                self.shapes[(address, topic)] = EventShape(
                    contract,
                    item["name"],
                    indexed,
                    data_names,
                    data_types,
                    words,
                    (*(n for n, _ in indexed), *data_names) if plain else None,
                )

    @property
    def addresses(self) -> list[str]:
        return list(self.contract_of)

    def name(self, log: RawLog) -> str:
        shape = self.shapes.get((log.address, log.topics[0])) if log.topics else None
        return f"{shape.contract}.{shape.name}" if shape else f"{self.contract_of.get(log.address, '?')}.?"

    def decode(self, log: RawLog, timestamp: int, generic: bool = False) -> Event | None:
        """The event, or None for a log this build does not know (an anonymous or foreign one).
        `generic`: through eth_abi even when every input is a static word (the tests compare)."""
        shape = self.shapes.get((log.address, log.topics[0])) if log.topics else None
        if shape is None:
            return None
        if shape.words is not None and not generic:
            return Event(
                log.block, log.log_index, log.tx_hash, timestamp, shape.contract, shape.name, self._static(shape, log)
            )
        args: dict[str, Any] = {}
        for (name, kind), topic in zip(shape.indexed, log.topics[1:], strict=True):
            (args[name],) = abi_decode([kind], bytes.fromhex(topic[2:]))
        if shape.data_types:
            values = abi_decode(list(shape.data_types), bytes.fromhex(log.data[2:]))
            args.update(zip(shape.data_names, values, strict=True))
        return Event(
            log.block,
            log.log_index,
            log.tx_hash,
            timestamp,
            shape.contract,
            shape.name,
            {k: _normalise(v) for k, v in args.items()},
        )

    @staticmethod
    def _static(shape: EventShape, log: RawLog) -> dict[str, Any]:
        """Every input static: topics and data are a run of 32-byte words, in input order
        (indexed first, then data; a static tuple's members inline)."""
        raw = b"".join(bytes.fromhex(t[2:]) for t in log.topics[1:]) + bytes.fromhex(log.data[2:])
        assert shape.words is not None
        values = [conv(raw[32 * i : 32 * i + 32]) for i, conv in enumerate(shape.words)]
        if shape.flat_names is not None:  # no tuples: one word per input
            return dict(zip(shape.flat_names, values, strict=True))
        args: dict[str, Any] = {}
        i = 0
        for name, kind in [*shape.indexed, *zip(shape.data_names, shape.data_types, strict=True)]:
            width = len(_flat(kind) or ())
            if kind.startswith("("):
                args[name] = _nest(kind, values[i : i + width])
            else:
                args[name] = values[i]
            i += width
        return args


def _nest(kind: str, values: list[Any]) -> tuple[Any, ...]:
    """Flat values back into a (possibly nested) static tuple's shape."""
    out: list[Any] = []
    i = 0
    for part in _members(kind):
        width = len(_flat(part) or ())
        out.append(_nest(part, values[i : i + width]) if part.startswith("(") else values[i])
        i += width
    return tuple(out)
