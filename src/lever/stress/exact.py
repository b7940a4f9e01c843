"""The exact engine: the protocol's contracts, entry point by entry point, on `lever.math` integers,
driven by the agents and by the keeper's own decision core (`lever.keeper.core`).

Every formula comes from `lever.math` (market accrual, trades, account states, liquidation
predictions and settlements, the oracle's reference rounds and factors, the pool's value); this
module holds only the contracts' control flow: which entry point reads what, in which order, what
reverts and what a revert undoes. A step of a run is one moment of chain time (every transaction
of the step shares its timestamp, as the replay mines them):

1. the oracles publish: a reference round and a pull price per market (unless frozen);
2. the agents act: accounts and margin (step 0), market orders, stop-loss and take-profit orders,
   margin top-ups, LP redemption requests;
3. the keeper acts as `lever.keeper.runner.Keeper.step` does: liquidations (candidates judged with
   the mirror, most underwater first, batched by gas), then orders, then LP requests;
4. the step's figures are read (pool value at the latest prices, insurance, liquidations).

The replay (`lever.stress.replay`) plays the recorded agent actions and prices on Anvil with the
real contracts and keeper, and compares every ledger with this engine's to the wei.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from lever import math as m
from lever.chain import AccountRecord, MarketSnapshot
from lever.keeper.core import DecideParams, LpRequest, decide, evaluate, lp_work, order_work, pack
from lever.math.orders import (
    Kind,
    Order,
    conditional_since,
    earliest_publish_time,
    expiry,
    order_id,
    triggered,
)
from lever.math.refusal import Refused
from lever.stress.metrics import USD, RunResult, cascade_depth, max_drawdown
from lever.stress.model import CENT, KEEPER, SIZE_UNIT, TOKEN_SCALE, Cell

FEED_SCALE = 10**10  # an 8-decimal reference answer (and a pull price at expo -8) to WAD
MAX_ORDERS = 8
RETRYABLE = ("OracleStalePrice", "SequencerDown", "SequencerGracePeriod")
RETRYABLE_CONDITIONAL = ("AcceptablePriceExceeded", "FillPriceInvalid")
HUGE_PROFIT_RATIO = 10**40  # a profit cap no position reaches: the raw value


@dataclass(frozen=True)
class Publication:
    time: int
    price: int  # WAD
    prev: int  # the previous publication's time (what proves "earliest at or after")


@dataclass(frozen=True)
class LiquidationEvent:
    step: int
    account: int
    full: bool
    share: int
    closed_notional: int
    reward: int
    penalty: int
    bad_debt: int


@dataclass
class Action:
    """An agent's transaction, as the replay sends it."""

    kind: str  # deposit, commit, place, redeem
    account: int = 0
    market: int = 0
    size: int = 0  # WAD (commit, place) or shares (redeem)
    amount: int = 0  # token units (deposit) or executor fee (commit, place)
    order_kind: int = 0
    trigger: int = 0  # WAD


@dataclass
class StepLog:
    step: int
    time: int
    prices: tuple[int, ...]  # cents, after market impact
    published: bool
    keeper: bool
    actions: list[Action] = field(default_factory=list)


@dataclass
class Trace:
    """What the replay needs and compares: the steps with their actions, the liquidations, and
    the final ledgers and margins."""

    t0: int
    steps: list[StepLog] = field(default_factory=list)
    liquidations: list[LiquidationEvent] = field(default_factory=list)
    ledgers: dict[str, int] = field(default_factory=dict)
    margins: dict[int, int] = field(default_factory=dict)
    positions: dict[int, dict[int, m.Position]] = field(default_factory=dict)
    markets: dict[int, m.MarketState] = field(default_factory=dict)
    total_reserve: int = 0


