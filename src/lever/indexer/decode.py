"""Logs to events: the protocol's event ABIs (from the build manifest) decoded with eth_abi.

Pure: a `Decoder` maps (address, topic0) to an event shape once, then decodes raw JSON-RPC logs
(hex strings, as `eth_getLogs` returns them) without web3's per-log formatters.
"""

from __future__ import annotations

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
            int(log["blockNumber"], 16), int(log["logIndex"], 16), log["transactionHash"], log["blockHash"],
            log["address"].lower(), tuple(log["topics"]), log["data"],
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
                self.shapes[(address, topic)] = EventShape(
                    contract,
                    item["name"],
                    tuple((i["name"], abi_type(i)) for i in inputs if i["indexed"]),
                    tuple(i["name"] for i in inputs if not i["indexed"]),
                    tuple(abi_type(i) for i in inputs if not i["indexed"]),
                )

    @property
    def addresses(self) -> list[str]:
        return list(self.contract_of)

    def name(self, log: RawLog) -> str:
        shape = self.shapes.get((log.address, log.topics[0])) if log.topics else None
        return f"{shape.contract}.{shape.name}" if shape else f"{self.contract_of.get(log.address, '?')}.?"

    def decode(self, log: RawLog, timestamp: int) -> Event | None:
        """The event, or None for a log this build does not know (an anonymous or foreign one)."""
        shape = self.shapes.get((log.address, log.topics[0])) if log.topics else None
        if shape is None:
            return None
        args: dict[str, Any] = {}
        for (name, kind), topic in zip(shape.indexed, log.topics[1:], strict=True):
            (args[name],) = abi_decode([kind], bytes.fromhex(topic[2:]))
        if shape.data_types:
            values = abi_decode(list(shape.data_types), bytes.fromhex(log.data[2:]))
            args.update(zip(shape.data_names, values, strict=True))
        return Event(log.block, log.log_index, log.tx_hash, timestamp, shape.contract, shape.name,
                     {k: _normalise(v) for k, v in args.items()})
