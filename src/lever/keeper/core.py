"""The keeper's pure core: an index of accounts by liquidation price, the choice of what to
liquidate and settle, and batching. No I/O.

The shell (`lever.keeper.runner`) feeds it chain data and prices; everything here is a function of
that data and the mirror of the contracts (`lever.math`), so it is tested without a chain.

Scale comes from not re-checking every account on every price move: each account with a single
position has a liquidation price (other terms fixed), kept in a per-market sorted index; when a
market's price moves, only accounts whose liquidation price lies within the move (plus a band
for funding and volatility drift) become candidates. Accounts holding several markets are
candidates whenever any of their markets moves.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from lever import math as m
from lever.chain import AccountRecord
from lever.math.orders import (
    Kind,
    Order,
    conditional_since,
    earliest_publish_time,
    expiry,
    triggered,
)

WAD = m.WAD


def legs(record: AccountRecord, views: Mapping[int, m.MarketView]) -> list[tuple[m.Position, m.MarketView]]:
    return [(pos, views[market]) for market, pos in sorted(record.positions.items())]


class LiquidationIndex:
    """Per market, single-position accounts sorted by liquidation price (longs and shorts apart),
    plus the set of multi-market accounts of each market."""

    def __init__(self) -> None:
        self._longs: dict[int, list[tuple[int, int]]] = {}
        self._shorts: dict[int, list[tuple[int, int]]] = {}
        self._multi: dict[int, set[int]] = {}
        self._entries: dict[int, list[tuple[str, int, tuple[int, int]]]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def remove(self, account: int) -> None:
        for kind, market, entry in self._entries.pop(account, []):
            if kind == "multi":
                self._multi[market].discard(account)
                continue
            book = (self._longs if kind == "long" else self._shorts)[market]
            i = bisect.bisect_left(book, entry)
            if i < len(book) and book[i] == entry:
                book.pop(i)

    def update(
        self,
        account: int,
        record: AccountRecord,
        views: Mapping[int, m.MarketView],
        token_scale: int,
        cov: m.Coverage,
    ) -> None:
        """(Re)indexes an account from its current record and market views."""
        self.remove(account)
        entries: list[tuple[str, int, tuple[int, int]]] = []
        if len(record.positions) == 1:
            [(market, pos)] = record.positions.items()
            price = m.liquidation_price(record.margin_token, token_scale, legs(record, views), market, cov)
            kind = "long" if pos.size > 0 else "short"
            entry = (price, account)
            bisect.insort((self._longs if kind == "long" else self._shorts).setdefault(market, []), entry)
            entries.append((kind, market, entry))
        else:
            for market in record.positions:
                self._multi.setdefault(market, set()).add(account)
                entries.append(("multi", market, (0, account)))
        if entries:
            self._entries[account] = entries

    def candidates(self, market: int, price: int, band_wad: int) -> set[int]:
        """Accounts of `market` that may be liquidatable at `price`: longs whose liquidation price
        is at least `price * (1 - band)`, shorts whose liquidation price is at most
        `price * (1 + band)`, and every multi-market account.

        A liquidation price of 0 (`m.liquidation_price`: none) means opposite things by side: a
        long with none is never liquidatable (no price is low enough), a short with none is
        liquidatable at every price (its equity is below maintenance whatever the price), so it
        is always a candidate; both fall out of the sorted order (0 sorts first)."""
        found = set(self._multi.get(market, ()))
        low = m.fixed.mul_div_down(price, WAD - band_wad, WAD)
        longs = self._longs.get(market, [])
        found.update(account for liq, account in longs[bisect.bisect_left(longs, (low, -1)) :] if liq > 0)
        high = m.fixed.mul_div_up(price, WAD + band_wad, WAD)
        shorts = self._shorts.get(market, [])
        found.update(account for _, account in shorts[: bisect.bisect_right(shorts, (high, 2**256))])
        return found


@dataclass(frozen=True)
class Candidate:
    account: int
    state: m.AccountState
    prediction: m.LiquidationPrediction

    @property
    def health_wad(self) -> int:
        """equity / maintenance (WAD); the most underwater first."""
        if self.state.maintenance_margin == 0:
            return 2**255
        return self.state.equity * WAD // self.state.maintenance_margin

    @property
    def underwater(self) -> bool:
        return self.state.equity < 0


@dataclass(frozen=True)
class Batch:
    items: tuple[int, ...]  # account ids or order ids
    gas_limit: int


@dataclass(frozen=True)
class DecideParams:
    """What `decide` needs besides the accounts and markets."""

    liquidation: m.LiquidationParams
    token_scale: int
    max_batch: int = 500
    # Gas limit one account needs in a batch (measured by `make bench-keeper`, before refunds); a
    # second position adds up to `gas_per_extra_position`. `gas_base` covers the batch itself, its
    # price updates and its first account's cold storage. `batch_gas_budget` (0: none) caps a batch.
    gas_per_account: int = 110_000
    gas_per_extra_position: int = 70_000
    gas_base: int = 300_000
    batch_gas_budget: int = 0
    gas_price_wei: int = 0
    token_per_eth: int = 0  # token units one ETH is worth (for the profit gate); 0 = no gate
    clear_bad_debt: bool = True


def evaluate(
    accounts: Iterable[int],
    records: Mapping[int, AccountRecord],
    views: Mapping[int, m.MarketView],
    params: DecideParams,
    cov: m.Coverage,
    latest_publish: Mapping[int, int],
    escrow: Mapping[int, int] | None = None,
) -> list[Candidate]:
    """Liquidatable accounts among `accounts`, with the mirror's prediction of each liquidation.
    A liquidation first returns the account's pending orders' fees (`escrow`, token units) to its
    margin. An account whose markets have no price newer than its last trade waits (the contract
    would skip it)."""
    found = []
    for account in accounts:
        record = records.get(account)
        if record is None or not record.positions:
            continue
        if any(latest_publish.get(mk, 0) <= record.last_trade_time for mk in record.positions):
            continue
        margin = record.margin_token + (escrow or {}).get(account, 0)
        account_legs = legs(record, views)
        state = m.account_state(margin, params.token_scale, account_legs, cov)
        if not state.liquidatable:
            continue
        prediction = m.predict_liquidation(margin, params.token_scale, account_legs, params.liquidation, cov)
        found.append(Candidate(account, state, prediction))
    return found


def decide(
    candidates: Iterable[Candidate], params: DecideParams, in_flight: frozenset[int] = frozenset()
) -> list[Batch]:
    """Batches to send: most underwater first, at most `max_batch` accounts each, skipping
    accounts already in flight. The profit gate drops accounts whose reward does not cover their
    share of gas, except underwater accounts when `clear_bad_debt` is set."""
    ordered = sorted(
        (c for c in candidates if c.account not in in_flight),
        key=lambda c: (c.health_wad, c.account),
    )
    kept = []
    for c in ordered:
        if params.token_per_eth and not (c.underwater and params.clear_bad_debt):
            gas_cost_token = account_gas(c, params) * params.gas_price_wei * params.token_per_eth // 10**18
            if c.prediction.reward_request <= gas_cost_token:
                continue
        kept.append(c)
    return pack(
        [(c.account, account_gas(c, params)) for c in kept],
        params.gas_base,
        params.max_batch,
        params.batch_gas_budget,
    )


def account_gas(c: Candidate, params: DecideParams) -> int:
    return params.gas_per_account + params.gas_per_extra_position * max(0, c.state.position_count - 1)


# EIP-7825 (Ethereum since the Osaka upgrade): the most gas one transaction may carry. A node
# rejects a transaction above it whatever the block's gas limit.
MAX_TX_GAS = 2**24


def tx_gas_cap(block_gas_limit: int, max_tx_gas: int = MAX_TX_GAS) -> int:
    """The most gas one transaction may carry: the block's gas limit, and `max_tx_gas` (0: none)."""
    return min(block_gas_limit, max_tx_gas) if max_tx_gas > 0 else block_gas_limit


