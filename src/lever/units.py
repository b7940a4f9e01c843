"""Exact conversions between human decimals and on-chain integers (no floats)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

WAD = 10**18


def to_scaled(value: str | int | Decimal, decimals: int) -> int:
    """`value` * 10**decimals as an exact integer; raises ValueError if it does not fit exactly."""
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {value!r}") from exc
    if not number.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    scaled = number.scaleb(decimals)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{value} has more than {decimals} decimal places")
    return int(scaled)


def to_wad(value: str | int | Decimal) -> int:
    return to_scaled(value, 18)


def from_scaled(amount: int, decimals: int) -> Decimal:
    return Decimal(amount).scaleb(-decimals)


def from_wad(amount: int) -> Decimal:
    return from_scaled(amount, 18)
