"""The contracts' math, mirrored exactly: Python ints, the same rounding, the same order.

`contracts/libraries/PerpMath.sol` and the engine's accounting are the reference; every function
here names the Solidity function it mirrors. Rounding favours the protocol: what a trader is
credited rounds toward negative infinity, what a trader owes rounds toward positive infinity.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from math import isqrt
from typing import Any

WAD = 10**18
SECONDS_PER_DAY = 86_400


# --------------------------------------------------------------------------- FixedPointMath


def mul_div_down(x: int, y: int, d: int) -> int:
    """floor(x*y/d) for x, y >= 0."""
    return x * y // d


def mul_div_up(x: int, y: int, d: int) -> int:
    """ceil(x*y/d) for x, y >= 0."""
    return -(-(x * y) // d)


def mul_div_floor(x: int, y: int, d: int) -> int:
    """floor(x*y/d) for signed x (toward negative infinity)."""
    return x * y // d


def mul_div_ceil(x: int, y: int, d: int) -> int:
    """ceil(x*y/d) for signed x (toward positive infinity)."""
    return -(-(x * y) // d)


def div_up(x: int, d: int) -> int:
    return -(-x // d)


# --------------------------------------------------------------------------- PerpMath


def notional(size: int, price: int) -> int:
    return mul_div_up(abs(size), price, WAD)


def mul_wad_floor(x: int, y: int) -> int:
    """floor(x*y/1e18) for signed x and y."""
    return x * y // WAD


def mul_wad_ceil(x: int, y: int) -> int:
    """ceil(x*y/1e18) for signed x and y."""
    return -(-(x * y) // WAD)


def mark(is_long: bool, price: int, long_index: int, short_index: int) -> int:
    """`PerpMath.markWad`: price minus the side's cumulative funding for longs, plus for shorts."""
    return price - long_index if is_long else price + short_index


def value(size: int, cost: int, mark_wad: int) -> int:
    """`PerpMath.valueWad`: unrealised PnL minus pending funding."""
    return mul_wad_floor(size, mark_wad) - cost


def added_cost(size_delta: int, mark_wad: int) -> int:
    return mul_wad_ceil(size_delta, mark_wad)


def funding_owed(size: int, index: int, entry_index: int) -> int:
    """Funding a position of `size` owes between two values of its side's index, rounded up
    (what the contracts fold into value; used to reason about funding, not by the engine)."""
    return mul_div_ceil(index - entry_index, abs(size), WAD)


def fee(notional_wad: int, fee_ratio: int) -> int:
    return mul_div_up(notional_wad, fee_ratio, WAD)


def scaled_ratio(base_ratio: int, size: int, skew_scale: int, factor: int = WAD) -> int:
    """`PerpMath.scaledRatioWad`: base * (1 + |size|/skewScale) * factor, capped at 100%."""
    ratio = base_ratio + mul_div_up(base_ratio, abs(size), skew_scale)
    ratio = mul_div_up(ratio, factor, WAD)
    return min(ratio, WAD)


def margin_requirement(
    size: int, price: int, base_ratio: int, skew_scale: int, min_margin: int, factor: int = WAD
) -> int:
    """notional * scaled ratio + minimum, as the engine's `_figures` computes it."""
    return mul_div_up(notional(size, price), scaled_ratio(base_ratio, size, skew_scale, factor), WAD) + min_margin


def removed_cost(cost: int, close_size: int, size: int) -> int:
    return mul_div_ceil(cost, abs(close_size), abs(size))


def funding_rate_per_day(skew: int, skew_scale: int, max_rate_per_day: int) -> int:
    magnitude = min(abs(skew), skew_scale)
    rate = mul_div_down(max_rate_per_day, magnitude, skew_scale)
    return rate if skew >= 0 else -rate


def payer_index_delta(rate_per_day: int, price: int, elapsed: int) -> int:
    return mul_div_up(price * rate_per_day, elapsed, WAD * SECONDS_PER_DAY)


def receiver_index_delta(payer_delta: int, payer_oi: int, receiver_oi: int) -> int:
    return mul_div_down(payer_delta, payer_oi, receiver_oi)


# --------------------------------------------------------------------------- engine state


