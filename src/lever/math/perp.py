"""`PerpMath`: the position formulas. What a trader is credited rounds down, what a trader owes
rounds up."""

from __future__ import annotations

from lever.math.constants import SECONDS_PER_DAY, WAD
from lever.math.fixed import (
    mul_div_ceil,
    mul_div_down,
    mul_div_floor,
    mul_div_up,
    mul_wad_ceil,
    mul_wad_floor,
)


def notional(size: int, price: int) -> int:
    """Mirrors `PerpMath.notionalWad`: |size| * price, rounded up."""
    return mul_div_up(abs(size), price, WAD)


def fill_price(price: int, skew: int, size_delta: int, skew_scale: int) -> int:
    """Mirrors `PerpMath.fillPriceWad`: `p * (2K + 2 skew + delta) / 2K`, buys up, sells down;
    0 when the skew makes it non-positive."""
    numerator = 2 * skew_scale + 2 * skew + size_delta
    if numerator <= 0:
        return 0
    if size_delta > 0:
        return mul_div_up(price, numerator, 2 * skew_scale)
    return mul_div_down(price, numerator, 2 * skew_scale)


def trade_fee(skew: int, size_delta: int, fill: int, maker_fee: int, taker_fee: int) -> int:
    """Mirrors `PerpMath.tradeFeeWad`: maker fee on the part that reduces |skew|, taker fee on the
    rest, each on its notional at the fill price, rounded up."""
    size = abs(size_delta)
    reducing = 0
    if (skew > 0 and size_delta < 0) or (skew < 0 and size_delta > 0):
        reducing = min(size, abs(skew))
    return mul_div_up(mul_div_up(reducing, fill, WAD), maker_fee, WAD) + mul_div_up(
        mul_div_up(size - reducing, fill, WAD), taker_fee, WAD
    )


def fee(notional_wad: int, fee_ratio: int) -> int:
    """Mirrors `PerpMath.feeWad`: a fee on a notional, rounded up."""
    return mul_div_up(notional_wad, fee_ratio, WAD)


def scaled_ratio(base_ratio: int, size: int, scale: int, factor: int = WAD) -> int:
    """Mirrors `PerpMath.scaledRatioWad`: base * (1 + |size|/scale) * factor, at most 100%."""
    ratio = base_ratio + mul_div_up(base_ratio, abs(size), scale)
    ratio = mul_div_up(ratio, factor, WAD)
    return min(ratio, WAD)


def charge_owed(abs_size: int, index: int, entry_charge: int) -> int:
    """Mirrors `PerpMath.chargeOwedWad`: funding and borrowing owed since the fills."""
    return mul_wad_ceil(abs_size, index) - entry_charge


def profit_cap(cost: int, max_profit_ratio: int) -> int:
    """Mirrors `PerpMath.profitCapWad`: `maxProfitRatio` of |cost|, floored."""
    return mul_div_down(abs(cost), max_profit_ratio, WAD)


def value(size: int, cost: int, entry_charge: int, close_fill: int, index: int, max_profit_ratio: int) -> int:
    """Mirrors `PerpMath.valueWad`: `size * fill - cost - owed`, floored, at most the profit cap."""
    raw = mul_wad_floor(size, close_fill) - cost - charge_owed(abs(size), index, entry_charge)
    return min(raw, profit_cap(cost, max_profit_ratio))


def added_cost(size_delta: int, fill: int) -> int:
    """Mirrors `PerpMath.addedCostWad`."""
    return mul_wad_ceil(size_delta, fill)


def added_entry_charge(abs_delta: int, index: int) -> int:
    """Mirrors `PerpMath.addedEntryChargeWad`."""
    return mul_wad_floor(abs_delta, index)


def removed_cost(cost: int, abs_closed: int, abs_size: int) -> int:
    """Mirrors `PerpMath.removedCostWad`: pro rata, toward +inf."""
    return mul_div_ceil(cost, abs_closed, abs_size)


def removed_entry_charge(entry_charge: int, abs_closed: int, abs_size: int) -> int:
    """Mirrors `PerpMath.removedEntryChargeWad`: pro rata, toward -inf."""
    return mul_div_floor(entry_charge, abs_closed, abs_size)


def funding_rate_per_day(skew: int, funding_scale: int, max_rate_per_day: int) -> int:
    """Mirrors `PerpMath.fundingRatePerDayWad`: maxRate * clamp(skew/scale, -1, 1), magnitude floored."""
    magnitude = min(abs(skew), funding_scale)
    rate = mul_div_down(max_rate_per_day, magnitude, funding_scale)
    return rate if skew >= 0 else -rate


def charge_index_delta(rate_per_day: int, price: int, elapsed: int) -> int:
    """Mirrors `PerpMath.chargeIndexDeltaWad`: per unit of size, ceiled."""
    return mul_div_up(price * rate_per_day, elapsed, WAD * SECONDS_PER_DAY)


def receiver_index_delta(payer_delta: int, payer_oi: int, receiver_oi: int) -> int:
    """Mirrors `PerpMath.receiverIndexDeltaWad`: the payers' total shared over the receivers, at
    most the payers' own rate per unit; floored."""
    if receiver_oi <= payer_oi:
        return payer_delta
    return mul_div_down(payer_delta, payer_oi, receiver_oi)


def borrow_rate_per_day(rate_at_full: int, side_reserve: int, pool_wad: int) -> int:
    """Mirrors `PerpMath.borrowRatePerDayWad`: rate at full utilisation times reserve/pool (<= 1)."""
    if side_reserve == 0:
        return 0
    if pool_wad <= side_reserve:
        return rate_at_full
    return mul_div_up(rate_at_full, side_reserve, pool_wad)


def reserve(side_cost: int, max_profit_ratio: int) -> int:
    """Mirrors `PerpMath.reserveWad`: the most a side can win, ceiled."""
    return mul_div_up(side_cost, max_profit_ratio, WAD)


def side_value(
    is_long: bool, oi: int, cost: int, entry_charge: int, price: int, index: int, max_profit_ratio: int
) -> int:
    """Mirrors `PerpMath.sideValueWad`: a whole side's value to its traders as the pool counts it."""
    owed = mul_wad_floor(oi, index) - entry_charge
    if is_long:
        v = mul_div_up(oi, price, WAD) - cost - owed
    else:
        v = cost - mul_div_down(oi, price, WAD) - owed
    return min(v, reserve(cost, max_profit_ratio))


def covered(value_wad: int, pool_wad: int, total_reserve: int) -> int:
    """Mirrors `PerpMath.coveredWad`: a profit scaled by pool/reserve when the pool is short."""
    if value_wad <= 0 or pool_wad >= total_reserve:
        return value_wad
    return mul_div_down(value_wad, pool_wad, total_reserve)
