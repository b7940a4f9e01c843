"""`FixedPointMath`: multiplication, division and unit conversion, rounding in the name."""

from __future__ import annotations


def mul_div_down(x: int, y: int, d: int) -> int:
    """Mirrors `FixedPointMath.mulDivDown`: floor(x*y/d) for x, y >= 0."""
    return x * y // d


def mul_div_up(x: int, y: int, d: int) -> int:
    """Mirrors `FixedPointMath.mulDivUp`: ceil(x*y/d) for x, y >= 0."""
    return -(-(x * y) // d)


def mul_div_floor(x: int, y: int, d: int) -> int:
    """Mirrors `FixedPointMath.mulDivFloor`: floor(x*y/d) for signed x."""
    return x * y // d


def mul_div_ceil(x: int, y: int, d: int) -> int:
    """Mirrors `FixedPointMath.mulDivCeil`: ceil(x*y/d) for signed x."""
    return -(-(x * y) // d)


def mul_wad_floor(x: int, y: int) -> int:
    """Mirrors `FixedPointMath.mulWadFloor`: floor(x*y/1e18) for signed x and y."""
    return x * y // 10**18


def mul_wad_ceil(x: int, y: int) -> int:
    """Mirrors `FixedPointMath.mulWadCeil`: ceil(x*y/1e18) for signed x and y."""
    return -(-(x * y) // 10**18)


def div_up(x: int, d: int) -> int:
    """Mirrors `FixedPointMath.divUp`: ceil(x/d) for x >= 0."""
    return -(-x // d)


def to_token_down(wad: int, scale: int) -> int:
    """Mirrors `FixedPointMath.toTokenDown`: a WAD amount in token units, rounded down."""
    return wad // scale


def to_token_up(wad: int, scale: int) -> int:
    """Mirrors `FixedPointMath.toTokenUp`: a WAD amount in token units, rounded up."""
    return -(-wad // scale)


def to_token_floor(wad: int, scale: int) -> int:
    """Mirrors `FixedPointMath.toTokenFloor`: signed WAD to token units, toward negative infinity."""
    return wad // scale


def abs_(x: int) -> int:
    """Mirrors `FixedPointMath.abs`."""
    return abs(x)


def min_(a: int, b: int) -> int:
    """Mirrors `FixedPointMath.min`."""
    return min(a, b)


def max_(a: int, b: int) -> int:
    """Mirrors `FixedPointMath.max`."""
    return max(a, b)
