"""The two EVM backends the fuzz machine runs on, behind one small interface.

- `RevmChain`: the compiled contracts in revm, in this process (pyrevm). A journal checkpoint
  taken after deployment is restored for every Hypothesis example.
- `NodeChain`: a JSON-RPC node (Anvil, through ape's provider): transactions from the node's
  unlocked accounts, `evm_snapshot` / `evm_revert` per example.

Both take raw calldata and return raw output and logs. Time is explicit: every transaction of a
step runs at the machine's clock, which only the machine moves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

WORD = 2**256


class Reverted(Exception):
    """A call or transaction reverted; `data` is the revert data (empty for a bare revert or a halt)."""

    def __init__(self, data: bytes, detail: str = ""):
        super().__init__(detail or data.hex())
        self.data = data
        self.detail = detail


@dataclass(frozen=True)
class Log:
    address: str
    topics: tuple[bytes, ...]
    data: bytes


class RevmChain:
    """The protocol in revm (pyrevm), in this process."""

    START = 1_700_000_000

    def __init__(self, n_accounts: int = 16):
        from pyrevm import EVM, BlockEnv, Env

        self._block_env = BlockEnv
        self.evm = EVM(spec_id="CANCUN", env=Env(block=BlockEnv(timestamp=self.START, number=1)))
        self.accounts = ["0x" + f"{0xA11CE0000 + i:040x}" for i in range(n_accounts)]  # clear of precompiles
        for a in self.accounts:
            self.evm.set_balance(a, 10**24)
        self._now = self.START
        self._checkpoint: Any = None
        self._snapshot_time = self.START
        self._raw_logs: Any = []
        self._logs: list[Log] | None = []

    @property
    def logs(self) -> list[Log]:
        """The last successful transaction's logs (decoded when first asked for)."""
        if self._logs is None:
            self._logs = [_revm_log(log) for log in self._raw_logs]
        return self._logs

    def deploy(self, sender: str, code: bytes) -> str:
        try:
            return str(self.evm.deploy(sender, code, gas=30_000_000))
        except RuntimeError as error:
            raise Reverted(_revm_output(str(error)), str(error)) from None

    def transact(self, sender: str, to: str, data: bytes, value: int = 0) -> bytes:
        try:
            out = bytes(self.evm.message_call(sender, to, data, value=value or None))
        except RuntimeError as error:
            raise Reverted(_revm_output(str(error)), str(error)) from None
        finally:
            self.evm.reset_transient_storage()  # EIP-1153: transient storage ends with the transaction
        result = self.evm.result
        self._raw_logs, self._logs = (result.logs, None) if result is not None else ([], [])
        return out

    def call(self, to: str, data: bytes) -> bytes:
        try:
            return bytes(self.evm.message_call(self.accounts[0], to, data, is_static=True))
        except RuntimeError as error:
            raise Reverted(_revm_output(str(error)), str(error)) from None

    def eth_balance(self, address: str) -> int:
        return int(self.evm.get_balance(address))

    def storage(self, address: str, slot: int) -> int:
        return int(self.evm.storage(address, slot))

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


def _revm_log(log: Any) -> Log:
    topics, data = log.data
    return Log(str(log.address).lower(), tuple(bytes(t) for t in topics), bytes(data))


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
        self.logs: list[Log] = []

    def _rpc(self, method: str, params: list[Any]) -> Any:
        response = self.web3.provider.make_request(method, params)
        if "error" in response:
            error = response["error"]
            data = error.get("data")
            raw = bytes.fromhex(data[2:]) if isinstance(data, str) and data.startswith("0x") else b""
            raise Reverted(raw, str(error.get("message")))
        return response["result"]

    def _tx(self, sender: str, data: bytes, to: str | None = None, value: int = 0) -> dict[str, Any]:
        tx = {"from": sender, "data": "0x" + data.hex(), "gas": hex(self.GAS), "value": hex(value)}
        if to is not None:
            tx["to"] = to
        return tx

    def _send(self, tx: dict[str, Any]) -> dict[str, Any]:
        out = self._rpc("eth_call", [tx, "latest"])
        self._rpc("evm_setNextBlockTimestamp", [hex(self._now)])
        tx_hash = self._rpc("eth_sendTransaction", [tx])
        receipt: dict[str, Any] | None = None
        while receipt is None:  # automine, but the receipt can trail the hash by a moment
            receipt = self._rpc("eth_getTransactionReceipt", [tx_hash])
        if int(receipt["status"], 16) != 1:
            raise Reverted(b"", f"transaction {tx_hash} failed after a successful eth_call")
        receipt["output"] = out
        self.logs = [
            Log(
                entry["address"].lower(),
                tuple(bytes.fromhex(t[2:]) for t in entry["topics"]),
                bytes.fromhex(entry["data"][2:]),
            )
            for entry in receipt["logs"]
        ]
        return receipt

    def deploy(self, sender: str, code: bytes) -> str:
        receipt = self._send(self._tx(sender, code))
        return str(self.web3.to_checksum_address(receipt["contractAddress"]))

    def transact(self, sender: str, to: str, data: bytes, value: int = 0) -> bytes:
        receipt = self._send(self._tx(sender, data, to, value))
        return bytes.fromhex(receipt["output"][2:])

    def call(self, to: str, data: bytes) -> bytes:
        return bytes.fromhex(self._rpc("eth_call", [{"to": to, "data": "0x" + data.hex()}, "latest"])[2:])

    def eth_balance(self, address: str) -> int:
        return int(self._rpc("eth_getBalance", [address, "latest"]), 16)

    def storage(self, address: str, slot: int) -> int:
        return int(self._rpc("eth_getStorageAt", [address, hex(slot), "latest"]), 16)

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
