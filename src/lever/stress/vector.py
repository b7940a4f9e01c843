"""The vectorised engine: the exact engine's model (`lever.stress.exact`) re-expressed in numpy
floats, for sweeps.

This is the one module that restates the protocol's formulas instead of calling `lever.math`: the
per-account work of a step (every account's equity, maintenance margin, health, profit cap and
triggers at the step's prices) runs as numpy arrays over the accounts; the rare events (a fill, a
liquidation, the insurance waterfall, an LP redemption) run as scalar float code in the same order
as the exact engine's transactions. Rounding is not modelled (floats, not wei), so results differ
from the exact engine by rounding and by the rare decision a rounding flips; `tests/stress/
test_engines.py` bounds that difference on samples and `make bench-stress` reports it.

The formulas restated here, each next to the `lever.math` function it stands for: fill price
(`perp.fill_price`), trade fee (`perp.trade_fee`), position value with the profit cap and the
pool's coverage (`perp.value`, `perp.covered`), margin ratios scaled by size and volatility
(`perp.scaled_ratio`), funding and borrowing accrual (`engine.accrued`), the volatility EWMA and
margin factors (`volatility.*`, `oracle.record_reference`), the liquidation close share, reward and
penalty (`liquidation.*`), the liquidation settlement (`vault.settle_liquidation`), the pool's
value (`engine.market_liability`, `pool.pool_value`) and share conversion (`pool.to_assets_down`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from lever.keeper.core import items_per_batch
from lever.math import pool as pool_math
from lever.stress.metrics import RunResult, cascade_depth, max_drawdown
from lever.stress.model import DT, KEEPER, Cell

F = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]
W = 1e18
DAY = 86_400.0
VAR_MAX = (2**64 - 1) / W
GAS_PER_ORDER, GAS_PER_ACCOUNT, GAS_BASE = KEEPER.gas_per_order, KEEPER.gas_per_account, KEEPER.gas_base
GAS_PER_LP, MAX_BATCH = KEEPER.gas_per_lp, KEEPER.max_batch


class Revert(Exception):
    pass


@dataclass
class Oracle:
    """One market's `OracleAdapter` state in floats (USD prices, shares)."""

    last_round: int = 0
    last_ref: float = 0.0
    variance: float = 0.0
    mm_cp: float = 0.0
    cp_time: float = 0.0
    shocked: bool = False
    latest: float = 0.0
    latest_time: float = 0.0


@dataclass(frozen=True)
class Price:
    """`PriceData` in floats."""

    price: float
    time: float
    im: float
    mm: float
    shocked: bool


