// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IOracleAdapter} from "./IOracleAdapter.sol";
import {ILeverVault} from "./ILeverVault.sol";
import {LiquidationMath} from "../libraries/LiquidationMath.sol";

/// @title IPerpEngine
/// @notice Accounts, markets and perpetual positions. An account is an id owned by an address;
///         its positions share its margin (cross margin). Isolated margin is an account holding
///         one position. Trades reach the engine only through the order book (two steps, at a
///         price published after the order) and the liquidation module; they fill at the pull
///         price adjusted for the market's skew, pay maker/taker fees, and settle realised PnL
///         between the account's margin and the pool.
interface IPerpEngine {
    /// @notice Bounded risk parameters of a market; every ratio is a WAD. Changed only by the
    ///         risk role (a timelock); a change that tightens margin or lowers equity phases in
    ///         over PARAM_RAMP_DURATION. Five slots; the fifth holds the funding scale.
    struct MarketParams {
        uint16 maxLeverage; // e.g. 20 = 20x: |notional| <= maxLeverage * equity after an increase
        uint80 minMarginWad; // USD added to both margin requirements of a position
        uint64 takerFeeWad; // fee on the part of a trade that builds skew, e.g. 0.0005e18 = 5 bp
        uint64 makerFeeWad; // fee on the part that reduces skew (<= taker)
        uint64 initialMarginRatioWad; // base initial margin ratio, scaled up with size and volatility
        uint64 maintenanceMarginRatioWad; // base maintenance margin ratio, scaled up likewise
        uint64 maxFundingRatePerDayWad; // funding rate at |skew| >= skewScale
        uint64 borrowRatePerDayWad; // borrowing rate of a side whose reserve is the whole pool
        uint64 maxProfitRatioWad; // a position's profit cap, as a share of its entry notional
        uint64 oiCapRatioWad; // per-side open-interest notional cap, as a share of pool assets
        uint128 skewScaleWad; // skew at which the fill premium is 100% (large: sandwiching must not pay)
        uint128 minPositionSizeWad; // smallest non-zero position
        uint128 fundingScaleWad; // skew at which funding is at its max; size at which margin ratios double
    }

    /// @notice Mutable state of a market (four slots).
    struct MarketState {
        uint96 longOpenInterestWad; // sum of long sizes
        uint96 shortOpenInterestWad; // sum of |short sizes|
        uint32 lastAccrualTime;
        uint32 rampStart; // a parameter change phases in from then (0: none)
        uint128 longCostWad; // sum of longs' entry notional (size * fill)
        uint128 shortCostWad; // sum of shorts' entry notional
        int128 longIndexWad; // cumulative funding + borrowing charged per unit of long size
        int128 shortIndexWad; // the same for shorts (falls when they receive funding)
        int128 longEntryChargeWad; // sum over longs of |size added| * index at the fill
        int128 shortEntryChargeWad;
    }

    /// @notice A position in two slots. Its value to the trader is
    ///         `size * closeFill - cost - (|size| * index - entryCharge)`, at most its profit cap.
    struct Position {
        int128 sizeWad; // signed: long > 0
        int128 costWad; // signed USD paid at the fills (size * fill, summed)
        int128 entryChargeWad; // sum of |size added| * the side's index at each fill
        uint32 lastIncreaseTime; // conditional orders need a price newer than this plus the delay
    }

    /// @notice An account's figures at the stored latest prices, in WAD (USD).
    struct AccountState {
        int256 marginWad; // signed: a realised loss beyond the margin is the account's debt
        int256 equityWad; // margin + value of every position - closing fees
        uint256 initialMarginWad;
        uint256 maintenanceMarginWad;
        uint256 notionalWad;
        uint256 minMarginWad; // the fixed part of the maintenance margin (sum of markets' minimums)
        uint256 positionCount;
    }

    /// @notice One trade for the engine to fill, from the order book.
    struct Trade {
        uint256 accountId;
        uint256 marketId;
        int256 sizeDeltaWad; // positive buys
        uint256 acceptablePriceWad; // worst fill price (max for a buy, min for a sell); 0 = none
        bool reduceOnly; // clip to the position and never increase it
        IOracleAdapter.PriceData price; // the pull price the trade fills at
    }

    /// @notice What a filled trade did.
    struct TradeResult {
        int256 sizeDeltaWad; // after reduce-only clipping
        int256 sizeAfterWad;
        uint256 fillPriceWad;
        int256 realisedWad; // PnL net of funding and borrowing realised by a reduction
        uint256 feeWad;
        int256 marginAfterToken;
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
        uint256 closedMask; // markets whose position the liquidation closed
    }

    event AccountCreated(uint256 indexed accountId, address indexed owner);
    event MarketCreated(uint256 indexed marketId, bytes32 name);
    event MarketParamsSet(uint256 indexed marketId, MarketParams params, uint256 rampUntil);
    /// @notice Funding and borrowing accrued on a market up to `timestamp` (indices after).
    event Accrued(
        uint256 indexed marketId, int256 longIndexWad, int256 shortIndexWad, uint256 priceWad, uint256 timestamp
    );
    /// @notice Every change of a position, by an order or by a liquidation.
    /// @param realisedWad PnL net of charges realised by a reduction (0 for an increase)
    event PositionChanged(
        uint256 indexed accountId,
        uint256 indexed marketId,
        int256 sizeDeltaWad,
        int256 sizeAfterWad,
        uint256 fillPriceWad,
        uint256 oraclePriceWad,
        int256 realisedWad,
        uint256 feeWad
    );

