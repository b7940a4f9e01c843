// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

// The protocol's error vocabulary, in one place. OpenZeppelin's own errors also surface:
// `AccessControlUnauthorizedAccount`, `EnforcedPause`, `SafeERC20FailedOperation`, and the
// Pyth contract's `PriceFeedNotFoundWithinRange` / `InsufficientFee` from a settlement.

// ---------------------------------------------------------------- input and access

/// @notice An amount of zero was given where it would do nothing.
error ZeroAmount();
/// @notice A size delta of zero was given.
error ZeroSize();
/// @notice The zero address was given for a contract or recipient.
error ZeroAddress();
/// @notice No account has this id.
error UnknownAccount(uint256 accountId);
/// @notice No market has this id.
error UnknownMarket(uint256 marketId);
/// @notice Only the account's owner may do this.
error NotAccountOwner(uint256 accountId, address caller);
/// @notice Only the protocol module wired in at deployment may call this.
error Unauthorized(address caller);
/// @notice A risk parameter is outside its documented bounds.
error ParameterOutOfBounds(bytes32 parameter, uint256 value);
/// @notice The market limit has been reached.
error TooManyMarkets();
/// @notice A market's previous parameter change is still phasing in; change it again after `until`.
error ParameterRampInProgress(uint256 marketId, uint256 until);

// ---------------------------------------------------------------- margin and positions

/// @notice After the action, equity would be below the initial margin requirement.
error InsufficientMargin(uint256 accountId, int256 equityWad, uint256 requiredWad);
/// @notice After the action, the position's notional would exceed max leverage times equity.
error LeverageTooHigh(uint256 accountId, uint256 marketId, uint256 leverageWad, uint256 maxLeverageWad);
/// @notice The side's open interest (notional) would exceed its cap, which is tied to pool size.
error OpenInterestCapExceeded(uint256 marketId, uint256 openInterestWad, uint256 capWad);
/// @notice The pool could not hold the reserve every open position's capped profit needs.
error ReserveExceeded(uint256 reserveWad, uint256 poolWad);
/// @notice A redemption would burn the pool's last shares while it backs open positions: what
///         those positions still lose or pay would belong to no one.
error LastSharesBackOpenPositions(uint256 reserveWad);
/// @notice A non-zero position would be smaller than the market's minimum size.
error PositionTooSmall(uint256 marketId, uint256 sizeWad, uint256 minSizeWad);
/// @notice A trade would flip a position from long to short or back; close it first.
error PositionFlip(uint256 marketId, int256 sizeWad, int256 sizeDeltaWad);
/// @notice The account has no position in this market.
error NoPosition(uint256 accountId, uint256 marketId);
/// @notice The account already holds the maximum number of positions.
error TooManyPositions(uint256 accountId);
/// @notice The fill price is worse than the order's acceptable price.
error AcceptablePriceExceeded(uint256 fillPriceWad, uint256 acceptablePriceWad);
/// @notice The market's skew makes the fill price zero or negative: the trade is refused.
error FillPriceInvalid(uint256 marketId);
/// @notice Closing the account's last position would leave it owing the pool: a loss beyond the
///         margin is settled only by a liquidation.
error AccountUnderwater(uint256 accountId, int256 marginAfterToken);
/// @notice A withdrawal asks for more than the account's positive margin.
error WithdrawExceedsMargin(uint256 accountId, uint256 amount, int256 marginToken);

// ---------------------------------------------------------------- vault

