"""The keeper's view of the chain: batched reads pinned to one block, event scans, sends.

Thin on purpose: every method is one kind of RPC work, so the runner can count, retry and
time it. Contracts are web3.py objects built from the ABIs ape compiled into `.build/`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3 import Web3

from lever import math as m
from lever.errors import DeploymentError
from lever.keeper.core import AccountRecord

BUILD = Path(__file__).resolve().parents[3] / ".build" / "__local__.json"


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

    def __init__(self, web3: Web3, addresses: Addresses, abis: dict[str, list[dict[str, Any]]] | None = None):
        abis = abis or load_abis()
        self.w3 = web3
        self.addresses = addresses
        self.vault = web3.eth.contract(address=Web3.to_checksum_address(addresses.vault), abi=abis["LeverVault"])
        self.engine = web3.eth.contract(address=Web3.to_checksum_address(addresses.engine), abi=abis["PerpEngine"])
        self.liquidator = web3.eth.contract(
            address=Web3.to_checksum_address(addresses.liquidator), abi=abis["Liquidator"]
        )
        self.oracle = web3.eth.contract(address=Web3.to_checksum_address(addresses.oracle), abi=abis["OracleAdapter"])
        self._feed_abi = abis["MockPriceFeed"]  # only the AggregatorV3Interface part is used
        self.calls = 0

    def _call(self, fn: Any, block: int | str = "latest") -> Any:
        self.calls += 1
        return fn.call(block_identifier=block)

    # ------------------------------------------------------------------ blocks

    def head(self) -> tuple[int, int]:
        """(number, timestamp) of the latest block."""
        self.calls += 1
        block = self.w3.eth.get_block("latest")
        return int(block["number"]), int(block["timestamp"])

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

    def health(self, accounts: list[int], block: int | str = "latest") -> dict[int, bool]:
        """One batched view call: which accounts the contract considers liquidatable now."""
        rows = self._call(self.liquidator.functions.healthOf(accounts), block)
        return {int(row[0]): bool(row[5]) for row in rows}

    # ------------------------------------------------------------------ events

    def touched_accounts(self, from_block: int, to_block: int) -> set[int]:
        """Accounts whose positions or margin changed in [from_block, to_block]."""
        touched: set[int] = set()
        for contract, names in (
            (self.engine, ("PositionChanged",)),
            (self.vault, ("MarginDeposited", "MarginWithdrawn", "Settled")),
        ):
            for name in names:
                self.calls += 1
                event = getattr(contract.events, name)
                for log in event.get_logs(from_block=from_block, to_block=to_block):
                    touched.add(int(log["args"]["accountId"]))
        return touched

    # ------------------------------------------------------------------ sending

    def simulate_batch(self, accounts: list[int], sender: str) -> int:
        """eth_call of `liquidateBatch`; returns how many it would liquidate (raises if it reverts)."""
        self.calls += 1
        return int(self.liquidator.functions.liquidateBatch(accounts).call({"from": sender}))

    def estimate_batch(self, accounts: list[int], sender: str) -> int:
        self.calls += 1
        return int(self.liquidator.functions.liquidateBatch(accounts).estimate_gas({"from": sender}))
