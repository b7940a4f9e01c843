"""The keeper's view of the chain: batched reads pinned to one block, event scans, sends.

Thin on purpose: every method is one kind of RPC work, so the runner can count, retry and
time it. Contracts are web3.py objects built from the ABIs ape compiled into `.build/`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_abi.abi import decode as abi_decode
from requests.exceptions import ConnectionError as RequestsConnectionError
from requests.exceptions import HTTPError, Timeout
from web3 import Web3
from web3.exceptions import ContractLogicError

from lever import math as m
from lever.errors import DeploymentError
from lever.keeper.core import AccountRecord

BUILD = Path(__file__).resolve().parents[3] / ".build" / "__local__.json"
# Errors of the transport, worth retrying; a revert is not one of them.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    RequestsConnectionError, HTTPError, Timeout, ConnectionError, TimeoutError,
)


def is_out_of_gas(exc: BaseException) -> bool:
    """Did a call fail for lack of gas? Either the node says so (Anvil: "EVM error OutOfGas";
    Hardhat: "ran out of gas"), or the call reverted with no data: the protocol's contracts
    revert only with custom errors, so an empty revert is a sub-call that ran out of gas and
    left its caller the 1/64 it keeps back (EIP-150)."""
    if isinstance(exc, ContractLogicError):
        return exc.data in (None, "", "0x")
    text = str(exc).lower()
    return "outofgas" in text or "out of gas" in text


def load_abis(path: Path = BUILD) -> dict[str, list[dict[str, Any]]]:
    if not path.is_file():
        raise DeploymentError(f"no compiled contracts at {path}: run `ape compile` (or `make compile`) first")
    manifest = json.loads(path.read_text())
    return {name: ct["abi"] for name, ct in manifest["contractTypes"].items()}


@dataclass(frozen=True)
class Addresses:
    vault: str
    engine: str
    liquidator: str
    oracle: str
    feeds: dict[int, str]  # market id -> feed


@dataclass
class Changes:
    """What a range of blocks changed: accounts to re-read, markets to re-read, parameters."""

    accounts: set[int] = field(default_factory=set)
    markets: set[int] = field(default_factory=set)
    params: bool = False


def abi_type(item: dict[str, Any]) -> str:
    kind = str(item["type"])
    if kind.startswith("tuple"):
        return "(" + ",".join(abi_type(c) for c in item["components"]) + ")" + kind[5:]
    return kind


def _signature(item: dict[str, Any]) -> str:
    return f"{item['name']}({','.join(abi_type(i) for i in item['inputs'])})"


@dataclass(frozen=True)
class MarketRaw:
    """Everything needed to compute a market's view at any timestamp (see tests' RawMarket)."""

    params: m.MarketParams
    state: m.MarketState
    feed_params: m.FeedParams
    feed_state: m.FeedState
    round_id: int
    price: int

    def view(self, now: int) -> m.MarketView:
        data = m.price_data(self.feed_params, self.feed_state, self.round_id, self.price, now)
        state = m.accrued(self.state, self.params, data.price, now)
        mmr = m.effective_mmr(
            self.params.maintenance_margin_ratio, self.state.mmr_ramp_from, self.state.mmr_ramp_start, now
        )
        return m.MarketView(self.params, state, data.price, data.im_factor, data.mm_factor, mmr)


class ChainClient:
    """Reads and writes through one web3 connection; `calls` counts every RPC request."""

    def __init__(
        self,
        web3: Web3,
        addresses: Addresses,
        abis: dict[str, list[dict[str, Any]]] | None = None,
        retries: int = 4,
        backoff: float = 0.05,
    ):
        abis = abis or load_abis()
        self.retries, self.backoff = retries, backoff
        self.w3 = web3
        self.addresses = addresses
        self.vault = web3.eth.contract(address=Web3.to_checksum_address(addresses.vault), abi=abis["LeverVault"])
        self.engine = web3.eth.contract(address=Web3.to_checksum_address(addresses.engine), abi=abis["PerpEngine"])
        self.liquidator = web3.eth.contract(
            address=Web3.to_checksum_address(addresses.liquidator), abi=abis["Liquidator"]
        )
        self.oracle = web3.eth.contract(address=Web3.to_checksum_address(addresses.oracle), abi=abis["OracleAdapter"])
        self._feed_abi = abis["MockPriceFeed"]  # only the AggregatorV3Interface part is used
        health_abi = next(i for i in abis["Liquidator"] if i.get("name") == "healthOf")
        self._health_types = [abi_type(o) for o in health_abi["outputs"]]
        liquidation = next(i for i in abis["Liquidator"] if i.get("name") == "Liquidation" and i["type"] == "event")
        self._liquidation_topic = bytes(Web3.keccak(text=_signature(liquidation)))
        self.calls = 0
        self.head_hash = self.head_parent = b""
        self.head_gas_limit = 30_000_000
        self.head_base_fee = 0
        self._index_events()

    def _call(self, fn: Any, block: int | str = "latest") -> Any:
        return self.retry(lambda: fn.call(block_identifier=block))

    def retry(self, request: Callable[[], Any]) -> Any:
        """One read, retried with exponential backoff on transport errors (each try is counted)."""
        for attempt in range(self.retries + 1):
            self.calls += 1
            try:
                return request()
            except TRANSPORT_ERRORS:
                if attempt == self.retries:
                    raise
                time.sleep(self.backoff * 2**attempt)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ blocks

    def head(self) -> tuple[int, int]:
        """(number, timestamp) of the latest block; remembers its hash and parent hash."""
        block = self.retry(lambda: self.w3.eth.get_block("latest"))
        self.head_hash, self.head_parent = bytes(block["hash"]), bytes(block["parentHash"])
        self.head_gas_limit = int(block["gasLimit"])
        self.head_base_fee = int(block.get("baseFeePerGas", 0))
        return int(block["number"]), int(block["timestamp"])

    def block_hash(self, number: int) -> bytes:
        return bytes(self.retry(lambda: self.w3.eth.get_block(number))["hash"])

    # ------------------------------------------------------------------ protocol state

    def token_scale(self) -> int:
        return int(self._call(self.vault.functions.tokenScale()))

    def liquidation_params(self, block: int | str = "latest") -> m.LiquidationParams:
        return m.LiquidationParams(*[int(v) for v in self._call(self.liquidator.functions.params(), block)])

    def market_count(self, block: int | str = "latest") -> int:
        return int(self._call(self.engine.functions.marketCount(), block))

    def market(self, market: int, block: int | str = "latest") -> MarketRaw:
        params = self._call(self.engine.functions.marketParams(market), block)
        state = self._call(self.engine.functions.marketState(market), block)
        feed = params[0]
        feed_params = self._call(self.oracle.functions.feedParams(feed), block)
        feed_state, vol_state = self._call(self.oracle.functions.feedState(feed), block)
        aggregator = self.w3.eth.contract(address=feed, abi=self._feed_abi)
        round_id, *_ = self._call(aggregator.functions.latestRoundData(), block)
        price = self._call(self.oracle.functions.priceWad(feed), block)
        return MarketRaw(
            m.MarketParams(*[int(v) for v in params[1:]]),
            m.MarketState(*[int(v) for v in state]),
            m.FeedParams(*[int(v) for v in feed_params]),
            m.FeedState.from_chain(feed_state, vol_state),
            int(round_id),
            int(price),
        )

    def ledgers(self, block: int | str = "latest") -> tuple[int, int, int, int]:
        """(pool, insurance, protocol fees, protocol fee share)."""
        v = self.vault.functions
        return (
            int(self._call(v.poolAssets(), block)),
            int(self._call(v.insuranceFund(), block)),
            int(self._call(v.protocolFees(), block)),
            int(self._call(v.protocolFeeShareWad(), block)),
        )

    def account_count(self, block: int | str = "latest") -> int:
        return int(self._call(self.engine.functions.accountCount(), block))

    def accounts_with_positions(self, from_id: int, count: int, block: int | str = "latest") -> list[int]:
        return [int(a) for a in self._call(self.liquidator.functions.accountsWithPositions(from_id, count), block)]

    def account(self, account: int, block: int | str = "latest") -> AccountRecord:
        markets = self._call(self.engine.functions.accountMarkets(account), block)
        positions = {}
        for market in markets:
            size, cost = self._call(self.engine.functions.position(account, market), block)
            positions[int(market)] = m.Position(int(size), int(cost))
        margin = int(self._call(self.vault.functions.marginOf(account), block))
        return AccountRecord(margin, positions)

    def health(self, accounts: list[int], block: int | str = "latest", chunk: int = 400) -> dict[int, bool]:
        """Batched view calls (`chunk` accounts each, to stay under the node's eth_call gas cap):
        which accounts the contract considers liquidatable now."""
        result: dict[int, bool] = {}
        for i in range(0, len(accounts), chunk):
            # Raw eth_call + eth_abi: web3's result formatters cost ~0.5 ms a row.
            data = self.liquidator.encode_abi("healthOf", args=[accounts[i : i + chunk]])
            tx = {"to": self.liquidator.address, "data": data}
            raw = self.retry(lambda: self.w3.eth.call(tx, block))  # type: ignore[arg-type]  # noqa: B023
            (rows,) = abi_decode(self._health_types, bytes(raw))
            result.update({int(row[0]): bool(row[5]) for row in rows})
        return result

    def liquidated_in(self, receipt: Any) -> set[int]:
        """Accounts a receipt's `Liquidation` events name (accountId is the first indexed topic)."""
        address = self.liquidator.address.lower()
        return {
            int.from_bytes(bytes(log["topics"][1]), "big")
            for log in receipt["logs"]
            if log["address"].lower() == address and bytes(log["topics"][0]) == self._liquidation_topic
        }

    # ------------------------------------------------------------------ events

    def changes(self, from_block: int, to_block: int) -> Changes:
        """Everything that changed in [from_block, to_block], from one `eth_getLogs` request over
        the protocol's contracts and its feeds."""
        logs = self.retry(lambda: self.w3.eth.get_logs({
            "fromBlock": from_block,
            "toBlock": to_block,
            "address": [c.address for c in self._watched],
        }))
        changes = Changes()
        for log in logs:
            handler = self._topics.get((log["address"].lower(), bytes(log["topics"][0])))
            if handler is None:
                continue
            contract_name, event = handler
            args = event.process_log(log)["args"]
            if contract_name == "feed":
                changes.markets.update(self._markets_of_feed.get(log["address"].lower(), ()))
            elif contract_name == "oracle":
                changes.markets.update(self._markets_of_feed.get(str(args["feed"]).lower(), ()))
            elif "accountId" in args:
                changes.accounts.add(int(args["accountId"]))
                if "marketId" in args:
                    changes.markets.add(int(args["marketId"]))
            elif "marketId" in args:
                changes.markets.add(int(args["marketId"]))
            else:
                changes.params = True
        return changes

    def _index_events(self) -> None:
        feed_abi = self._feed_abi
        self._watched = [self.engine, self.vault, self.liquidator, self.oracle]
        self._markets_of_feed: dict[str, set[int]] = {}
        for market, feed in self.addresses.feeds.items():
            self._markets_of_feed.setdefault(feed.lower(), set()).add(market)
        self._topics: dict[tuple[str, bytes], tuple[str, Any]] = {}
        named = [("engine", self.engine), ("vault", self.vault), ("liquidator", self.liquidator), ("oracle", self.oracle)]
        for feed in {f.lower() for f in self.addresses.feeds.values()}:
            contract = self.w3.eth.contract(address=Web3.to_checksum_address(feed), abi=feed_abi)
            self._watched.append(contract)
            named.append(("feed", contract))
        for name, contract in named:
            items: list[dict[str, Any]] = list(contract.abi)  # type: ignore[arg-type]
            for item in items:
                if item.get("type") != "event":
                    continue
                event = getattr(contract.events, item["name"])()
                if name == "feed" and item["name"] != "AnswerUpdated":
                    continue
                topic = bytes(Web3.keccak(text=_signature(item)))
                self._topics[(contract.address.lower(), topic)] = (name, event)

    # ------------------------------------------------------------------ sending

    def simulate_batch(self, accounts: list[int], sender: str, gas: int = 0) -> int:
        """eth_call of `liquidateBatch`, with the gas limit the transaction will carry (0: the
        node's default); returns how many it would liquidate. Raises `ContractLogicError` if it
        reverts, and an RPC error that `is_out_of_gas` recognises if `gas` is too little."""
        fn = self.liquidator.functions.liquidateBatch(accounts)
        call: dict[str, Any] = {"from": sender, **({"gas": gas} if gas else {})}
        return int(self.retry(lambda: fn.call(call)))  # type: ignore[arg-type]
