"""`LiquidationMath`: how much of an unhealthy account to close, and the keeper's reward."""

from __future__ import annotations

from dataclasses import dataclass

from lever.math.constants import WAD
from lever.math.fixed import mul_div_down, mul_div_up


@dataclass(frozen=True)
class LiquidationParams:
    """`LiquidationMath.Params`, in struct order."""

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
    """Mirrors `LiquidationMath.closeShareWad`."""
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
    """Mirrors `LiquidationMath.rewardWad`: clamp(r * closed, min, max), rounded down."""
    reward = mul_div_down(closed_notional, p.reward_ratio, WAD)
    return min(max(reward, p.min_reward), p.max_reward)


def liquidation_penalty(closed_notional: int, p: LiquidationParams) -> int:
    """Mirrors `LiquidationMath.penaltyWad`: rounded up."""
    return mul_div_up(closed_notional, p.penalty_ratio, WAD)
