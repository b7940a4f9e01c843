// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {LiquidationMath} from "../libraries/LiquidationMath.sol";

/// @title IPerpEngine
/// @notice Accounts, markets and perpetual positions. An account is an id owned by an address;
///         its positions share its margin (cross margin). Isolated margin is an account holding
///         one position. Trades execute at the oracle price; the trading fee is charged on the
///         traded notional; realised PnL settles between the account's margin and the pool.
interface IPerpEngine {
    /// @notice Bounded risk parameters of a market; every ratio is a WAD.
    struct MarketParams {
        address feed; // Chainlink-shaped price feed, read through the oracle adapter
        uint16 maxLeverage; // e.g. 20 = 20x: |notional| <= maxLeverage * equity after an increase
        uint64 tradingFeeWad; // share of traded notional, e.g. 0.0005e18 = 5 bp
        uint64 initialMarginRatioWad; // base initial margin ratio, scaled up with size
        uint64 maintenanceMarginRatioWad; // base maintenance margin ratio, scaled up with size
        uint64 maxFundingRatePerDayWad; // funding rate at |skew| >= skewScale
        uint64 reserveRatioWad; // share of the skew's notional LPs cannot redeem
        uint128 skewScaleWad; // size at which margin ratios double and funding is at its max
        uint128 minPositionSizeWad; // smallest non-zero position
        uint128 minMarginWad; // USD added to both margin requirements of a position
        uint128 oiCapRatioWad; // per-side open-interest notional cap, as a share of pool assets
    }

    /// @notice Mutable state of a market.
    struct MarketState {
        uint128 longOpenInterestWad; // sum of long sizes
        uint128 shortOpenInterestWad; // sum of |short sizes|
        int128 longFundingIndexWad; // cumulative funding per unit of long size (USD); rises when longs pay
        int128 shortFundingIndexWad; // cumulative funding per unit of short size (USD); rises when shorts pay
        int128 netOpenNotionalWad; // sum of positions' open notional (shorts negative)
        uint64 lastFundingTime;
    }

    /// @notice A position: signed size (long > 0), the signed USD paid for it, and the funding
    ///         index of its side when funding was last settled.
    struct Position {
        int128 sizeWad;
        int128 openNotionalWad;
        int128 fundingIndexWad;
    }

    /// @notice An account's figures at the current oracle prices, in WAD (USD).
    struct AccountState {
        uint256 marginWad;
        int256 equityWad; // margin + PnL - pending funding - closing fees
        uint256 initialMarginWad;
        uint256 maintenanceMarginWad;
        uint256 notionalWad;
        uint256 minMarginWad; // the fixed part of the maintenance margin (sum of markets' minimums)
        uint256 positionCount;
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
    event FundingAccrued(uint256 indexed marketId, int256 ratePerDayWad, int128 longIndexWad, int128 shortIndexWad);
    /// @notice Every change of a position, by a trader or (later) a liquidation.
    event PositionChanged(
        uint256 indexed accountId,
        uint256 indexed marketId,
        int256 sizeDeltaWad,
        int256 sizeAfterWad,
        uint256 priceWad,
        int256 realisedPnlWad,
        int256 fundingWad,
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
