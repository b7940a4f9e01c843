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

    struct FeedState {
        uint128 lastPriceWad; // price of the last recorded round
        uint80 lastRoundId; // 0 = nothing recorded yet
        bool shocked;
    }

    struct VolState {
        uint128 varianceWad; // EWMA of squared per-round returns
        uint64 mmFactorCheckpointWad; // maintenance factor at the checkpoint
        uint64 checkpointTime;
    }

    mapping(address feed => FeedParams) internal _params;
    mapping(address feed => uint8) internal _decimals;
    mapping(address feed => FeedState) internal _state;
    mapping(address feed => VolState) internal _vol;

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
        if (_state[feed].lastRoundId != 0) {
            // Checkpoint the ramp under the old settings: a raised factor then rises gradually.
            VolState memory v = _vol[feed];
            v.mmFactorCheckpointWad = uint64(_mmFactor(_params[feed], v, block.timestamp));
            v.checkpointTime = uint64(block.timestamp);
            _vol[feed] = v;
        }
        _params[feed] = params;
        _decimals[feed] = decimals;
        emit FeedConfigured(feed, params, decimals);
    }

    /// @inheritdoc IOracleAdapter
    function update(address feed) external returns (PriceData memory) {
        return _update(feed);
    }

    /// @inheritdoc IOracleAdapter
    function read(address feed) external view returns (PriceData memory) {
        (uint80 roundId, uint256 price) = _latest(feed);
        FeedParams memory p = _params[feed];
        FeedState memory s = _state[feed];
        VolState memory v = _vol[feed];
        if (roundId != s.lastRoundId) (s, v) = _recorded(p, s, v, roundId, price);
        return _data(p, s, v);
    }

    /// @inheritdoc IOracleAdapter
    function priceWad(address feed) external view returns (uint256 price) {
        (, price) = _latest(feed);
    }

    /// @inheritdoc IOracleAdapter
    function confirmShock(address feed) external onlyRole(ORACLE_ROLE) {
        _update(feed);
        FeedState storage s = _state[feed];
        s.shocked = false;
        emit ShockConfirmed(feed, s.lastRoundId);
    }

    /// @inheritdoc IOracleAdapter
    function maxAge(address feed) external view returns (uint256) {
        return _params[feed].maxAge;
    }

    function feedParams(address feed) external view returns (FeedParams memory) {
        return _params[feed];
    }

    function feedState(address feed) external view returns (FeedState memory, VolState memory) {
        return (_state[feed], _vol[feed]);
    }

    // ------------------------------------------------------------------ internals

    function _update(address feed) internal returns (PriceData memory) {
        (uint80 roundId, uint256 price) = _latest(feed);
        FeedParams memory p = _params[feed];
        FeedState memory s = _state[feed];
        VolState memory v = _vol[feed];
        if (roundId != s.lastRoundId) {
            (s, v) = _recorded(p, s, v, roundId, price);
            _state[feed] = s;
            _vol[feed] = v;
            emit PriceRecorded(feed, roundId, price, v.varianceWad, _mmFactor(p, v, block.timestamp), s.shocked);
        }
        return _data(p, s, v);
    }

    /// @dev The latest round, validated and converted to WAD.
    function _latest(address feed) internal view returns (uint80 roundId, uint256 price) {
        FeedParams memory p = _params[feed];
        if (p.maxAge == 0) revert OracleFeedUnknown(feed);
        int256 answer;
        uint256 updatedAt;
        uint80 answeredInRound;
        (roundId, answer,, updatedAt, answeredInRound) = AggregatorV3Interface(feed).latestRoundData();
        if (answer <= 0) revert OracleNonPositivePrice(feed, answer);
        if (updatedAt == 0 || answeredInRound < roundId) revert OracleIncompleteRound(feed, roundId, answeredInRound);
        // A timestamp in the future counts as fresh rather than underflowing.
        if (updatedAt < block.timestamp && block.timestamp - updatedAt > p.maxAge) {
            revert OracleStalePrice(feed, updatedAt, p.maxAge);
        }
        price = uint256(answer) * 10 ** (18 - _decimals[feed]);
    }

    /// @dev The feed's state after recording a new round (pure: `read` and `update` share it).
    function _recorded(FeedParams memory p, FeedState memory s, VolState memory v, uint80 roundId, uint256 price)
        internal
        view
        returns (FeedState memory, VolState memory)
    {
        if (s.lastRoundId == 0) {
            v.mmFactorCheckpointWad = uint64(WAD);
        } else {
            v.mmFactorCheckpointWad = uint64(_mmFactor(p, v, block.timestamp)); // under the old variance
            uint256 r = VolatilityMath.returnWad(s.lastPriceWad, price);
            v.varianceWad = uint128(VolatilityMath.nextVarianceWad(v.varianceWad, r, p.ewmaLambdaWad));
            s.shocked = r > p.maxDeviationWad;
        }
        v.checkpointTime = uint64(block.timestamp);
        s.lastPriceWad = uint128(price);
        s.lastRoundId = roundId;
        return (s, v);
    }

    function _data(FeedParams memory p, FeedState memory s, VolState memory v)
        internal
        view
        returns (PriceData memory)
    {
        return PriceData({
            priceWad: s.lastPriceWad,
            imFactorWad: VolatilityMath.targetFactorWad(v.varianceWad, p.refVolatilityWad, p.maxVolFactorWad),
            mmFactorWad: _mmFactor(p, v, block.timestamp),
            shocked: s.shocked
        });
    }

    function _mmFactor(FeedParams memory p, VolState memory v, uint256 timestamp) internal pure returns (uint256) {
        uint256 target = VolatilityMath.targetFactorWad(v.varianceWad, p.refVolatilityWad, p.maxVolFactorWad);
        return VolatilityMath.rampedFactorWad(
            target, v.mmFactorCheckpointWad, v.checkpointTime, p.factorRisePerDayWad, timestamp
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
