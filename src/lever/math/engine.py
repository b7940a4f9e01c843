"""`PerpEngine`'s arithmetic: market state and accrual, a position's figures, a trade, the pool's
liability, a liquidation's closing sizes, and the liquidation price (for keepers)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from lever.math import constants as k
from lever.math import perp
from lever.math.constants import MAX_POSITIONS_PER_ACCOUNT, PARAM_RAMP_DURATION, WAD
from lever.math.fixed import mul_div_down, mul_div_up, to_token_floor, to_token_up
from lever.math.liquidation import (
    LiquidationParams,
    close_share,
    keeper_reward,
    liquidation_penalty,
)
from lever.math.oracle import PriceData
from lever.math.refusal import Refused


@dataclass(frozen=True)
class MarketParams:
    """`IPerpEngine.MarketParams`, in struct order."""

    max_leverage: int
    min_margin: int
    taker_fee: int
    maker_fee: int
    initial_margin_ratio: int
    maintenance_margin_ratio: int
    max_funding_rate_per_day: int
    borrow_rate_per_day: int
    max_profit_ratio: int
    oi_cap_ratio: int
    skew_scale: int
    min_position_size: int
    funding_scale: int

    @classmethod
    def from_chain(cls, raw: object) -> MarketParams:
        return cls(*[int(v) for v in raw])  # type: ignore[attr-defined]


@dataclass(frozen=True)
class MarketState:
    """`IPerpEngine.MarketState`, in struct order."""

    long_oi: int = 0
    short_oi: int = 0
    last_accrual_time: int = 0
    ramp_start: int = 0
    long_cost: int = 0
    short_cost: int = 0
    long_index: int = 0
    short_index: int = 0
    long_entry_charge: int = 0
    short_entry_charge: int = 0

    @classmethod
    def from_chain(cls, raw: object) -> MarketState:
        return cls(*[int(v) for v in raw])  # type: ignore[attr-defined]

    @property
    def skew(self) -> int:
        return self.long_oi - self.short_oi


@dataclass(frozen=True)
class Position:
    """`IPerpEngine.Position`."""

    size: int = 0
    cost: int = 0
    entry_charge: int = 0
    last_increase_time: int = 0

    @classmethod
    def from_chain(cls, raw: object) -> Position:
        return cls(*[int(v) for v in raw])  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Coverage:
    """`PerpEngine.Coverage`: the pool (WAD) against every side's reserve."""

    pool: int
    reserve: int


@dataclass(frozen=True)
class MarketView:
    """One market as an engine entry point sees it (`PerpEngine.Ctx`): parameters (and those a
    ramp starts from), the price, and the state accrued to the moment."""

    market_id: int
    params: MarketParams
    price: PriceData
    state: MarketState
    prev: MarketParams | None = None
    ramp: int = WAD  # share of the ramp done; WAD: no ramp


@dataclass(frozen=True)
class Figures:
    value: int  # what closing is worth: PnL - charges, capped, covered
    close_fee: int
    notional: int
    initial: int
    maintenance: int


@dataclass(frozen=True)
class AccountState:
    """`IPerpEngine.AccountState`."""

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


# --------------------------------------------------------------------------- a market


def validate(p: MarketParams) -> None:
    """Mirrors `PerpEngine._validate`: every bound of `Constants.sol`, in the contract's order."""

    def out(name: str, value: int) -> Refused:
        return Refused("ParameterOutOfBounds", name=name, value=value)

    if p.max_leverage == 0 or p.max_leverage > k.MAX_LEVERAGE:
        raise out("maxLeverage", p.max_leverage)
    if p.taker_fee > k.MAX_TRADING_FEE_WAD:
        raise out("takerFee", p.taker_fee)
    if p.maker_fee > p.taker_fee:
        raise out("makerFee", p.maker_fee)
    if p.maintenance_margin_ratio < k.MIN_MARGIN_RATIO_WAD:
        raise out("maintenanceMarginRatio", p.maintenance_margin_ratio)
    if p.initial_margin_ratio <= p.maintenance_margin_ratio or p.initial_margin_ratio > k.MAX_MARGIN_RATIO_WAD:
        raise out("initialMarginRatio", p.initial_margin_ratio)
    if p.max_funding_rate_per_day > k.MAX_FUNDING_RATE_PER_DAY_WAD:
        raise out("maxFundingRatePerDay", p.max_funding_rate_per_day)
    if p.borrow_rate_per_day > k.MAX_BORROW_RATE_PER_DAY_WAD:
        raise out("borrowRatePerDay", p.borrow_rate_per_day)
    if p.max_profit_ratio < k.MIN_PROFIT_RATIO_WAD or p.max_profit_ratio > k.MAX_PROFIT_RATIO_WAD:
        raise out("maxProfitRatio", p.max_profit_ratio)
    if p.skew_scale == 0 or p.skew_scale > k.MAX_SKEW_SCALE_WAD:
        raise out("skewScale", p.skew_scale)
    if p.funding_scale == 0 or p.funding_scale > k.MAX_SKEW_SCALE_WAD:
        raise out("fundingScale", p.funding_scale)
    if p.min_position_size == 0:
        raise out("minPositionSize", 0)
    if p.min_margin > k.MAX_MIN_MARGIN_WAD:
        raise out("minMargin", p.min_margin)
    if p.oi_cap_ratio == 0 or p.oi_cap_ratio > k.MAX_OI_CAP_RATIO_WAD:
        raise out("oiCapRatio", p.oi_cap_ratio)


