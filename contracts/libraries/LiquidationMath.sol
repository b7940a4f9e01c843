// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {FixedPointMath} from "./FixedPointMath.sol";
import {WAD} from "./Constants.sol";

/// @title LiquidationMath
/// @notice How much of an unhealthy account to close, and what the keeper and the insurance
///         fund get, pure. Amounts are WAD (USD); mirrored exactly in `lever.math`.
library LiquidationMath {
    using FixedPointMath for uint256;

    /// @notice Liquidation settings (global, changed only by the risk role within bounds).
    struct Params {
        uint64 targetHealthWad; // health a partial liquidation restores, e.g. 1.25e18
        uint64 maxPartialShareWad; // a partial liquidation closes less than this share; from it on, all
        uint64 penaltyRatioWad; // share of closed notional paid to the insurance fund
        uint64 rewardRatioWad; // share of closed notional paid to the keeper (before bounds)
        uint80 minRewardWad; // keeper reward floor (USD): worth a keeper's gas
        uint80 maxRewardWad; // keeper reward hard cap (USD)
        uint96 minLeftoverNotionalWad; // a partial liquidation never leaves less notional than this
    }

    /// @notice The share of every position to close (WAD; 1e18 = all of it).
    /// @dev Partial when the share that restores `targetHealth` is below `maxPartialShare` and
    ///      leaves at least `minLeftoverNotional`; otherwise the account is closed in full
    ///      ("deeply underwater", or dust would remain). The share f solves
    ///        E - penalty(f) - reward(f) >= H * ((1 - f) * (MM - MMmin) + MMmin)
    ///      with penalty = p*f*N and reward = clamp(r*f*N, minReward, maxReward), taking the
    ///      reward bound that applies; both sides are bounded conservatively and f rounds up.
    ///      E: equity, MM: maintenance margin, MMmin: its fixed part, N: notional, H: target.
    function closeShareWad(
        int256 equityWad,
        uint256 maintenanceWad,
        uint256 minMarginsWad,
        uint256 notionalWad,
        Params memory p
    ) internal pure returns (uint256) {
        if (equityWad <= 0) return WAD;
        int256 gap = int256(maintenanceWad.mulDivUp(p.targetHealthWad, WAD)) - equityWad;
        uint256 variable = (maintenanceWad - minMarginsWad).mulDivDown(p.targetHealthWad, WAD);
        uint256 penaltyPerShare = notionalWad.mulDivUp(p.penaltyRatioWad, WAD);
        uint256 rewardPerShare = notionalWad.mulDivUp(p.rewardRatioWad, WAD);
        if (variable <= penaltyPerShare) return WAD;
        uint256 share;
        if (variable > penaltyPerShare + rewardPerShare) {
            // Reward proportional to the share closed.
            share = _ceilShare(gap, variable - penaltyPerShare - rewardPerShare);
            uint256 reward = rewardPerShare.mulDivUp(share, WAD);
            if (reward < p.minRewardWad) {
                share = _ceilShare(gap + int256(uint256(p.minRewardWad)), variable - penaltyPerShare);
            } else if (reward > p.maxRewardWad) {
                share = _ceilShare(gap + int256(uint256(p.maxRewardWad)), variable - penaltyPerShare);
            }
        } else {
            share = _ceilShare(gap + int256(uint256(p.maxRewardWad)), variable - penaltyPerShare);
        }
        if (share >= p.maxPartialShareWad) return WAD;
        if (notionalWad.mulDivDown(WAD - share, WAD) < p.minLeftoverNotionalWad) return WAD;
        return share;
    }

    /// @notice Keeper reward for a closed notional: clamp(r * closed, min, max), rounded down.
    /// @dev The vault further caps it at the margin left, after the account's losses and fees.
    function rewardWad(uint256 closedNotionalWad, Params memory p) internal pure returns (uint256) {
        uint256 reward = closedNotionalWad.mulDivDown(p.rewardRatioWad, WAD);
        if (reward < p.minRewardWad) return p.minRewardWad;
        return reward < p.maxRewardWad ? reward : p.maxRewardWad;
    }

    /// @notice Liquidation penalty for a closed notional, rounded up (to the insurance fund).
    function penaltyWad(uint256 closedNotionalWad, Params memory p) internal pure returns (uint256) {
        return closedNotionalWad.mulDivUp(p.penaltyRatioWad, WAD);
    }

    /// @dev ceil(gap / denominator) as a WAD share; gap > 0 here because equity < maintenance.
    function _ceilShare(int256 gap, uint256 denominator) private pure returns (uint256) {
        return uint256(gap).mulDivUp(WAD, denominator);
    }
}