def batch_gas_budget(block_gas_limit: int, batches_per_block: int, max_tx_gas: int = MAX_TX_GAS) -> int:
    """The gas limit one batch may carry: the block's gas limit over `batches_per_block` (at
    least two, so that no batch holds a block to itself), and never above `max_tx_gas` (0: no
    cap). A node includes a transaction while its gas *limit* fits in what the block has left,
    and refunds leave each batch using less than its limit, so several small batches fill a
    block where one batch of 90% left a tenth of it and its refunds unused."""
    return tx_gas_cap(block_gas_limit // max(2, batches_per_block), max_tx_gas)


@dataclass
class KeeperConfig:
    """The keeper's settings (`lever keeper` reads them from the environment or a TOML file)."""

    max_batch: int = 500  # upper bound; the block gas limit usually binds first
    # the market whose price prices the gas token (ETH-USD); None: no profit gate
    gas_market: int | None = 0
    # 0.5%: candidates within half a percent of their liquidation price
    band_wad: int = m.WAD // 200
    page_size: int = 500
    reindex_every_blocks: int = 50
    clear_bad_debt: bool = True
    settle_orders: bool = True
    settle_lp: bool = True
    dry_run: bool = False
    tip_wei: int = 10**9
    # Gas limits: base + a budget per item, capped at the block's gas limit. The eth_call
    # simulation runs with that limit, so a batch that would run out of gas is split, not sent.
    gas_base: int = 600_000
    gas_per_account: int = 150_000
    gas_per_order: int = 200_000
    # A settleOrders or liquidateBatch batch takes at most the block gas limit over these: a
    # block holds several, and the refunds of those before leave room for one more
    # (`core.batch_gas_budget`), and never more than `max_tx_gas` (EIP-7825's 2**24 on
    # Ethereum since Osaka; 0: no cap, for a chain without it).
    order_batches_per_block: int = 6
    liquidation_batches_per_block: int = 6
    max_tx_gas: int = MAX_TX_GAS
    gas_per_lp: int = 800_000
    # A transaction not mined after `stuck_after` seconds is replaced (same nonce) with fees
    # raised by 12.5%, at most `max_fee_bumps` times and never above `max_fee_cap_wei`.
    stuck_after: float = 30.0
    max_fee_bumps: int = 3
    max_fee_cap_wei: int = 500 * 10**9
    start_block: int = 0  # the deployment's block: history before it holds no orders or requests

    def liquidation_budget(self, block_gas_limit: int) -> int:
        """The gas limit of one `liquidateBatch` under a block of `block_gas_limit`."""
        return batch_gas_budget(block_gas_limit, self.liquidation_batches_per_block, self.max_tx_gas)

    def order_budget(self, block_gas_limit: int) -> int:
        """The gas limit of one `settleOrders` batch under a block of `block_gas_limit`."""
        return batch_gas_budget(block_gas_limit, self.order_batches_per_block, self.max_tx_gas)


def items_per_batch(budget: int, gas_base: int, gas_per_item: int) -> int:
    """How many items of `gas_per_item` one batch of `budget` gas holds after its `gas_base`
    (at least one): what `pack` puts in a batch of equal items."""
    return max(1, (budget - gas_base) // gas_per_item)


def pack(items: list[tuple[int, int]], gas_base: int, max_batch: int, budget: int) -> list[Batch]:
    """Greedy batches of (item, gas) in order: at most `max_batch` items and `budget` gas each."""
    batches: list[Batch] = []
    chunk: list[int] = []
    gas = gas_base
    for item, need in items:
        full = len(chunk) >= max_batch or (budget and gas + need > budget)
        if chunk and full:
            batches.append(Batch(tuple(chunk), gas))
            chunk, gas = [], gas_base
        chunk.append(item)
        gas += need
    if chunk:
        batches.append(Batch(tuple(chunk), gas))
    return batches


# --------------------------------------------------------------------------- orders


@dataclass(frozen=True)
class OrderWork:
    """What the order book needs now: market and triggered orders whose price is due (by the time
    their price may be published), expired ones to cancel, conditional orders whose trigger a
    price meets (settling those triggers them; they fill in a later batch, as market orders)."""

    due: tuple[Order, ...]
    expired: tuple[Order, ...]
    triggered: tuple[Order, ...]


def order_work(
    orders: Iterable[Order],
    now: int,
    delay: int,
    window: int,
    records: Mapping[int, AccountRecord],
    prices: Mapping[int, tuple[int, int]],
) -> OrderWork:
    """`prices` holds each market's latest (price, publish time) from the price service."""
    due, expired, fired = [], [], []
    for o in orders:
        if o.as_market:
            if now > expiry(o, delay, window):
                expired.append(o)
            elif now >= earliest_publish_time(o, delay):
                due.append(o)
            continue
        if o.market_id not in prices:
            continue
        price, publish_time = prices[o.market_id]
        pos = records.get(o.account, AccountRecord(0)).positions.get(o.market_id, m.Position())
        if o.reduce_only and pos.size == 0:
            # its position is gone: settling it cancels it, fee back to the trader
            expired.append(o)
            continue
        if publish_time < conditional_since(o, pos.last_increase_time) + delay:
            continue
        if triggered(o, pos.size > 0, price):
            fired.append(o)
    key = lambda o: (o.updated_at, o.order_id)
    return OrderWork(tuple(sorted(due, key=key)), tuple(sorted(expired, key=key)), tuple(sorted(fired, key=key)))


def safe_behind(batch: Iterable[Order], touched: AbstractSet[int]) -> bool:
    """May a `settleOrders` batch, simulated on the state before any batch of its step was sent,
    be sent behind those batches (their accounts: `touched`) without waiting for them? Only if
    it cannot revert `NothingToSettle` whatever they did (see `Keeper._send_orders`): it holds a
    market or triggered order, which is filled at its proven price, cancelled or sent back to
    waiting, never left as it was; or each of its orders triggers (or is cancelled) exactly when
    its simulation said: a limit order (its trigger needs only the stored price, which the earlier
    batches bring the same), or a stop-loss or take-profit of an account no earlier batch touched
    (an increase there would push its trigger past the price)."""
    orders = list(batch)
    return any(o.as_market for o in orders) or all(o.kind == Kind.LIMIT or o.account not in touched for o in orders)


@dataclass(frozen=True)
class LpRequest:
    controller: str
    deposit: bool
    amount: int
    time: int


def lp_work(
    requests: Iterable[LpRequest], now: int, delay: int, window: int, grace: int
) -> tuple[list[LpRequest], list[LpRequest]]:
    """(due, expired) LP requests: due once their price and the liquidation grace have passed."""
    due, expired = [], []
    for r in requests:
        if now > r.time + delay + window + grace:
            expired.append(r)
        elif now >= r.time + delay + grace:
            due.append(r)
    return due, expired
