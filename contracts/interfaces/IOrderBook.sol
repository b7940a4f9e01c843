// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IOracleAdapter} from "./IOracleAdapter.sol";

/// @title IOrderBook
/// @notice Every trade is an order filled in two steps, so nobody fills at a price they already know.
///         - **Market orders**: `commitOrder` escrows the executor fee; after `settlementDelay`,
///           anyone settles the order at the earliest pull price published at or after the
///           commit plus the delay (the pull oracle proves it is the earliest), within
///           `settlementWindow`. The owner cannot cancel a pending market order (it would be a free
///           option on that price); once expired, anyone may cancel it, and its executor fee goes to
///           the insurance fund (letting an order lapse is never free).
///         - **Conditional orders** (limit, stop-loss, take-profit; the last two reduce-only)
///           fill in two steps too. A keeper *triggers* one when the market's latest stored price
///           (at most the market's `maxExecutionAge` old, published at least `settlementDelay`
///           after the order's last update and, for stop-loss and take-profit, after the
///           position's last increase) meets its trigger. From then on it is a market order
///           committed at that moment: it fills at the earliest price published at or after the
///           trigger plus the delay, within the window, nobody can update or cancel it, and if it
///           lapses its fee goes to the insurance fund. If that price breaches its acceptable price
///           (a limit order's is its limit), its fee goes to the settler, as for a market order,
///           and it goes back to waiting for its trigger with a new fee from its margin (cancelled
///           if the margin cannot pay one). Until it
///           triggers, the owner may update or cancel it at any time (an update restarts the
///           delay). Stop-loss and take-profit orders cancel themselves when their position
///           closes; a liquidation cancels every order of its account.
///         An order that can no longer fill (acceptable price breached for a market order, margin,
///         caps, pause, shock) is cancelled by its settlement and its executor fee goes to the
///         settler; an order that cannot fill *yet* (price not due, trigger not met) is skipped.
///         An account holds at most MAX_ORDERS_PER_ACCOUNT (8) pending orders; an order's id is
///         `accountId * 8 + slot`.
interface IOrderBook {
    enum OrderKind {
        Market,
        Limit,
        StopLoss,
        TakeProfit
    }

    /// @notice A pending order, in two slots.
    struct Order {
        int128 sizeDeltaWad; // signed: positive buys
        uint64 executorFee; // token units, escrowed from the margin
        uint32 updatedAt; // commit or last update time (0: no order)
        uint8 marketId;
        uint8 kind; // OrderKind
        bool triggered; // a conditional order whose trigger was met at `updatedAt`: now a market order
        uint112 acceptablePriceWad; // worst fill (max for a buy, min for a sell); 0 = none
        uint112 triggerPriceWad; // limit: the limit; stop-loss / take-profit: the trigger; market: 0
    }

    /// @notice Settlement timing and executor-fee bounds (token units).
    struct Settings {
        uint32 settlementDelay;
        uint32 settlementWindow;
        uint64 minExecutorFee;
        uint64 maxExecutorFee;
    }

    event OrderPlaced(
        uint256 indexed orderId,
        uint256 indexed accountId,
        uint256 indexed marketId,
        uint8 kind,
        int256 sizeDeltaWad,
        uint256 triggerPriceWad,
        uint256 acceptablePriceWad,
        uint256 executorFee
    );
    event OrderUpdated(
        uint256 indexed orderId, int256 sizeDeltaWad, uint256 triggerPriceWad, uint256 acceptablePriceWad
    );
    event OrderSettled(
        uint256 indexed orderId,
        uint256 indexed accountId,
        uint256 indexed marketId,
        uint8 kind,
        int256 sizeDeltaWad,
        uint256 fillPriceWad,
        uint256 publishTime,
        address keeper,
        uint256 executorFee
    );
    /// @notice A conditional order's trigger was met by the stored price `priceWad` published at
    ///         `publishTime`: it fills at the earliest price published at or after now plus the delay.
    event OrderTriggered(
        uint256 indexed orderId, uint256 indexed accountId, uint256 priceWad, uint256 publishTime, address by
    );
    /// @notice A triggered order's fill price breached its acceptable price (`reason`): its fee
    ///         went to the settler and it waits for its trigger again, a new fee escrowed from its
    ///         margin.
    event OrderRearmed(uint256 indexed orderId, uint256 indexed accountId, bytes4 reason);
    /// @notice An order left the book without filling; `feeTo` zero: its fee went back to the margin.
    event OrderCancelled(uint256 indexed orderId, uint256 indexed accountId, bytes4 reason, address by, address feeTo);
    event SettingsSet(Settings settings);

