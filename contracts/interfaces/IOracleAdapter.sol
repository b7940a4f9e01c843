// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IOracleAdapter
/// @notice The protocol reads every price through this adapter. It accepts any feed with
///         Chainlink's `AggregatorV3Interface` shape (the mock or a real feed, unchanged), converts
///         answers to WAD, and keeps per feed: the last recorded price, a running volatility
///         estimate (EWMA of squared returns between recorded rounds), the margin factors derived
///         from it, and whether the last recorded round was a price shock.
/// @dev `read` is the view of exactly what `update` would record now, so views and transactions
///      agree. Anyone may call `update`; keepers should do so on every round, because each
///      recorded round is one sample of the volatility estimate and the reference for the
///      shock check.
interface IOracleAdapter {
    /// @notice Risk settings of a feed; ratios and factors are WADs.
    struct FeedParams {
        uint32 maxAge; // seconds an answer stays fresh, in (0, 1 day]
        uint64 maxDeviationWad; // a recorded round moving more than this from the last is a shock
        uint64 ewmaLambdaWad; // EWMA decay per recorded round, e.g. 0.94e18
        uint64 refVolatilityWad; // per-round volatility at which the margin factor starts to rise
        uint64 maxVolFactorWad; // cap of the margin factor, >= 1e18
        uint64 factorRisePerDayWad; // how fast the maintenance factor may rise (factor units a day)
    }

    /// @notice What the protocol needs from a feed at one instant.
    struct PriceData {
        uint256 priceWad;
        uint256 imFactorWad; // multiplies initial margin ratios: reacts at once
        uint256 mmFactorWad; // multiplies maintenance margin ratios: rises along a bounded ramp
        bool shocked; // the latest round moved more than maxDeviation and is not yet confirmed
    }

    event FeedConfigured(address indexed feed, FeedParams params, uint8 decimals);
    /// @notice A new round was recorded.
    event PriceRecorded(
        address indexed feed, uint80 roundId, uint256 priceWad, uint256 varianceWad, uint256 mmFactorWad, bool shocked
    );
    /// @notice The oracle role confirmed a shocked price.
    event ShockConfirmed(address indexed feed, uint80 roundId);

    /// @notice Registers or reconfigures `feed`. Only `RISK_ROLE`. Bounds are checked; a change
    ///         that raises the margin factor reaches maintenance margin only through the ramp.
    function setFeed(address feed, FeedParams calldata params) external;

    /// @notice Records the feed's latest round if it is new, and returns the price data.
    /// @dev Reverts like `read`.
    function update(address feed) external returns (PriceData memory);

    /// @notice The price data `update` would return now, without recording.
    /// @dev Reverts `OracleFeedUnknown` (not configured), `OracleNonPositivePrice` (answer <= 0),
    ///      `OracleIncompleteRound` (no timestamp, or answeredInRound < roundId) and
    ///      `OracleStalePrice` (older than the feed's max age).
    function read(address feed) external view returns (PriceData memory);

    /// @notice The latest answer as a WAD (same checks as `read`).
    function priceWad(address feed) external view returns (uint256);

    /// @notice Clears a shock on `feed` so opening is allowed again. Only `ORACLE_ROLE`.
    function confirmShock(address feed) external;

    /// @notice The configured maximum age of `feed` (0 if unknown).
    function maxAge(address feed) external view returns (uint256);
}
