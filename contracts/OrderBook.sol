// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IOrderBook} from "./interfaces/IOrderBook.sol";
import {IPerpEngine} from "./interfaces/IPerpEngine.sol";
import {ILeverVault} from "./interfaces/ILeverVault.sol";
import {IOracleAdapter} from "./interfaces/IOracleAdapter.sol";
import "./libraries/Constants.sol";
import "./libraries/Errors.sol";

/// @title OrderBook
/// @notice Market and conditional orders, settled in two steps at pull prices the caller brings
///         and the contract checks (a conditional order is triggered first, then filled as a
///         market order). See `IOrderBook` for the lifecycle.
contract OrderBook is IOrderBook, AccessControl, ReentrancyGuardTransient {
    bytes32 public constant RISK_ROLE = keccak256("RISK_ROLE");

    IPerpEngine public immutable engine;
    ILeverVault public immutable vault;
    IOracleAdapter public immutable oracle;

    uint256 internal constant WAIT = 0;
    uint256 internal constant READY = 1;
    uint256 internal constant ORPHAN = 2; // a stop-loss or take-profit whose position is gone

    Settings internal _settings;
    mapping(uint256 accountId => Order[MAX_ORDERS_PER_ACCOUNT]) internal _orders;

    /// @dev A price proven earlier in the batch, reused by orders of the same market and time.
    struct Proven {
        uint256 marketId;
        uint256 minPublishTime;
        IOracleAdapter.PriceData data;
    }

    constructor(IPerpEngine engine_, ILeverVault vault_, IOracleAdapter oracle_, address admin, Settings memory s) {
        if (
            address(engine_) == address(0) || address(vault_) == address(0) || address(oracle_) == address(0)
                || admin == address(0)
        ) revert ZeroAddress();
        (engine, vault, oracle) = (engine_, vault_, oracle_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(RISK_ROLE, admin);
        _setSettings(s);
    }

    /// @dev The pull oracle returns unspent update fees here; they go back to the settler.
    receive() external payable {
        if (msg.sender != address(oracle)) revert Unauthorized(msg.sender);
    }

    // ------------------------------------------------------------------ placing

    /// @inheritdoc IOrderBook
    function commitOrder(
        uint256 accountId,
        uint256 marketId,
        int256 sizeDeltaWad,
        uint256 acceptablePriceWad,
        uint256 executorFee
    ) external nonReentrant returns (uint256) {
        return _place(accountId, marketId, OrderKind.Market, sizeDeltaWad, 0, acceptablePriceWad, executorFee);
    }

    /// @inheritdoc IOrderBook
    function placeOrder(
        uint256 accountId,
        uint256 marketId,
        OrderKind kind,
        int256 sizeDeltaWad,
        uint256 triggerPriceWad,
        uint256 acceptablePriceWad,
        uint256 executorFee
    ) external nonReentrant returns (uint256) {
        if (kind == OrderKind.Market) revert InvalidOrderKind(uint8(kind));
        return _place(accountId, marketId, kind, sizeDeltaWad, triggerPriceWad, acceptablePriceWad, executorFee);
    }

    /// @inheritdoc IOrderBook
    function updateOrder(uint256 orderId, int256 sizeDeltaWad, uint256 triggerPriceWad, uint256 acceptablePriceWad)
        external
        nonReentrant
    {
        (uint256 accountId, uint256 slot) = _split(orderId);
        _owned(accountId);
        Order memory o = _orders[accountId][slot];
        if (o.updatedAt == 0) revert OrderNotFound(orderId);
        if (o.kind == uint8(OrderKind.Market)) revert InvalidOrderKind(o.kind);
        if (o.triggered) revert OrderNotCancellable(orderId, _expiry(o, _settings));
        _checkConditional(accountId, o.marketId, OrderKind(o.kind), sizeDeltaWad, triggerPriceWad, acceptablePriceWad);
        (o.sizeDeltaWad, o.triggerPriceWad, o.acceptablePriceWad) =
        (SafeCast.toInt128(sizeDeltaWad), uint112(triggerPriceWad), uint112(acceptablePriceWad));
        o.updatedAt = uint32(block.timestamp);
        _orders[accountId][slot] = o;
        emit OrderUpdated(orderId, sizeDeltaWad, triggerPriceWad, acceptablePriceWad);
    }

    /// @inheritdoc IOrderBook
    function cancelOrder(uint256 orderId) external nonReentrant {
        (uint256 accountId, uint256 slot) = _split(orderId);
        Order memory o = _orders[accountId][slot];
        if (o.updatedAt == 0) revert OrderNotFound(orderId);
        if (o.kind == uint8(OrderKind.Market) || o.triggered) {
            uint256 expiry = _expiry(o, _settings);
            if (block.timestamp <= expiry) revert OrderNotCancellable(orderId, expiry);
            _expire(accountId, slot, o);
        } else {
            _owned(accountId);
            _cancel(accountId, slot, o.executorFee, OrderNotFound.selector, address(0));
        }
    }

    function _place(
        uint256 accountId,
        uint256 marketId,
        OrderKind kind,
        int256 sizeDeltaWad,
        uint256 triggerPriceWad,
        uint256 acceptablePriceWad,
        uint256 executorFee
    ) internal returns (uint256 orderId) {
        (address owner, uint256 markets) = engine.accountOwnerAndMarketCount(accountId);
        _checkOwner(accountId, owner);
        if (marketId >= markets) revert UnknownMarket(marketId);
        if (sizeDeltaWad == 0) revert ZeroSize();
        Settings memory s = _settings;
        if (executorFee < s.minExecutorFee || executorFee > s.maxExecutorFee) {
            revert ExecutorFeeOutOfBounds(executorFee, s.minExecutorFee, s.maxExecutorFee);
        }
        if (kind != OrderKind.Market) {
            _checkConditional(accountId, marketId, kind, sizeDeltaWad, triggerPriceWad, acceptablePriceWad);
        } else if (acceptablePriceWad > MAX_PRICE_WAD) {
            revert ParameterOutOfBounds("acceptablePrice", acceptablePriceWad);
        }
        Order[MAX_ORDERS_PER_ACCOUNT] storage orders = _orders[accountId];
        uint256 slot;
        while (slot < MAX_ORDERS_PER_ACCOUNT && orders[slot].updatedAt != 0) ++slot;
        if (slot == MAX_ORDERS_PER_ACCOUNT) revert OrderSlotsFull(accountId);
        orders[slot] = Order({
            sizeDeltaWad: SafeCast.toInt128(sizeDeltaWad),
            executorFee: uint64(executorFee),
            updatedAt: uint32(block.timestamp),
            marketId: uint8(marketId),
            kind: uint8(kind),
            triggered: false,
            acceptablePriceWad: uint112(acceptablePriceWad),
            triggerPriceWad: uint112(triggerPriceWad)
        });
        orderId = accountId * MAX_ORDERS_PER_ACCOUNT + slot;
        emit OrderPlaced(
            orderId, accountId, marketId, uint8(kind), sizeDeltaWad, triggerPriceWad, acceptablePriceWad, executorFee
        );
        vault.escrowExecutorFee(accountId, executorFee, msg.sender);
    }

    /// @dev A conditional order's shape: a trigger, prices within bounds, and for stop-loss and
    ///      take-profit an open position that the order reduces.
    function _checkConditional(
        uint256 accountId,
        uint256 marketId,
        OrderKind kind,
        int256 sizeDeltaWad,
        uint256 triggerPriceWad,
        uint256 acceptablePriceWad
    ) internal view {
        if (sizeDeltaWad == 0) revert ZeroSize();
        if (triggerPriceWad == 0 || triggerPriceWad > MAX_PRICE_WAD) {
            revert ParameterOutOfBounds("triggerPrice", triggerPriceWad);
        }
        if (acceptablePriceWad > MAX_PRICE_WAD) revert ParameterOutOfBounds("acceptablePrice", acceptablePriceWad);
        if (kind == OrderKind.StopLoss || kind == OrderKind.TakeProfit) {
            int256 size = engine.position(accountId, marketId).sizeWad;
            if (size == 0 || (size > 0) == (sizeDeltaWad > 0)) revert ReduceOnlyViolated(accountId, marketId);
        }
    }

    // ------------------------------------------------------------------ settling

    /// @inheritdoc IOrderBook
    function settleOrders(
        uint256[] calldata orderIds,
        bytes[] calldata updates,
        IOracleAdapter.PriceUpdate[] calldata latest
    ) external payable nonReentrant returns (uint256 settled) {
        if (updates.length != orderIds.length) {
            revert ParameterOutOfBounds("updates", updates.length);
        }
        uint256 fee = oracle.updateFee();
        if (latest.length > 0) oracle.updatePrices{value: fee * latest.length}(latest);
        Settings memory st = _settings; // read once for the batch
        Proven[] memory proven = new Proven[](orderIds.length);
        uint256 nProven;
        uint256 done;
        // The filled orders' executor fees, paid to the settler in one vault call after the loop.
        uint256[] memory paidAccounts = new uint256[](orderIds.length);
        uint256[] memory paidFees = new uint256[](orderIds.length);
        for (uint256 i; i < orderIds.length; ++i) {
            (uint256 accountId, uint256 slot) = _split(orderIds[i]);
            Order memory o = _orders[accountId][slot];
            if (o.updatedAt == 0) continue;
            IOracleAdapter.PriceData memory price;
            bool ready;
            if (o.kind == uint8(OrderKind.Market) || o.triggered) {
                if (block.timestamp > _expiry(o, st)) {
                    _expire(accountId, slot, o);
                    ++done;
                    continue;
                }
                (ready, price, nProven) = _marketPrice(o, st, updates[i], proven, nProven, fee);
            } else {
                uint256 status;
                (status, price) = _conditionalPrice(accountId, o, st);
                if (status == ORPHAN) {
                    _cancel(accountId, slot, o.executorFee, NoPosition.selector, address(0)); // its position is gone
                    ++done;
                } else if (status == READY) {
                    _trigger(accountId, slot, orderIds[i], price);
                    ++done;
                }
                continue; // a trigger is never filled in the transaction that sees it
            }
            if (!ready) continue;
            (bool filled, bool moved) = _execute(accountId, slot, orderIds[i], o, price);
            if (filled) (paidAccounts[settled], paidFees[settled], settled) = (accountId, o.executorFee, settled + 1);
            if (filled || moved) ++done;
        }
        if (done == 0) revert NothingToSettle();
        if (settled == 1) {
            vault.releaseExecutorFee(paidAccounts[0], paidFees[0], msg.sender);
        } else if (settled > 1) {
            assembly ("memory-safe") {
                mstore(paidAccounts, settled)
                mstore(paidFees, settled)
            }
            vault.releaseExecutorFees(paidAccounts, paidFees, msg.sender);
        }
        uint256 left = address(this).balance;
        if (left > 0) Address.sendValue(payable(msg.sender), left);
    }

    /// @dev The earliest price at or after the commit plus the delay, proven by `update` (or by an
    ///      earlier order of the batch). Not ready if the delay has not passed or the update is
    ///      not that price.
    function _marketPrice(
        Order memory o,
        Settings memory st,
        bytes calldata update,
        Proven[] memory proven,
        uint256 n,
        uint256 fee
    ) internal returns (bool ready, IOracleAdapter.PriceData memory price, uint256) {
        uint256 minTime = uint256(o.updatedAt) + st.settlementDelay;
        if (block.timestamp < minTime) return (false, price, n);
        for (uint256 j; j < n; ++j) {
            if (proven[j].marketId == o.marketId && proven[j].minPublishTime == minTime) {
                return (true, proven[j].data, n);
            }
        }
        if (update.length == 0) return (false, price, n);
        uint256 maxTime = minTime + st.settlementWindow;
        if (maxTime > block.timestamp) maxTime = block.timestamp; // nothing is published in the future
        try oracle.settlementPrice{value: fee}(o.marketId, update, uint64(minTime), uint64(maxTime)) returns (
            IOracleAdapter.PriceData memory d
        ) {
            proven[n] = Proven(o.marketId, minTime, d);
            return (true, d, n + 1);
        } catch {
            return (false, price, n); // not the eligible price, or the oracle cannot price now: wait
        }
    }

    /// @dev The market's stored latest price, if fresh, published at least the delay after the
    ///      order's last update (and, for stop-loss and take-profit, after the position's last
    ///      increase), and meeting the trigger. It only triggers the order: the fill is at a price
    ///      published after the trigger, so nobody fills at a price they chose among those known.
    function _conditionalPrice(uint256 accountId, Order memory o, Settings memory st)
        internal
        view
        returns (uint256 status, IOracleAdapter.PriceData memory price)
    {
        uint256 since = o.updatedAt;
        IPerpEngine.Position memory pos = engine.position(accountId, o.marketId);
        if (o.kind != uint8(OrderKind.Limit)) {
            if (pos.sizeWad == 0) return (ORPHAN, price);
            if (pos.lastIncreaseTime > since) since = pos.lastIncreaseTime;
        }
        try oracle.latestRecent(o.marketId) returns (IOracleAdapter.PriceData memory d) {
            price = d; // at most maxExecutionAge old: no choosing a favourable price from the past
        } catch {
            return (WAIT, price);
        }
        if (price.publishTime < since + st.settlementDelay) return (WAIT, price);
        return (_triggered(o, pos.sizeWad > 0, price.priceWad) ? READY : WAIT, price);
    }

    /// @dev Limit: the price is at or better than the limit. Stop-loss: it moved against the
    ///      position to the trigger. Take-profit: it moved in its favour to the trigger.
    function _triggered(Order memory o, bool positionIsLong, uint256 priceWad) internal pure returns (bool) {
        if (o.kind == uint8(OrderKind.Limit)) {
            return o.sizeDeltaWad > 0 ? priceWad <= o.triggerPriceWad : priceWad >= o.triggerPriceWad;
        }
        bool stop = o.kind == uint8(OrderKind.StopLoss);
        bool below = priceWad <= o.triggerPriceWad;
        bool above = priceWad >= o.triggerPriceWad;
        return positionIsLong == stop ? below : above;
    }

    /// @dev From now on the order is a market order committed now (`updatedAt`).
    function _trigger(uint256 accountId, uint256 slot, uint256 orderId, IOracleAdapter.PriceData memory price)
        internal
    {
        Order storage stored = _orders[accountId][slot];
        (stored.triggered, stored.updatedAt) = (true, uint32(block.timestamp));
        emit OrderTriggered(orderId, accountId, price.priceWad, price.publishTime, msg.sender);
    }

    /// @dev Fills the order through the engine (the caller is paid its executor fee); otherwise
    ///      `moved` if it was refused for good (cancelled, its fee to the caller) or, triggered,
    ///      refused for its fill price (its fee to the caller; back to waiting with a new fee from
    ///      its margin, or cancelled if the margin cannot pay one).
    function _execute(
        uint256 accountId,
        uint256 slot,
        uint256 orderId,
        Order memory o,
        IOracleAdapter.PriceData memory price
    ) internal returns (bool filled, bool moved) {
        bool conditional = o.kind != uint8(OrderKind.Market);
        IPerpEngine.Trade memory t = IPerpEngine.Trade({
            accountId: accountId,
            marketId: o.marketId,
            sizeDeltaWad: o.sizeDeltaWad,
            acceptablePriceWad: o.acceptablePriceWad,
            reduceOnly: o.kind == uint8(OrderKind.StopLoss) || o.kind == uint8(OrderKind.TakeProfit),
            price: price
        });
        if (o.kind == uint8(OrderKind.Limit) && t.acceptablePriceWad == 0) t.acceptablePriceWad = o.triggerPriceWad;
        try engine.executeTrade(t) returns (IPerpEngine.TradeResult memory r) {
            delete _orders[accountId][slot];
            emit OrderSettled(
                orderId,
                accountId,
                o.marketId,
                o.kind,
                r.sizeDeltaWad,
                r.fillPriceWad,
                price.publishTime,
                msg.sender,
                o.executorFee
            );
            // Its executor fee is paid with the batch's (settleOrders).
            // The vault still counts this order (its fee is paid after the batch): more than one
            // pending order means there may be a stop-loss or take-profit to cancel.
            if (r.sizeAfterWad == 0 && vault.pendingOrders(accountId) > 1) {
                _cancelReduceOnly(accountId, 1 << o.marketId);
            }
            return (true, false);
        } catch (bytes memory reason) {
            // An empty reason is an out-of-gas sub-call (a settler must not cancel by starving it);
            // a panic is a bug. Neither cancels anything.
            if (reason.length < 4 || bytes4(reason) == 0x4e487b71) _bubble(reason);
            bytes4 selector = bytes4(reason);
            if (
                selector == OracleStalePrice.selector || selector == SequencerDown.selector
                    || selector == SequencerGracePeriod.selector
            ) return (false, false); // may clear within the window: try again
            // Refused: the settler is paid for the attempt. A triggered order refused only for its
            // fill price waits for its trigger again if its margin escrows a new fee (each attempt
            // is paid for: no free trigger-and-refuse loop at the keepers' expense).
            if (
                conditional && (selector == AcceptablePriceExceeded.selector || selector == FillPriceInvalid.selector)
                    && vault.marginOf(accountId) >= int256(uint256(o.executorFee))
            ) {
                vault.releaseExecutorFee(accountId, o.executorFee, msg.sender);
                vault.escrowExecutorFee(accountId, o.executorFee, address(0)); // from the margin
                Order storage stored = _orders[accountId][slot];
                (stored.triggered, stored.updatedAt) = (false, uint32(block.timestamp));
                emit OrderRearmed(orderId, accountId, selector);
            } else {
                _cancel(accountId, slot, o.executorFee, selector, msg.sender);
            }
            return (false, true);
        }
    }

    /// @inheritdoc IOrderBook
    /// @dev The scans below read each slot's first word only (size, fee, time, market, kind): an
    ///      empty slot costs one storage read, not two.
    function onLiquidation(uint256 accountId) external nonReentrant returns (uint256 refunded) {
        if (msg.sender != address(engine)) revert Unauthorized(msg.sender);
        if (vault.pendingOrders(accountId) == 0) return 0; // nothing to scan
        Order[MAX_ORDERS_PER_ACCOUNT] storage orders = _orders[accountId];
        for (uint256 slot; slot < MAX_ORDERS_PER_ACCOUNT; ++slot) {
            Order storage o = orders[slot];
            if (o.updatedAt == 0) continue;
            uint256 fee = o.executorFee;
            _cancel(accountId, slot, fee, AccountNotLiquidatable.selector, address(0));
            refunded += fee;
        }
    }

    function _cancelReduceOnly(uint256 accountId, uint256 marketMask) internal {
        Order[MAX_ORDERS_PER_ACCOUNT] storage orders = _orders[accountId];
        for (uint256 slot; slot < MAX_ORDERS_PER_ACCOUNT; ++slot) {
            Order storage o = orders[slot];
            (uint256 updatedAt, uint256 marketId, uint8 kind) = (o.updatedAt, o.marketId, o.kind);
            if (updatedAt == 0 || marketMask & (1 << marketId) == 0) continue;
            if (kind == uint8(OrderKind.StopLoss) || kind == uint8(OrderKind.TakeProfit)) {
                _cancel(accountId, slot, o.executorFee, NoPosition.selector, address(0));
            }
        }
    }

    /// @dev Removes an expired market order; its fee goes to the insurance fund, not to whoever
    ///      cancels it, so that letting an order lapse is never free (a pending order would
    ///      otherwise be an option on the price published after the delay).
    function _expire(uint256 accountId, uint256 slot, Order memory o) internal {
        delete _orders[accountId][slot];
        emit OrderCancelled(
            accountId * MAX_ORDERS_PER_ACCOUNT + slot,
            accountId,
            OrderNotCancellable.selector,
            msg.sender,
            address(vault)
        );
        vault.forfeitExecutorFee(accountId, o.executorFee);
    }

    /// @dev Removes the order; its fee goes to `feeTo` (zero: back to the margin).
    function _cancel(uint256 accountId, uint256 slot, uint256 executorFee, bytes4 reason, address feeTo) internal {
        delete _orders[accountId][slot];
        emit OrderCancelled(accountId * MAX_ORDERS_PER_ACCOUNT + slot, accountId, reason, msg.sender, feeTo);
        vault.releaseExecutorFee(accountId, executorFee, feeTo);
    }

    // ------------------------------------------------------------------ settings and views

    /// @inheritdoc IOrderBook
    function setSettings(Settings calldata s) external onlyRole(RISK_ROLE) {
        _setSettings(s);
    }

    function order(uint256 orderId) external view returns (Order memory) {
        (uint256 accountId, uint256 slot) = _split(orderId);
        return _orders[accountId][slot];
    }

    function ordersOf(uint256 accountId) external view returns (uint256[] memory ids, Order[] memory orders) {
        Order[MAX_ORDERS_PER_ACCOUNT] storage stored = _orders[accountId];
        uint256 n;
        for (uint256 slot; slot < MAX_ORDERS_PER_ACCOUNT; ++slot) {
            if (stored[slot].updatedAt != 0) ++n;
        }
        (ids, orders) = (new uint256[](n), new Order[](n));
        n = 0;
        for (uint256 slot; slot < MAX_ORDERS_PER_ACCOUNT; ++slot) {
            if (stored[slot].updatedAt == 0) continue;
            (ids[n], orders[n]) = (accountId * MAX_ORDERS_PER_ACCOUNT + slot, stored[slot]);
            ++n;
        }
    }

    function settings() external view returns (Settings memory) {
        return _settings;
    }

    /// @notice When a market order expires: after it, it can only be cancelled.
    function expiryOf(uint256 orderId) external view returns (uint256) {
        (uint256 accountId, uint256 slot) = _split(orderId);
        return _expiry(_orders[accountId][slot], _settings);
    }

    // ------------------------------------------------------------------ internals

    function _expiry(Order memory o, Settings memory st) internal pure returns (uint256) {
        return uint256(o.updatedAt) + st.settlementDelay + st.settlementWindow;
    }

    function _split(uint256 orderId) internal pure returns (uint256 accountId, uint256 slot) {
        return (orderId / MAX_ORDERS_PER_ACCOUNT, orderId % MAX_ORDERS_PER_ACCOUNT);
    }

    function _owned(uint256 accountId) internal view {
        _checkOwner(accountId, engine.accountOwner(accountId));
    }

    function _checkOwner(uint256 accountId, address owner) internal view {
        if (owner == address(0)) revert UnknownAccount(accountId);
        if (owner != msg.sender) revert NotAccountOwner(accountId, msg.sender);
    }

    function _bubble(bytes memory reason) internal pure {
        assembly ("memory-safe") {
            revert(add(reason, 32), mload(reason))
        }
    }

    function _setSettings(Settings memory s) internal {
        if (s.settlementDelay > MAX_SETTLEMENT_DELAY) {
            revert ParameterOutOfBounds("settlementDelay", s.settlementDelay);
        }
        if (s.settlementWindow < MIN_SETTLEMENT_WINDOW || s.settlementWindow > MAX_SETTLEMENT_WINDOW) {
            revert ParameterOutOfBounds("settlementWindow", s.settlementWindow);
        }
        uint256 maxFee = MAX_EXECUTOR_FEE_WAD / vault.tokenScale();
        if (s.maxExecutorFee > maxFee) revert ParameterOutOfBounds("maxExecutorFee", s.maxExecutorFee);
        if (s.minExecutorFee > s.maxExecutorFee) revert ParameterOutOfBounds("minExecutorFee", s.minExecutorFee);
        _settings = s;
        emit SettingsSet(s);
    }
}
