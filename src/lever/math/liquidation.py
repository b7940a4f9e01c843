"""`LiquidationMath`: how much of an unhealthy account to close, and the keeper's reward."""

from __future__ import annotations

from dataclasses import dataclass

from lever.math import constants as k
from lever.math.constants import WAD
from lever.math.fixed import mul_div_down, mul_div_up
from lever.math.refusal import Refused


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


def validate(p: LiquidationParams) -> None:
    """Mirrors `Liquidator._setParams`: the bounds of `Constants.sol`, in the contract's order."""

    def out(name: str, value: int) -> Refused:
        return Refused("ParameterOutOfBounds", name=name, value=value)

    if p.target_health < WAD or p.target_health > k.MAX_TARGET_HEALTH_WAD:
        raise out("targetHealth", p.target_health)
    if p.max_partial_share == 0 or p.max_partial_share > WAD:
        raise out("maxPartialShare", p.max_partial_share)
    if p.penalty_ratio > k.MAX_PENALTY_RATIO_WAD:
        raise out("penaltyRatio", p.penalty_ratio)
    if p.reward_ratio > k.MAX_REWARD_RATIO_WAD:
        raise out("rewardRatio", p.reward_ratio)
    if p.max_reward > k.MAX_KEEPER_REWARD_WAD:
        raise out("maxReward", p.max_reward)
    if p.min_reward > p.max_reward:
        raise out("minReward", p.min_reward)
    if p.min_leftover_notional > k.MAX_MIN_LEFTOVER_WAD:
        raise out("minLeftoverNotional", p.min_leftover_notional)
