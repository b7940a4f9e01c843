// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {FixedPointMath} from "./FixedPointMath.sol";
import {WAD, SECONDS_PER_DAY} from "./Constants.sol";

/// @title PerpMath
/// @notice The position formulas, pure. Every amount is WAD (USD or base units); every
///         rounding favours the protocol: what a trader is credited rounds down (floor), what a
///         trader owes rounds up (ceil). `lever.math` in Python mirrors this file exactly.
/// @dev A position is (size, cost, entryCharge): cost is the signed USD paid at the fill prices
///      (`size * fill`, summed), entryCharge the side's charge index at each fill times the size
///      added. The side's charge index accumulates funding and borrowing per unit of size, so a
///      position owes `|size| * index - entryCharge` of them at any moment.
library PerpMath {
    using FixedPointMath for uint256;
    using FixedPointMath for int256;

    /// @notice |size| * price, rounded up (notional is a base for what traders owe).
    function notionalWad(int256 sizeWad, uint256 priceWad) internal pure returns (uint256) {
        return sizeWad.abs().mulDivUp(priceWad, WAD);
    }

    /// @notice The price a trade of `sizeDeltaWad` fills at, from a skew of `skewWad` (long OI
    ///         minus short OI): the oracle price times one plus the average premium before and
    ///         after the trade, `p * (2K + 2 skew + delta) / 2K` (Synthetix perps v3). Buys round
    ///         up, sells down. Returns 0 when the skew makes the price non-positive.
    function fillPriceWad(uint256 priceWad, int256 skewWad, int256 sizeDeltaWad, uint256 skewScaleWad)
        internal
        pure
        returns (uint256)
    {
        int256 numerator = 2 * int256(skewScaleWad) + 2 * skewWad + sizeDeltaWad;
        if (numerator <= 0) return 0;
        uint256 denominator = 2 * skewScaleWad;
        return sizeDeltaWad > 0
            ? priceWad.mulDivUp(uint256(numerator), denominator)
            : priceWad.mulDivDown(uint256(numerator), denominator);
    }

    /// @notice Trading fee: the part of the trade that reduces |skew| pays the maker fee, the rest
    ///         the taker fee, each on its notional at the fill price; all rounded up.
    function tradeFeeWad(int256 skewWad, int256 sizeDeltaWad, uint256 fillWad, uint256 makerFeeWad, uint256 takerFeeWad)
        internal
        pure
        returns (uint256)
    {
        uint256 size = sizeDeltaWad.abs();
        uint256 reducing;
        if ((skewWad > 0 && sizeDeltaWad < 0) || (skewWad < 0 && sizeDeltaWad > 0)) reducing = size.min(skewWad.abs());
        return reducing.mulDivUp(fillWad, WAD).mulDivUp(makerFeeWad, WAD)
            + (size - reducing).mulDivUp(fillWad, WAD).mulDivUp(takerFeeWad, WAD);
    }

    /// @notice Fee on a notional at a fee ratio, rounded up (the closing fee counted in equity).
    function feeWad(uint256 notional, uint256 feeRatioWad) internal pure returns (uint256) {
        return notional.mulDivUp(feeRatioWad, WAD);
    }

    /// @notice Margin ratio for a position of `sizeWad`: base * (1 + |size| / scale) * factor,
    ///         at most 100%. Larger positions need proportionally more margin (Synthetix-style);
    ///         `factorWad` is the oracle's volatility factor (1e18 in calm markets). Ceiled.
    function scaledRatioWad(uint256 baseRatioWad, int256 sizeWad, uint256 scaleWad, uint256 factorWad)
        internal
        pure
        returns (uint256)
    {
        uint256 ratio = baseRatioWad + baseRatioWad.mulDivUp(sizeWad.abs(), scaleWad);
        ratio = ratio.mulDivUp(factorWad, WAD);
        return ratio < WAD ? ratio : WAD;
    }

    /// @notice Funding and borrowing a position owes since its fills: |size| * index (ceiled)
    ///         minus what the index stood at when the size was added.
    function chargeOwedWad(uint256 absSizeWad, int256 indexWad, int256 entryChargeWad) internal pure returns (int256) {
        return FixedPointMath.mulWadCeil(int256(absSizeWad), indexWad) - entryChargeWad;
    }

    /// @notice A position's profit cap: `maxProfitRatio` of its entry notional |cost|, floored.
    function profitCapWad(int256 costWad, uint256 maxProfitRatioWad) internal pure returns (int256) {
        return int256(costWad.abs().mulDivDown(maxProfitRatioWad, WAD));
    }

    /// @notice What closing (part of) a position is worth to the trader: `size * fill - cost -
    ///         charges owed`, floored, and never more than its profit cap.
    function valueWad(
        int256 sizeWad,
        int256 costWad,
        int256 entryChargeWad,
        uint256 closeFillWad,
        int256 indexWad,
        uint256 maxProfitRatioWad
    ) internal pure returns (int256) {
        int256 raw = FixedPointMath.mulWadFloor(sizeWad, int256(closeFillWad)) - costWad
            - chargeOwedWad(sizeWad.abs(), indexWad, entryChargeWad);
        int256 cap = profitCapWad(costWad, maxProfitRatioWad);
        return raw < cap ? raw : cap;
    }

    /// @notice Cost added when `sizeDeltaWad` is bought or sold at `fillWad`, ceiled (toward +inf)
    ///         so the trader's future value rounds down.
    function addedCostWad(int256 sizeDeltaWad, uint256 fillWad) internal pure returns (int256) {
        return FixedPointMath.mulWadCeil(sizeDeltaWad, int256(fillWad));
    }

    /// @notice Entry charge added with `absDeltaWad` of size at the side's index, floored (what
    ///         the position will owe rounds up).
    function addedEntryChargeWad(uint256 absDeltaWad, int256 indexWad) internal pure returns (int256) {
        return FixedPointMath.mulWadFloor(int256(absDeltaWad), indexWad);
    }

    /// @notice Cost removed when |closed| of |size| is closed, pro rata and ceiled toward +inf, so
    ///         the realised value (closed * fill - removed) rounds down.
    function removedCostWad(int256 costWad, uint256 absClosedWad, uint256 absSizeWad) internal pure returns (int256) {
        return costWad.mulDivCeil(absClosedWad, absSizeWad);
    }

    /// @notice Entry charge removed with the closed size, pro rata and floored (the closed part's
    ///         charges owed round up).
    function removedEntryChargeWad(int256 entryChargeWad, uint256 absClosedWad, uint256 absSizeWad)
        internal
        pure
        returns (int256)
    {
        return entryChargeWad.mulDivFloor(absClosedWad, absSizeWad);
    }

    /// @notice Funding rate per day for a skew: maxRate * clamp(skew / fundingScale, -1, 1),
    ///         floored in magnitude. Positive: longs pay.
    function fundingRatePerDayWad(int256 skewWad, uint256 fundingScaleWad, uint256 maxRatePerDayWad)
        internal
        pure
        returns (int256)
    {
        uint256 magnitude = skewWad.abs();
        if (magnitude > fundingScaleWad) magnitude = fundingScaleWad;
        uint256 rate = maxRatePerDayWad.mulDivDown(magnitude, fundingScaleWad);
        return skewWad >= 0 ? int256(rate) : -int256(rate);
    }

    /// @notice Index increase per unit of size over `elapsed` seconds at a daily rate, ceiled.
    function chargeIndexDeltaWad(uint256 ratePerDayWad, uint256 priceWad, uint256 elapsed)
        internal
        pure
        returns (uint256)
    {
        return (priceWad * ratePerDayWad).mulDivUp(elapsed, WAD * SECONDS_PER_DAY);
    }

    /// @notice Index decrease per unit of size for the receiving side: what the payers pay,
    ///         shared over the receivers' open interest, but never more per unit than a payer
    ///         pays (a dust receiver earns the payers' rate on its own size, no more); the rest
    ///         stays with the pool. Floored.
    function receiverIndexDeltaWad(uint256 payerDeltaWad, uint256 payerOiWad, uint256 receiverOiWad)
        internal
        pure
        returns (uint256)
    {
        if (receiverOiWad <= payerOiWad) return payerDeltaWad;
        return payerDeltaWad.mulDivDown(payerOiWad, receiverOiWad);
    }

    /// @notice Borrowing rate per day of a side: the rate at full utilisation times the side's
    ///         utilisation, its reserve over the pool (at most 1). Ceiled.
    function borrowRatePerDayWad(uint256 rateAtFullWad, uint256 sideReserveWad, uint256 poolWad)
        internal
        pure
        returns (uint256)
    {
        if (sideReserveWad == 0) return 0;
        if (poolWad <= sideReserveWad) return rateAtFullWad;
        return rateAtFullWad.mulDivUp(sideReserveWad, poolWad);
    }

    /// @notice What the pool must hold for a side: the most all its positions can win, `cost *
    ///         maxProfitRatio`, ceiled.
    function reserveWad(uint256 sideCostWad, uint256 maxProfitRatioWad) internal pure returns (uint256) {
        return sideCostWad.mulDivUp(maxProfitRatioWad, WAD);
    }

    /// @notice What a whole side is worth to its traders at the oracle price, as the pool counts
    ///         it (every rounding against the pool): `L * p - cost - owed` for longs,
    ///         `cost - S * p - owed` for shorts, at most the side's reserve.
    function sideValueWad(
        bool isLong,
        uint256 oiWad,
        uint256 costWad,
        int256 entryChargeWad,
        uint256 priceWad,
        int256 indexWad,
        uint256 maxProfitRatioWad
    ) internal pure returns (int256 value) {
        int256 owed = FixedPointMath.mulWadFloor(int256(oiWad), indexWad) - entryChargeWad;
        value = isLong
            ? int256(oiWad.mulDivUp(priceWad, WAD)) - int256(costWad) - owed
            : int256(costWad) - int256(oiWad.mulDivDown(priceWad, WAD)) - owed;
        int256 cap = int256(reserveWad(costWad, maxProfitRatioWad));
        if (value > cap) value = cap;
    }

    /// @notice A profit scaled by the pool's coverage when the pool holds less than every side's
    ///         reserve (after bad debt): `profit * pool / reserve`, floored; losses unchanged.
    ///         Closing first never pays more than closing last: the ratio can only rise as capped
    ///         profits are paid out of it.
    function coveredWad(int256 valueWad_, uint256 poolWad, uint256 totalReserveWad) internal pure returns (int256) {
        if (valueWad_ <= 0 || poolWad >= totalReserveWad) return valueWad_;
        return int256(uint256(valueWad_).mulDivDown(poolWad, totalReserveWad));
    }
}
