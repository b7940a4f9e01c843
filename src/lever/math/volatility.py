"""`VolatilityMath`: the running volatility estimate and the margin factors derived from it."""

from __future__ import annotations

from math import isqrt

from lever.math.constants import SECONDS_PER_DAY, WAD
from lever.math.fixed import div_up, mul_div_up


def return_wad(prev_price: int, next_price: int) -> int:
    """Mirrors `VolatilityMath.returnWad`: |next - prev| / prev, rounded up."""
    return mul_div_up(abs(next_price - prev_price), WAD, prev_price)


def next_variance(variance: int, ret: int, lam: int) -> int:
    """Mirrors `VolatilityMath.nextVarianceWad`: EWMA of squared returns, rounded up."""
    squared = mul_div_up(ret, ret, WAD)
    return div_up(lam * variance + (WAD - lam) * squared, WAD)


def target_factor(variance: int, ref_volatility: int, max_factor: int) -> int:
    """Mirrors `VolatilityMath.targetFactorWad`: sqrt(variance)/ref, clamped to [1, max]."""
    volatility = isqrt(variance * WAD)
    factor = mul_div_up(volatility, WAD, ref_volatility)
    if factor < WAD:
        return WAD
    return min(factor, max_factor)


def ramped_factor(target: int, checkpoint: int, checkpoint_time: int, rise_per_day: int, now: int) -> int:
    """Mirrors `VolatilityMath.rampedFactorWad`: drops at once, rises at most rise/day."""
    if target <= checkpoint:
        return target
    risen = checkpoint + mul_div_up(rise_per_day, now - checkpoint_time, SECONDS_PER_DAY)
    return min(risen, target)