class Protocol:
    """The contracts' state and entry points (the subset the stress lab's agents and keeper use)."""

    def __init__(self, cell: Cell, t_deploy: int):
        p = cell.params
        self.cell = cell
        self.params = p
        self.oracle_config = p.oracle
        self.n_markets = len(p.markets)
        self.market_state = {mk: m.MarketState(last_accrual_time=t_deploy) for mk in range(self.n_markets)}
        self.oracle_state = {mk: m.OracleState() for mk in range(self.n_markets)}
        # the reference feed: (round id, answer in 8 decimals, updatedAt); round 1 at deployment
        self.feed = {mk: (1, p.initial_prices[mk] * 10**6, t_deploy) for mk in range(self.n_markets)}
        self.publications: dict[int, list[Publication]] = {mk: [] for mk in range(self.n_markets)}
        self.total_reserve = 0
        self.margin: dict[int, int] = {}
        self.positions: dict[tuple[int, int], m.Position] = {}
        self.mask: dict[int, int] = {}
        self.last_trade: dict[int, int] = {}
        self.orders: dict[int, Order] = {}
        self.ledgers = {
            "pool": 0,
            "insurance": 0,
            "protocol_fees": 0,
            "order_escrow": 0,
            "lp_escrow": 0,
            "bad_debt": 0,
            "bad_debt_by_insurance": 0,
            "bad_debt_by_pool": 0,
            "keeper": 0,
            "supply": 0,
            "lp_shares": 0,
            "lp_claimable": 0,
        }
        self.pending_redeem: tuple[int, int, int] | None = None  # (shares, time, fee)
        self.accounts = 0
        self.order_events: set[int] = set()  # accounts with order-book events since the keeper last looked

    # ------------------------------------------------------------------ transactions

    def _snapshot(self) -> tuple[Any, ...]:
        return (
            dict(self.market_state),
            dict(self.oracle_state),
            self.total_reserve,
            dict(self.margin),
            dict(self.positions),
            dict(self.mask),
            dict(self.last_trade),
            dict(self.orders),
            dict(self.ledgers),
            self.pending_redeem,
            set(self.order_events),
        )

    def _restore(self, s: tuple[Any, ...]) -> None:
        (
            self.market_state,
            self.oracle_state,
            self.total_reserve,
            self.margin,
            self.positions,
            self.mask,
            self.last_trade,
            self.orders,
            self.ledgers,
            self.pending_redeem,
            self.order_events,
        ) = s

    # ------------------------------------------------------------------ the oracle

    def snapshot(self, mk: int) -> MarketSnapshot:
        """The market as `lever.chain.MarketSnapshot` (what the keeper reads)."""
        rid, answer, updated = self.feed[mk]
        return MarketSnapshot(
            mk,
            self.params.markets[mk],
            self.params.markets[mk],
            self.market_state[mk],
            self.oracle_config,
            self.oracle_state[mk],
            (rid, answer, updated, rid),
            8,
        )

    def set_reference(self, mk: int, cents: int, now: int) -> None:
        """`MockPriceFeed.setPrice`: a new round."""
        self.feed[mk] = (self.feed[mk][0] + 1, cents * 10**6, now)

    def publish(self, mk: int, cents: int, now: int) -> None:
        """The price service publishes a pull price (no transaction)."""
        pubs = self.publications[mk]
        prev = pubs[-1].time if pubs else 0
        pubs.append(Publication(now, cents * CENT, prev))

    def latest_publication(self, mk: int) -> Publication | None:
        pubs = self.publications[mk]
        return pubs[-1] if pubs else None

    def publication_at_or_after(self, mk: int, t: int) -> Publication | None:
        for pub in self.publications[mk]:  # short lists in practice: scan from the end
            if pub.time >= t:
                return pub
        return None

    def _recorded(self, mk: int, s: m.OracleState, now: int) -> tuple[m.OracleState, int, int]:
        """`OracleAdapter._recordReference` on `s`: (state, reference price or 0, its updatedAt)."""
        snap = self.snapshot(mk)
        price = snap.reference_price(now)
        updated = self.feed[mk][2]
        if price == 0:
            return s, 0, updated
        return m.oracle.record_reference(self.oracle_config, s, self.feed[mk][0], price, now), price, updated

    def update_prices(self, updates: list[tuple[int, Publication]], now: int) -> None:
        """`OracleAdapter.updatePrices`: a deviation from the reference reverts (raises)."""
        c = self.oracle_config
        for mk, pub in updates:
            s = self.oracle_state[mk]
            earliest = now - c.max_price_age if now > c.max_price_age else 0
            if s.latest_publish_time >= earliest:
                earliest = s.latest_publish_time + 1
            if earliest > now or not earliest <= pub.time <= now:
                continue
            s, reference, _ = self._recorded(mk, s, now)
            if reference != 0 and not m.oracle.reference_deviation_ok(pub.price, reference, c.max_reference_deviation):
                raise Refused("OracleReferenceDeviation", marketId=mk)
            self.oracle_state[mk] = m.oracle.store_if_newer(s, pub.price, pub.time)

    def settlement_price(self, mk: int, pub: Publication, min_time: int, max_time: int, now: int) -> m.PriceData:
        """`OracleAdapter.settlementPrice` (raises what the contract reverts with; writes on success)."""
        if not (min_time <= pub.time <= max_time and pub.prev < min_time):
            raise Refused("PriceFeedNotFoundWithinRange")
        s, reference, reference_time = self._recorded(mk, self.oracle_state[mk], now)
        if reference == 0:
            raise Refused("OracleStalePrice", marketId=mk)
        if reference_time <= pub.time and not m.oracle.reference_deviation_ok(
            pub.price, reference, self.oracle_config.max_reference_deviation
        ):
            raise Refused("OracleReferenceDeviation", marketId=mk)
        s = m.oracle.store_if_newer(s, pub.price, pub.time)
        self.oracle_state[mk] = s
        return m.oracle.price_data(self.oracle_config, s, pub.price, pub.time, now, reference)

    def latest_recent(self, mk: int, now: int) -> m.PriceData:
        """`OracleAdapter.latestRecent`."""
        d = self.snapshot(mk).price_data(now)
        if d.publish_time + self.oracle_config.max_execution_age < now:
            raise Refused("OracleStalePrice", marketId=mk)
        return d

    # ------------------------------------------------------------------ the engine and the vault

    def coverage(self) -> m.Coverage:
        return m.Coverage(self.ledgers["pool"] * TOKEN_SCALE, self.total_reserve)

    def _vault(self) -> m.vault.Ledgers:
        led = self.ledgers
        return m.vault.Ledgers(led["pool"], led["insurance"], led["protocol_fees"], self.params.protocol_fee_share)

    def _set_vault(self, v: m.vault.Ledgers) -> None:
        self.ledgers.update(pool=v.pool, insurance=v.insurance, protocol_fees=v.protocol_fees)

    def create_account(self) -> int:
        self.accounts += 1
        self.margin[self.accounts] = 0
        self.mask[self.accounts] = 0
        self.last_trade[self.accounts] = 0
        return self.accounts

    def deposit_margin(self, account: int, amount: int) -> None:
        self.margin[account] += amount

    def fund_insurance(self, amount: int) -> None:
        self.ledgers["insurance"] += amount

    def lp_deposit(self, assets: int) -> None:
        """A first deposit into an empty pool (no open interest): its shares at the virtual rate."""
        shares = m.pool.to_shares_down(assets, 0, self.ledgers["supply"])
        self.ledgers.update(
            pool=self.ledgers["pool"] + assets,
            supply=self.ledgers["supply"] + shares,
            lp_shares=self.ledgers["lp_shares"] + shares,
        )

    def execute_trade(
        self, account: int, mk: int, delta: int, acceptable: int, reduce_only: bool, price: m.PriceData, now: int
    ) -> tuple[m.TradeOutcome, int]:
        """`PerpEngine.executeTrade` (one-market accounts): raises `Refused`, else writes. Returns
        the outcome and the profit a reduction did not pay (cap, coverage)."""
        cov = self.coverage()
        view = m.market_view(mk, self.params.markets[mk], self.market_state[mk], price, cov.pool, now)
        pos = self.positions.get((account, mk), m.Position())
        out = m.execute_trade(
            account_id=account,
            view=view,
            pos=pos,
            delta=delta,
            acceptable=acceptable,
            reduce_only=reduce_only,
            mask=self.mask[account],
            margin_token=self.margin[account],
            other_legs=[],
            cov=cov,
            total_reserve=self.total_reserve,
            paused=False,
            token_scale=TOKEN_SCALE,
            now=now,
        )
        self.market_state[mk] = out.state
        self.total_reserve = out.total_reserve
        self._write_position(account, mk, out.position)
        self.mask[account] = out.mask_after
        self.last_trade[account] = now
        margin, v = m.vault.settle(self.margin[account], self._vault(), out.pnl_token, out.fee_token)
        self.margin[account] = margin
        self._set_vault(v)
        withheld = 0 if out.math.increasing else _withheld(pos, out.math, view, out.delta)
        return out, withheld

    def _write_position(self, account: int, mk: int, pos: m.Position) -> None:
        if pos.size == 0:
            self.positions.pop((account, mk), None)
        else:
            self.positions[(account, mk)] = pos

    def markets_of(self, account: int) -> list[int]:
        mask = self.mask.get(account, 0)
        return [mk for mk in range(self.n_markets) if mask >> mk & 1]

    def liquidate(
        self, account: int, now: int
    ) -> tuple[m.LiquidationPrediction, m.vault.LiquidationSettlement, int, list[int]] | None:
        """`PerpEngine.liquidate` and `LeverVault.settleLiquidation` (the keeper is never the
        account's owner). None: not liquidated. Raises `OracleStalePrice` (the batch reverts).
        Returns the prediction, the settlement, the profit the cap and the coverage withheld, and
        the markets closed (in the prediction's order)."""
        markets = self.markets_of(account)
        if not markets:
            return None
        cov = self.coverage()
        legs = []
        for mk in markets:
            d = self.latest_recent(mk, now)
            legs.append(
                (
                    self.positions[(account, mk)],
                    m.market_view(mk, self.params.markets[mk], self.market_state[mk], d, cov.pool, now),
                )
            )
        if any(view.price.publish_time <= self.last_trade[account] for _, view in legs):
            return None
        lp = self.params.liquidation
        pred = m.predict_liquidation(self.margin[account], TOKEN_SCALE, legs, lp, cov)
        if not pred.liquidated:
            return None
        withheld = 0
        for (pos, view), t, size in zip(legs, pred.trades, pred.close_sizes, strict=True):
            before = m.market_reserve(view.state, view.params)
            state, _ = m.engine.apply_to_market(view.state, pos, t)
            self.total_reserve += m.market_reserve(state, view.params) - before
            self.market_state[view.market_id] = state
            if t.new_size == 0:
                self.mask[account] &= ~(1 << view.market_id)
                self.positions.pop((account, view.market_id), None)
            else:
                self.positions[(account, view.market_id)] = m.Position(
                    t.new_size, t.new_cost, t.new_entry_charge, pos.last_increase_time
                )
            withheld += _withheld(pos, t, view, -size)
        self.last_trade[account] = now
        s = m.vault.settle_liquidation(
            self.margin[account],
            self._vault(),
            pred.pnl_token,
            pred.fee_token,
            pred.reward_request,
            pred.penalty_request,
            lp.min_reward // TOKEN_SCALE,
        )
        self.margin[account] = s.margin
        self._set_vault(s.ledgers)
        led = self.ledgers
        led["keeper"] += s.reward_paid
        if s.bad_debt:
            led["bad_debt"] += s.bad_debt
            led["bad_debt_by_insurance"] += s.bad_debt_by_insurance
            led["bad_debt_by_pool"] += s.bad_debt - s.bad_debt_by_insurance
        return pred, s, withheld, markets

    # ------------------------------------------------------------------ the order book

    def _free_slot(self, account: int) -> int:
        for slot in range(MAX_ORDERS):
            if order_id(account, slot) not in self.orders:
                return slot
        raise Refused("OrderSlotsFull", accountId=account)

    def place(self, account: int, mk: int, kind: Kind, delta: int, trigger: int, fee: int, now: int) -> int:
        """`OrderBook.commitOrder` / `placeOrder` (acceptable price 0) and the fee's escrow."""
        p = self.params
        if not p.min_executor_fee <= fee <= p.max_executor_fee:
            raise Refused("ExecutorFeeOutOfBounds")
        if kind in (Kind.STOP_LOSS, Kind.TAKE_PROFIT):
            size = self.positions.get((account, mk), m.Position()).size
            if size == 0 or (size > 0) == (delta > 0):
                raise Refused("ReduceOnlyViolated", accountId=account, marketId=mk)
        oid = order_id(account, self._free_slot(account))
        self.orders[oid] = Order(oid, account, delta, fee, now, mk, kind, 0, trigger)
        self.order_events.add(account)
        if self.margin[account] >= fee:
            self.margin[account] -= fee
        # else: the owner's wallet pays it (`escrowExecutorFee`)
        self.ledgers["order_escrow"] += fee
        return oid

    def _release(self, o: Order, to_margin: bool) -> None:
        """`releaseExecutorFee`: to the margin (a cancellation) or to the keeper (a fill)."""
        del self.orders[o.order_id]
        self.order_events.add(o.account)
        self.ledgers["order_escrow"] -= o.executor_fee
        if to_margin:
            self.margin[o.account] += o.executor_fee
        else:
            self.ledgers["keeper"] += o.executor_fee

    def on_liquidation(self, account: int) -> None:
        """`OrderBook.onLiquidation`: every order cancelled, its fee back to the margin."""
        for slot in range(MAX_ORDERS):
            o = self.orders.get(order_id(account, slot))
            if o is not None:
                self._release(o, True)

    def settle_orders(
        self, ids: list[int], blobs: dict[int, Publication | None], latest: list[tuple[int, Publication]], now: int
    ) -> list[tuple[Order, m.TradeOutcome, int]] | None:
        """`OrderBook.settleOrders` from the keeper: the fills (order, outcome, profit withheld);
        None if it reverts (nothing settled, a deviation): then nothing changed."""
        saved = self._snapshot()
        try:
            return self._settle_orders(ids, blobs, latest, now)
        except Refused:
            self._restore(saved)
            return None

    def _settle_orders(
        self, ids: list[int], blobs: dict[int, Publication | None], latest: list[tuple[int, Publication]], now: int
    ) -> list[tuple[Order, m.TradeOutcome, int]]:
        p = self.params
        if latest:
            self.update_prices(latest, now)
        proven: dict[tuple[int, int], m.PriceData] = {}
        done = 0
        fills = []
        for oid in ids:
            o = self.orders.get(oid)
            if o is None:
                continue
            if not o.as_market:
                pos = self.positions.get((o.account, o.market_id))
                if pos is None and o.reduce_only:
                    self._release(o, True)  # orphan: its position is gone
                    done += 1
                elif self._triggers(o, pos or m.Position(), now):  # from now on a market order committed now
                    self.orders[oid] = replace(o, triggered=True, updated_at=now)
                    self.order_events.add(o.account)
                    done += 1
                continue
            if now > expiry(o, p.order_delay, p.order_window):
                del self.orders[oid]
                self.order_events.add(o.account)
                self.ledgers["order_escrow"] -= o.executor_fee
                self.ledgers["insurance"] += o.executor_fee  # `forfeitExecutorFee`
                done += 1
                continue
            price = self._market_price(o, blobs.get(oid), proven, now)
            if price is None:
                continue
            try:
                out, withheld = self.execute_trade(
                    o.account, o.market_id, o.size_delta, o.limit_price, o.reduce_only, price, now
                )
            except Refused as exc:
                if exc.error in RETRYABLE:
                    continue
                self._release(o, False)  # refused: the fee to the settler
                fee = o.executor_fee
                if o.kind != Kind.MARKET and exc.error in RETRYABLE_CONDITIONAL and self.margin[o.account] >= fee:
                    # back to waiting for its trigger, a new fee escrowed from the margin
                    self.margin[o.account] -= fee
                    self.ledgers["order_escrow"] += fee
                    self.orders[oid] = replace(o, triggered=False, updated_at=now)
                done += 1
                continue
            self._release(o, False)
            fills.append((o, out, withheld))
            if out.position.size == 0:
                for slot in range(MAX_ORDERS):  # `_cancelReduceOnly`
                    other = self.orders.get(order_id(o.account, slot))
                    if other is not None and other.market_id == o.market_id and other.reduce_only:
                        self._release(other, True)
            done += 1
        if done == 0:
            raise Refused("NothingToSettle")
        return fills

    def _market_price(
        self, o: Order, pub: Publication | None, proven: dict[tuple[int, int], m.PriceData], now: int
    ) -> m.PriceData | None:
        p = self.params
        min_time = o.updated_at + p.order_delay
        if now < min_time:
            return None
        if (o.market_id, min_time) in proven:
            return proven[(o.market_id, min_time)]
        if pub is None:
            return None
        max_time = min(min_time + p.order_window, now)
        saved = self.oracle_state[o.market_id]
        try:
            d = self.settlement_price(o.market_id, pub, min_time, max_time, now)
        except Refused:
            self.oracle_state[o.market_id] = saved
            return None
        proven[(o.market_id, min_time)] = d
        return d

    def _triggers(self, o: Order, pos: m.Position, now: int) -> bool:
        """`OrderBook._conditionalPrice`: the stored price, fresh and late enough, meets the trigger."""
        try:
            d = self.latest_recent(o.market_id, now)
        except Refused:
            return False
        if d.publish_time < conditional_since(o, pos.last_increase_time) + self.params.order_delay:
            return False
        return triggered(o, pos.size > 0, d.price)

    # ------------------------------------------------------------------ the pool (LP requests)

    def open_markets(self) -> list[int]:
        return [mk for mk, s in self.market_state.items() if s.long_oi or s.short_oi]

    def pool_value(self, prices: dict[int, int], now: int) -> int:
        """`PoolMath.poolValue` over `PerpEngine.poolLiabilityWad(prices)`."""
        cov = self.coverage()
        markets = [(self.params.markets[mk], self.market_state[mk], prices.get(mk, 0)) for mk in range(self.n_markets)]
        return m.pool.pool_value(self.ledgers["pool"], m.pool_liability(markets, cov, now), TOKEN_SCALE)

    def free_assets(self) -> int:
        return m.vault.free_assets(self.ledgers["pool"], self.total_reserve, TOKEN_SCALE)

    def oi_caps_hold(self, prices: dict[int, int], pool_wad: int) -> bool:
        markets = [(self.params.markets[mk], self.market_state[mk], prices.get(mk, 0)) for mk in self.open_markets()]
        return m.engine.oi_caps_hold(markets, pool_wad)

    def request_redeem(self, shares: int, now: int) -> None:
        """`LeverVault.requestRedeem`; raises `Refused` as the vault reverts."""
        old = self.pending_redeem or (0, 0, 0)
        if old[0] + shares == self.ledgers["supply"] and self.total_reserve:
            raise Refused("LastSharesBackOpenPositions")
        fee = self.params.lp_executor_fee if self.pending_redeem is None else 0
        self.ledgers["lp_escrow"] += fee
        self.ledgers["lp_shares"] -= shares
        self.pending_redeem = (old[0] + shares, now, old[2] + fee)

    def settle_redeem(self, updates: list[tuple[int, Publication]], now: int) -> int | None:
        """`LeverVault.settleRedeem` from the keeper: the assets redeemed (0 if refused), None if
        it reverts."""
        saved = self._snapshot()
        try:
            return self._settle_redeem(updates, now)
        except Refused:
            self._restore(saved)
            return None

    def _settle_redeem(self, updates: list[tuple[int, Publication]], now: int) -> int:
        p = self.params
        if self.pending_redeem is None:
            raise Refused("NoPendingRequest")
        shares, t, fee = self.pending_redeem
        earliest = t + p.lp_delay
        if now > t + p.lp_delay + p.lp_window + p.lp_grace:
            raise Refused("RequestExpired")
        if now < earliest + p.lp_grace:
            raise Refused("RequestNotDue")
        open_ = self.open_markets()
        prices: dict[int, int] = {}
        for mk, pub in updates:
            if mk not in open_ or mk in prices:
                continue
            d = self.settlement_price(mk, pub, earliest, min(earliest + p.lp_window, now), now)
            if now < d.publish_time + p.lp_grace:
                raise Refused("RequestNotDue")
            prices[mk] = d.price
        if any(mk not in prices for mk in open_):
            raise Refused("LpPriceMissing")
        newest = {mk: self.oracle_state[mk].latest_price for mk in prices}  # stored by the updates if newer
        value = m.pool.request_value(self.pool_value(prices, now), self.pool_value(newest, now), False)
        led = self.ledgers
        assets = m.pool.to_assets_down(shares, value, led["supply"])
        self.pending_redeem = None
        led["lp_escrow"] -= fee
        led["keeper"] += fee
        if m.vault.redeem_refusal(
            assets,
            shares,
            led["supply"],
            led["pool"],
            self.total_reserve,
            TOKEN_SCALE,
            assets <= led["pool"] and self.oi_caps_hold(prices, (led["pool"] - assets) * TOKEN_SCALE),
        ):
            led["lp_shares"] += shares
            return 0
        led["supply"] -= shares
        led["pool"] -= assets
        led["lp_escrow"] += assets
        led["lp_claimable"] += assets
        return assets

    def cancel_expired_redeem(self, now: int) -> bool:
        p = self.params
        if self.pending_redeem is None:
            return False
        shares, t, fee = self.pending_redeem
        if now <= t + p.lp_delay + p.lp_window + p.lp_grace:
            return False
        self.pending_redeem = None
        self.ledgers["lp_escrow"] -= fee
        self.ledgers["lp_shares"] += shares
        self.ledgers["insurance"] += fee
        return True