def ramp_share(ramp_start: int, now: int) -> int:
    """Mirrors `PerpEngine._rampShare`: share of the ramp elapsed, rounded up; WAD when done."""
    if ramp_start == 0:
        return WAD
    elapsed = now - ramp_start
    if elapsed >= PARAM_RAMP_DURATION:
        return WAD
    return mul_div_up(elapsed, WAD, PARAM_RAMP_DURATION)


def accrued(state: MarketState, params: MarketParams, price: int, pool_wad: int, now: int) -> MarketState:
    """Mirrors `PerpEngine._accrued`: funding and borrowing moved to `now`."""
    elapsed = now - state.last_accrual_time
    if elapsed == 0:
        return state
    long_oi, short_oi = state.long_oi, state.short_oi
    long_index, short_index = state.long_index, state.short_index
    rate = perp.funding_rate_per_day(long_oi - short_oi, params.funding_scale, params.max_funding_rate_per_day)
    if rate != 0:
        payer = perp.charge_index_delta(abs(rate), price, elapsed)
        if rate > 0:
            long_index += payer
            short_index -= perp.receiver_index_delta(payer, long_oi, short_oi)
        else:
            short_index += payer
            long_index -= perp.receiver_index_delta(payer, short_oi, long_oi)
    if params.borrow_rate_per_day != 0:
        if long_oi != 0:
            long_index += _borrow_delta(params, state.long_cost, pool_wad, price, elapsed)
        if short_oi != 0:
            short_index += _borrow_delta(params, state.short_cost, pool_wad, price, elapsed)
    return replace(state, last_accrual_time=now, long_index=long_index, short_index=short_index)


def _borrow_delta(params: MarketParams, side_cost: int, pool_wad: int, price: int, elapsed: int) -> int:
    rate = perp.borrow_rate_per_day(
        params.borrow_rate_per_day, perp.reserve(side_cost, params.max_profit_ratio), pool_wad
    )
    return perp.charge_index_delta(rate, price, elapsed)


def market_view(
    market_id: int,
    params: MarketParams,
    state: MarketState,
    price: PriceData,
    pool_wad: int,
    now: int,
    prev: MarketParams | None = None,
) -> MarketView:
    """Mirrors `PerpEngine._ctx`: the market at `price` and `now` (nothing written)."""
    ramp = ramp_share(state.ramp_start, now)
    return MarketView(
        market_id, params, price, accrued(state, params, price.price, pool_wad, now), prev if ramp < WAD else None, ramp
    )


def market_reserve(state: MarketState, params: MarketParams) -> int:
    """Mirrors `PerpEngine._marketReserve`: both sides' reserves."""
    return perp.reserve(state.long_cost, params.max_profit_ratio) + perp.reserve(
        state.short_cost, params.max_profit_ratio
    )


def market_liability(params: MarketParams, state: MarketState, price: int, cov: Coverage, now: int) -> int:
    """Mirrors `PerpEngine._marketLiability`: what the pool owes one market's traders at `price`
    (0: no usable price, counted at both sides' reserves)."""
    if price == 0:
        return market_reserve(state, params)
    s = accrued(state, params, price, cov.pool, now)
    longs = perp.side_value(
        True, s.long_oi, s.long_cost, s.long_entry_charge, price, s.long_index, params.max_profit_ratio
    )
    shorts = perp.side_value(
        False, s.short_oi, s.short_cost, s.short_entry_charge, price, s.short_index, params.max_profit_ratio
    )
    return perp.covered(longs, cov.pool, cov.reserve) + perp.covered(shorts, cov.pool, cov.reserve)


