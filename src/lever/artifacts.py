"""Shapes derived from the compiled contracts, in one place: ABIs, canonical types, function and
error selectors, event topics, storage slots. Nothing here is typed by hand: ABIs come from the
ape build manifest (`.build/__local__.json`, written by `make compile`), storage layouts from
forge's build (`build/forge/out`, written by `forge build`; see foundry.toml)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak

from lever.errors import DeploymentError
from lever.paths import BUILD_MANIFEST, FORGE_OUT

Abi = list[dict[str, Any]]


def abi_type(item: dict[str, Any]) -> str:
    """The canonical ABI type of an input or output (tuples spelled out)."""
    kind = str(item["type"])
    if kind.startswith("tuple"):
        return "(" + ",".join(abi_type(c) for c in item["components"]) + ")" + kind[5:]
    return kind


def signature(item: dict[str, Any]) -> str:
    """`name(type,...)` of a function, event or error."""
    return f"{item['name']}({','.join(abi_type(i) for i in item['inputs'])})"


def selector_of(item: dict[str, Any]) -> bytes:
    """The 4-byte selector of a function or error ABI entry."""
    return keccak(text=signature(item))[:4]


@dataclass(frozen=True)
class ErrorShape:
    name: str
    arg_names: tuple[str, ...]
    arg_types: tuple[str, ...]


@dataclass(frozen=True)
class Artifacts:
    """The compiled contracts of one manifest (the project's, or a mutant's)."""

    path: Path = BUILD_MANIFEST

    @cached_property
    def _types(self) -> dict[str, Any]:
        if not self.path.is_file():
            raise DeploymentError(f"no compiled contracts at {self.path}: run `make compile` first")
        types: dict[str, Any] = json.loads(self.path.read_text())["contractTypes"]
        return types

    def abi(self, contract: str) -> Abi:
        abi: Abi = self._types[contract]["abi"]
        return abi

    def bytecode(self, contract: str) -> bytes:
        return bytes.fromhex(self._types[contract]["deploymentBytecode"]["bytecode"][2:])

    def item(self, contract: str, name: str, kind: str = "function") -> dict[str, Any]:
        """The ABI entry of `name` (the first overload)."""
        for entry in self.abi(contract):
            if entry.get("type") == kind and entry.get("name") == name:
                return entry
        raise KeyError(f"{contract} has no {kind} {name}")

    def selector(self, contract: str, name: str) -> bytes:
        return selector_of(self.item(contract, name))

    def input_types(self, contract: str, name: str) -> list[str]:
        return [abi_type(i) for i in self.item(contract, name)["inputs"]]

    def output_types(self, contract: str, name: str) -> list[str]:
        return [abi_type(o) for o in self.item(contract, name)["outputs"]]

    def topic(self, contract: str, event: str) -> bytes:
        return keccak(text=signature(self.item(contract, event, "event")))

    @cached_property
    def errors(self) -> dict[bytes, ErrorShape]:
        """Selector -> error, over every contract (OpenZeppelin's and Pyth's errors included)."""
        table: dict[bytes, ErrorShape] = {}
        for contract in self._types.values():
            for item in contract.get("abi", []):
                if item.get("type") == "error":
                    table[keccak(text=signature(item))[:4]] = ErrorShape(
                        item["name"],
                        tuple(i["name"] for i in item["inputs"]),
                        tuple(abi_type(i) for i in item["inputs"]),
                    )
        table[keccak(text="Panic(uint256)")[:4]] = ErrorShape("Panic", ("code",), ("uint256",))
        table[keccak(text="Error(string)")[:4]] = ErrorShape("Error", ("message",), ("string",))
        return table

    def error_name(self, data: bytes) -> str:
        """The custom error's name of revert data (`<empty revert>`, `<unknown 0x...>` otherwise)."""
        if len(data) < 4:
            return "<empty revert>"
        shape = self.errors.get(bytes(data[:4]))
        return shape.name if shape else f"<unknown 0x{bytes(data[:4]).hex()}>"

    def error_selector(self, name: str) -> bytes:
        return next(sel for sel, shape in self.errors.items() if shape.name == name)


@cache
def artifacts() -> Artifacts:
    """The project's compiled contracts."""
    return Artifacts()


# --------------------------------------------------------------------------- storage layouts


@dataclass(frozen=True)
class Field:
    """A stored value: its slot (relative to its container), byte offset, width and type."""

    label: str
    slot: int
    offset: int
    size: int
    type: str

    @property
    def signed(self) -> bool:
        return self.type.startswith("t_int")

    def read(self, word: int) -> int:
        """The field's value out of its slot's word (two's complement for signed types)."""
        value = (word >> (8 * self.offset)) & ((1 << (8 * self.size)) - 1)
        if self.signed and value >> (8 * self.size - 1):
            value -= 1 << (8 * self.size)
        return value


@cache
def mapping_slot(key: int | str | bytes, slot: int) -> int:
    """`keccak256(key . slot)`: where a mapping stores `key`'s value (value types and addresses)."""
    if isinstance(key, str):
        key = int(key, 16)
    raw = key if isinstance(key, bytes) else (key % 2**256).to_bytes(32, "big")
    return int.from_bytes(keccak(raw.rjust(32, b"\0") + slot.to_bytes(32, "big")), "big")


@dataclass(frozen=True, eq=False)  # hashed by identity: one per contract, cached
class StorageLayout:
    """One contract's storage layout as solc reports it (`storageLayout`)."""

    contract: str
    raw: dict[str, Any]

    @cache  # noqa: B019 (layouts live as long as the process)
    def var(self, label: str) -> Field:
        for item in self.raw["storage"]:
            if item["label"] == label:
                return self._field(item)
        raise KeyError(f"{self.contract} stores no {label}")

    @cache  # noqa: B019
    def member(self, label: str, name: str) -> Field:
        """A field of the struct variable `label` (a packed slot shared by several values), its
        slot absolute."""
        base = self.var(label)
        for f in self.members(base.type):
            if f.label == name:
                return replace(f, slot=base.slot + f.slot)
        raise KeyError(f"{self.contract}.{label} has no member {name}")

    @cache  # noqa: B019
    def members(self, struct_type: str) -> list[Field]:
        """A struct's fields in declaration order, slots relative to the struct's first."""
        return [self._field(item) for item in self.raw["types"][struct_type]["members"]]

    @cache  # noqa: B019
    def value_type(self, label: str) -> str:
        """What a mapping (or array) variable holds, e.g. `t_struct(Position)..._storage`."""
        kind = self.var(label).type
        while True:
            entry = self.raw["types"][kind]
            if "value" in entry:
                kind = entry["value"]
            elif "base" in entry and entry.get("encoding") == "inplace" and kind.startswith("t_array"):
                kind = entry["base"]
            else:
                return kind

    def struct_slots(self, struct_type: str) -> int:
        return int(self.raw["types"][struct_type]["numberOfBytes"]) // 32

    def _field(self, item: dict[str, Any]) -> Field:
        size = int(self.raw["types"][item["type"]]["numberOfBytes"])
        return Field(item["label"], int(item["slot"]), int(item["offset"]), size, item["type"])


@cache
def storage_layout(contract: str, out: Path = FORGE_OUT) -> StorageLayout:
    path = out / f"{contract}.sol" / f"{contract}.json"
    if not path.is_file():
        raise DeploymentError(f"no storage layout at {path}: run `forge build` first")
    layout = json.loads(path.read_text()).get("storageLayout")
    if not layout:
        raise DeploymentError(f"{path} has no storage layout: foundry.toml must ask for extra_output storageLayout")
    return StorageLayout(contract, layout)
