// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @dev Fixed-point scale for prices, sizes, ratios and USD amounts.
uint256 constant WAD = 1e18;
/// @dev Seconds in a day: funding rates are quoted per day.
uint256 constant SECONDS_PER_DAY = 86_400;
/// @dev Markets are bits of an account's position mask.
uint256 constant MAX_MARKETS = 64;
/// @dev Bounds the work of every equity computation (one oracle read per position).
uint256 constant MAX_POSITIONS_PER_ACCOUNT = 8;

// Parameter bounds (inclusive). A risk-role change outside them reverts.
uint256 constant MIN_MARGIN_RATIO_WAD = 0.001e18; // 0.1%
uint256 constant MAX_MARGIN_RATIO_WAD = 1e18; // 100%
uint256 constant MAX_LEVERAGE = 100; // 100x
uint256 constant MAX_TRADING_FEE_WAD = 0.01e18; // 1% of notional
uint256 constant MAX_FUNDING_RATE_PER_DAY_WAD = 0.1e18; // 10% of notional a day
uint256 constant MAX_OI_CAP_RATIO_WAD = 10e18; // 10x the pool, per side
uint256 constant MAX_RESERVE_RATIO_WAD = 1e18; // 100% of the skew's notional
uint256 constant MAX_MIN_MARGIN_WAD = 1_000e18; // $1,000
uint256 constant MAX_PROTOCOL_FEE_SHARE_WAD = 0.5e18; // 50% of trading fees
uint256 constant MAX_ORACLE_AGE = 1 days;
uint256 constant MAX_PRICE_WAD = 1e36; // $10^18 a unit: above any real asset, and every product fits

// Oracle adapter bounds.
uint256 constant MIN_MAX_DEVIATION_WAD = 0.001e18; // 0.1% per round
uint256 constant MIN_EWMA_LAMBDA_WAD = 0.5e18;
uint256 constant MAX_EWMA_LAMBDA_WAD = 0.999e18;
uint256 constant MAX_VOL_FACTOR_WAD = 10e18; // margin at most 10x its base
uint256 constant MAX_FACTOR_RISE_PER_DAY_WAD = 10e18;
/// @dev A risk-role increase of a maintenance margin ratio phases in linearly over this long.
uint256 constant MM_RAMP_DURATION = 1 days;

// Liquidation bounds.
uint256 constant MAX_TARGET_HEALTH_WAD = 3e18;
uint256 constant MAX_PENALTY_RATIO_WAD = 0.05e18; // 5% of closed notional
uint256 constant MAX_REWARD_RATIO_WAD = 0.02e18; // 2% of closed notional
uint256 constant MAX_KEEPER_REWARD_WAD = 10_000e18; // $10,000 hard cap
uint256 constant MAX_MIN_LEFTOVER_WAD = 1_000_000e18;