    /// @notice Creates an account owned by the caller.
    function createAccount() external returns (uint256 accountId);

    /// @notice Fills a trade at its pull price. Only the order book.
    /// @dev Reverts (so the order book cancels the order) with `EnforcedPause` or
    ///      `OracleShockUnconfirmed` on an increase, `AcceptablePriceExceeded`, `FillPriceInvalid`,
    ///      `PositionFlip`, `PositionTooSmall`, `TooManyPositions`, `ReduceOnlyViolated`,
    ///      `OpenInterestCapExceeded`, `ReserveExceeded`, `LeverageTooHigh`, `InsufficientMargin`,
    ///      and `AccountUnderwater` (closing the last position would leave a debt); with the
    ///      oracle's errors when another market's price is stale (the order then waits).
    function executeTrade(Trade calldata trade) external returns (TradeResult memory);

    /// @notice Closes part or all of an unhealthy account's positions at the stored latest
    ///         prices (skew-adjusted) and settles reward, penalty and any bad debt. Only the
    ///         liquidation module.
    /// @dev Returns `liquidated == false` and writes nothing when the account has no position, is
    ///      healthy, or a market's latest price is not newer than the account's last trade, so a
    ///      batch can skip it. An account below maintenance first has its pending orders cancelled
    ///      (their fees back to its margin); if that makes it healthy, it is not liquidated and its
    ///      orders stay cancelled. Reverts `OracleStalePrice` if a price is older than its market's
    ///      `maxExecutionAge` (and the sequencer errors while an L2 sequencer is down).
    function liquidate(uint256 accountId, address keeper, LiquidationMath.Params calldata params)
        external
        returns (LiquidationResult memory);

    /// @notice Creates a market (its oracle must be configured first). Only `RISK_ROLE`.
    function createMarket(bytes32 name, MarketParams calldata params) external returns (uint256 marketId);

    /// @notice Replaces a market's parameters. Only `RISK_ROLE` (a timelock). Bounds are checked.
    ///         Figures that the change tightens (maintenance margin, closing fee, the value of a
    ///         position: its profit cap and close price) move linearly from the old to the new
    ///         over PARAM_RAMP_DURATION, so no account that was healthy is liquidated by the
    ///         change itself; relaxations and the initial margin of new trades apply at once.
    ///         A second change waits for the first to phase in (`ParameterRampInProgress`). The profit
    ///         cap (`maxProfitRatio`, which also sets the pool's reserve) may be lowered only on a
    ///         market without open interest, and raised only as far as the pool covers the reserve.
    function setMarketParams(uint256 marketId, MarketParams calldata params) external;

    /// @notice Accrues a market's funding and borrowing to now at its latest price. Anyone may call.
    function accrue(uint256 marketId) external;

    function pause() external;
    function unpause() external;

    // --- views ---
    function accountOwner(uint256 accountId) external view returns (address);
    /// @notice The account's owner and the number of markets, in one call (the order book's
    ///         checks when an order is placed).
    function accountOwnerAndMarketCount(uint256 accountId) external view returns (address owner, uint256 markets);
    /// @notice Bit m set: the account has a position in market m.
    function accountMarketMask(uint256 accountId) external view returns (uint256);
    /// @notice When the account last traded (a liquidation needs a newer price).
    function accountLastTradeTime(uint256 accountId) external view returns (uint256);
    function accountCount() external view returns (uint256);
    /// @notice The vault that holds the margins, the pool and the insurance fund.
    function vault() external view returns (ILeverVault);
    function marketCount() external view returns (uint256);
    function marketParams(uint256 marketId) external view returns (MarketParams memory);
    /// @notice The parameters a phasing-in change started from (all zero when none).
    function previousMarketParams(uint256 marketId) external view returns (MarketParams memory);
    function marketState(uint256 marketId) external view returns (MarketState memory);
    /// @notice Market state with funding and borrowing accrued to now at the latest price.
    function currentMarketState(uint256 marketId) external view returns (MarketState memory);
    function position(uint256 accountId, uint256 marketId) external view returns (Position memory);
    /// @notice Market ids in which the account holds a position.
    function accountMarkets(uint256 accountId) external view returns (uint256[] memory);
    /// @notice The account's figures at the stored latest prices.
    function accountState(uint256 accountId) external view returns (AccountState memory);
    /// @notice Sum over markets and sides of the reserve every side's capped profit needs.
    function totalReserveWad() external view returns (uint256);
    /// @notice What the pool owes traders (negative: what they owe it) at the given prices, with
    ///         funding and borrowing accrued to now. `pricesWad[m] == 0` marks a market without a
    ///         usable price: it counts at its worst case for the pool (both sides' reserves).
    function poolLiabilityWad(uint256[] calldata pricesWad) external view returns (int256);
    /// @notice `poolLiabilityWad` at the stored latest prices (a stale one counts at its worst case).
    function poolLiabilityAtLatestWad() external view returns (int256);
    /// @notice Whether every market priced in `pricesWad` keeps each side's open-interest notional
    ///         within its cap of a pool of `poolWad` (an LP redemption must not break a cap).
    function oiCapsHold(uint256[] calldata pricesWad, uint256 poolWad) external view returns (bool);
    /// @notice Markets whose open interest is non-zero (bit m), for LP settlements.
    function openMarketsMask() external view returns (uint256);

    /// @notice Reverts unless `caller` owns the account and its equity with `marginAfterToken`
    ///         of margin covers its initial margin at fresh prices. Used by the vault on withdrawals.
    function checkWithdrawal(uint256 accountId, address caller, int256 marginAfterToken) external view;
}
