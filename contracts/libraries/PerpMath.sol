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

    /// @notice The mark a position is valued at: price minus its side's cumulative funding for
    ///         longs, price plus it for shorts. Valuing at the mark charges (or credits) funding
    ///         continuously: size * mark - cost = unrealised PnL - pending funding.
    function markWad(bool isLong, uint256 priceWad, int256 longIndexWad, int256 shortIndexWad)
        internal
        pure
        returns (int256)
    {
        return isLong ? int256(priceWad) - longIndexWad : int256(priceWad) + shortIndexWad;
    }

    /// @notice A position's value to the trader: size * mark - cost, floored.
    function valueWad(int256 sizeWad, int256 costWad, int256 markWad_) internal pure returns (int256) {
        return FixedPointMath.mulWadFloor(sizeWad, markWad_) - costWad;
    }

    /// @notice Cost added when `sizeDeltaWad` is bought or sold at `markWad_`, ceiled (toward +inf)
    ///         so the trader's future value rounds down.
    function addedCostWad(int256 sizeDeltaWad, int256 markWad_) internal pure returns (int256) {
        return FixedPointMath.mulWadCeil(sizeDeltaWad, markWad_);
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

    /// @notice Cost removed when `closeSizeWad` (same sign as `sizeWad`) is closed, pro rata and
    ///         ceiled, so the realised value (closed * mark - removed) rounds down.
    function removedCostWad(int256 costWad, int256 closeSizeWad, int256 sizeWad) internal pure returns (int256) {
        return costWad.mulDivCeil(closeSizeWad.abs(), sizeWad.abs());
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
