// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {FixedPointMath} from "./FixedPointMath.sol";
import {WAD, SECONDS_PER_DAY} from "./Constants.sol";

/// @title VolatilityMath
/// @notice A cheap running volatility estimate and the margin factors derived from it, pure.
///         Everything rounds toward more margin (the protocol's side). Mirrored in `lever.math`.
library VolatilityMath {
    using FixedPointMath for uint256;

    /// @notice |next - prev| / prev, rounded up.
    function returnWad(uint256 prevPriceWad, uint256 nextPriceWad) internal pure returns (uint256) {
        uint256 move = nextPriceWad > prevPriceWad ? nextPriceWad - prevPriceWad : prevPriceWad - nextPriceWad;
        return move.mulDivUp(WAD, prevPriceWad);
    }

    /// @notice EWMA of squared returns: lambda * variance + (1 - lambda) * r^2, rounded up.
    function nextVarianceWad(uint256 varianceWad, uint256 returnWad_, uint256 lambdaWad)
        internal
        pure
        returns (uint256)
    {
        uint256 squared = returnWad_.mulDivUp(returnWad_, WAD);
        return (lambdaWad * varianceWad + (WAD - lambdaWad) * squared).divUp(WAD);
    }

    /// @notice Margin factor for a variance: sqrt(variance) / refVolatility, clamped to
    ///         [1, maxFactor]. The square root rounds down (OpenZeppelin), the ratio up.
    function targetFactorWad(uint256 varianceWad, uint256 refVolatilityWad, uint256 maxFactorWad)
        internal
        pure
        returns (uint256)
    {
        uint256 volatilityWad = Math.sqrt(varianceWad * WAD);
        uint256 factor = volatilityWad.mulDivUp(WAD, refVolatilityWad);
        if (factor < WAD) return WAD;
        return factor < maxFactorWad ? factor : maxFactorWad;
    }

    /// @notice The maintenance factor: drops to the target at once; rises from the last
    ///         checkpoint by at most `risePerDayWad` a day (rounded up), never above the target.
    function rampedFactorWad(
        uint256 targetWad,
        uint256 checkpointWad,
        uint256 checkpointTime,
        uint256 risePerDayWad,
        uint256 timestamp
    ) internal pure returns (uint256) {
        if (targetWad <= checkpointWad) return targetWad;
        uint256 risen = checkpointWad + risePerDayWad.mulDivUp(timestamp - checkpointTime, SECONDS_PER_DAY);
        return risen < targetWad ? risen : targetWad;
    }
}