@dataclass(frozen=True)
class MarketParams:
    max_leverage: int
    min_margin: int
    trading_fee: int
    initial_margin_ratio: int
    maintenance_margin_ratio: int
    max_funding_rate_per_day: int
    skew_scale: int
    min_position_size: int
    reserve_ratio: int
    oi_cap_ratio: int

    @classmethod
    def from_chain(cls, raw: object) -> MarketParams:
        """From the engine's `marketParams` struct (ape struct or tuple in struct order, feed first)."""
        values = list(raw)  # type: ignore[call-overload]
        return cls(*[int(v) for v in values[1:]])


@dataclass(frozen=True)
class MarketState:
    long_oi: int = 0
    short_oi: int = 0
    long_index: int = 0
    short_index: int = 0
    net_cost: int = 0
    last_funding_time: int = 0
    mmr_ramp_start: int = 0
    mmr_ramp_from: int = 0

    @classmethod
    def from_chain(cls, raw: object) -> MarketState:
        return cls(*[int(v) for v in raw])  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Position:
    size: int = 0
    cost: int = 0

    @classmethod
    def from_chain(cls, raw: object) -> Position:
        return cls(*[int(v) for v in raw])  # type: ignore[attr-defined]


def accrued(state: MarketState, params: MarketParams, price: int, now: int) -> MarketState:
    """`PerpEngine._accrued`: funding indices moved to `now`."""
    elapsed = now - state.last_funding_time
    if elapsed == 0:
        return state
    moved = replace(state, last_funding_time=now)
    rate = funding_rate_per_day(state.long_oi - state.short_oi, params.skew_scale, params.max_funding_rate_per_day)
    if rate == 0:
        return moved
    payer = payer_index_delta(abs(rate), price, elapsed)
    if rate > 0:
        short_index = moved.short_index
        if state.short_oi > 0:
            short_index -= receiver_index_delta(payer, state.long_oi, state.short_oi)
        return replace(moved, long_index=moved.long_index + payer, short_index=short_index)
    long_index = moved.long_index
    if state.long_oi > 0:
        long_index -= receiver_index_delta(payer, state.short_oi, state.long_oi)
    return replace(moved, short_index=moved.short_index + payer, long_index=long_index)


@dataclass(frozen=True)
class MarketView:
    """One market as an engine entry point sees it (the engine's `Ctx`)."""

    params: MarketParams
    state: MarketState  # accrued to now
    price: int
    im_factor: int = WAD
    mm_factor: int = WAD
    mmr: int | None = None  # effective base maintenance ratio; None = params' ratio

    @property
    def maintenance_ratio(self) -> int:
        return self.params.maintenance_margin_ratio if self.mmr is None else self.mmr


@dataclass(frozen=True)
class PositionFigures:
    value: int  # unrealised PnL - pending funding
    close_fee: int
    notional: int
    initial: int
    maintenance: int


def position_figures(pos: Position, view: MarketView) -> PositionFigures:
    """`PerpEngine._figures`."""
    params, state, price = view.params, view.state, view.price
    n = notional(pos.size, price)
    im_ratio = scaled_ratio(params.initial_margin_ratio, pos.size, params.skew_scale, view.im_factor)
    mm_ratio = scaled_ratio(view.maintenance_ratio, pos.size, params.skew_scale, view.mm_factor)
    return PositionFigures(
        value=value(pos.size, pos.cost, mark(pos.size > 0, price, state.long_index, state.short_index)),
        close_fee=fee(n, params.trading_fee),
        notional=n,
        initial=mul_div_up(n, im_ratio, WAD) + params.min_margin,
        maintenance=mul_div_up(n, mm_ratio, WAD) + params.min_margin,
    )


@dataclass(frozen=True)
class AccountState:
    margin: int
    equity: int
    initial_margin: int
    maintenance_margin: int
    notional: int
    min_margin: int
    position_count: int

    @property
    def liquidatable(self) -> bool:
        return self.equity < self.maintenance_margin


