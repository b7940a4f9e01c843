"""The two EVM backends the invariant machine runs on, behind one small interface.

- `RevmChain`: the compiled contracts in revm, in this process (pyrevm). A journal checkpoint
  taken after deployment is restored for every Hypothesis example.
- `NodeChain`: a JSON-RPC node (Anvil, through ape's provider): transactions from the node's
  unlocked accounts, `evm_snapshot` / `evm_revert` per example.

Both speak raw calldata: the machine encodes with the helpers below (static ABI words are
concatenated by hand; eth-abi is only used where strings appear), so the fast backend spends its
time in the EVM rather than in encoding. Time is explicit: every transaction of a step runs at
the machine's clock, which only the time rule moves.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils.crypto import keccak

from lever.deploy import create_address

ROOT = Path(__file__).resolve().parents[2]
WORD = 2**256


class Reverted(Exception):
    """A call or transaction reverted; `data` is the revert data (empty for a bare revert or a halt)."""

    def __init__(self, data: bytes, detail: str = ""):
        super().__init__(detail or data.hex())
        self.data = data
        self.detail = detail


# --------------------------------------------------------------------------- ABI helpers


def selector(signature: str) -> bytes:
    return keccak(text=signature)[:4]


def word(value: int | str | bool) -> bytes:
    """One static ABI word: an int (two's complement), an address or a bool."""
    if isinstance(value, str):
        return bytes(12) + bytes.fromhex(value[2:])
    return (int(value) % WORD).to_bytes(32, "big")


def calldata(sel: bytes, *args: int | str | bool) -> bytes:
    return sel + b"".join(word(a) for a in args)


def uint_array(values: list[int]) -> bytes:
    """A dynamic uint256[] as the only argument."""
    return word(32) + word(len(values)) + b"".join(word(v) for v in values)


def words(data: bytes) -> list[int]:
    return [int.from_bytes(data[i : i + 32], "big") for i in range(0, len(data), 32)]


def signed(value: int) -> int:
    return value - WORD if value >= 2**255 else value


@dataclass(frozen=True)
class Artifacts:
    """Bytecode and error selectors from an ape build manifest (`.build/__local__.json`); the
    mutation check points `LEVER_FUZZ_ARTIFACTS` at a mutant's manifest."""

    path: Path

    @classmethod
    def default(cls) -> Artifacts:
        return cls(Path(os.environ.get("LEVER_FUZZ_ARTIFACTS", ROOT / ".build" / "__local__.json")))

    @cached_property
    def _types(self) -> dict[str, Any]:
        if not self.path.exists():
            raise FileNotFoundError(f"{self.path} not found: run `ape compile` (or `make compile`) first")
        types: dict[str, Any] = json.loads(self.path.read_text())["contractTypes"]
        return types

    def bytecode(self, name: str) -> bytes:
        return bytes.fromhex(self._types[name]["deploymentBytecode"]["bytecode"][2:])

    @cached_property
    def errors(self) -> dict[bytes, str]:
        """Selector -> error name, over every contract (OpenZeppelin's errors included)."""
        table = {}
        for contract in self._types.values():
            for item in contract.get("abi", []):
                if item.get("type") == "error":
                    types = ",".join(_canonical(i) for i in item["inputs"])
                    table[selector(f"{item['name']}({types})")] = item["name"]
        table[selector("Panic(uint256)")] = "Panic"
        table[selector("Error(string)")] = "Error"
        return table

    def error_name(self, data: bytes) -> str:
        if len(data) < 4:
            return "<empty revert>"
        return self.errors.get(data[:4], f"<unknown 0x{data[:4].hex()}>")


def _canonical(item: dict[str, Any]) -> str:
    kind: str = item["type"]
    if kind.startswith("tuple"):
        return "(" + ",".join(_canonical(c) for c in item["components"]) + ")" + kind[5:]
    return kind


def constructor(artifacts: Artifacts, name: str, types: list[str], args: list[Any]) -> bytes:
    return artifacts.bytecode(name) + abi_encode(types, args)


# --------------------------------------------------------------------------- revm, in process


class RevmChain:
    """The protocol in revm (pyrevm), in this process."""

    START = 1_700_000_000

    def __init__(self, n_accounts: int = 12):
        from pyrevm import EVM, BlockEnv, Env

        self._block_env = BlockEnv
        self.evm = EVM(spec_id="CANCUN", env=Env(block=BlockEnv(timestamp=self.START, number=1)))
        self.accounts = ["0x" + f"{0xA11CE0000 + i:040x}" for i in range(n_accounts)]  # clear of precompiles
        for a in self.accounts:
            self.evm.set_balance(a, 10**24)
        self._now = self.START
        self._checkpoint: Any = None
        self._snapshot_time = self.START

    def deploy(self, sender: str, code: bytes) -> str:
        try:
            return str(self.evm.deploy(sender, code, gas=30_000_000))
        except RuntimeError as error:
            raise Reverted(_revm_output(str(error)), str(error)) from None

    def transact(self, sender: str, to: str, data: bytes) -> None:
        try:
            self.evm.message_call(sender, to, data)
        except RuntimeError as error:
            raise Reverted(_revm_output(str(error)), str(error)) from None

    def call(self, to: str, data: bytes) -> bytes:
        try:
            return bytes(self.evm.message_call(self.accounts[0], to, data, is_static=True))
        except RuntimeError as error:
            raise Reverted(_revm_output(str(error)), str(error)) from None

    def set_time(self, timestamp: int) -> None:
        self._now = timestamp
        self.evm.set_block_env(self._block_env(timestamp=timestamp, number=timestamp - self.START + 1))

    def now(self) -> int:
        return self._now

    def snapshot(self) -> None:
        self._checkpoint = self.evm.snapshot()
        self._snapshot_time = self._now

    def restore(self) -> None:
        self.evm.revert(self._checkpoint)
        self._checkpoint = self.evm.snapshot()
        self.set_time(self._snapshot_time)

    def nonce(self, address: str) -> int:
        return int(self.evm.basic(address).nonce)


_REVERT_OUTPUT = re.compile(r"output: 0x([0-9a-fA-F]*)")


def _revm_output(message: str) -> bytes:
    """Revert data from pyrevm's error text (`Revert { gas_used: .., output: 0x.. }`)."""
    found = _REVERT_OUTPUT.search(message)
    return bytes.fromhex(found.group(1)) if found else b""


# --------------------------------------------------------------------------- a JSON-RPC node


class NodeChain:
    """A JSON-RPC development node (Anvil) reached through a web3 instance (ape's provider's).

    Every transaction is first run with `eth_call` on the latest block, whose timestamp is the
    machine's clock: a revert is reported with its data and nothing is sent; otherwise the same
    transaction is mined in a block at that same timestamp."""

    GAS = 25_000_000

    def __init__(self, web3: Any):
        self.web3 = web3
        self.accounts = [str(a) for a in web3.eth.accounts]
        self._snapshot_id: Any = None
        self._snapshot_time = 0
        self._now = int(web3.eth.get_block("latest")["timestamp"])

    def _rpc(self, method: str, params: list[Any]) -> Any:
        response = self.web3.provider.make_request(method, params)
        if "error" in response:
            error = response["error"]
            data = error.get("data")
            raw = bytes.fromhex(data[2:]) if isinstance(data, str) and data.startswith("0x") else b""
            raise Reverted(raw, str(error.get("message")))
        return response["result"]

    def _send(self, tx: dict[str, Any]) -> dict[str, Any]:
        self._rpc("evm_setNextBlockTimestamp", [hex(self._now)])
        tx_hash = self._rpc("eth_sendTransaction", [tx])
        receipt: dict[str, Any] | None = None
        while receipt is None:  # automine, but the receipt can trail the hash by a moment
            receipt = self._rpc("eth_getTransactionReceipt", [tx_hash])
        if int(receipt["status"], 16) != 1:
            raise Reverted(b"", f"transaction {tx_hash} failed after a successful eth_call")
        return receipt

    def deploy(self, sender: str, code: bytes) -> str:
        tx = {"from": sender, "data": "0x" + code.hex(), "gas": hex(self.GAS)}
        self._rpc("eth_call", [tx, "latest"])
        return str(self.web3.to_checksum_address(self._send(tx)["contractAddress"]))

    def transact(self, sender: str, to: str, data: bytes) -> None:
        tx = {"from": sender, "to": to, "data": "0x" + data.hex(), "gas": hex(self.GAS)}
        self._rpc("eth_call", [tx, "latest"])
        self._send(tx)

    def call(self, to: str, data: bytes) -> bytes:
        return bytes.fromhex(self._rpc("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"])[2:])

    def set_time(self, timestamp: int) -> None:
        self._now = timestamp
        self._rpc("evm_mine", [hex(timestamp)])

    def now(self) -> int:
        return self._now

    def snapshot(self) -> None:
        self._snapshot_id = self._rpc("evm_snapshot", [])
        self._snapshot_time = self._now

    def restore(self) -> None:
        self._rpc("evm_revert", [self._snapshot_id])
        self._snapshot_id = self._rpc("evm_snapshot", [])
        self._now = self._snapshot_time

    def nonce(self, address: str) -> int:
        return int(self._rpc("eth_getTransactionCount", [address, "latest"]), 16)


Chain = RevmChain | NodeChain


def next_address(chain: Chain, deployer: str, ahead: int) -> str:
    return create_address(deployer, chain.nonce(deployer) + ahead)
