// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {AggregatorV3Interface} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";
import {IOracleAdapter} from "./interfaces/IOracleAdapter.sol";
import {VolatilityMath} from "./libraries/VolatilityMath.sol";
import "./libraries/Constants.sol";
import "./libraries/Errors.sol";

/// @title OracleAdapter
/// @notice Validates Chainlink-shaped answers, converts them to WAD once at the edge, and keeps
///         a volatility estimate, the margin factors and the shock flag per feed.
contract OracleAdapter is IOracleAdapter, AccessControl {
    bytes32 public constant RISK_ROLE = keccak256("RISK_ROLE");
    bytes32 public constant ORACLE_ROLE = keccak256("ORACLE_ROLE");

    /// @notice Last recorded round of a feed (view shape).
    struct FeedState {
        uint128 lastPriceWad; // price of the last recorded round
        uint80 lastRoundId; // 0 = nothing recorded yet
        bool shocked;
    }

    /// @notice Volatility state of a feed (view shape).
    struct VolState {
        uint64 varianceWad; // EWMA of squared per-round returns (saturates at 2^64 - 1)
        uint64 mmFactorCheckpointWad; // maintenance factor at the checkpoint
        uint40 checkpointTime;
    }

    /// @dev Everything about a feed in three slots: one read per slot on every trade.
    struct Feed {
        // slot 0: configuration
        uint32 maxAge;
        uint64 maxDeviationWad;
        uint64 ewmaLambdaWad;
        uint64 refVolatilityWad;
        uint8 decimals;
        // slot 1: configuration and volatility
        uint64 maxVolFactorWad;
        uint64 factorRisePerDayWad;
        uint64 varianceWad;
        uint64 mmFactorCheckpointWad;
        // slot 2: last recorded round
        uint128 lastPriceWad;
        uint80 lastRoundId;
        bool shocked;
        uint40 checkpointTime;
    }

    mapping(address feed => Feed) internal _feeds;

    constructor(address admin) {
        if (admin == address(0)) revert ZeroAddress();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(RISK_ROLE, admin);
        _grantRole(ORACLE_ROLE, admin);
    }

    /// @inheritdoc IOracleAdapter
    function setFeed(address feed, FeedParams calldata params) external onlyRole(RISK_ROLE) {
        if (feed == address(0)) revert ZeroAddress();
        _validate(params);
        uint8 decimals = AggregatorV3Interface(feed).decimals();
        if (decimals > 18) revert ParameterOutOfBounds("feedDecimals", decimals);
        Feed memory f = _feeds[feed];
        if (f.lastRoundId != 0) {
            // Checkpoint the ramp under the old settings: a raised factor then rises gradually.
            f.mmFactorCheckpointWad = uint64(_mmFactor(f, block.timestamp));
            f.checkpointTime = uint40(block.timestamp);
        }
        f.maxAge = params.maxAge;
        f.maxDeviationWad = params.maxDeviationWad;
        f.ewmaLambdaWad = params.ewmaLambdaWad;
        f.refVolatilityWad = params.refVolatilityWad;
        f.decimals = decimals;
        f.maxVolFactorWad = params.maxVolFactorWad;
        f.factorRisePerDayWad = params.factorRisePerDayWad;
        _feeds[feed] = f;
        emit FeedConfigured(feed, params, decimals);
    }

    /// @inheritdoc IOracleAdapter
    function update(address feed) external returns (PriceData memory) {
        return _update(feed);
    }

    /// @inheritdoc IOracleAdapter
    function read(address feed) external view returns (PriceData memory) {
        Feed memory f = _feeds[feed];
        (uint80 roundId, uint256 price) = _latest(feed, f);
        if (roundId != f.lastRoundId) _record(f, roundId, price);
        return _data(f);
    }

    /// @inheritdoc IOracleAdapter
    function priceWad(address feed) external view returns (uint256 price) {
        (, price) = _latest(feed, _feeds[feed]);
    }

    /// @inheritdoc IOracleAdapter
    function confirmShock(address feed) external onlyRole(ORACLE_ROLE) {
        _update(feed);
        Feed storage f = _feeds[feed];
        f.shocked = false;
        emit ShockConfirmed(feed, f.lastRoundId);
    }

    /// @inheritdoc IOracleAdapter
    function maxAge(address feed) external view returns (uint256) {
        return _feeds[feed].maxAge;
    }

    function feedParams(address feed) external view returns (FeedParams memory) {
        Feed memory f = _feeds[feed];
        return FeedParams(
            f.maxAge, f.maxDeviationWad, f.ewmaLambdaWad, f.refVolatilityWad, f.maxVolFactorWad, f.factorRisePerDayWad
        );
    }

    function feedState(address feed) external view returns (FeedState memory, VolState memory) {
        Feed memory f = _feeds[feed];
        return (
            FeedState(f.lastPriceWad, f.lastRoundId, f.shocked),
            VolState(f.varianceWad, f.mmFactorCheckpointWad, f.checkpointTime)
        );
    }

    // ------------------------------------------------------------------ internals

    function _update(address feed) internal returns (PriceData memory) {
        Feed memory f = _feeds[feed];
        (uint80 roundId, uint256 price) = _latest(feed, f);
        if (roundId != f.lastRoundId) {
            _record(f, roundId, price);
            _feeds[feed] = f;
            emit PriceRecorded(feed, roundId, price, f.varianceWad, _mmFactor(f, block.timestamp), f.shocked);
        }
        return _data(f);
    }

    /// @dev The latest round, validated and converted to WAD.
    function _latest(address feed, Feed memory f) internal view returns (uint80 roundId, uint256 price) {
        if (f.maxAge == 0) revert OracleFeedUnknown(feed);
        int256 answer;
        uint256 updatedAt;
        uint80 answeredInRound;
        (roundId, answer,, updatedAt, answeredInRound) = AggregatorV3Interface(feed).latestRoundData();
        if (answer <= 0) revert OracleNonPositivePrice(feed, answer);
        if (uint256(answer) > MAX_PRICE_WAD / 10 ** (18 - f.decimals)) revert OraclePriceTooHigh(feed, answer);
        if (updatedAt == 0 || answeredInRound < roundId) revert OracleIncompleteRound(feed, roundId, answeredInRound);
        // A timestamp in the future counts as fresh rather than underflowing.
        if (updatedAt < block.timestamp && block.timestamp - updatedAt > f.maxAge) {
            revert OracleStalePrice(feed, updatedAt, f.maxAge);
        }
        price = uint256(answer) * 10 ** (18 - f.decimals);
    }

    /// @dev Records a new round into `f` (in memory: `read` and `update` share it). The ramp is
    ///      checkpointed under the old variance first; the variance saturates at 2^64 - 1.
    function _record(Feed memory f, uint80 roundId, uint256 price) internal view {
        if (f.lastRoundId == 0) {
            f.mmFactorCheckpointWad = uint64(WAD);
        } else {
            f.mmFactorCheckpointWad = uint64(_mmFactor(f, block.timestamp));
            uint256 r = VolatilityMath.returnWad(f.lastPriceWad, price);
            uint256 variance = VolatilityMath.nextVarianceWad(f.varianceWad, r, f.ewmaLambdaWad);
            f.varianceWad = variance < type(uint64).max ? uint64(variance) : type(uint64).max;
            f.shocked = r > f.maxDeviationWad;
        }
        f.checkpointTime = uint40(block.timestamp);
        f.lastPriceWad = uint128(price); // <= MAX_PRICE_WAD < 2^128
        f.lastRoundId = roundId;
    }

    function _data(Feed memory f) internal view returns (PriceData memory) {
        return PriceData({
            priceWad: f.lastPriceWad,
            imFactorWad: VolatilityMath.targetFactorWad(f.varianceWad, f.refVolatilityWad, f.maxVolFactorWad),
            mmFactorWad: _mmFactor(f, block.timestamp),
            shocked: f.shocked
        });
    }

    function _mmFactor(Feed memory f, uint256 timestamp) internal pure returns (uint256) {
        uint256 target = VolatilityMath.targetFactorWad(f.varianceWad, f.refVolatilityWad, f.maxVolFactorWad);
        return VolatilityMath.rampedFactorWad(
            target, f.mmFactorCheckpointWad, f.checkpointTime, f.factorRisePerDayWad, timestamp
        );
    }

    function _validate(FeedParams calldata p) internal pure {
        if (p.maxAge == 0 || p.maxAge > MAX_ORACLE_AGE) revert ParameterOutOfBounds("maxAge", p.maxAge);
        if (p.maxDeviationWad < MIN_MAX_DEVIATION_WAD || p.maxDeviationWad > WAD) {
            revert ParameterOutOfBounds("maxDeviation", p.maxDeviationWad);
        }
        if (p.ewmaLambdaWad < MIN_EWMA_LAMBDA_WAD || p.ewmaLambdaWad > MAX_EWMA_LAMBDA_WAD) {
            revert ParameterOutOfBounds("ewmaLambda", p.ewmaLambdaWad);
        }
        if (p.refVolatilityWad == 0 || p.refVolatilityWad > WAD) {
            revert ParameterOutOfBounds("refVolatility", p.refVolatilityWad);
        }
        if (p.maxVolFactorWad < WAD || p.maxVolFactorWad > MAX_VOL_FACTOR_WAD) {
            revert ParameterOutOfBounds("maxVolFactor", p.maxVolFactorWad);
        }
        if (p.factorRisePerDayWad == 0 || p.factorRisePerDayWad > MAX_FACTOR_RISE_PER_DAY_WAD) {
            revert ParameterOutOfBounds("factorRisePerDay", p.factorRisePerDayWad);
        }
    }
}
