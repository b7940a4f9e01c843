// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {FixedPointMath} from "./FixedPointMath.sol";
import {VIRTUAL_SHARES} from "./Constants.sol";

/// @title PoolMath
/// @notice The liquidity pool's value and its share conversions, pure; the one home of both
///         (mirrored in `lever.math`). Amounts are token units unless named `Wad`.
library PoolMath {
    using FixedPointMath for uint256;

    /// @notice The pool's value to its LPs: its ledger minus what it owes traders (a negative
    ///         liability, traders' net loss, adds). What the pool owes rounds up, what it is owed
    ///         down; never below zero.
    function poolValue(uint256 poolToken, int256 liabilityWad, uint256 tokenScale) internal pure returns (uint256) {
        if (liabilityWad >= 0) {
            uint256 owed = uint256(liabilityWad).toTokenUp(tokenScale);
            return poolToken > owed ? poolToken - owed : 0;
        }
        return poolToken + uint256(-liabilityWad).toTokenDown(tokenScale);
    }

    /// @notice The value an LP request settles at: the worse for the requester of the pool's value
    ///         at the request's pull prices and at the markets' newest stored prices (a deposit
    ///         gets the higher, a redemption the lower). The pull prices are the unique, unchosen
    ///         ones; the newest prices are at least as new as every fill, so a position opened
    ///         after the pull price cannot lend the requester a profit or loss it never had.
    function requestValue(uint256 atPull, uint256 atNewest, bool isDeposit) internal pure returns (uint256) {
        return isDeposit == (atPull > atNewest) ? atPull : atNewest;
    }

    /// @notice Shares minted for `assets` at a pool value: ERC-4626 with 10^6 virtual shares per
    ///         virtual asset, rounded down (in the pool's favour).
    function toSharesDown(uint256 assets, uint256 value, uint256 supply) internal pure returns (uint256) {
        return assets.mulDivDown(supply + VIRTUAL_SHARES, value + 1);
    }

    /// @notice Assets paid for `shares` at a pool value, rounded down.
    function toAssetsDown(uint256 shares, uint256 value, uint256 supply) internal pure returns (uint256) {
        return shares.mulDivDown(value + 1, supply + VIRTUAL_SHARES);
    }

    /// @notice A pro-rata part of a fulfilled request: `part * total / whole`, rounded down (what
    ///         a claim receives) or up (what a claim gives up).
    function proRataDown(uint256 part, uint256 total, uint256 whole) internal pure returns (uint256) {
        return part.mulDivDown(total, whole);
    }

    function proRataUp(uint256 part, uint256 total, uint256 whole) internal pure returns (uint256) {
        return part.mulDivUp(total, whole);
    }
}
