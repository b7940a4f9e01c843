// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {LiquidationMath} from "../libraries/LiquidationMath.sol";

/// @title IPerpEngine
/// @notice Accounts, markets and perpetual positions. An account is an id owned by an address;
///         its positions share its margin (cross margin). Isolated margin is an account holding
///         one position. Trades execute at the oracle price; the trading fee is charged on the
///         traded notional; realised PnL settles between the account's margin and the pool.
interface IPerpEngine {
    /// @notice Bounded risk parameters of a market; every ratio is a WAD. Four slots; the last
    ///         is read only by increases (OI cap) and pool views (reserve).
    struct MarketParams {
        address feed; // Chainlink-shaped price feed, read through the oracle adapter
        uint16 maxLeverage; // e.g. 20 = 20x: |notional| <= maxLeverage * equity after an increase
        uint80 minMarginWad; // USD added to both margin requirements of a position
        uint64 tradingFeeWad; // share of traded notional, e.g. 0.0005e18 = 5 bp
        uint64 initialMarginRatioWad; // base initial margin ratio, scaled up with size and volatility
        uint64 maintenanceMarginRatioWad; // base maintenance margin ratio, scaled up with size and volatility
        uint64 maxFundingRatePerDayWad; // funding rate at |skew| >= skewScale
        uint128 skewScaleWad; // size at which margin ratios double and funding is at its max
        uint128 minPositionSizeWad; // smallest non-zero position
        uint64 reserveRatioWad; // share of the skew's notional LPs cannot redeem
        uint128 oiCapRatioWad; // per-side open-interest notional cap, as a share of pool assets
    }

    /// @notice Mutable state of a market (three slots).
    struct MarketState {
        uint128 longOpenInterestWad; // sum of long sizes
        uint128 shortOpenInterestWad; // sum of |short sizes|
        int128 longFundingIndexWad; // cumulative funding per unit of long size (USD); rises when longs pay
        int128 shortFundingIndexWad; // cumulative funding per unit of short size (USD); rises when shorts pay
        int112 netCostWad; // sum of positions' cost (shorts negative): traders' value = L*markL - S*markS - netCost
        uint40 lastFundingTime;
        uint40 mmrRampStart; // a raised maintenance ratio phases in from mmrRampFromWad since then (0: none)
        uint64 mmrRampFromWad;
    }

    /// @notice A position in one storage slot: signed size (long > 0) and cost, the signed USD
    ///         paid for it at the mark (price -/+ the side's cumulative funding). Its value to the
    ///         trader is size * mark - cost = unrealised PnL - pending funding, so funding accrues
    ///         continuously and is realised with PnL whenever the position is reduced or closed.
    struct Position {
        int128 sizeWad;
        int128 costWad;
    }

    /// @notice An account's figures at the current oracle prices, in WAD (USD).
    struct AccountState {
        uint256 marginWad;
        int256 equityWad; // margin + unrealised PnL - pending funding - closing fees
        uint256 initialMarginWad;
        uint256 maintenanceMarginWad;
        uint256 notionalWad;
        uint256 minMarginWad; // the fixed part of the maintenance margin (sum of markets' minimums)
        uint256 positionCount;
    }

    /// @notice One position at current prices, for UIs (WAD, USD).
    struct PositionDetails {
        int256 sizeWad;
        int256 costWad;
        uint256 priceWad;
        int256 valueWad; // unrealised PnL - pending funding
        uint256 notionalWad;
        uint256 closeFeeWad;
        uint256 initialMarginWad;
        uint256 maintenanceMarginWad;
        uint256 liquidationPriceWad; // 0 if none
    }

    /// @notice What one liquidation did (all zero but equity/maintenance when it did nothing).
    struct LiquidationResult {
        bool liquidated;
        bool full;
        uint256 closeShareWad; // share of every position closed (1e18 = all)
        uint256 closedNotionalWad;
        uint256 rewardToken; // paid to the keeper
        uint256 penaltyToken; // paid to the insurance fund
        uint256 badDebtToken; // shortfall realised (covered by insurance, then the pool)
        int256 equityWad; // before the liquidation
        uint256 maintenanceMarginWad; // before the liquidation
    }