def account_state(margin_token: int, token_scale: int, positions: Iterable[tuple[Position, MarketView]]) -> AccountState:
    """`PerpEngine._sum`: `positions` holds (position, market view)."""
    margin = margin_token * token_scale
    equity = margin
    im = mm = total_notional = min_margin = count = 0
    for pos, view in positions:
        f = position_figures(pos, view)
        equity += f.value - f.close_fee
        im += f.initial
        mm += f.maintenance
        min_margin += view.params.min_margin
        total_notional += f.notional
        count += 1
    return AccountState(margin, equity, im, mm, total_notional, min_margin, count)


def effective_mmr(target: int, ramp_from: int, ramp_start: int, now: int, duration: int = 86_400) -> int:
    """`PerpEngine._effectiveMmr`: a raised ratio phases in linearly; a lowered one applies at once."""
    if ramp_start == 0 or target <= ramp_from:
        return target
    elapsed = now - ramp_start
    if elapsed >= duration:
        return target
    return ramp_from + mul_div_up(target - ramp_from, elapsed, duration)


# --------------------------------------------------------------------------- VolatilityMath


def return_wad(prev_price: int, next_price: int) -> int:
    return mul_div_up(abs(next_price - prev_price), WAD, prev_price)


def next_variance(variance: int, ret: int, lam: int) -> int:
    squared = mul_div_up(ret, ret, WAD)
    return div_up(lam * variance + (WAD - lam) * squared, WAD)


def target_factor(variance: int, ref_volatility: int, max_factor: int) -> int:
    volatility = isqrt(variance * WAD)
    factor = mul_div_up(volatility, WAD, ref_volatility)
    if factor < WAD:
        return WAD
    return min(factor, max_factor)


def ramped_factor(target: int, checkpoint: int, checkpoint_time: int, rise_per_day: int, now: int) -> int:
    if target <= checkpoint:
        return target
    risen = checkpoint + mul_div_up(rise_per_day, now - checkpoint_time, SECONDS_PER_DAY)
    return min(risen, target)


# --------------------------------------------------------------------------- OracleAdapter


@dataclass(frozen=True)
class FeedParams:
    max_age: int
    max_deviation: int
    ewma_lambda: int
    ref_volatility: int
    max_vol_factor: int
    factor_rise_per_day: int

    @classmethod
    def from_chain(cls, raw: object) -> FeedParams:
        return cls(*[int(v) for v in raw])  # type: ignore[attr-defined]


@dataclass(frozen=True)
class FeedState:
    last_price: int = 0
    last_round_id: int = 0
    shocked: bool = False
    variance: int = 0
    mm_checkpoint: int = 0
    checkpoint_time: int = 0

    @classmethod
    def from_chain(cls, state: Any, vol: Any) -> FeedState:
        """From the adapter's `feedState` pair: (price, round, shocked), (variance, checkpoint, time)."""
        price, round_id, shocked = state
        variance, checkpoint, when = vol
        return cls(int(price), int(round_id), bool(shocked), int(variance), int(checkpoint), int(when))


@dataclass(frozen=True)
class PriceData:
    price: int
    im_factor: int
    mm_factor: int
    shocked: bool


def mm_factor(p: FeedParams, s: FeedState, now: int) -> int:
    target = target_factor(s.variance, p.ref_volatility, p.max_vol_factor)
    return ramped_factor(target, s.mm_checkpoint, s.checkpoint_time, p.factor_rise_per_day, now)


def record_round(p: FeedParams, s: FeedState, round_id: int, price: int, now: int) -> FeedState:
    """`OracleAdapter._recorded`: the feed's state after recording a new round at `now`."""
    if round_id == s.last_round_id:
        return s
    if s.last_round_id == 0:
        return FeedState(price, round_id, s.shocked, s.variance, WAD, now)
    checkpoint = mm_factor(p, s, now)
    r = return_wad(s.last_price, price)
    variance = min(next_variance(s.variance, r, p.ewma_lambda), 2**64 - 1)  # uint64 saturates
    return FeedState(price, round_id, r > p.max_deviation, variance, checkpoint, now)


def price_data(p: FeedParams, s: FeedState, round_id: int, price: int, now: int) -> PriceData:
    """`OracleAdapter.read`: what `update` would record at `now` for the latest round."""
    s = record_round(p, s, round_id, price, now)
    return PriceData(
        s.last_price, target_factor(s.variance, p.ref_volatility, p.max_vol_factor), mm_factor(p, s, now), s.shocked
    )