def pool_liability(markets: Iterable[tuple[MarketParams, MarketState, int]], cov: Coverage, now: int) -> int:
    """Mirrors `PerpEngine.poolLiabilityWad`: over the markets with open interest,
    (params, state, price) each."""
    return sum(market_liability(p, s, price, cov, now) for p, s, price in markets if s.long_oi != 0 or s.short_oi != 0)


def oi_caps_hold(markets: Iterable[tuple[MarketParams, MarketState, int]], pool_wad: int) -> bool:
    """Mirrors `PerpEngine.oiCapsHold`: each open market's larger side, at its price (0: not
    checked), within its cap of `pool_wad`; over (params, stored state, price)."""
    for params, state, price in markets:
        if price == 0 or (state.long_oi == 0 and state.short_oi == 0):
            continue
        oi = max(state.long_oi, state.short_oi)
        if mul_div_up(oi, price, WAD) > mul_div_down(pool_wad, params.oi_cap_ratio, WAD):
            return False
    return True


# --------------------------------------------------------------------------- a position


def figures_under(pos: Position, view: MarketView, params: MarketParams) -> Figures:
    """Mirrors `PerpEngine._figuresUnder`."""
    price = view.price.price
    s = view.state
    close_fill = perp.fill_price(price, s.skew, -pos.size, params.skew_scale)
    index = s.long_index if pos.size > 0 else s.short_index
    n = perp.notional(pos.size, price)
    im_ratio = perp.scaled_ratio(params.initial_margin_ratio, pos.size, params.funding_scale, view.price.im_factor)
    mm_ratio = perp.scaled_ratio(params.maintenance_margin_ratio, pos.size, params.funding_scale, view.price.mm_factor)
    return Figures(
        value=perp.value(pos.size, pos.cost, pos.entry_charge, close_fill, index, params.max_profit_ratio),
        close_fee=perp.fee(n, params.taker_fee),
        notional=n,
        initial=mul_div_up(n, im_ratio, WAD) + params.min_margin,
        maintenance=mul_div_up(n, mm_ratio, WAD) + params.min_margin,
    )


def blend_value(old: int, target: int, ramp: int) -> int:
    """Mirrors `PerpEngine._blendValue`: a lower value phases in; a higher applies at once."""
    if target >= old:
        return target
    return old - mul_div_up(old - target, ramp, WAD)


def blend_cost(old: int, target: int, ramp: int) -> int:
    """Mirrors `PerpEngine._blendCost`: a higher cost phases in; a lower applies at once."""
    if target <= old:
        return target
    return old + mul_div_up(target - old, ramp, WAD)


def figures(pos: Position, view: MarketView, cov: Coverage) -> Figures:
    """Mirrors `PerpEngine._figures`: with a ramp's blend, and the profit covered by the pool."""
    f = figures_under(pos, view, view.params)
    if view.ramp < WAD and view.prev is not None:
        old = figures_under(pos, view, view.prev)
        f = replace(
            f,
            value=blend_value(old.value, f.value, view.ramp),
            close_fee=blend_cost(old.close_fee, f.close_fee, view.ramp),
            maintenance=blend_cost(old.maintenance, f.maintenance, view.ramp),
        )
    return replace(f, value=perp.covered(f.value, cov.pool, cov.reserve))


def account_state(
    margin_token: int, token_scale: int, legs: Iterable[tuple[Position, MarketView]], cov: Coverage
) -> AccountState:
    """Mirrors `PerpEngine._sum`: `legs` holds (position, market view)."""
    margin = margin_token * token_scale
    equity = margin
    im = mm = total_notional = min_margin = count = 0
    for pos, view in legs:
        f = figures(pos, view, cov)
        equity += f.value - f.close_fee
        im += f.initial
        mm += f.maintenance
        min_margin += view.params.min_margin
        total_notional += f.notional
        count += 1
    return AccountState(margin, equity, im, mm, total_notional, min_margin, count)


# --------------------------------------------------------------------------- a trade


