// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title FixedPointMath
/// @notice Multiplication, division and unit conversion with the rounding direction in the name.
/// @dev Operands in this protocol stay far below 2^128, so `x * y` cannot overflow 2^256;
///      checked arithmetic reverts (panic) if a caller ever breaks that bound.
library FixedPointMath {
    /// @dev floor(x * y / d).
    function mulDivDown(uint256 x, uint256 y, uint256 d) internal pure returns (uint256) {
        return x * y / d;
    }

    /// @dev ceil(x * y / d).
    function mulDivUp(uint256 x, uint256 y, uint256 d) internal pure returns (uint256 z) {
        z = x * y;
        unchecked {
            z = z / d + (z % d == 0 ? 0 : 1);
        }
    }

    /// @dev floor(x * y / d) for signed x (rounds toward negative infinity).
    function mulDivFloor(int256 x, uint256 y, uint256 d) internal pure returns (int256) {
        if (x >= 0) return int256(mulDivDown(uint256(x), y, d));
        return -int256(mulDivUp(uint256(-x), y, d));
    }

    /// @dev ceil(x * y / d) for signed x (rounds toward positive infinity).
    function mulDivCeil(int256 x, uint256 y, uint256 d) internal pure returns (int256) {
        if (x >= 0) return int256(mulDivUp(uint256(x), y, d));
        return -int256(mulDivDown(uint256(-x), y, d));
    }

    /// @dev floor(x * y / 1e18) for signed x and y.
    function mulWadFloor(int256 x, int256 y) internal pure returns (int256) {
        int256 z = x * y;
        if (z >= 0) return z / 1e18;
        return -int256(divUp(uint256(-z), 1e18));
    }

    /// @dev ceil(x * y / 1e18) for signed x and y.
    function mulWadCeil(int256 x, int256 y) internal pure returns (int256) {
        int256 z = x * y;
        if (z <= 0) return -(-z / 1e18);
        return int256(divUp(uint256(z), 1e18));
    }

    /// @dev ceil(x / d) for unsigned x.
    function divUp(uint256 x, uint256 d) internal pure returns (uint256) {
        return x == 0 ? 0 : (x - 1) / d + 1;
    }

    /// @dev A WAD amount in token units (`scale` = 10^(18 - decimals)), rounded down: what the
    ///      protocol pays out.
    function toTokenDown(uint256 wad, uint256 scale) internal pure returns (uint256) {
        return wad / scale;
    }

    /// @dev A WAD amount in token units, rounded up: what the protocol charges.
    function toTokenUp(uint256 wad, uint256 scale) internal pure returns (uint256) {
        return divUp(wad, scale);
    }

    /// @dev A signed WAD amount credited to a trader in token units, toward negative infinity.
    function toTokenFloor(int256 wad, uint256 scale) internal pure returns (int256) {
        if (wad >= 0) return int256(uint256(wad) / scale);
        return -int256(divUp(uint256(-wad), scale));
    }

    function abs(int256 x) internal pure returns (uint256) {
        return x >= 0 ? uint256(x) : uint256(-x);
    }

    function min(uint256 a, uint256 b) internal pure returns (uint256) {
        return a < b ? a : b;
    }

    function max(uint256 a, uint256 b) internal pure returns (uint256) {
        return a > b ? a : b;
    }
}