# --------------------------------------------------------------------------- LiquidationMath


@dataclass(frozen=True)
class LiquidationParams:
    target_health: int
    max_partial_share: int
    penalty_ratio: int
    reward_ratio: int
    min_reward: int
    max_reward: int
    min_leftover_notional: int

    @classmethod
    def from_chain(cls, raw: object) -> LiquidationParams:
        return cls(*[int(v) for v in raw])  # type: ignore[attr-defined]


def close_share(equity: int, maintenance: int, min_margins: int, total_notional: int, p: LiquidationParams) -> int:
    """`LiquidationMath.closeShareWad`."""
    if equity <= 0:
        return WAD
    gap = mul_div_up(maintenance, p.target_health, WAD) - equity
    variable = mul_div_down(maintenance - min_margins, p.target_health, WAD)
    penalty_per_share = mul_div_up(total_notional, p.penalty_ratio, WAD)
    reward_per_share = mul_div_up(total_notional, p.reward_ratio, WAD)
    if variable <= penalty_per_share:
        return WAD
    if variable > penalty_per_share + reward_per_share:
        share = mul_div_up(gap, WAD, variable - penalty_per_share - reward_per_share)
        reward = mul_div_up(reward_per_share, share, WAD)
        if reward < p.min_reward:
            share = mul_div_up(gap + p.min_reward, WAD, variable - penalty_per_share)
        elif reward > p.max_reward:
            share = mul_div_up(gap + p.max_reward, WAD, variable - penalty_per_share)
    else:
        share = mul_div_up(gap + p.max_reward, WAD, variable - penalty_per_share)
    if share >= p.max_partial_share:
        return WAD
    if mul_div_down(total_notional, WAD - share, WAD) < p.min_leftover_notional:
        return WAD
    return share


def keeper_reward(closed_notional: int, p: LiquidationParams) -> int:
    """`LiquidationMath.rewardWad`."""
    reward = mul_div_down(closed_notional, p.reward_ratio, WAD)
    return min(max(reward, p.min_reward), p.max_reward)


def liquidation_penalty(closed_notional: int, p: LiquidationParams) -> int:
    """`LiquidationMath.penaltyWad`."""
    return mul_div_up(closed_notional, p.penalty_ratio, WAD)


def liquidation_close_size(size: int, share: int, min_size: int) -> int:
    """`PerpEngine._liquidationCloseSize`."""
    close = mul_div_up(abs(size), share, WAD)
    if close >= abs(size) or abs(size) - close < min_size:
        close = abs(size)
    return close if size > 0 else -close


def to_token_floor(value_wad: int, token_scale: int) -> int:
    """`PerpEngine._toTokenFloor`: trader value to token units, toward negative infinity."""
    return value_wad // token_scale


@dataclass(frozen=True)
class TradeResult:
    position: Position
    state: MarketState
    realised: int  # PnL net of funding realised by a reduction
    fee: int
    pnl_token: int
    fee_token: int
    increasing: bool


def trade(
    pos: Position, state: MarketState, params: MarketParams, size_delta: int, price: int, token_scale: int
) -> TradeResult:
    """`PerpEngine._tradeMath` + `_applyToMarket` on an already-accrued market state (no checks)."""
    size = pos.size
    new_size = size + size_delta
    increasing = size == 0 or (size > 0) == (size_delta > 0)
    is_long = size > 0 or (size == 0 and size_delta > 0)
    mark_wad = mark(is_long, price, state.long_index, state.short_index)
    realised = 0
    if increasing:
        new_cost = pos.cost + added_cost(size_delta, mark_wad)
    else:
        removed = removed_cost(pos.cost, -size_delta, size)
        realised = value(-size_delta, removed, mark_wad)
        new_cost = pos.cost - removed
    trade_fee = fee(notional(size_delta, price), params.trading_fee)
    side_oi = (state.long_oi if is_long else state.short_oi) - abs(size) + abs(new_size)
    new_state = replace(
        state,
        long_oi=side_oi if is_long else state.long_oi,
        short_oi=state.short_oi if is_long else side_oi,
        net_cost=state.net_cost + new_cost - pos.cost,
    )
    new_pos = Position(new_size, new_cost) if new_size != 0 else Position()
    return TradeResult(
        position=new_pos,
        state=new_state,
        realised=realised,
        fee=trade_fee,
        pnl_token=to_token_floor(realised, token_scale),
        fee_token=div_up(trade_fee, token_scale),
        increasing=increasing,
    )


