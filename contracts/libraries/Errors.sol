// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

// The protocol's error vocabulary, in one place. OpenZeppelin's own errors also surface:
// `AccessControlUnauthorizedAccount`, `EnforcedPause`, `ERC4626ExceededMax*`, `SafeERC20FailedOperation`.

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
/// @notice After the action, equity would be below the initial margin requirement.
error InsufficientMargin(uint256 accountId, int256 equityWad, uint256 requiredWad);
/// @notice After the action, the position's notional would exceed max leverage times equity.
error LeverageTooHigh(uint256 accountId, uint256 marketId, uint256 leverageWad, uint256 maxLeverageWad);
/// @notice The side's open interest (notional) would exceed its cap, which is tied to pool size.
error OpenInterestCapExceeded(uint256 marketId, uint256 openInterestWad, uint256 capWad);
/// @notice A non-zero position would be smaller than the market's minimum size.
error PositionTooSmall(uint256 marketId, uint256 sizeWad, uint256 minSizeWad);
/// @notice A trade would flip a position from long to short or back; close it first.
error PositionFlip(uint256 marketId, int256 sizeWad, int256 sizeDeltaWad);
/// @notice The account has no position in this market.
error NoPosition(uint256 accountId, uint256 marketId);
/// @notice The account already holds the maximum number of positions.
error TooManyPositions(uint256 accountId);
/// @notice The oracle price is worse than the trader's limit (above it for a buy, below for a sell).
error PriceLimitExceeded(uint256 priceWad, uint256 limitPriceWad);
/// @notice A risk parameter is outside its documented bounds.
error ParameterOutOfBounds(bytes32 parameter, uint256 value);
/// @notice The market limit has been reached.
error TooManyMarkets();
/// @notice A withdrawal asks for more than the account's margin.
error WithdrawExceedsMargin(uint256 accountId, uint256 amount, uint256 marginToken);
/// @notice The vault received a different amount than was transferred (fee-on-transfer tokens are rejected).
error TransferAmountMismatch(uint256 expected, uint256 received);
/// @notice The collateral token's decimals are not supported (must be at most 18).
error UnsupportedTokenDecimals(uint8 decimals);
/// @notice Only the protocol module wired in at deployment may call this.
error Unauthorized(address caller);
/// @notice The feed is not configured in the oracle adapter.
error OracleFeedUnknown(address feed);
/// @notice The feed answered zero or a negative price.
error OracleNonPositivePrice(address feed, int256 answer);
/// @notice The feed answered a price above MAX_PRICE_WAD (a broken or hostile feed).
error OraclePriceTooHigh(address feed, int256 answer);
/// @notice The feed's answer is older than its maximum age.
error OracleStalePrice(address feed, uint256 updatedAt, uint256 maxAge);
/// @notice The feed's round is not complete (no timestamp, or answered in an earlier round).
error OracleIncompleteRound(address feed, uint80 roundId, uint80 answeredInRound);
/// @notice The market's latest price moved more than its max deviation and is not confirmed yet:
///         opening and increasing wait; closing and liquidating go on.
error OracleShockUnconfirmed(address feed);
/// @notice The account has no position or is not below its maintenance margin.
error AccountNotLiquidatable(uint256 accountId, int256 equityWad, uint256 maintenanceMarginWad);
/// @notice No account in the batch could be liquidated.
error NothingToLiquidate();
