// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {FixedPointMath} from "./FixedPointMath.sol";
import {WAD, SECONDS_PER_DAY} from "./Constants.sol";

/// @title PerpMath
/// @notice The position formulas, pure. Every amount is WAD (USD or base units); every
///         rounding favours the protocol: what a trader is credited rounds down (floor), what a
///         trader owes rounds up (ceil). `lever.math` in Python mirrors this file exactly.
library PerpMath {
    using FixedPointMath for uint256;
    using FixedPointMath for int256;

    /// @notice |size| * price, rounded up (notional is a base for what traders owe).
    function notionalWad(int256 sizeWad, uint256 priceWad) internal pure returns (uint256) {
        return sizeWad.abs().mulDivUp(priceWad, WAD);
    }

    /// @notice Unrealised PnL of a position: size * price - openNotional, floored.
    function pnlWad(int256 sizeWad, int256 openNotionalWad, uint256 priceWad) internal pure returns (int256) {
        return sizeWad.mulDivFloor(priceWad, WAD) - openNotionalWad;
    }

    /// @notice Funding a position owes since its entry index (negative: it is owed), ceiled.
    /// @param indexWad the current cumulative funding per unit of size of the position's side.
    function fundingOwedWad(int256 sizeWad, int256 indexWad, int256 entryIndexWad) internal pure returns (int256) {
        return (indexWad - entryIndexWad).mulDivCeil(sizeWad.abs(), WAD);
    }

    /// @notice Trading fee on a notional, ceiled.
    function feeWad(uint256 notional, uint256 feeRatioWad) internal pure returns (uint256) {
        return notional.mulDivUp(feeRatioWad, WAD);
    }

    /// @notice Margin ratio for a position of `sizeWad`: base * (1 + |size| / skewScale) * factor,
    ///         at most 100%. Larger positions need proportionally more margin (Synthetix-style);
    ///         `factorWad` is the oracle's volatility factor (1e18 in calm markets). Ceiled.
    function scaledRatioWad(uint256 baseRatioWad, int256 sizeWad, uint256 skewScaleWad, uint256 factorWad)
        internal
        pure
        returns (uint256)
    {
        uint256 ratio = baseRatioWad + baseRatioWad.mulDivUp(sizeWad.abs(), skewScaleWad);
        ratio = ratio.mulDivUp(factorWad, WAD);
        return ratio < WAD ? ratio : WAD;
    }

    /// @notice Open notional removed when `closeSizeWad` (same sign as `sizeWad`) is closed,
    ///         pro rata and ceiled, so the realised PnL (closed * price - removed) rounds down.
    function removedNotionalWad(int256 openNotionalWad, int256 closeSizeWad, int256 sizeWad)
        internal
        pure
        returns (int256)
    {
        // closeSize / size is in (0, 1]; ceil(openNotional * |close| / |size|).
        return openNotionalWad.mulDivCeil(closeSizeWad.abs(), sizeWad.abs());
    }

    /// @notice Funding rate per day for a skew: maxRate * clamp(skew / skewScale, -1, 1), floored
    ///         in magnitude. Positive: longs pay shorts.
    function fundingRatePerDayWad(int256 skewWad, uint256 skewScaleWad, uint256 maxRatePerDayWad)
        internal
        pure
        returns (int256)
    {
        uint256 magnitude = skewWad.abs();
        if (magnitude > skewScaleWad) magnitude = skewScaleWad;
        uint256 rate = maxRatePerDayWad.mulDivDown(magnitude, skewScaleWad);
        return skewWad >= 0 ? int256(rate) : -int256(rate);
    }

    /// @notice Index increase per unit of size for the paying side over `elapsed` seconds, ceiled.
    function payerIndexDeltaWad(uint256 ratePerDayWad, uint256 priceWad, uint256 elapsed)
        internal
        pure
        returns (uint256)
    {
        return (priceWad * ratePerDayWad).mulDivUp(elapsed, WAD * SECONDS_PER_DAY);
    }

    /// @notice Index decrease per unit of size for the receiving side: what the payers pay,
    ///         shared over the receivers' open interest, floored (zero-sum up to rounding that
    ///         stays in the pool).
    function receiverIndexDeltaWad(uint256 payerDeltaWad, uint256 payerOiWad, uint256 receiverOiWad)
        internal
        pure
        returns (uint256)
    {
        return payerDeltaWad.mulDivDown(payerOiWad, receiverOiWad);
    }
}
