// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @dev Fixed-point scale for prices, sizes, ratios and USD amounts.
uint256 constant WAD = 1e18;
/// @dev Seconds in a day: funding and borrowing rates are quoted per day.
uint256 constant SECONDS_PER_DAY = 86_400;
/// @dev Markets are bits of an account's 32-bit position mask.
uint256 constant MAX_MARKETS = 32;
/// @dev Bounds the work of every equity computation (one price per position).
uint256 constant MAX_POSITIONS_PER_ACCOUNT = 8;
/// @dev Pending orders an account may hold (market and conditional together): one slot each.
uint256 constant MAX_ORDERS_PER_ACCOUNT = 8;
/// @dev $10^15 a unit: above any real asset, below 2^112 so prices pack into 112 bits.
uint256 constant MAX_PRICE_WAD = 1e33;
/// @dev ERC-4626 virtual shares per virtual asset (OpenZeppelin's inflation-attack defence).
uint256 constant VIRTUAL_SHARES = 1e6;

// Market parameter bounds (inclusive). A change outside them reverts `ParameterOutOfBounds`.
uint256 constant MIN_MARGIN_RATIO_WAD = 0.001e18; // 0.1%
uint256 constant MAX_MARGIN_RATIO_WAD = 1e18; // 100%
uint256 constant MAX_LEVERAGE = 100; // 100x
uint256 constant MAX_TRADING_FEE_WAD = 0.01e18; // 1% of notional (taker; maker <= taker)
uint256 constant MAX_FUNDING_RATE_PER_DAY_WAD = 0.1e18; // 10% of notional a day
uint256 constant MAX_BORROW_RATE_PER_DAY_WAD = 0.01e18; // 1% of notional a day at full utilisation
uint256 constant MIN_PROFIT_RATIO_WAD = 0.01e18; // a position's profit cap: at least 1% of its entry notional
uint256 constant MAX_PROFIT_RATIO_WAD = 10e18; // ... at most 1000%
uint256 constant MAX_OI_CAP_RATIO_WAD = 10e18; // 10x the pool, per side
uint256 constant MAX_MIN_MARGIN_WAD = 1_000e18; // $1,000
uint256 constant MAX_SKEW_SCALE_WAD = 1e30; // keeps every product of the fill price inside 2^256
uint256 constant MAX_PROTOCOL_FEE_SHARE_WAD = 0.5e18; // 50% of trading fees
/// @dev A market parameter change that tightens margin or lowers equity phases in over this long.
uint256 constant PARAM_RAMP_DURATION = 1 days;

// Oracle bounds.
uint256 constant MAX_ORACLE_AGE = 1 days;
uint256 constant MIN_MAX_DEVIATION_WAD = 0.001e18; // 0.1% per reference round
uint256 constant MIN_EWMA_LAMBDA_WAD = 0.5e18;
uint256 constant MAX_EWMA_LAMBDA_WAD = 0.999e18;
uint256 constant MAX_VOL_FACTOR_WAD = 10e18; // margin at most 10x its base
uint256 constant MAX_FACTOR_RISE_PER_DAY_WAD = 10e18;
uint256 constant MAX_CONF_RATIO_WAD = 0.1e18; // a pull price's confidence interval: at most 10% of it
uint256 constant MAX_REFERENCE_DEVIATION_WAD = 0.5e18; // pull price vs reference: at most 50% apart
uint256 constant MAX_SEQUENCER_GRACE = 1 days;

// Order bounds.
uint256 constant MAX_SETTLEMENT_DELAY = 1 hours;
uint256 constant MIN_SETTLEMENT_WINDOW = 10; // seconds
uint256 constant MAX_SETTLEMENT_WINDOW = 1 days;
uint256 constant MAX_EXECUTOR_FEE_WAD = 100e18; // $100 an order
uint256 constant MAX_LIQUIDATION_GRACE = 1 hours; // LP requests settle this long after their price

// Liquidation bounds.
uint256 constant MAX_TARGET_HEALTH_WAD = 3e18;
uint256 constant MAX_PENALTY_RATIO_WAD = 0.05e18; // 5% of closed notional
uint256 constant MAX_REWARD_RATIO_WAD = 0.02e18; // 2% of closed notional
uint256 constant MAX_KEEPER_REWARD_WAD = 10_000e18; // $10,000 hard cap
uint256 constant MAX_MIN_LEFTOVER_WAD = 1_000_000e18;
