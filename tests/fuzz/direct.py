"""The small part of ape's contract interface that `lever.deploy.deploy_protocol` uses, over a
fuzz backend, so that the fuzz world is deployed by the same code as every other deployment.

`DirectProject(chain, artifacts).LeverVault.deploy(*args, sender=account)` deploys;
`contract.someFunction(*args, sender=account)` sends a transaction; without `sender` it calls a
view. Arguments are ABI-encoded from the compiled contract's own ABI (`lever.artifacts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backends import Chain
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils.address import to_checksum_address

from lever.artifacts import Artifacts, abi_type, selector_of


@dataclass(frozen=True)
class DirectAccount:
    chain: Chain
    address: str

    @property
    def nonce(self) -> int:
        return self.chain.nonce(self.address)

    def __str__(self) -> str:
        return self.address


@dataclass(frozen=True)
class Receipt:
    output: bytes
    block_number: int = 0


def _plain(value: Any) -> Any:
    """Contracts and accounts become addresses; tuples and lists are converted element-wise."""
    if isinstance(value, (DirectContract, DirectAccount)):
        return value.address
    if isinstance(value, (tuple, list)):
        return type(value)(_plain(v) for v in value)
    return value


class DirectContract:
    def __init__(self, chain: Chain, artifacts: Artifacts, name: str, address: str):
        self.chain, self.artifacts, self.name = chain, artifacts, name
        self.address = to_checksum_address(address)

    def __getattr__(self, function: str) -> Any:
        if function.startswith("_"):
            raise AttributeError(function)
        entries = [e for e in self.artifacts.abi(self.name) if e.get("type") == "function" and e["name"] == function]
        if not entries:
            raise AttributeError(f"{self.name} has no function {function}")

        def invoke(*args: Any, sender: Any = None, value: int = 0) -> Any:
            [entry] = [e for e in entries if len(e["inputs"]) == len(args)]
            types = [abi_type(i) for i in entry["inputs"]]
            data = selector_of(entry) + abi_encode(types, _plain(list(args)))
            outputs = [abi_type(o) for o in entry["outputs"]]
            if sender is None:
                decoded = abi_decode(outputs, self.chain.call(self.address, data))
                return decoded[0] if len(decoded) == 1 else decoded
            return Receipt(self.chain.transact(str(_plain(sender)), self.address, data, value))

        return invoke


class DirectContractType:
    def __init__(self, chain: Chain, artifacts: Artifacts, name: str):
        self.chain, self.artifacts, self.name = chain, artifacts, name

    def deploy(self, *args: Any, sender: Any) -> DirectContract:
        constructor = next((e for e in self.artifacts.abi(self.name) if e.get("type") == "constructor"), None)
        types = [abi_type(i) for i in constructor["inputs"]] if constructor else []
        code = self.artifacts.bytecode(self.name) + abi_encode(types, _plain(list(args)))
        return DirectContract(self.chain, self.artifacts, self.name, self.chain.deploy(str(_plain(sender)), code))

    def at(self, address: str) -> DirectContract:
        return DirectContract(self.chain, self.artifacts, self.name, address)


class DirectProject:
    def __init__(self, chain: Chain, artifacts: Artifacts):
        self.chain, self.artifacts = chain, artifacts

    def __getattr__(self, name: str) -> DirectContractType:
        if name.startswith("_"):
            raise AttributeError(name)
        return DirectContractType(self.chain, self.artifacts, name)
