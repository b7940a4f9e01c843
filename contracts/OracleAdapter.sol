// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {AggregatorV3Interface} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";
import {IOracleAdapter} from "./interfaces/IOracleAdapter.sol";
import {MAX_ORACLE_AGE} from "./libraries/Constants.sol";
import "./libraries/Errors.sol";

/// @title OracleAdapter
/// @notice Validates Chainlink-shaped answers and converts them to WAD, once, at the edge.
contract OracleAdapter is IOracleAdapter, AccessControl {
    bytes32 public constant RISK_ROLE = keccak256("RISK_ROLE");

    struct FeedConfig {
        uint32 maxAge; // seconds; 0 = not configured
        uint8 decimals;
    }

    mapping(address feed => FeedConfig) internal _feeds;

    constructor(address admin) {
        if (admin == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(RISK_ROLE, admin);
    }

    /// @inheritdoc IOracleAdapter
    function setFeed(address feed, uint256 maxAge_) external onlyRole(RISK_ROLE) {
        if (feed == address(0)) revert ZeroAddress();
        if (maxAge_ == 0 || maxAge_ > MAX_ORACLE_AGE) revert ParameterOutOfBounds("maxAge", maxAge_);
        uint8 decimals = AggregatorV3Interface(feed).decimals();
        if (decimals > 18) revert ParameterOutOfBounds("feedDecimals", decimals);
        _feeds[feed] = FeedConfig({maxAge: uint32(maxAge_), decimals: decimals});
        emit FeedConfigured(feed, maxAge_, decimals);
    }

    /// @inheritdoc IOracleAdapter
    function maxAge(address feed) external view returns (uint256) {
        return _feeds[feed].maxAge;
    }

    /// @inheritdoc IOracleAdapter
    function priceWad(address feed) external view returns (uint256) {
        FeedConfig memory config = _feeds[feed];
        if (config.maxAge == 0) revert OracleFeedUnknown(feed);
        (uint80 roundId, int256 answer,, uint256 updatedAt, uint80 answeredInRound) =
            AggregatorV3Interface(feed).latestRoundData();
        if (answer <= 0) revert OracleNonPositivePrice(feed, answer);
        if (updatedAt == 0 || answeredInRound < roundId) revert OracleIncompleteRound(feed, roundId, answeredInRound);
        // A timestamp in the future counts as fresh rather than underflowing.
        if (updatedAt < block.timestamp && block.timestamp - updatedAt > config.maxAge) {
            revert OracleStalePrice(feed, updatedAt, config.maxAge);
        }
        return uint256(answer) * 10 ** (18 - config.decimals);
    }
}