    event AccountCreated(uint256 indexed accountId, address indexed owner);
    event MarketCreated(uint256 indexed marketId, bytes32 name, address feed);
    event MarketParamsSet(uint256 indexed marketId, MarketParams params);
    /// @notice Every change of a position, by its trader or by a liquidation.
    /// @param realisedWad PnL net of funding realised by a reduction (0 for an increase)
    event PositionChanged(
        uint256 indexed accountId,
        uint256 indexed marketId,
        int256 sizeDeltaWad,
        int256 sizeAfterWad,
        uint256 priceWad,
        int256 realisedWad,
        uint256 feeWad
    );

    /// @notice Creates an account owned by the caller.
    function createAccount() external returns (uint256 accountId);

    /// @notice Opens, increases or decreases a position by `sizeDeltaWad` (positive buys).
    /// @param limitPriceWad worst acceptable oracle price (max for a buy, min for a sell); 0 = none.
    /// @dev Increases revert while paused (`EnforcedPause`) or while the market's oracle is in an
    ///      unconfirmed shock (`OracleShockUnconfirmed`), and check `OpenInterestCapExceeded`,
    ///      `LeverageTooHigh` and `InsufficientMargin` afterwards. Decreases are always allowed.
    ///      A trade that would flip the side reverts `PositionFlip`; a remainder below the
    ///      minimum size reverts `PositionTooSmall`.
    function modifyPosition(uint256 accountId, uint256 marketId, int256 sizeDeltaWad, uint256 limitPriceWad) external;

    /// @notice Closes part or all of an unhealthy account's positions at the oracle price and
    ///         settles reward, penalty and any bad debt. Only the liquidation module.
    /// @dev Returns `liquidated == false` (and changes nothing but recorded oracle rounds and
    ///      accrued funding) when the account has no position or is healthy, so a batch can skip it.
    function liquidate(uint256 accountId, address keeper, LiquidationMath.Params calldata params)
        external
        returns (LiquidationResult memory);

    /// @notice Closes the whole position. Never blocked by pause or by an oracle shock.
    function closePosition(uint256 accountId, uint256 marketId, uint256 limitPriceWad) external;

    /// @notice Creates a market. Only `RISK_ROLE`. Parameters are checked against their bounds.
    function createMarket(bytes32 name, MarketParams calldata params) external returns (uint256 marketId);

    /// @notice Replaces a market's parameters. Only `RISK_ROLE`. Bounds are checked. A raised
    ///         maintenance ratio phases in linearly over `MM_RAMP_DURATION` (1 day), so the change
    ///         cannot liquidate an account that was healthy before it; a lowered one applies at once.
    function setMarketParams(uint256 marketId, MarketParams calldata params) external;

    /// @notice Accrues a market's funding to now. Anyone may call.
    function accrueFunding(uint256 marketId) external;

    function pause() external;
    function unpause() external;

    // --- views ---
    function accountOwner(uint256 accountId) external view returns (address);
    /// @notice Bit m set: the account has a position in market m.
    function accountMarketMask(uint256 accountId) external view returns (uint256);
    /// @notice The base maintenance margin ratio in force now (during a ramp, between old and new).
    function effectiveMaintenanceRatio(uint256 marketId) external view returns (uint256);
    function accountCount() external view returns (uint256);
    function marketCount() external view returns (uint256);
    function marketParams(uint256 marketId) external view returns (MarketParams memory);
    function marketState(uint256 marketId) external view returns (MarketState memory);
    /// @notice Market state with funding accrued to now (what the next trade will see).
    function currentMarketState(uint256 marketId) external view returns (MarketState memory);
    function position(uint256 accountId, uint256 marketId) external view returns (Position memory);
    /// @notice A position's figures at current prices, with its liquidation price.
    function positionDetails(uint256 accountId, uint256 marketId) external view returns (PositionDetails memory);
    /// @notice Market ids in which the account holds a position.
    function accountMarkets(uint256 accountId) external view returns (uint256[] memory);
    function accountState(uint256 accountId) external view returns (AccountState memory);
    /// @notice Price at which the account's maintenance margin would exceed its equity if only
    ///         this market's price moved; 0 if no such positive price exists.
    function liquidationPrice(uint256 accountId, uint256 marketId) external view returns (uint256);
    /// @notice Net unrealised PnL of all traders (positive: the pool owes it) and the assets LPs
    ///         may not redeem (reserve on each market's skew), in WAD.
    function poolExposure() external view returns (int256 traderPnlWad, uint256 reservedWad);

    /// @notice Reverts unless `caller` owns the account and its equity with `marginAfterToken`
    ///         of margin covers its initial margin. Used by the vault on withdrawals.
    function checkWithdrawal(uint256 accountId, address caller, uint256 marginAfterToken) external view;
}