/// @notice The vault received a different amount than was transferred (fee-on-transfer tokens are rejected).
error TransferAmountMismatch(uint256 expected, uint256 received);
/// @notice The collateral token's decimals are not supported (must be at most 18).
error UnsupportedTokenDecimals(uint8 decimals);
/// @notice ERC-7540: previews of an asynchronous flow always revert.
error AsyncFlow();
/// @notice ERC-7540: the caller is neither the controller nor one of its operators.
error NotOperator(address controller, address caller);
/// @notice A claim asks for more than the controller's fulfilled request holds.
error ClaimExceedsClaimable(uint256 amount, uint256 claimable);
/// @notice The controller has no pending request of this kind.
error NoPendingRequest(address controller);
/// @notice An LP request cannot settle yet (its price or the liquidation grace is in the future).
error RequestNotDue(address controller, uint256 dueTime);
/// @notice An LP request's settlement window has passed: it can only be cancelled.
error RequestExpired(address controller, uint256 expiry);
/// @notice An LP request is still inside its settlement window: it cannot be cancelled yet.
error RequestNotExpired(address controller, uint256 expiry);
/// @notice An LP request cannot be priced: a market with open interest has no update (a
///         redemption may leave out only a market whose stored price is stale).
error LpPriceMissing(uint256 marketId);
/// @notice The pool is worth nothing: a deposit would go to the traders, so it is returned.
error PoolWorthless();

// ---------------------------------------------------------------- orders

/// @notice No pending order has this id.
error OrderNotFound(uint256 orderId);
/// @notice The account already holds MAX_ORDERS_PER_ACCOUNT pending orders.
error OrderSlotsFull(uint256 accountId);
/// @notice The order kind is not one of market, limit, stop-loss, take-profit (or not valid here).
error InvalidOrderKind(uint8 kind);
/// @notice The executor fee is outside the protocol's bounds (token units).
error ExecutorFeeOutOfBounds(uint256 fee, uint256 minFee, uint256 maxFee);
/// @notice A pending market order cannot be cancelled by its owner before it expires: otherwise
///         it would be a free option on the price published after the delay.
error OrderNotCancellable(uint256 orderId, uint256 expiry);
/// @notice A reduce-only order finds no position to reduce, or would increase it.
error ReduceOnlyViolated(uint256 accountId, uint256 marketId);
/// @notice Nothing in the batch could be settled.
error NothingToSettle();
/// @notice The ETH sent does not cover the price updates' fees.
error UpdateFeeUnpaid(uint256 required, uint256 paid);

// ---------------------------------------------------------------- oracle

/// @notice The market has no oracle configured.
error OracleNotConfigured(uint256 marketId);
/// @notice The feed answered zero or a negative price.
error OracleNonPositivePrice(uint256 marketId, int256 answer);
/// @notice The feed answered a price above MAX_PRICE_WAD (a broken or hostile feed).
error OraclePriceTooHigh(uint256 marketId, uint256 priceWad);
/// @notice The price is older than the market's maximum age (reference feed or pull price).
error OracleStalePrice(uint256 marketId, uint256 updatedAt, uint256 maxAge);
/// @notice The reference feed's round is not complete (no timestamp, or answered in an earlier round).
error OracleIncompleteRound(uint256 marketId, uint80 roundId, uint80 answeredInRound);
/// @notice The pull price's exponent is outside [-18, 0].
error OracleExponentInvalid(uint256 marketId, int32 expo);
/// @notice The pull price's confidence interval is wider than the market allows.
error OracleConfidenceTooWide(uint256 marketId, uint256 confWad, uint256 priceWad);
/// @notice The pull price deviates from the reference feed by more than the market allows.
error OracleReferenceDeviation(uint256 marketId, uint256 priceWad, uint256 referenceWad);
/// @notice The L2 sequencer is down: no prices enter the oracle, and nothing executes at a
///         stored one (fills, liquidations, withdrawals from accounts with positions).
error SequencerDown();
/// @notice The L2 sequencer came back up less than the grace period ago.
error SequencerGracePeriod(uint256 until);
/// @notice The market's latest reference round moved more than its max deviation and is not
///         confirmed yet: opening and increasing wait; closing and liquidating go on.
error OracleShockUnconfirmed(uint256 marketId);

// ---------------------------------------------------------------- liquidation

/// @notice The account has no position or is not below its maintenance margin.
error AccountNotLiquidatable(uint256 accountId, int256 equityWad, uint256 maintenanceMarginWad);
/// @notice No account in the batch could be liquidated.
error NothingToLiquidate();