@dataclass(frozen=True)
class Settlement:
    margin: int
    pool: int
    insurance: int
    protocol_fees: int
    fee_collected: int
    unpaid_profit: int
    bad_debt: int
    bad_debt_by_insurance: int
    reward_paid: int
    penalty_paid: int


def settle(
    margin: int,
    pool: int,
    insurance: int,
    protocol_fees: int,
    pnl_token: int,
    fee_token: int,
    protocol_fee_share: int,
    reward_token: int = 0,
    penalty_token: int = 0,
) -> Settlement:
    """`LeverVault._settle` on the ledgers (token units): PnL, fee, keeper reward, penalty."""
    unpaid = bad_debt = by_insurance = 0
    if pnl_token > 0:
        pay = min(pnl_token, pool)
        unpaid = pnl_token - pay
        pool -= pay
        margin += pay
    elif pnl_token < 0:
        loss = -pnl_token
        paid = min(loss, margin)
        margin -= paid
        pool += paid
        if loss > paid:
            bad_debt = loss - paid
            by_insurance = min(bad_debt, insurance)
            insurance -= by_insurance
            pool += by_insurance
    collected = min(fee_token, margin)
    margin -= collected
    cut = mul_div_down(collected, protocol_fee_share, WAD)
    protocol_fees += cut
    pool += collected - cut
    reward = min(reward_token, margin)
    margin -= reward
    penalty = min(penalty_token, margin)
    margin -= penalty
    insurance += penalty
    return Settlement(margin, pool, insurance, protocol_fees, collected, unpaid, bad_debt, by_insurance, reward, penalty)


@dataclass(frozen=True)
class LiquidationPrediction:
    liquidated: bool
    full: bool
    share: int
    close_sizes: tuple[int, ...]  # per leg, signed like the position
    closed_notional: int
    reward_token: int  # paid to the keeper
    penalty_token: int  # paid to the insurance fund
    bad_debt: int
    settlement: Settlement | None
    before: AccountState


def predict_liquidation(
    margin_token: int,
    token_scale: int,
    legs: list[tuple[Position, MarketView]],
    params: LiquidationParams,
    pool: int,
    insurance: int,
    protocol_fees: int,
    protocol_fee_share: int,
) -> LiquidationPrediction:
    """`PerpEngine.liquidate` + `LeverVault.settleLiquidation`, with every market view already
    accrued to the liquidation's timestamp."""
    before = account_state(margin_token, token_scale, legs)
    if not legs or not before.liquidatable:
        return LiquidationPrediction(False, False, 0, (), 0, 0, 0, 0, None, before)
    share = close_share(before.equity, before.maintenance_margin, before.min_margin, before.notional, params)
    pnl_total = fee_total = closed = 0
    sizes = []
    for pos, view in legs:
        size = liquidation_close_size(pos.size, share, view.params.min_position_size)
        result = trade(pos, view.state, view.params, -size, view.price, token_scale)
        pnl_total += result.realised
        fee_total += result.fee
        closed += notional(size, view.price)
        sizes.append(size)
    reward_request = keeper_reward(closed, params) // token_scale
    penalty_request = div_up(liquidation_penalty(closed, params), token_scale)
    settlement = settle(
        margin_token,
        pool,
        insurance,
        protocol_fees,
        to_token_floor(pnl_total, token_scale),
        div_up(fee_total, token_scale),
        protocol_fee_share,
        reward_request,
        penalty_request,
    )
    return LiquidationPrediction(
        True,
        share == WAD,
        share,
        tuple(sizes),
        closed,
        settlement.reward_paid,
        settlement.penalty_paid,
        settlement.bad_debt,
        settlement,
        before,
    )