    /// @notice Commits a market order; escrows `executorFee` from the account's margin (or, if the
    ///         margin cannot cover it, from the caller's wallet: approve the vault first).
    /// @dev Reverts `NotAccountOwner`, `UnknownMarket`, `ZeroSize`, `ExecutorFeeOutOfBounds`,
    ///      `OrderSlotsFull`, and the token's error when neither can pay.
    function commitOrder(
        uint256 accountId,
        uint256 marketId,
        int256 sizeDeltaWad,
        uint256 acceptablePriceWad,
        uint256 executorFee
    ) external returns (uint256 orderId);

    /// @notice Places a conditional order (`kind` Limit, StopLoss or TakeProfit).
    function placeOrder(
        uint256 accountId,
        uint256 marketId,
        OrderKind kind,
        int256 sizeDeltaWad,
        uint256 triggerPriceWad,
        uint256 acceptablePriceWad,
        uint256 executorFee
    ) external returns (uint256 orderId);

    /// @notice Changes a conditional order that has not triggered; restarts its settlement delay.
    ///         Only the account's owner. Reverts `OrderNotCancellable` for a triggered order.
    function updateOrder(uint256 orderId, int256 sizeDeltaWad, uint256 triggerPriceWad, uint256 acceptablePriceWad)
        external;

    /// @notice Cancels an order. The owner may cancel a conditional order that has not triggered
    ///         (its fee goes back to the margin); a market order or a triggered one only once
    ///         expired, and then anyone may (its fee goes to the insurance fund).
    function cancelOrder(uint256 orderId) external;

    /// @notice Settles market and triggered orders, triggers conditional ones. `updates[i]` is the
    ///         pull-price update for `orderIds[i]` when it is a market or triggered order (empty:
    ///         reuse the price an earlier order of the batch proved for the same market and time);
    ///         `latest` updates the markets' stored prices first, for the triggers. Skips orders
    ///         that cannot move yet, cancels those that never can, reverts `NothingToSettle` if no
    ///         order filled, triggered, went back to waiting or left the book. The executor fees
    ///         of the filled orders go to the caller; unspent ETH (the pull oracle's fees) is returned.
    /// @return settled how many orders filled
    function settleOrders(
        uint256[] calldata orderIds,
        bytes[] calldata updates,
        IOracleAdapter.PriceUpdate[] calldata latest
    ) external payable returns (uint256 settled);

    /// @notice Cancels every pending order of an account below its maintenance margin, their fees
    ///         back to its margin (so the liquidation reaches them). Only the engine, in a
    ///         liquidation: a healthy account's orders are never touched.
    /// @return refunded the fees returned to the margin (token units)
    function onLiquidation(uint256 accountId) external returns (uint256 refunded);

    /// @notice Settlement timing and fee bounds. Only `RISK_ROLE`; bounds are checked.
    function setSettings(Settings calldata settings) external;

    // --- views ---
    function order(uint256 orderId) external view returns (Order memory);
    /// @notice The account's pending orders: ids and orders.
    function ordersOf(uint256 accountId) external view returns (uint256[] memory ids, Order[] memory orders);
    function settings() external view returns (Settings memory);
}