def _withheld(pos: m.Position, t: m.TradeMath, view: m.MarketView, delta: int) -> int:
    """Profit a reduction did not pay: the raw value (no cap) less what was realised."""
    removed_cost = pos.cost - t.new_cost
    removed_charge = pos.entry_charge - t.new_entry_charge
    index = view.state.long_index if t.is_long else view.state.short_index
    raw = m.perp.value(-delta, removed_cost, removed_charge, t.fill, index, HUGE_PROFIT_RATIO)
    return max(0, raw - t.realised)


# --------------------------------------------------------------------------- the run


@dataclass
class Keeper:
    """The keeper's memory across steps (what `lever.keeper.runner.Keeper` keeps)."""

    seen: dict[int, int] = field(default_factory=dict)  # account -> first step seen liquidatable
    gas_used: int = 0
    gas_cost_usd: float = 0.0


class ExactEngine:
    """Runs a cell on the exact protocol. `t0` is the chain time of step 0; `t_deploy` the
    deployment's (the replay passes the chain's)."""

    def __init__(self, cell: Cell, t0: int = 1_900_000_000, t_deploy: int | None = None):
        self.cell = cell
        self.t0 = t0
        self.chain = Protocol(cell, t0 - 600 if t_deploy is None else t_deploy)
        self.keeper = Keeper()
        self.known: dict[int, Order] = {}  # the orders the keeper knows of (from events)
        self.trace = Trace(t0)
        pop = cell.population
        n = pop.count
        self.topups_left = [cell.agents.max_topups if pop.topup[i] else 0 for i in range(n)]
        self.impact = [1.0] * self.chain.n_markets
        self.lp_ran = False
        self.peak: tuple[int, int] = (0, 1)  # (pool value, supply) at the share price's peak
        self.result = RunResult(cell.id, cell.scenario.name, cell.seed, dict(cell.knobs), "exact", n, cell.steps)

    def setup(self) -> None:
        """Deployment's aftermath: the LP's first deposit and the insurance fund."""
        self.chain.lp_deposit(self.cell.pool)
        self.chain.fund_insurance(self.cell.insurance)
        self.peak = (self.cell.pool, self.chain.ledgers["supply"])

    def run(self) -> RunResult:
        started, cpu = time.perf_counter(), time.process_time()
        self.setup()
        for k in range(self.cell.steps + 1):
            self.step(k)
        self.finish()
        self.result.seconds = time.perf_counter() - started
        self.result.cpu_seconds = time.process_time() - cpu
        return self.result

    def steps(self) -> Iterator[int]:
        """Step by step (the replay interleaves the chain)."""
        self.setup()
        for k in range(self.cell.steps + 1):
            self.step(k)
            yield k
        self.finish()

    def prices_at(self, k: int) -> tuple[int, ...]:
        base = self.cell.prices[k]
        return tuple(max(1, round(int(base[mk]) * self.impact[mk])) for mk in range(self.chain.n_markets))

    # ------------------------------------------------------------------ one step

    def step(self, k: int) -> None:
        cell, chain = self.cell, self.chain
        now = self.t0 + k * 12
        sc = cell.scenario
        prices = self.prices_at(k)
        published = not bool(sc.frozen[k])
        keeper_up = cell.replay or not bool(sc.keeper_down[k])
        log = StepLog(k, now, prices, published, keeper_up)
        self.trace.steps.append(log)
        if published:
            for mk in range(chain.n_markets):
                chain.set_reference(mk, prices[mk], now)
                chain.publish(mk, prices[mk], now)
        self._agents(k, now, log)
        liquidatable, closed = self._keeper(k, now, keeper_up)
        self.result.liquidatable_per_step.append(liquidatable)
        if cell.saturated(liquidatable, keeper_up):
            self.result.saturated_blocks += 1
        if cell.agents.impact_depth_usd > 0:
            depth = cell.agents.impact_depth_usd / sc.impact_multiplier
            for mk in range(chain.n_markets):
                sold = closed.get(mk, 0) / 10**18 * prices[mk] / 100  # USD: + for longs closed (sold)
                self.impact[mk] *= max(0.5, 1 - sold / depth)
        self._measure(k, now)

    def _views(self, now: int) -> dict[int, m.MarketView]:
        """Every market as the keeper sees it: at the price service's latest price."""
        pool = self.chain.coverage().pool
        out = {}
        for mk in range(self.chain.n_markets):
            pub = self.chain.latest_publication(mk)
            snap = self.chain.snapshot(mk)
            out[mk] = snap.view(now, pool, pub.price if pub else None, pub.time if pub else None)
        return out

    def _records(self) -> dict[int, AccountRecord]:
        chain = self.chain
        records: dict[int, AccountRecord] = {}
        for (account, mk), pos in chain.positions.items():
            record = records.get(account)
            if record is None:
                record = records[account] = AccountRecord(chain.margin[account], {}, chain.last_trade[account])
            record.positions[mk] = pos
        return records

    def _agents(self, k: int, now: int, log: StepLog) -> None:
        chain, pop = self.chain, self.cell.population
        if k == 0:
            for i in range(pop.count):
                account = chain.create_account()
                chain.deposit_margin(account, int(pop.margin[i]))
                log.actions.append(Action("deposit", account, amount=int(pop.margin[i])))
        for i in map(int, (pop.open_step == k).nonzero()[0]):
            account, mk = i + 1, int(pop.market[i])
            size = int(pop.size_units[i]) * SIZE_UNIT
            try:
                chain.place(account, mk, Kind.MARKET, size, 0, pop.executor_fee, now)
            except Refused:
                continue
            log.actions.append(Action("commit", account, mk, size, pop.executor_fee))
        for i in map(int, (pop.open_step + 2 == k).nonzero()[0]):
            account, mk = i + 1, int(pop.market[i])
            pos = chain.positions.get((account, mk))
            if pos is None:
                continue
            for kind, cents in ((Kind.STOP_LOSS, int(pop.stop_cents[i])), (Kind.TAKE_PROFIT, int(pop.take_cents[i]))):
                if cents:
                    try:
                        chain.place(account, mk, kind, -pos.size, cents * CENT, pop.executor_fee, now)
                    except Refused:
                        continue
                    log.actions.append(
                        Action("place", account, mk, -pos.size, pop.executor_fee, int(kind), cents * CENT)
                    )
        if any(self.topups_left):
            self._topups(now, log)
        self._lp(k, now, log)

    def _topups(self, now: int, log: StepLog) -> None:
        chain, pop = self.chain, self.cell.population
        threshold = round(self.cell.agents.topup_health * 10_000)
        views = self._views(now)
        cov = chain.coverage()
        for i, left in enumerate(self.topups_left):
            if not left:
                continue
            account = i + 1
            markets = chain.markets_of(account)
            if not markets:
                continue
            legs = [(chain.positions[(account, mk)], views[mk]) for mk in markets]
            a = m.account_state(chain.margin[account], TOKEN_SCALE, legs, cov)
            if a.equity * 10_000 < a.maintenance_margin * threshold:
                amount = int(pop.topup[i])
                chain.deposit_margin(account, amount)
                self.topups_left[i] -= 1
                self.result.topups += 1
                log.actions.append(Action("deposit", account, amount=amount))

    def _lp(self, k: int, now: int, log: StepLog) -> None:
        chain, sc = self.chain, self.cell.scenario
        if chain.pending_redeem is not None:
            return
        share = 0.0
        if sc.lp_run[k] > 0:
            share = float(sc.lp_run[k])
        elif not self.lp_ran and self.cell.agents.lp_run_drawdown > 0 and k > 0:
            value, supply = self._lp_value(now), chain.ledgers["supply"]
            peak_value, peak_supply = self.peak
            # share price value/supply fell at least lp_run_drawdown below the peak
            keep = round((1 - self.cell.agents.lp_run_drawdown) * 10_000)
            if value * peak_supply * 10_000 <= keep * peak_value * supply:
                share = self.cell.agents.lp_run_share
                self.lp_ran = True
        if share > 0:
            shares = chain.ledgers["lp_shares"] * round(share * 10_000) // 10_000
            if shares > 0:
                try:
                    chain.request_redeem(shares, now)
                except Refused:
                    return  # the pool's last shares stay while it backs open positions
                log.actions.append(Action("redeem", size=shares))

    def _lp_value(self, now: int) -> int:
        prices = {}
        for mk in range(self.chain.n_markets):
            pub = self.chain.latest_publication(mk)
            prices[mk] = pub.price if pub else 0
        return self.chain.pool_value(prices, now)

    # ------------------------------------------------------------------ the keeper

    def _keeper(self, k: int, now: int, up: bool) -> tuple[int, dict[int, int]]:
        """`Keeper.step`: liquidations, orders, LP requests. Returns (accounts found liquidatable,
        size closed by liquidations per market, + for longs)."""
        chain, cell = self.chain, self.cell
        records = self._records()
        views = self._views(now)
        cov = chain.coverage()
        latest_publish = {mk: pub.time for mk in range(chain.n_markets) if (pub := chain.latest_publication(mk))}
        if up:
            for account in chain.order_events:  # `Keeper.step`: re-read the orders of accounts with events
                self.known = {i: o for i, o in self.known.items() if o.account != account}
                self.known.update({i: o for i, o in chain.orders.items() if o.account == account})
            chain.order_events = set()
        orders_seen = list(self.known.values())
        escrow: dict[int, int] = {}
        for o in orders_seen:
            escrow[o.account] = escrow.get(o.account, 0) + o.executor_fee
        eth_price = views[0].price.price
        gas_price = int(cell.scenario.gas_gwei[k] * 10**9)
        gate = cell.agents.profit_gate and not cell.replay
        params = DecideParams(
            liquidation=cell.params.liquidation,
            token_scale=TOKEN_SCALE,
            max_batch=KEEPER.max_batch,
            gas_per_account=KEEPER.gas_per_account,
            gas_base=KEEPER.gas_base,
            batch_gas_budget=KEEPER.liquidation_budget(cell.agents.block_gas_limit),
            gas_price_wei=gas_price,
            token_per_eth=eth_price // TOKEN_SCALE if gate else 0,
            clear_bad_debt=True,
        )
        found = evaluate(sorted(records), records, views, params, cov, latest_publish, escrow)
        closed: dict[int, int] = {}
        if not up:
            return len(found), closed
        live = {c.account for c in found}
        for account in list(self.keeper.seen):
            if account not in live:
                del self.keeper.seen[account]
        for c in found:
            self.keeper.seen.setdefault(c.account, k)
        if not cell.replay:
            found = [c for c in found if k - self.keeper.seen[c.account] >= cell.agents.keeper_latency]
            found = sorted(found, key=lambda c: (c.health_wad, c.account))[: cell.agents.capacity()]
        updates_markets = sorted({mk for c in found for mk in records[c.account].positions})
        updates = [(mk, pub) for mk in updates_markets if (pub := chain.latest_publication(mk))]
        liquidated: set[int] = set()
        for batch in decide(found, params):
            liquidated |= self._liquidate_batch(
                k, list(batch.items), updates, now, batch.gas_limit, gas_price, eth_price, closed
            )
        if liquidated:  # `Keeper._liquidated`: their orders are gone
            self.known = {i: o for i, o in self.known.items() if o.account not in liquidated}
            orders_seen = [o for o in orders_seen if o.account not in liquidated]
        self._orders(now, records, orders_seen, gas_price, eth_price)
        self._lp_requests(now, gas_price, eth_price)
        return len(live), closed

    def _gas(self, gas: int, gas_price: int, eth_price: int) -> None:
        self.keeper.gas_used += gas
        self.keeper.gas_cost_usd += gas * gas_price / 1e18 * eth_price / 1e18

    def _liquidate_batch(
        self,
        k: int,
        accounts: list[int],
        updates: list[tuple[int, Publication]],
        now: int,
        gas: int,
        gas_price: int,
        eth_price: int,
        closed: dict[int, int],
    ) -> set[int]:
        """`Liquidator.liquidateBatch` (the keeper simulates first: a reverting batch is not sent).
        Returns the accounts liquidated."""
        chain = self.chain
        saved = chain._snapshot()
        events = []
        try:
            chain.update_prices(updates, now)
            for account in accounts:
                if chain.markets_of(account):
                    chain.on_liquidation(account)
                out = chain.liquidate(account, now)
                if out is not None:
                    events.append((account, *out))
            if not events:
                raise Refused("NothingToLiquidate")
        except Refused:
            chain._restore(saved)
            return set()
        self._gas(gas, gas_price, eth_price)
        for account, pred, s, withheld, markets in events:
            self.trace.liquidations.append(
                LiquidationEvent(
                    k, account, pred.full, pred.share, pred.closed_notional, s.reward_paid, s.penalty_paid, s.bad_debt
                )
            )
            r = self.result
            r.liquidations += 1
            r.full_liquidations += pred.full
            if withheld:
                r.profit_cap_hits += 1
                r.unpaid_profit += withheld / 1e18
            for mk, size in zip(markets, pred.close_sizes, strict=True):
                closed[mk] = closed.get(mk, 0) + size
        return {event[0] for event in events}

    def _orders(
        self, now: int, records: dict[int, AccountRecord], orders: list[Order], gas_price: int, eth_price: int
    ) -> None:
        """`Keeper._settle_orders`: due market and triggered orders with their price, expired ones,
        conditional ones to trigger, packed by gas into `settleOrders` batches."""
        chain, p = self.chain, self.cell.params
        latest_prices = {
            mk: (pub.price, pub.time) for mk in range(chain.n_markets) if (pub := chain.latest_publication(mk))
        }
        work = order_work(orders, now, p.order_delay, p.order_window, records, latest_prices)
        if not (work.due or work.expired or work.triggered):
            return
        keys: dict[int, tuple[int, int]] = {}  # a due order's (market, earliest publish time)
        proofs: dict[tuple[int, int], Publication] = {}  # the price each key settles at
        ready: list[Order] = []
        for o in work.due:
            key = (o.market_id, earliest_publish_time(o, p.order_delay))
            if key not in proofs:
                found = chain.publication_at_or_after(o.market_id, key[1])
                if found is None or found.time > now:
                    continue
                proofs[key] = found
            keys[o.order_id] = key
            ready.append(o)
        ready = [*work.triggered, *ready, *work.expired]  # as `Keeper._settle_orders`: triggers first
        latest = [(mk, pub) for mk in range(chain.n_markets) if (pub := chain.latest_publication(mk))]
        items = [(o.order_id, KEEPER.gas_per_order) for o in ready]
        for batch in pack(
            items, KEEPER.gas_base, KEEPER.max_batch, KEEPER.order_budget(self.cell.agents.block_gas_limit)
        ):
            # As `Keeper._settle_call`: the first order of each key in the batch carries its proof.
            blobs: dict[int, Publication | None] = {}
            carried: set[tuple[int, int]] = set()
            for i in batch.items:
                if (due := keys.get(i)) is not None:
                    blobs[i] = None if due in carried else proofs[due]
                    carried.add(due)
            fills = chain.settle_orders(list(batch.items), blobs, latest, now)
            if fills is None:
                continue  # the keeper's simulation reverts: nothing is sent
            self._gas(batch.gas_limit, gas_price, eth_price)
            for i in batch.items:
                self.known.pop(i, None)  # as `Keeper._send_orders` does, filled or not
            self.result.orders_filled += len(fills)
            for o, _, withheld in fills:
                if o.kind != Kind.MARKET:
                    self.result.stops_filled += 1
                if withheld:
                    self.result.profit_cap_hits += 1
                    self.result.unpaid_profit += withheld / 1e18

    def _lp_requests(self, now: int, gas_price: int, eth_price: int) -> None:
        chain, p = self.chain, self.cell.params
        if chain.pending_redeem is None:
            return
        shares, t, _ = chain.pending_redeem
        due, expired = lp_work([LpRequest("lp", False, shares, t)], now, p.lp_delay, p.lp_window, p.lp_grace)
        if expired:
            chain.cancel_expired_redeem(now)
            return
        if not due:
            return
        open_ = chain.open_markets()
        updates = []
        for mk in open_:
            pub = chain.publication_at_or_after(mk, t + p.lp_delay)
            if pub is None or pub.time + p.lp_grace > now:
                return
            updates.append((mk, pub))
        assets = chain.settle_redeem(updates, now)
        if assets is not None:
            self._gas(KEEPER.gas_per_lp, gas_price, eth_price)
            self.result.lp_redeemed += assets / USD

    # ------------------------------------------------------------------ figures

    def _measure(self, k: int, now: int) -> None:
        chain, r = self.chain, self.result
        value = self._lp_value(now)
        supply = chain.ledgers["supply"]
        peak_value, peak_supply = self.peak
        if value * peak_supply > peak_value * supply:
            self.peak = (value, supply)
        r.share_price.append(value / supply * 1e6 if supply else 0.0)
        r.insurance.append(chain.ledgers["insurance"] / USD)
        r.liquidations_per_step.append(sum(1 for e in self.trace.liquidations if e.step == k))
        r.price.append(self.trace.steps[-1].prices[0] / 100)

    def finish(self) -> None:
        chain, r = self.chain, self.result
        led = chain.ledgers
        r.bad_debt = led["bad_debt"] / USD
        r.bad_debt_by_insurance = led["bad_debt_by_insurance"] / USD
        r.bad_debt_by_pool = led["bad_debt_by_pool"] / USD
        r.keeper_rewards = sum(e.reward for e in self.trace.liquidations) / USD
        r.keeper_fees = (led["keeper"] - sum(e.reward for e in self.trace.liquidations)) / USD
        r.keeper_gas = self.keeper.gas_cost_usd
        r.cascade_depth = cascade_depth(r.liquidations_per_step)
        r.insurance_dry = led["bad_debt_by_pool"] > 0
        r.lp_drawdown = max_drawdown(r.share_price)
        r.pool_end = led["pool"] / USD
        r.insurance_end = led["insurance"] / USD
        r.margin_end = sum(chain.margin.values()) / USD
        r.ledgers = {**led, "total_reserve": chain.total_reserve}
        self._end_caps()
        self.trace.ledgers = dict(r.ledgers)
        self.trace.margins = dict(chain.margin)
        self.trace.markets = dict(chain.market_state)
        self.trace.total_reserve = chain.total_reserve
        positions: dict[int, dict[int, m.Position]] = {}
        for (account, mk), pos in chain.positions.items():
            positions.setdefault(account, {})[mk] = pos
        self.trace.positions = positions

    def _end_caps(self) -> None:
        """Open positions whose value is at the profit cap at the end: hits, and what is withheld."""
        chain = self.chain
        now = self.trace.steps[-1].time
        views = self._views(now)
        for (account, mk), pos in chain.positions.items():
            view = views[mk]
            params = view.params
            close_fill = m.perp.fill_price(view.price.price, view.state.skew, -pos.size, params.skew_scale)
            index = view.state.long_index if pos.size > 0 else view.state.short_index
            raw = m.perp.value(pos.size, pos.cost, pos.entry_charge, close_fill, index, HUGE_PROFIT_RATIO)
            capped = m.perp.value(pos.size, pos.cost, pos.entry_charge, close_fill, index, params.max_profit_ratio)
            if raw > capped:
                self.result.profit_cap_hits += 1
                self.result.unpaid_profit += (raw - capped) / 1e18


def run_exact(cell: Cell, t0: int = 1_900_000_000) -> RunResult:
    return ExactEngine(cell, t0).run()
