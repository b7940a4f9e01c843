"""`LeverVault`'s ledgers: how a trade's and a liquidation's settlement move tokens."""

from __future__ import annotations

from dataclasses import dataclass

from lever.math.constants import WAD
from lever.math.fixed import mul_div_down, to_token_up


@dataclass(frozen=True)
class Ledgers:
    """The vault's ledgers that settlements move (token units)."""

    pool: int
    insurance: int
    protocol_fees: int
    protocol_fee_share: int


@dataclass(frozen=True)
class LiquidationSettlement:
    margin: int
    ledgers: Ledgers
    fee_collected: int
    reward_paid: int
    penalty_paid: int
    bad_debt: int
    bad_debt_by_insurance: int


def protocol_cut(fee_token: int, share: int) -> int:
    """Mirrors `LeverVault._collectFee`: the protocol's share of a fee, rounded down."""
    return mul_div_down(fee_token, share, WAD)


def settle(margin: int, ledgers: Ledgers, pnl_token: int, fee_token: int) -> tuple[int, Ledgers]:
    """Mirrors `LeverVault.settle`: margin (which may go negative) and pool after a trade."""
    cut = protocol_cut(fee_token, ledgers.protocol_fee_share)
    return margin + pnl_token - fee_token, Ledgers(
        ledgers.pool - pnl_token + fee_token - cut,
        ledgers.insurance,
        ledgers.protocol_fees + cut,
        ledgers.protocol_fee_share,
    )


def _capped(amount: int, margin: int) -> int:
    return 0 if margin <= 0 else min(amount, margin)


def settle_liquidation(
    margin: int,
    ledgers: Ledgers,
    pnl_token: int,
    fee_token: int,
    reward_token: int,
    penalty_token: int,
    reward_floor_token: int,
) -> LiquidationSettlement:
    """Mirrors `LeverVault.settleLiquidation`: PnL, then fee, reward and penalty each capped by the
    margin left; the insurance tops the reward up to the floor; then a negative margin is bad debt
    (insurance first, then the pool)."""
    m = margin + pnl_token
    pool = ledgers.pool - pnl_token
    fee = _capped(fee_token, m)
    m -= fee
    cut = protocol_cut(fee, ledgers.protocol_fee_share)
    pool += fee - cut
    reward = _capped(reward_token, m)
    m -= reward
    penalty = _capped(penalty_token, m)
    m -= penalty
    insurance = ledgers.insurance + penalty
    if reward < reward_floor_token:
        top_up = min(reward_floor_token - reward, insurance)
        insurance -= top_up
        reward += top_up
    bad_debt = by_insurance = 0
    if m < 0:
        bad_debt = -m
        by_insurance = min(bad_debt, insurance)
        insurance -= by_insurance
        pool -= bad_debt - by_insurance
        m = 0
    return LiquidationSettlement(
        m,
        Ledgers(pool, insurance, ledgers.protocol_fees + cut, ledgers.protocol_fee_share),
        fee,
        reward,
        penalty,
        bad_debt,
        by_insurance,
    )


def redeem_refusal(
    assets: int, shares: int, supply: int, pool: int, total_reserve_wad: int, token_scale: int, caps_hold: bool
) -> str:
    """Mirrors the checks of `LeverVault.settleRedeem`, in its order: why a redemption of `shares`
    for `assets` is refused ("" if it is not). Redemptions take only free assets; the last shares
    stay while the pool backs open positions (their outcome must belong to some LP); the open-
    interest caps must still hold on the smaller pool (`caps_hold`)."""
    if assets > free_assets(pool, total_reserve_wad, token_scale):
        return "ReserveExceeded"
    if shares == supply and total_reserve_wad != 0:
        return "LastSharesBackOpenPositions"
    if not caps_hold:
        return "OpenInterestCapExceeded"
    return ""


def free_assets(pool: int, total_reserve_wad: int, token_scale: int) -> int:
    """Mirrors `LeverVault.freeAssets`: the pool less every side's reserve (rounded up), never below 0."""
    reserve = to_token_up(total_reserve_wad, token_scale)
    return pool - reserve if pool > reserve else 0
