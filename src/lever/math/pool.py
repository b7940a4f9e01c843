"""`PoolMath`: the pool's value and its share conversions (token units)."""

from __future__ import annotations

from typing import TypeVar

from lever.math.constants import VIRTUAL_SHARES
from lever.math.fixed import mul_div_down, mul_div_up, to_token_down, to_token_up

Value = TypeVar("Value", int, float)  # token units; floats in the vectorised stress engine


def pool_value(pool_token: int, liability_wad: int, token_scale: int) -> int:
    """Mirrors `PoolMath.poolValue`: ledger minus what the pool owes traders, never below zero."""
    if liability_wad >= 0:
        owed = to_token_up(liability_wad, token_scale)
        return pool_token - owed if pool_token > owed else 0
    return pool_token + to_token_down(-liability_wad, token_scale)


def request_value(at_pull: Value, at_newest: Value, is_deposit: bool) -> Value:
    """Mirrors `PoolMath.requestValue`: the worse for the requester of the pool's value at the
    request's pull prices and at the newest stored prices (a deposit the higher, a redemption the
    lower)."""
    return at_pull if is_deposit == (at_pull > at_newest) else at_newest


def to_shares_down(assets: int, value: int, supply: int) -> int:
    """Mirrors `PoolMath.toSharesDown`."""
    return mul_div_down(assets, supply + VIRTUAL_SHARES, value + 1)


def to_assets_down(shares: int, value: int, supply: int) -> int:
    """Mirrors `PoolMath.toAssetsDown`."""
    return mul_div_down(shares, value + 1, supply + VIRTUAL_SHARES)


def pro_rata_down(part: int, total: int, whole: int) -> int:
    """Mirrors `PoolMath.proRataDown`."""
    return mul_div_down(part, total, whole)


def pro_rata_up(part: int, total: int, whole: int) -> int:
    """Mirrors `PoolMath.proRataUp`."""
    return mul_div_up(part, total, whole)