@dataclass(frozen=True)
class TradeMath:
    """Mirrors `PerpEngine.TradeMath`."""

    new_size: int
    new_cost: int
    new_entry_charge: int
    realised: int
    fee: int
    fill: int
    increasing: bool
    is_long: bool


def reduce_only_delta(account_id: int, market_id: int, size: int, delta: int) -> int:
    """Mirrors `PerpEngine._reduceOnly`: opposite to the position, at most its size."""
    if size == 0 or (size > 0) == (delta > 0):
        raise Refused("ReduceOnlyViolated", accountId=account_id, marketId=market_id)
    return -size if abs(delta) > abs(size) else delta


def _reduction(
    view: MarketView, params: MarketParams, delta: int, removed_cost: int, removed_charge: int, index: int
) -> tuple[int, int, int]:
    """Mirrors `PerpEngine._reduction`: fill, value realised, fee of closing `-delta`."""
    skew = view.state.skew
    fill = perp.fill_price(view.price.price, skew, delta, params.skew_scale)
    fee = perp.trade_fee(skew, delta, fill, params.maker_fee, params.taker_fee)
    realised = perp.value(-delta, removed_cost, removed_charge, fill, index, params.max_profit_ratio)
    return fill, realised, fee


def trade_math(view: MarketView, pos: Position, delta: int, cov: Coverage) -> TradeMath:
    """Mirrors `PerpEngine._tradeMath`: what a trade does to one position (no checks of caps or margin)."""
    p, s = view.params, view.state
    size = pos.size
    new_size = size + delta
    increasing = size == 0 or (size > 0) == (delta > 0)
    if not increasing and new_size != 0 and (new_size > 0) != (size > 0):
        raise Refused("PositionFlip", marketId=view.market_id, sizeWad=size, sizeDeltaWad=delta)
    if new_size != 0 and abs(new_size) < p.min_position_size:
        raise Refused(
            "PositionTooSmall", marketId=view.market_id, sizeWad=abs(new_size), minSizeWad=p.min_position_size
        )
    is_long = size > 0 or (size == 0 and delta > 0)
    index = s.long_index if is_long else s.short_index
    if increasing:
        fill = perp.fill_price(view.price.price, s.skew, delta, p.skew_scale)
        if fill == 0:
            raise Refused("FillPriceInvalid", marketId=view.market_id)
        return TradeMath(
            new_size,
            pos.cost + perp.added_cost(delta, fill),
            pos.entry_charge + perp.added_entry_charge(abs(delta), index),
            0,
            perp.trade_fee(s.skew, delta, fill, p.maker_fee, p.taker_fee),
            fill,
            True,
            is_long,
        )
    removed_cost = perp.removed_cost(pos.cost, abs(delta), abs(size))
    removed_charge = perp.removed_entry_charge(pos.entry_charge, abs(delta), abs(size))
    fill, realised, fee = _reduction(view, p, delta, removed_cost, removed_charge, index)
    if view.ramp < WAD and view.prev is not None:
        _, old_realised, old_fee = _reduction(view, view.prev, delta, removed_cost, removed_charge, index)
        realised = blend_value(old_realised, realised, view.ramp)
        fee = blend_cost(old_fee, fee, view.ramp)
    return TradeMath(
        new_size,
        pos.cost - removed_cost,
        pos.entry_charge - removed_charge,
        perp.covered(realised, cov.pool, cov.reserve),
        fee,
        fill,
        False,
        is_long,
    )


def apply_to_market(state: MarketState, pos: Position, t: TradeMath) -> tuple[MarketState, int]:
    """Mirrors `PerpEngine._applyToMarket`: the market after the trade, and the side's open interest."""
    if t.is_long:
        side_oi = state.long_oi - abs(pos.size) + abs(t.new_size)
        return replace(
            state,
            long_oi=side_oi,
            long_cost=state.long_cost - abs(pos.cost) + abs(t.new_cost),
            long_entry_charge=state.long_entry_charge - pos.entry_charge + t.new_entry_charge,
        ), side_oi
    side_oi = state.short_oi - abs(pos.size) + abs(t.new_size)
    return replace(
        state,
        short_oi=side_oi,
        short_cost=state.short_cost - abs(pos.cost) + abs(t.new_cost),
        short_entry_charge=state.short_entry_charge - pos.entry_charge + t.new_entry_charge,
    ), side_oi


