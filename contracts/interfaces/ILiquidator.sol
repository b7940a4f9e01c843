// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IPerpEngine} from "./IPerpEngine.sol";
import {IOracleAdapter} from "./IOracleAdapter.sol";
import {LiquidationMath} from "../libraries/LiquidationMath.sol";

/// @title ILiquidator
/// @notice The liquidation module: anyone may liquidate an account whose equity is below its
///         maintenance margin, at once (no commit), with pull prices newer than the account's
///         last trade and within each market's maximum age; the keeper brings the updates. A
///         liquidation closes only the share of every position that restores the target health,
///         or everything when the account is deeply underwater or dust would remain; the keeper
///         gets a bounded reward and the insurance fund a penalty, both from the account (an
///         account too poor to pay the minimum reward has it topped up from the insurance fund);
///         bad debt goes to the insurance fund first and the pool second.
/// @dev A liquidation can be front-run by another keeper; `liquidateBatch` skips accounts that
///      are healthy, empty, already liquidated, or without a newer price, so a keeper that loses a
///      race wastes no more than the batch's reads. It reverts `NothingToLiquidate` when it
///      liquidated none, and `OracleStalePrice` when a listed account holds a market whose price
///      is older than `maxExecutionAge` (bring that market's update).
interface ILiquidator {
    /// @notice Health of one account at the stored latest prices (WAD, USD).
    struct AccountHealth {
        uint256 accountId;
        int256 equityWad;
        uint256 maintenanceMarginWad;
        uint256 initialMarginWad;
        uint256 notionalWad;
        bool liquidatable;
    }

    /// @notice What a keeper holds of one account: its margin (token units, signed), the time of
    ///         its last trade, and its positions with their market ids.
    struct AccountRecord {
        uint256 accountId;
        int256 margin;
        uint256 lastTradeTime;
        uint256[] markets;
        IPerpEngine.Position[] positions;
    }

    /// @notice Every liquidation, for indexers and keepers.
    event Liquidation(
        uint256 indexed accountId,
        address indexed keeper,
        bool full,
        uint256 closeShareWad,
        uint256 closedNotionalWad,
        uint256 rewardToken,
        uint256 penaltyToken,
        uint256 badDebtToken,
        int256 equityWad,
        uint256 maintenanceMarginWad
    );
    event LiquidationParamsSet(LiquidationMath.Params params);

    /// @notice Stores `updates` as the markets' latest prices, then liquidates one account; the
    ///         reward goes to the caller. Unspent ETH (the pull oracle's fees) is returned.
    /// @dev Reverts `AccountNotLiquidatable` when the account is healthy, has no position or has
    ///      no price newer than its last trade; `OracleStalePrice` when a price is too old.
    function liquidate(uint256 accountId, IOracleAdapter.PriceUpdate[] calldata updates)
        external
        payable
        returns (IPerpEngine.LiquidationResult memory);

    /// @notice Stores `updates`, then liquidates every listed account that is liquidatable; skips
    ///         the rest (healthy, empty, unknown or repeated ids). Reverts `NothingToLiquidate` if none was.
    /// @return liquidated how many accounts were liquidated
    function liquidateBatch(uint256[] calldata accountIds, IOracleAdapter.PriceUpdate[] calldata updates)
        external
        payable
        returns (uint256 liquidated);

    /// @notice Sets the liquidation parameters. Only `RISK_ROLE`; bounds are checked.
    function setParams(LiquidationMath.Params calldata params) external;

    function params() external view returns (LiquidationMath.Params memory);

    /// @notice Ids in [fromId, fromId + count) whose accounts hold at least one position.
    function accountsWithPositions(uint256 fromId, uint256 count) external view returns (uint256[] memory);

    /// @notice Health of many accounts at the stored latest prices, in one call.
    function healthOf(uint256[] calldata accountIds) external view returns (AccountHealth[] memory);

    /// @notice The records of many accounts, in one call (a keeper's reads: one `eth_call` for
    ///         hundreds of accounts instead of several calls each).
    function accountsOf(uint256[] calldata accountIds) external view returns (AccountRecord[] memory);
}
