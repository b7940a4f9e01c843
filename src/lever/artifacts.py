"""Shapes derived from the compiled contracts, in one place: ABIs, canonical types, function and
error selectors, event topics. Nothing here is typed by hand; everything comes from the ape
build manifest (`.build/__local__.json`), which `make compile` writes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak

from lever.errors import DeploymentError
from lever.paths import BUILD_MANIFEST

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
        return keccak(text=signature(self.item(contract, name)))[:4]

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
                        item["name"], tuple(i["name"] for i in item["inputs"]), tuple(abi_type(i) for i in item["inputs"])
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