@dataclass(frozen=True)
class TradeOutcome:
    """What `PerpEngine.executeTrade` does, predicted."""

    delta: int
    math: TradeMath
    position: Position
    state: MarketState
    total_reserve: int
    pnl_token: int
    fee_token: int
    margin_after: int
    mask_after: int


def execute_trade(
    *,
    account_id: int,
    view: MarketView,
    pos: Position,
    delta: int,
    acceptable: int,
    reduce_only: bool,
    mask: int,
    margin_token: int,
    other_legs: Sequence[tuple[Position, MarketView]],
    cov: Coverage,
    total_reserve: int,
    paused: bool,
    token_scale: int,
    now: int,
    stale_market: int | None = None,
) -> TradeOutcome:
    """Mirrors `PerpEngine.executeTrade`, its checks in the contract's order (raises `Refused`).
    `view` is the traded market at the fill's price, accrued to `now`; `other_legs` the account's
    other positions at fresh prices, each valued at the worse of its pull and reference prices;
    `stale_market`: the first of those markets whose stored price is too old (an increase is then
    refused where the engine reads it)."""
    market = view.market_id
    if reduce_only:
        delta = reduce_only_delta(account_id, market, pos.size, delta)
    if delta == 0:
        raise Refused("ZeroSize")
    t = trade_math(view, pos, delta, cov)
    if acceptable != 0 and (t.fill > acceptable if delta > 0 else t.fill < acceptable):
        raise Refused("AcceptablePriceExceeded", fillPriceWad=t.fill, acceptablePriceWad=acceptable)
    if t.increasing:
        if paused:
            raise Refused("EnforcedPause")
        if view.price.shocked:
            raise Refused("OracleShockUnconfirmed", marketId=market)
    before = market_reserve(view.state, view.params)
    state, side_oi = apply_to_market(view.state, pos, t)
    reserve = total_reserve + market_reserve(state, view.params) - before
    if t.increasing:
        oi_notional = mul_div_up(side_oi, view.price.price, WAD)
        cap = mul_div_down(cov.pool, view.params.oi_cap_ratio, WAD)
        if oi_notional > cap:
            raise Refused("OpenInterestCapExceeded", marketId=market, openInterestWad=oi_notional, capWad=cap)
        if reserve > cov.pool:
            raise Refused("ReserveExceeded", reserveWad=reserve, poolWad=cov.pool)
    pnl_token = to_token_floor(t.realised, token_scale)
    fee_token = to_token_up(t.fee, token_scale)
    margin_after = margin_token + pnl_token - fee_token
    bit = 1 << market
    if t.new_size == 0 and mask == bit and margin_after < 0:
        raise Refused("AccountUnderwater", accountId=account_id, marginAfterToken=margin_after)
    if t.new_size == 0:
        mask_after = mask & ~bit
        position = Position()
    else:
        mask_after = mask
        if pos.size == 0:
            if mask.bit_count() >= MAX_POSITIONS_PER_ACCOUNT:
                raise Refused("TooManyPositions", accountId=account_id)
            mask_after = mask | bit
        position = Position(t.new_size, t.new_cost, t.new_entry_charge, now if t.increasing else pos.last_increase_time)
    if t.increasing:
        if stale_market is not None:
            raise Refused("OracleStalePrice", marketId=stale_market)
        traded = replace(view, state=state)
        legs = [*other_legs, (position, traded)]
        a = account_state(margin_after, token_scale, sorted_legs(legs), cov)
        n = perp.notional(t.new_size, view.price.price)
        max_leverage = view.params.max_leverage
        if a.equity <= 0 or n > a.equity * max_leverage:
            leverage = 2**256 - 1 if a.equity <= 0 else mul_div_up(n, WAD, a.equity)
            raise Refused(
                "LeverageTooHigh",
                accountId=account_id,
                marketId=market,
                leverageWad=leverage,
                maxLeverageWad=max_leverage * WAD,
            )
        if a.equity < a.initial_margin:
            raise Refused("InsufficientMargin", accountId=account_id, equityWad=a.equity, requiredWad=a.initial_margin)
    return TradeOutcome(delta, t, position, state, reserve, pnl_token, fee_token, margin_after, mask_after)


def sorted_legs(legs: Iterable[tuple[Position, MarketView]]) -> list[tuple[Position, MarketView]]:
    """Legs in market order, as the engine walks an account's mask."""
    return sorted(legs, key=lambda leg: leg[1].market_id)


