// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IOracleAdapter
/// @notice The protocol reads every price through this adapter. It accepts any feed with
///         Chainlink's `AggregatorV3Interface` shape (the mock or a real feed, unchanged), and
///         returns the price as a WAD, or reverts.
interface IOracleAdapter {
    /// @notice A feed was configured or reconfigured.
    event FeedConfigured(address indexed feed, uint256 maxAge, uint8 decimals);

    /// @notice Registers `feed` (reading its decimals once) with a maximum answer age in seconds.
    /// @dev Only `RISK_ROLE`. `maxAge` must be in (0, 1 day].
    function setFeed(address feed, uint256 maxAge) external;

    /// @notice The feed's latest answer converted to WAD (1e18 = $1 per unit).
    /// @dev Reverts `OracleFeedUnknown` (not configured), `OracleNonPositivePrice` (answer <= 0),
    ///      `OracleIncompleteRound` (no timestamp, or answeredInRound < roundId) and
    ///      `OracleStalePrice` (older than the feed's max age).
    function priceWad(address feed) external view returns (uint256);

    /// @notice The configured maximum age of `feed` (0 if unknown).
    function maxAge(address feed) external view returns (uint256);
}