class VectorEngine:
    def __init__(self, cell: Cell, t0: int = 1_900_000_000):
        self.cell = cell
        self.t0 = t0
        p = cell.params
        mp = p.markets
        self.nm = len(mp)
        f = np.array
        self.taker = f([q.taker_fee / W for q in mp])
        self.maker = f([q.maker_fee / W for q in mp])
        self.imr = f([q.initial_margin_ratio / W for q in mp])
        self.mmr = f([q.maintenance_margin_ratio / W for q in mp])
        self.maxfund = f([q.max_funding_rate_per_day / W for q in mp])
        self.borrow = f([q.borrow_rate_per_day / W for q in mp])
        self.mpr = f([q.max_profit_ratio / W for q in mp])
        self.oicap = f([q.oi_cap_ratio / W for q in mp])
        self.K = f([q.skew_scale / W for q in mp])
        self.Fs = f([q.funding_scale / W for q in mp])
        self.minsize = f([q.min_position_size / W for q in mp])
        self.minmargin = f([q.min_margin / W for q in mp])
        self.maxlev = f([float(q.max_leverage) for q in mp])
        oc = p.oracle
        self.max_dev, self.lam, self.ref_vol = oc.max_deviation / W, oc.ewma_lambda / W, oc.ref_volatility / W
        self.max_factor, self.rise = oc.max_vol_factor / W, oc.factor_rise_per_day / W
        self.max_price_age, self.max_exec_age = oc.max_price_age, oc.max_execution_age
        self.max_ref_dev, self.ref_max_age = oc.max_reference_deviation / W, oc.reference_max_age
        lq = p.liquidation
        self.target, self.max_partial = lq.target_health / W, lq.max_partial_share / W
        self.penalty, self.reward_ratio = lq.penalty_ratio / W, lq.reward_ratio / W
        self.min_reward, self.max_reward, self.min_leftover = (
            lq.min_reward / W,
            lq.max_reward / W,
            lq.min_leftover_notional / W,
        )
        self.fee_share = p.protocol_fee_share / W
        pop = cell.population
        n = self.n = pop.count
        self.market = pop.market.astype(np.intp)
        self.size = np.zeros(n)
        self.cost = np.zeros(n)
        self.entry = np.zeros(n)
        self.last_inc = np.zeros(n)
        self.last_trade = np.zeros(n)
        self.margin = np.zeros(n)
        self.fee = pop.executor_fee / 1e6
        # orders: a market order (commit time, size), a stop-loss and a take-profit (trigger, placed
        # or triggered at, triggered: then filled as a market order committed at that time)
        self.mo_time = np.full(n, -1.0)
        self.mo_size = pop.size_units / 1e6
        self.sl_on = np.zeros(n, dtype=bool)
        self.tp_on = np.zeros(n, dtype=bool)
        self.sl_at = np.zeros(n)
        self.tp_at = np.zeros(n)
        self.sl_fired = np.zeros(n, dtype=bool)
        self.tp_fired = np.zeros(n, dtype=bool)
        self.sl_trigger = pop.stop_cents / 100.0
        self.tp_trigger = pop.take_cents / 100.0
        self.topup = pop.topup / 1e6
        self.topups_left = np.where(pop.topup > 0, cell.agents.max_topups, 0)
        self.known = np.zeros(n, dtype=bool)  # the keeper knows the account's orders (from events)
        mk = self.market
        self.a_K, self.a_mpr, self.a_Fs = self.K[mk], self.mpr[mk], self.Fs[mk]
        self.a_mmr, self.a_imr, self.a_taker, self.a_minmargin = (
            self.mmr[mk],
            self.imr[mk],
            self.taker[mk],
            self.minmargin[mk],
        )
        self._version = 0  # bumped by every write to positions, markets or the pool
        steps = pop.open_step
        self._opening = {int(k): np.flatnonzero(steps == k) for k in np.unique(steps)}
        self._topping = np.flatnonzero(self.topups_left > 0)
        self._cache_key: tuple[float, int] = (-1.0, -1)
        self._cache: tuple[F, F, F, F, F] = (np.zeros(0),) * 5
        self.touched = np.zeros(n, dtype=bool)  # order events since the keeper last looked
        # markets
        z = np.zeros(self.nm)
        self.long_oi, self.short_oi, self.long_cost, self.short_cost = z.copy(), z.copy(), z.copy(), z.copy()
        self.long_index, self.short_index, self.long_entry, self.short_entry = z.copy(), z.copy(), z.copy(), z.copy()
        self.last_accrual = np.full(self.nm, float(t0 - 600))
        self.total_reserve = 0.0
        self.oracle = [Oracle() for _ in range(self.nm)]
        self.feed = [[1, p.initial_prices[mk] / 100, float(t0 - 600)] for mk in range(self.nm)]  # round, price, time
        self.pubs: list[list[tuple[float, float, float]]] = [[] for _ in range(self.nm)]  # (time, price, prev)
        # ledgers
        self.pool = cell.pool / 1e6
        self.supply = self.pool * 1e6 * 1e6  # first deposit: shares at the virtual rate
        self.lp_shares = self.supply
        self.insurance = cell.insurance / 1e6
        self.protocol_fees = self.order_escrow = self.keeper_income = 0.0
        self.bad = self.bad_ins = self.bad_pool = self.rewards = 0.0
        self.pending: tuple[float, float, float] | None = None  # shares, time, fee
        self.lp_fee = p.lp_executor_fee / 1e6
        self.lp_ran = False
        self.peak = self.pool / self.supply
        self._step_liquidations = 0
        self.impact = [1.0] * self.nm
        self.seen = np.full(n, -1, dtype=np.int64)
        self.gas_cost = 0.0
        self.r = RunResult(cell.id, cell.scenario.name, cell.seed, dict(cell.knobs), "vector", n, cell.steps)

    # ------------------------------------------------------------------ oracle

    def _ref(self, mk: int, now: float) -> float:
        _, price, t = self.feed[mk]
        if t < now and now - t > self.ref_max_age:
            return 0.0
        return float(price)

    def _mm_factor(self, o: Oracle, now: float) -> float:
        target = self._target(o.variance)
        if target <= o.mm_cp:
            return target
        return min(o.mm_cp + self.rise * (now - o.cp_time) / DAY, target)

    def _target(self, variance: float) -> float:
        return min(max(math.sqrt(variance) / self.ref_vol, 1.0), self.max_factor)

    def _recorded(self, mk: int, o: Oracle, now: float) -> tuple[Oracle, float]:
        """`oracle.record_reference` (and `_recordReference`): a copy of `o` with the feed's
        latest round recorded if usable and new; and the reference price (0 if unusable)."""
        ref = self._ref(mk, now)
        rid = int(self.feed[mk][0])
        if ref == 0 or rid == o.last_round:
            return o, ref
        if o.last_round == 0:
            return replace(o, mm_cp=1.0, cp_time=now, last_ref=ref, last_round=rid), ref
        cp = self._mm_factor(o, now)
        ret = abs(ref - o.last_ref) / o.last_ref
        var = min(self.lam * o.variance + (1 - self.lam) * ret * ret, VAR_MAX)
        return replace(
            o, mm_cp=cp, variance=var, shocked=ret > self.max_dev, cp_time=now, last_ref=ref, last_round=rid
        ), ref

    def _data(self, o: Oracle, price: float, t: float, now: float) -> Price:
        return Price(price, t, self._target(o.variance), self._mm_factor(o, now), o.shocked)

    def _view_price(self, mk: int, now: float, price: float | None = None, t: float | None = None) -> Price:
        """`MarketSnapshot.price_data`: the stored state with the feed's round recorded (a view)."""
        o, _ = self._recorded(mk, self.oracle[mk], now)
        if price is None:
            price, t = o.latest, o.latest_time
        return self._data(o, price, t or 0.0, now)

    def _update_prices(self, markets: list[int], now: float) -> None:
        """`updatePrices` with each market's latest publication (a deviation reverts)."""
        for mk in markets:
            if not self.pubs[mk]:
                continue
            t, price, _ = self.pubs[mk][-1]
            o = self.oracle[mk]
            earliest = now - self.max_price_age if now > self.max_price_age else 0.0
            if o.latest_time >= earliest:
                earliest = o.latest_time + 1
            if earliest > now or not earliest <= t <= now:
                continue
            o, ref = self._recorded(mk, o, now)
            if ref != 0 and abs(price - ref) > ref * self.max_ref_dev:
                raise Revert("OracleReferenceDeviation")
            if t > o.latest_time:
                o = replace(o, latest=price, latest_time=t)
            self.oracle[mk] = o
            self._version += 1

    def _settlement_price(self, mk: int, pub: tuple[float, float, float], lo: float, hi: float, now: float) -> Price:
        t, price, prev = pub
        if not (lo <= t <= hi and prev < lo):
            raise Revert("PriceFeedNotFoundWithinRange")
        o, ref = self._recorded(mk, self.oracle[mk], now)
        if ref == 0:
            raise Revert("OracleStalePrice")
        if self.feed[mk][2] <= t and abs(price - ref) > ref * self.max_ref_dev:
            raise Revert("OracleReferenceDeviation")
        if t > o.latest_time:
            o = replace(o, latest=price, latest_time=t)
        self.oracle[mk] = o
        self._version += 1
        return self._data(o, price, t, now)

    def _latest_recent(self, mk: int, now: float) -> Price:
        d = self._view_price(mk, now)
        if d.time + self.max_exec_age < now:
            raise Revert("OracleStalePrice")
        return d

    def _publication_at_or_after(self, mk: int, t: float) -> tuple[float, float, float] | None:
        for pub in self.pubs[mk]:
            if pub[0] >= t:
                return pub
        return None

    # ------------------------------------------------------------------ market accrual

    def _accrued(self, mk: int, price: float, pool: float, now: float) -> tuple[float, float]:
        """`engine.accrued`: (long index, short index) moved to `now` (USD per unit)."""
        li, si = float(self.long_index[mk]), float(self.short_index[mk])
        elapsed = now - self.last_accrual[mk]
        if elapsed == 0:
            return li, si
        lo, so = self.long_oi[mk], self.short_oi[mk]
        skew = lo - so
        rate = self.maxfund[mk] * min(abs(skew), self.Fs[mk]) / self.Fs[mk]
        if rate != 0:
            payer = rate * price * elapsed / DAY
            if skew > 0:
                li += payer
                si -= payer if so <= lo else payer * lo / so
            else:
                si += payer
                li -= payer if lo <= so else payer * so / lo
        if self.borrow[mk] != 0:
            if lo != 0:
                li += self._borrow_rate(mk, self.long_cost[mk], pool) * price * elapsed / DAY
            if so != 0:
                si += self._borrow_rate(mk, self.short_cost[mk], pool) * price * elapsed / DAY
        return li, si

    def _borrow_rate(self, mk: int, side_cost: float, pool: float) -> float:
        reserve = side_cost * self.mpr[mk]
        if reserve == 0:
            return 0.0
        if pool <= reserve:
            return float(self.borrow[mk])
        return float(self.borrow[mk] * reserve / pool)

    def _write_accrual(self, mk: int, price: float, now: float) -> None:
        li, si = self._accrued(mk, price, self.pool, now)
        self.long_index[mk], self.short_index[mk], self.last_accrual[mk] = li, si, now

    def _reserve(self) -> float:
        return float(np.sum((self.long_cost + self.short_cost) * self.mpr))

    # ------------------------------------------------------------------ every account at once

    def _figures(self, now: float) -> tuple[F, F, F, F, F]:
        """Every account's (value less the closing fee, maintenance, initial, notional, profit the
        cap withholds) at the markets' latest prices, accrued to `now` — the vectorised
        `engine.account_state` of one-market accounts (equity is the margin plus the first).
        Cached until a trade, a liquidation or the clock changes the markets."""
        key = (now, self._version)
        if self._cache_key == key:
            return self._cache
        prices, indices = self._latest_views(now)
        mk = self.market
        size, cost = self.size, self.cost
        p = np.array([d.price for d in prices])[mk]
        mmf = np.array([d.mm for d in prices])[mk]
        imf = np.array([d.im for d in prices])[mk]
        skew = (self.long_oi - self.short_oi)[mk]
        K = self.a_K
        close_fill = np.maximum(0.0, p * (2 * K + 2 * skew - size) / (2 * K))
        li = np.array([i[0] for i in indices])[mk]
        si = np.array([i[1] for i in indices])[mk]
        index = np.where(size > 0, li, si)
        absize = np.abs(size)
        raw = size * close_fill - cost - (absize * index - self.entry)
        cap = np.abs(cost) * self.a_mpr
        value = np.minimum(raw, cap)
        if self.pool < self.total_reserve:
            value = np.where(value > 0, value * self.pool / self.total_reserve, value)
        notional = absize * p
        scale = 1 + absize / self.a_Fs
        mm = notional * np.minimum(self.a_mmr * scale * mmf, 1.0) + self.a_minmargin
        im = notional * np.minimum(self.a_imr * scale * imf, 1.0) + self.a_minmargin
        out = (value - notional * self.a_taker, mm, im, notional, np.maximum(0.0, raw - cap))
        self._cache_key, self._cache = key, out
        return out

    def _account(self, i: int, d: Price, li: float, si: float) -> tuple[float, float, float]:
        """(equity, maintenance, notional) of account `i` at `d` (scalar `engine.account_state`)."""
        mk = int(self.market[i])
        size, cost, entry = float(self.size[i]), float(self.cost[i]), float(self.entry[i])
        K = float(self.K[mk])
        skew = float(self.long_oi[mk] - self.short_oi[mk])
        close_fill = max(0.0, d.price * (2 * K + 2 * skew - size) / (2 * K))
        index = li if size > 0 else si
        raw = size * close_fill - cost - (abs(size) * index - entry)
        value = min(raw, abs(cost) * float(self.mpr[mk]))
        if value > 0 and self.pool < self.total_reserve:
            value = value * self.pool / self.total_reserve
        notional = abs(size) * d.price
        mm = notional * min(float(self.mmr[mk]) * (1 + abs(size) / float(self.Fs[mk])) * d.mm, 1.0) + float(
            self.minmargin[mk]
        )
        return float(self.margin[i]) + value - notional * float(self.taker[mk]), mm, notional

    # ------------------------------------------------------------------ a trade

    def _trade(self, i: int, delta: float, d: Price, now: float, reduce_only: bool) -> tuple[float, float] | str:
        """`engine.execute_trade` for account `i`: (size closed or opened, profit withheld) or the
        refusal's name. Writes only when it succeeds."""
        mk = int(self.market[i])
        size = float(self.size[i])
        if reduce_only:
            if size == 0 or (size > 0) == (delta > 0):
                return "ReduceOnlyViolated"
            delta = -size if abs(delta) > abs(size) else delta
        new = size + delta
        increasing = size == 0 or (size > 0) == (delta > 0)
        if not increasing and new != 0 and (new > 0) != (size > 0):
            return "PositionFlip"
        if new != 0 and abs(new) < self.minsize[mk] * (1 - 1e-12):
            return "PositionTooSmall"
        is_long = size > 0 or (size == 0 and delta > 0)
        pool = self.pool
        li, si = self._accrued(mk, d.price, pool, now)
        index = li if is_long else si
        skew = float(self.long_oi[mk] - self.short_oi[mk])
        K = float(self.K[mk])
        fill = d.price * (2 * K + 2 * skew + delta) / (2 * K)
        fee = self._trade_fee(mk, skew, delta, max(fill, 0.0))
        cost, entry = float(self.cost[i]), float(self.entry[i])
        withheld = 0.0
        if increasing:
            if fill <= 0:
                return "FillPriceInvalid"
            new_cost, new_entry, realised = cost + delta * fill, entry + abs(delta) * index, 0.0
        else:
            fill = max(fill, 0.0)
            rc, re = cost * abs(delta) / abs(size), entry * abs(delta) / abs(size)
            raw = -delta * fill - rc - (abs(delta) * index - re)
            realised = min(raw, abs(rc) * self.mpr[mk])
            if realised > 0 and pool < self.total_reserve:
                realised = realised * pool / self.total_reserve
            withheld = max(0.0, raw - realised)
            new_cost, new_entry = cost - rc, entry - re
        if increasing and d.shocked:
            return "OracleShockUnconfirmed"
        lo, so, lc, sc = (
            float(self.long_oi[mk]),
            float(self.short_oi[mk]),
            float(self.long_cost[mk]),
            float(self.short_cost[mk]),
        )
        if is_long:
            lo, lc = lo - abs(size) + abs(new), lc - abs(cost) + abs(new_cost)
            side_oi = lo
        else:
            so, sc = so - abs(size) + abs(new), sc - abs(cost) + abs(new_cost)
            side_oi = so
        reserve = self.total_reserve + (lc + sc - self.long_cost[mk] - self.short_cost[mk]) * self.mpr[mk]
        if increasing:
            if side_oi * d.price > pool * self.oicap[mk]:
                return "OpenInterestCapExceeded"
            if reserve > pool:
                return "ReserveExceeded"
        margin_after = float(self.margin[i]) + realised - fee
        if new == 0 and margin_after < 0:
            return "AccountUnderwater"
        if increasing:
            # the increase's checks, the market after the trade
            close_fill = d.price * (2 * K + 2 * (lo - so) - new) / (2 * K)
            raw_v = new * close_fill - new_cost - (abs(new) * index - new_entry)
            value = min(raw_v, abs(new_cost) * self.mpr[mk])
            notional = abs(new) * d.price
            equity = margin_after + value - notional * self.taker[mk]
            scale = 1 + abs(new) / self.Fs[mk]
            initial = notional * min(self.imr[mk] * scale * d.im, 1.0) + self.minmargin[mk]
            if equity <= 0 or notional > equity * self.maxlev[mk]:
                return "LeverageTooHigh"
            if equity < initial:
                return "InsufficientMargin"
        # writes
        self.long_index[mk], self.short_index[mk], self.last_accrual[mk] = li, si, now
        self.long_oi[mk], self.short_oi[mk], self.long_cost[mk], self.short_cost[mk] = lo, so, lc, sc
        if is_long:
            self.long_entry[mk] += new_entry - entry
        else:
            self.short_entry[mk] += new_entry - entry
        self.total_reserve = reserve
        self.size[i], self.cost[i], self.entry[i] = new, new_cost, new_entry
        if increasing:
            self.last_inc[i] = now
        if new == 0:
            self.size[i] = self.cost[i] = self.entry[i] = 0.0
        self.last_trade[i] = now
        self._version += 1
        self.margin[i] = margin_after
        cut = fee * self.fee_share
        self.pool += -realised + fee - cut
        self._version += 1
        self.protocol_fees += cut
        return abs(delta), withheld

    def _trade_fee(self, mk: int, skew: float, delta: float, fill: float) -> float:
        size = abs(delta)
        reducing = min(size, abs(skew)) if (skew > 0 > delta) or (skew < 0 < delta) else 0.0
        return float(reducing * fill * self.maker[mk] + (size - reducing) * fill * self.taker[mk])

    # ------------------------------------------------------------------ a liquidation

    def _liquidate(self, i: int, now: float) -> tuple[bool, float, float, float, float] | None:
        """`engine.liquidate` + `vault.settle_liquidation` for account `i`: (full, closed size,
        reward, bad debt, profit withheld), None if not liquidated. Raises `Revert` when stale."""
        if self.size[i] == 0:
            return None
        mk = int(self.market[i])
        d = self._latest_recent(mk, now)
        if d.time <= self.last_trade[i]:
            return None
        pool = self.pool
        li, si = self._accrued(mk, d.price, pool, now)
        equity, mm, notional = self._account(i, d, li, si)
        if equity >= mm:
            return None
        share = self._close_share(equity, mm, float(self.minmargin[mk]), notional)
        size = float(self.size[i])
        close = abs(size) * share
        if close >= abs(size) or abs(size) - close < self.minsize[mk] * (1 - 1e-12):
            close = abs(size)
        delta = -close if size > 0 else close
        skew = float(self.long_oi[mk] - self.short_oi[mk])
        K = float(self.K[mk])
        fill = max(0.0, d.price * (2 * K + 2 * skew + delta) / (2 * K))
        fee = self._trade_fee(mk, skew, delta, fill)
        cost, entry = float(self.cost[i]), float(self.entry[i])
        index = li if size > 0 else si
        rc, re = cost * close / abs(size), entry * close / abs(size)
        raw = -delta * fill - rc - (close * index - re)
        realised = min(raw, abs(rc) * self.mpr[mk])
        if realised > 0 and pool < self.total_reserve:
            realised = realised * pool / self.total_reserve
        new, new_cost, new_entry = size + delta, cost - rc, entry - re
        full = new == 0 or close == abs(size)
        # the market and the position
        self.long_index[mk], self.short_index[mk], self.last_accrual[mk] = li, si, now
        before = (self.long_cost[mk] + self.short_cost[mk]) * self.mpr[mk]
        if size > 0:
            self.long_oi[mk] -= close
            self.long_cost[mk] -= abs(cost) - abs(new_cost)
            self.long_entry[mk] -= entry - new_entry
        else:
            self.short_oi[mk] -= close
            self.short_cost[mk] -= abs(cost) - abs(new_cost)
            self.short_entry[mk] -= entry - new_entry
        self.total_reserve += (self.long_cost[mk] + self.short_cost[mk]) * self.mpr[mk] - before
        if full:
            self.size[i] = self.cost[i] = self.entry[i] = 0.0
        else:
            self.size[i], self.cost[i], self.entry[i] = new, new_cost, new_entry
        self.last_trade[i] = now
        self._version += 1
        # the vault's waterfall
        closed_notional = close * d.price
        reward = min(max(closed_notional * self.reward_ratio, self.min_reward), self.max_reward)
        penalty = closed_notional * self.penalty
        m_ = float(self.margin[i]) + realised
        pool_ = self.pool - realised
        fee_paid = 0.0 if m_ <= 0 else min(fee, m_)
        m_ -= fee_paid
        cut = fee_paid * self.fee_share
        pool_ += fee_paid - cut
        self.protocol_fees += cut
        reward_paid = 0.0 if m_ <= 0 else min(reward, m_)
        m_ -= reward_paid
        penalty_paid = 0.0 if m_ <= 0 else min(penalty, m_)
        m_ -= penalty_paid
        ins = self.insurance + penalty_paid
        if reward_paid < self.min_reward:
            top = min(self.min_reward - reward_paid, ins)
            ins -= top
            reward_paid += top
        bad = 0.0
        if m_ < 0:
            bad = -m_
            by_ins = min(bad, ins)
            ins -= by_ins
            pool_ -= bad - by_ins
            self.bad += bad
            self.bad_ins += by_ins
            self.bad_pool += bad - by_ins
            m_ = 0.0
        self.margin[i], self.pool, self.insurance = m_, pool_, ins
        self.keeper_income += reward_paid
        self.rewards += reward_paid
        return full, delta, reward_paid, bad, max(0.0, raw - realised)

    def _close_share(self, equity: float, mm: float, min_margins: float, notional: float) -> float:
        """`liquidation.close_share`."""
        if equity <= 0:
            return 1.0
        gap = mm * self.target - equity
        variable = (mm - min_margins) * self.target
        pps, rps = notional * self.penalty, notional * self.reward_ratio
        if variable <= pps:
            return 1.0
        if variable > pps + rps:
            share = gap / (variable - pps - rps)
            reward = rps * share
            if reward < self.min_reward:
                share = (gap + self.min_reward) / (variable - pps)
            elif reward > self.max_reward:
                share = (gap + self.max_reward) / (variable - pps)
        else:
            share = (gap + self.max_reward) / (variable - pps)
        if share >= self.max_partial:
            return 1.0
        if notional * (1 - share) < self.min_leftover:
            return 1.0
        return share

    def _close_shares(self, equity: F, mm: F, min_margins: F, notional: F) -> F:
        """`_close_share` over arrays (for the keeper's profit gate)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            gap = mm * self.target - equity
            variable = (mm - min_margins) * self.target
            pps, rps = notional * self.penalty, notional * self.reward_ratio
            share = gap / (variable - pps - rps)
            reward = rps * share
            low = (gap + self.min_reward) / (variable - pps)
            high = (gap + self.max_reward) / (variable - pps)
            share = np.where(reward < self.min_reward, low, np.where(reward > self.max_reward, high, share))
            share = np.where(variable > pps + rps, share, high)
            full = (
                (equity <= 0)
                | (variable <= pps)
                | (share >= self.max_partial)
                | (notional * (1 - share) < self.min_leftover)
            )
        out: F = np.where(full, 1.0, share)
        return out

    # ------------------------------------------------------------------ the run

    def run(self) -> RunResult:
        started, cpu = time.perf_counter(), time.process_time()
        for k in range(self.cell.steps + 1):
            self._step(k)
        self._finish()
        self.r.seconds = time.perf_counter() - started
        self.r.cpu_seconds = time.process_time() - cpu
        return self.r

    def _prices(self, k: int) -> list[int]:
        base = self.cell.prices[k]
        return [max(1, round(int(base[mk]) * self.impact[mk])) for mk in range(self.nm)]

    def _step(self, k: int) -> None:
        cell, sc = self.cell, self.cell.scenario
        now = float(self.t0 + k * DT)
        cents = self._prices(k)
        if not sc.frozen[k]:
            for mk in range(self.nm):
                self.feed[mk] = [self.feed[mk][0] + 1, cents[mk] / 100, now]
                prev = self.pubs[mk][-1][0] if self.pubs[mk] else 0.0
                self.pubs[mk].append((now, cents[mk] / 100, prev))
        self._agents(k, now)
        up = cell.replay or not sc.keeper_down[k]
        found, closed = self._keeper(k, now, up)
        self.r.liquidatable_per_step.append(found)
        if cell.saturated(found, up):
            self.r.saturated_blocks += 1
        if cell.agents.impact_depth_usd > 0:
            depth = cell.agents.impact_depth_usd / sc.impact_multiplier
            for mk in range(self.nm):
                sold = closed[mk] * cents[mk] / 100
                self.impact[mk] *= max(0.5, 1 - sold / depth)
        self._measure(k, now, cents)

    def _latest_views(self, now: float) -> tuple[list[Price], list[tuple[float, float]]]:
        prices, indices = [], []
        for mk in range(self.nm):
            pub = self.pubs[mk][-1] if self.pubs[mk] else None
            d = self._view_price(mk, now, pub[1] if pub else None, pub[0] if pub else None)
            prices.append(d)
            indices.append(self._accrued(mk, d.price, self.pool, now))
        return prices, indices

    def _agents(self, k: int, now: float) -> None:
        pop, agents = self.cell.population, self.cell.agents
        if k == 0:
            self.margin += pop.margin / 1e6
        opening = self._opening.get(k)
        if opening is not None:
            self.mo_time[opening] = now
            self._escrow(opening)
        placing = self._opening.get(k - 2)
        for i in placing[self.size[placing] != 0] if placing is not None else ():
            for on, at, fired, trig in (
                (self.sl_on, self.sl_at, self.sl_fired, self.sl_trigger),
                (self.tp_on, self.tp_at, self.tp_fired, self.tp_trigger),
            ):
                if trig[i] > 0:
                    on[i], at[i], fired[i] = True, now, False
                    self._escrow(np.array([i]))
        live = self._topping[self.topups_left[self._topping] > 0] if self._topping.size else self._topping
        live = live[self.size[live] != 0]
        if live.size:
            vmf, mm_all, *_ = self._figures(now)
            equity, mm = self.margin[live] + vmf[live], mm_all[live]
            hit = live[equity < mm * agents.topup_health]
            self.margin[hit] += self.topup[hit]
            self.topups_left[hit] -= 1
            self.r.topups += int(hit.size)
        self._lp(k, now)

    def _escrow(self, idx: npt.NDArray[np.intp]) -> None:
        """`escrowExecutorFee`: from the margin, or the owner's wallet when the margin is short."""
        paid = self.margin[idx] >= self.fee
        self.margin[idx[paid]] -= self.fee
        self.order_escrow += self.fee * idx.size
        self.touched[idx] = True

    def _release(self, i: int, to_margin: bool) -> None:
        self.order_escrow -= self.fee
        if to_margin:
            self.margin[i] += self.fee
        else:
            self.keeper_income += self.fee
        self.touched[i] = True

    def _lp_value(self, now: float, prices: dict[int, float]) -> float:
        """`pool_value` over `pool_liability` (every market's two sides, capped, covered)."""
        liability = 0.0
        reserve = self.total_reserve
        for mk in range(self.nm):
            lo, so = self.long_oi[mk], self.short_oi[mk]
            if lo == 0 and so == 0:
                continue
            price = prices.get(mk, 0.0)
            if price == 0:
                liability += (self.long_cost[mk] + self.short_cost[mk]) * self.mpr[mk]
                continue
            li, si = self._accrued(mk, price, self.pool, now)
            cap_l, cap_s = self.long_cost[mk] * self.mpr[mk], self.short_cost[mk] * self.mpr[mk]
            longs = min(lo * price - self.long_cost[mk] - (lo * li - self.long_entry[mk]), cap_l)
            shorts = min(self.short_cost[mk] - so * price - (so * si - self.short_entry[mk]), cap_s)
            for v in (longs, shorts):
                liability += v * self.pool / reserve if v > 0 and self.pool < reserve else v
        return max(self.pool - liability, 0.0) if liability >= 0 else self.pool - liability

    def _latest_prices(self) -> dict[int, float]:
        return {mk: self.pubs[mk][-1][1] for mk in range(self.nm) if self.pubs[mk]}

    def _lp(self, k: int, now: float) -> None:
        sc, agents = self.cell.scenario, self.cell.agents
        if self.pending is not None:
            return
        share = 0.0
        if sc.lp_run[k] > 0:
            share = float(sc.lp_run[k])
        elif not self.lp_ran and agents.lp_run_drawdown > 0 and k > 0:
            price = self._lp_value(now, self._latest_prices()) / self.supply
            if price <= (1 - agents.lp_run_drawdown) * self.peak:
                share = agents.lp_run_share
                self.lp_ran = True
        if share > 0:
            shares = self.lp_shares * share
            if shares > 0:
                self.lp_shares -= shares
                self.pending = (shares, now, self.lp_fee)

    # ------------------------------------------------------------------ the keeper

    def _keeper(self, k: int, now: float, up: bool) -> tuple[int, list[float]]:
        cell = self.cell
        closed = [0.0] * self.nm
        held = np.flatnonzero(self.size != 0)
        if up:
            self.known |= self.touched
            self.touched[:] = False
        escrow = self.fee * (self.known * ((self.mo_time >= 0).astype(np.float64) + self.sl_on + self.tp_on))
        found_idx = np.zeros(0, dtype=np.intp)
        health = np.zeros(0)
        if held.size:
            vmf, mm_all, *_ = self._figures(now)
            latest_t = np.array([self.pubs[mk][-1][0] if self.pubs[mk] else 0.0 for mk in range(self.nm)])
            equity, mm = self.margin[held] + escrow[held] + vmf[held], mm_all[held]
            fresh = latest_t[self.market[held]] > self.last_trade[held]
            bad = (equity < mm) & fresh
            found_idx, health = held[bad], equity[bad] / mm[bad]
        live = found_idx.size
        if not up:
            return live, closed
        live_mask = np.zeros(self.n, dtype=bool)
        live_mask[found_idx] = True
        self.seen[(self.seen >= 0) & ~live_mask] = -1
        new = found_idx[self.seen[found_idx] < 0]
        self.seen[new] = k
        order = np.lexsort((found_idx, health))
        found_idx, health = found_idx[order], health[order]
        eth = self.pubs[0][-1][1] if self.pubs[0] else 0.0
        gas_price = float(cell.scenario.gas_gwei[k]) * 1e9
        if not cell.replay:
            keep = k - self.seen[found_idx] >= cell.agents.keeper_latency
            found_idx, health = found_idx[keep], health[keep]
            found_idx = found_idx[: cell.agents.capacity()]
            if cell.agents.profit_gate and found_idx.size:
                found_idx = self._gate(found_idx, gas_price, eth, now)
        if found_idx.size:
            self._liquidations(k, found_idx, now, gas_price, eth, closed)
        self._orders(now, gas_price, eth)
        self._lp_request(now, gas_price, eth)
        return live, closed

    def _gate(self, idx: npt.NDArray[np.intp], gas_price: float, eth: float, now: float) -> npt.NDArray[np.intp]:
        """`decide`'s profit gate: a reward not above the gas of its liquidation is skipped, unless
        the account is underwater."""
        escrow = self.fee * (self.known * ((self.mo_time >= 0).astype(np.float64) + self.sl_on + self.tp_on))
        vmf, mm_all, _, notional_all, _ = self._figures(now)
        equity, mm, notional = self.margin[idx] + escrow[idx] + vmf[idx], mm_all[idx], notional_all[idx]
        share = self._close_shares(equity, mm, self.a_minmargin[idx], notional)
        reward = np.clip(notional * share * self.reward_ratio, self.min_reward, self.max_reward)
        gas_usd = GAS_PER_ACCOUNT * gas_price / 1e18 * eth
        kept: npt.NDArray[np.intp] = idx[(reward > gas_usd) | (equity < 0)]
        return kept

    def _liquidations(
        self, k: int, idx: npt.NDArray[np.intp], now: float, gas_price: float, eth: float, closed: list[float]
    ) -> None:
        budget = KEEPER.liquidation_budget(self.cell.agents.block_gas_limit)
        per_batch = min(MAX_BATCH, items_per_batch(budget, GAS_BASE, GAS_PER_ACCOUNT))
        for start in range(0, idx.size, per_batch):
            batch = idx[start : start + per_batch]
            saved_oracle = list(self.oracle)
            saved = (
                self.margin[batch].copy(),
                self.mo_time[batch].copy(),
                self.sl_on[batch].copy(),
                self.tp_on[batch].copy(),
                self.touched[batch].copy(),
                self.order_escrow,
            )
            events = []
            try:
                self._update_prices(sorted({int(self.market[i]) for i in idx}), now)
                for mk in {int(self.market[i]) for i in batch}:
                    self._latest_recent(mk, now)  # a stale price reverts the batch (before any write)
                for i in map(int, batch):
                    if self.size[i] != 0:
                        self._cancel_all(i)
                    out = self._liquidate(i, now)
                    if out is not None:
                        events.append((i, out))
                if not events:
                    raise Revert("NothingToLiquidate")
            except Revert:
                # nothing was liquidated: only the oracle and the orders' cancellations to undo
                self.oracle = saved_oracle
                self._version += 1
                (
                    self.margin[batch],
                    self.mo_time[batch],
                    self.sl_on[batch],
                    self.tp_on[batch],
                    self.touched[batch],
                    self.order_escrow,
                ) = saved
                continue
            self.gas_cost += (GAS_BASE + GAS_PER_ACCOUNT * batch.size) * gas_price / 1e18 * eth
            for i, (full, delta, _, _, withheld) in events:
                self.r.liquidations += 1
                self.r.full_liquidations += int(full)
                closed[int(self.market[i])] += -delta
                if withheld > 1e-9:
                    self.r.profit_cap_hits += 1
                    self.r.unpaid_profit += withheld
            self._step_liquidations += len(events)

    def _cancel_all(self, i: int) -> None:
        """`onLiquidation`: every order of the account cancelled, fees back to the margin."""
        for flag in (self.sl_on, self.tp_on):
            if flag[i]:
                flag[i] = False
                self._release(i, True)
        if self.mo_time[i] >= 0:
            self.mo_time[i] = -1
            self._release(i, True)

    def _orders(self, now: float, gas_price: float, eth: float) -> None:
        """`Keeper._settle_orders` and `OrderBook.settleOrders`: due market and triggered orders at
        their first price after the delay, expired ones, stop-losses and take-profits to trigger."""
        p = self.cell.params
        known = self.known
        # (commit or trigger time, account, kind: 0 market, 1 stop-loss, 2 take-profit)
        pending = [(float(self.mo_time[i]), int(i), 0) for i in np.flatnonzero(known & (self.mo_time >= 0))]
        for kind, on, at, fired in (
            (1, self.sl_on, self.sl_at, self.sl_fired),
            (2, self.tp_on, self.tp_at, self.tp_fired),
        ):
            pending += [(float(at[i]), int(i), kind) for i in np.flatnonzero(known & on & fired)]
        due, expired = [], []
        for t, i, kind in pending:
            if now > t + p.order_delay + p.order_window:
                expired.append((t, i, kind))
            elif now >= t + p.order_delay:
                pub = self._publication_at_or_after(int(self.market[i]), t + p.order_delay)
                if pub is not None and pub[0] <= now:
                    due.append((t, i, kind))
        to_trigger = self._triggered(now)
        if not (due or expired or to_trigger):
            return
        work = (  # as `Keeper._settle_orders`: triggers first
            [(at, i, kind, 2) for at, i, kind in to_trigger]
            + [(t, i, kind, 0) for t, i, kind in sorted(due)]
            + [(t, i, kind, 1) for t, i, kind in sorted(expired)]
        )
        saved_oracle = list(self.oracle)  # with nothing done, only the oracle changed: a revert restores it
        done, fills = 0, []
        proven: dict[tuple[int, float], Price] = {}
        try:
            self._update_prices(list(range(self.nm)), now)
            for _, i, kind, what in work:
                i = int(i)
                on, at, fired = (
                    (self.sl_on, self.sl_at, self.sl_fired) if kind == 1 else (self.tp_on, self.tp_at, self.tp_fired)
                )
                if what < 2 and (self.mo_time[i] < 0 if kind == 0 else not (on[i] and fired[i])):
                    continue  # gone since the keeper looked
                if what == 1:
                    if kind == 0:
                        self.mo_time[i] = -1
                    else:
                        on[i] = False
                    self.order_escrow -= self.fee
                    self.insurance += self.fee
                    self.touched[i] = True
                    done += 1
                    continue
                if what == 0:
                    mk = int(self.market[i])
                    lo = (self.mo_time[i] if kind == 0 else at[i]) + p.order_delay
                    d = proven.get((mk, lo))
                    if d is None:
                        pub = self._publication_at_or_after(mk, lo)
                        assert pub is not None
                        saved_o = self.oracle[mk]
                        try:
                            d = self._settlement_price(mk, pub, lo, min(lo + p.order_window, now), now)
                        except Revert:
                            self.oracle[mk] = saved_o
                            self._version += 1
                            continue
                        proven[(mk, lo)] = d
                    if kind == 0:
                        out = self._trade(i, float(self.mo_size[i]), d, now, False)
                        self.mo_time[i] = -1
                    else:
                        out = self._trade(i, -float(self.size[i]), d, now, True)
                        if (
                            isinstance(out, str)
                            and out in ("AcceptablePriceExceeded", "FillPriceInvalid")
                            and self.margin[i] >= self.fee
                        ):
                            self._release(i, False)  # the attempt's fee to the settler
                            self._escrow(np.array([i]))  # a new one from the margin: it waits for its trigger again
                            fired[i], at[i] = False, now
                            done += 1
                            continue
                        on[i] = False
                else:
                    if not on[i] or fired[i]:
                        continue
                    if self.size[i] == 0:
                        on[i] = False
                        self._release(i, True)
                        done += 1
                        continue
                    if not self._triggers(i, kind, now):
                        continue
                    fired[i], at[i] = True, now  # from now on a market order committed now
                    self.touched[i] = True
                    done += 1
                    continue
                done += 1
                self._release(i, False)  # filled, or refused for good: the fee to the settler
                if isinstance(out, str):
                    continue
                fills.append((i, kind, out))
                if self.size[i] == 0:
                    for flag in (self.sl_on, self.tp_on):
                        if flag[i]:
                            flag[i] = False
                            self._release(i, True)
            if done == 0:
                raise Revert("NothingToSettle")
        except Revert:
            self.oracle = saved_oracle
            self._version += 1
            return
        per_batch = items_per_batch(KEEPER.order_budget(self.cell.agents.block_gas_limit), GAS_BASE, GAS_PER_ORDER)
        batches = max(1, -(-len(work) // per_batch))
        self.gas_cost += (GAS_BASE * batches + GAS_PER_ORDER * len(work)) * gas_price / 1e18 * eth
        for _, i, kind, _ in work:  # `_send_orders` forgets the batch's orders (events bring them back)
            self.known[int(i)] = False
        self.r.orders_filled += len(fills)
        for _, kind, (_, withheld) in fills:
            if kind:
                self.r.stops_filled += 1
            if withheld > 1e-9:
                self.r.profit_cap_hits += 1
                self.r.unpaid_profit += withheld

    def _triggered(self, now: float) -> list[tuple[float, int, int]]:
        """`order_work`'s conditional orders: at the price service's latest price, published at
        least the delay after the order and the position's last increase (orphans included)."""
        delay = self.cell.params.order_delay
        has = np.array([bool(self.pubs[mk]) for mk in range(self.nm)])
        pub_t = np.array([self.pubs[mk][-1][0] if self.pubs[mk] else 0.0 for mk in range(self.nm)])
        pub_p = np.array([self.pubs[mk][-1][1] if self.pubs[mk] else 0.0 for mk in range(self.nm)])
        ats, ids, kinds = [], [], []
        for kind, flag, fired, at, trig in (
            (1, self.sl_on, self.sl_fired, self.sl_at, self.sl_trigger),
            (2, self.tp_on, self.tp_fired, self.tp_at, self.tp_trigger),
        ):
            idx = np.flatnonzero(flag & ~fired & self.known)
            if not idx.size:
                continue
            mk = self.market[idx]
            idx = idx[has[mk]]
            mk = self.market[idx]
            size = self.size[idx]
            price = pub_p[mk]
            long = size > 0
            fires = np.where(long == (kind == 1), price <= trig[idx], price >= trig[idx])
            eligible = pub_t[mk] >= np.maximum(at[idx], self.last_inc[idx]) + delay
            sel = (size == 0) | (eligible & fires)
            ats.append(at[idx][sel])
            ids.append(idx[sel])
            kinds.append(np.full(int(sel.sum()), kind))
        if not ids:
            return []
        a, i, k = np.concatenate(ats), np.concatenate(ids), np.concatenate(kinds)
        order = np.lexsort((k, i, a))
        return [(float(a[j]), int(i[j]), int(k[j])) for j in order]

    @staticmethod
    def _fires(kind: int, long: bool, price: float, trigger: float) -> bool:
        below, above = price <= trigger, price >= trigger
        return below if long == (kind == 1) else above

    def _triggers(self, i: int, kind: int, now: float) -> bool:
        mk = int(self.market[i])
        try:
            d = self._latest_recent(mk, now)
        except Revert:
            return False
        at = self.sl_at[i] if kind == 1 else self.tp_at[i]
        if d.time < max(at, self.last_inc[i]) + self.cell.params.order_delay:
            return False
        trig = self.sl_trigger[i] if kind == 1 else self.tp_trigger[i]
        return self._fires(kind, self.size[i] > 0, d.price, float(trig))

    def _lp_request(self, now: float, gas_price: float, eth: float) -> None:
        p = self.cell.params
        if self.pending is None:
            return
        shares, t, fee = self.pending
        if now > t + p.lp_delay + p.lp_window + p.lp_grace:
            self.pending = None
            self.lp_shares += shares
            self.insurance += fee
            return
        if now < t + p.lp_delay + p.lp_grace:
            return
        open_ = [mk for mk in range(self.nm) if self.long_oi[mk] or self.short_oi[mk]]
        pubs = {}
        for mk in open_:
            pub = self._publication_at_or_after(mk, t + p.lp_delay)
            if pub is None or pub[0] + p.lp_grace > now:
                return
            pubs[mk] = pub
        saved_oracle = list(self.oracle)
        try:
            prices = {}
            for mk, pub in pubs.items():
                lo = t + p.lp_delay
                d = self._settlement_price(mk, pub, lo, min(lo + p.lp_window, now), now)
                prices[mk] = d.price
        except Revert:
            self.oracle = saved_oracle
            self._version += 1
            return
        newest = {mk: self.oracle[mk].latest for mk in prices}  # stored by the updates if newer
        value = pool_math.request_value(self._lp_value(now, prices), self._lp_value(now, newest), False)
        assets = shares * (value * 1e6 + 1) / (self.supply + 1e6) / 1e6  # `pool.to_assets_down`
        self.pending = None
        self.keeper_income += fee
        self.gas_cost += GAS_PER_LP * gas_price / 1e18 * eth
        free = max(0.0, self.pool - self.total_reserve)
        caps = all(
            max(self.long_oi[mk], self.short_oi[mk]) * prices.get(mk, 0.0) <= (self.pool - assets) * self.oicap[mk]
            for mk in open_
        )
        if assets > free or not caps:
            self.lp_shares += shares
            return
        self.supply -= shares
        self.pool -= assets
        self._version += 1
        self.r.lp_redeemed += assets

    # ------------------------------------------------------------------ figures

    def _measure(self, k: int, now: float, cents: list[int]) -> None:
        value = self._lp_value(now, self._latest_prices())
        price = value / self.supply * 1e12 if self.supply else 0.0
        self.peak = max(self.peak, value / self.supply if self.supply else 0.0)
        self.r.share_price.append(price)
        self.r.insurance.append(self.insurance)
        self.r.liquidations_per_step.append(self._step_liquidations)
        self._step_liquidations = 0
        self.r.price.append(cents[0] / 100)

    def _finish(self) -> None:
        r = self.r
        r.bad_debt, r.bad_debt_by_insurance, r.bad_debt_by_pool = self.bad, self.bad_ins, self.bad_pool
        r.keeper_rewards = self.rewards
        r.keeper_fees = self.keeper_income - self.rewards
        r.keeper_gas = self.gas_cost
        r.cascade_depth = cascade_depth(r.liquidations_per_step)
        r.insurance_dry = bool(self.bad_pool > 1e-6)
        r.lp_drawdown = max_drawdown(r.share_price)
        r.pool_end, r.insurance_end, r.margin_end = float(self.pool), float(self.insurance), float(self.margin.sum())
        r.bad_debt, r.bad_debt_by_insurance, r.bad_debt_by_pool = (
            float(self.bad),
            float(self.bad_ins),
            float(self.bad_pool),
        )
        r.keeper_rewards, r.keeper_fees = float(self.rewards), float(self.keeper_income - self.rewards)
        now = float(self.t0 + self.cell.steps * DT)
        held = np.flatnonzero(self.size != 0)
        if held.size:
            self._version += 1
            withheld = self._figures(now)[4][held]
            hits = withheld > 1e-9
            r.profit_cap_hits += int(hits.sum())
            r.unpaid_profit += float(withheld[hits].sum())


def run_vector(cell: Cell, t0: int = 1_900_000_000) -> RunResult:
    return VectorEngine(cell, t0).run()