# --------------------------------------------------------------------------- liquidation


def liquidation_close_size(size: int, share: int, min_size: int) -> int:
    """Mirrors `PerpEngine._liquidationCloseSize`."""
    close = mul_div_up(abs(size), share, WAD)
    if close >= abs(size) or abs(size) - close < min_size:
        close = abs(size)
    return close if size > 0 else -close


def liquidation_price(
    margin_token: int,
    token_scale: int,
    legs: Sequence[tuple[Position, MarketView]],
    market: int,
    cov: Coverage,
) -> int:
    """The price of `market` at which the account's equity meets its maintenance margin, every
    other price fixed; 0 if there is none. For keepers' candidate index: exact for a position
    below its profit cap and outside a parameter ramp (the contract's own check decides).

    Equity is linear in the price: `margin + size * p * f - cost - owed - |size| p fee` with the
    close-price factor `f = (2K + 2 skew - size) / 2K`, and so is the maintenance margin."""
    state = account_state(margin_token, token_scale, legs, cov)
    [(pos, view)] = [(p, v) for p, v in legs if v.market_id == market]
    f = figures(pos, view, cov)
    params, s = view.params, view.state
    mm_ratio = perp.scaled_ratio(params.maintenance_margin_ratio, pos.size, params.funding_scale, view.price.mm_factor)
    # A = (equity - maintenance) without this position's price-dependent terms.
    a0 = (
        state.equity
        - state.maintenance_margin
        - f.value
        + f.close_fee
        + (f.maintenance - params.min_margin)
        - (
            pos.cost
            + perp.charge_owed(abs(pos.size), s.long_index if pos.size > 0 else s.short_index, pos.entry_charge)
        )
    )
    numerator = 2 * params.skew_scale + 2 * s.skew - pos.size  # close-fill factor * 2K
    size = abs(pos.size)
    k = params.taker_fee + mm_ratio  # per unit of |size| * p
    if pos.size > 0:
        slope = mul_div_down(size, numerator * WAD, 2 * params.skew_scale) - mul_div_up(size, k, 1)
        if a0 >= 0 or slope <= 0:
            return 0
        return mul_div_down(-a0, WAD * WAD, slope)
    slope = mul_div_up(size, numerator * WAD, 2 * params.skew_scale) + size * k
    if a0 <= 0:
        return 0
    return mul_div_down(a0, WAD * WAD, slope)


@dataclass(frozen=True)
class LiquidationPrediction:
    """What `PerpEngine.liquidate` and `LeverVault.settleLiquidation` do, predicted."""

    liquidated: bool
    full: bool
    share: int
    close_sizes: tuple[int, ...]  # per leg, signed like the position
    trades: tuple[TradeMath, ...]
    closed_notional: int
    pnl_token: int
    fee_token: int
    reward_request: int
    penalty_request: int
    before: AccountState


def predict_liquidation(
    margin_token: int,
    token_scale: int,
    legs: Sequence[tuple[Position, MarketView]],
    params: LiquidationParams,
    cov: Coverage,
) -> LiquidationPrediction:
    """Mirrors `PerpEngine.liquidate` up to the vault call: the close share, each leg's trade
    (legs in market order, every market view accrued to the liquidation's moment), and the
    amounts the vault is asked to settle (see `lever.math.vault.settle_liquidation`)."""
    before = account_state(margin_token, token_scale, legs, cov)
    if not legs or not before.liquidatable:
        return LiquidationPrediction(False, False, 0, (), (), 0, 0, 0, 0, 0, before)
    share = close_share(before.equity, before.maintenance_margin, before.min_margin, before.notional, params)
    pnl = fees = closed = 0
    sizes, trades = [], []
    for pos, view in legs:
        size = liquidation_close_size(pos.size, share, view.params.min_position_size)
        t = trade_math(view, pos, -size, cov)
        pnl += t.realised
        fees += t.fee
        closed += perp.notional(size, view.price.price)
        sizes.append(size)
        trades.append(t)
    return LiquidationPrediction(
        True,
        share == WAD,
        share,
        tuple(sizes),
        tuple(trades),
        closed,
        to_token_floor(pnl, token_scale),
        to_token_up(fees, token_scale),
        keeper_reward(closed, params) // token_scale,
        to_token_up(liquidation_penalty(closed, params), token_scale),
        before,
    )
