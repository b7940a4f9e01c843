// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {AggregatorV3Interface} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";
import {IPyth} from "@pythnetwork/pyth-sdk-solidity/IPyth.sol";
import {PythStructs} from "@pythnetwork/pyth-sdk-solidity/PythStructs.sol";
import {IOracleAdapter} from "./interfaces/IOracleAdapter.sol";
import {VolatilityMath} from "./libraries/VolatilityMath.sol";
import {FixedPointMath} from "./libraries/FixedPointMath.sol";
import "./libraries/Constants.sol";
import "./libraries/Errors.sol";

/// @title OracleAdapter
/// @notice Pull prices (Pyth's interface) for fills and liquidations, checked against a reference
///         feed (Chainlink's shape) whose rounds drive the volatility estimate and the shock guard.
contract OracleAdapter is IOracleAdapter, AccessControl {
    using FixedPointMath for uint256;

    bytes32 public constant RISK_ROLE = keccak256("RISK_ROLE");
    bytes32 public constant ORACLE_ROLE = keccak256("ORACLE_ROLE");

    /// @dev Everything about a market's oracle in six slots.
    struct Market {
        // slot 0: reference feed
        address referenceFeed;
        uint32 referenceMaxAge;
        uint64 maxDeviationWad;
        // slot 1: volatility settings
        uint64 ewmaLambdaWad;
        uint64 refVolatilityWad;
        uint64 maxVolFactorWad;
        uint64 factorRisePerDayWad;
        // slot 2: pull price id
        bytes32 priceId;
        // slot 3: pull price settings
        uint32 maxPriceAge;
        uint64 maxConfRatioWad;
        uint64 maxReferenceDeviationWad;
        uint8 referenceDecimals;
        uint32 maxExecutionAge;
        // slot 4: last recorded reference round
        uint112 lastReferenceWad;
        uint80 lastRoundId; // 0: none recorded yet
        uint64 varianceWad; // EWMA of squared per-round returns (saturates at 2^64 - 1)
        // slot 5: maintenance-factor ramp, shock flag, latest pull price
        uint64 mmFactorCheckpointWad;
        uint32 checkpointTime;
        bool shocked;
        uint112 latestPriceWad;
        uint32 latestPublishTime;
    }

    /// @notice The reference round a view or a transaction sees (view shape).
    struct ReferenceState {
        uint256 lastReferenceWad;
        uint80 lastRoundId;
        uint256 varianceWad;
        uint256 mmFactorCheckpointWad;
        uint256 checkpointTime;
        bool shocked;
        uint256 latestPriceWad;
        uint256 latestPublishTime;
    }

    IPyth public immutable pyth;
    AggregatorV3Interface public sequencerFeed;
    uint256 public sequencerGracePeriod;
    mapping(uint256 marketId => Market) internal _markets;

    constructor(IPyth pyth_, address admin) {
        if (address(pyth_) == address(0) || admin == address(0)) revert ZeroAddress();
        pyth = pyth_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(RISK_ROLE, admin);
        _grantRole(ORACLE_ROLE, admin);
    }

    // ------------------------------------------------------------------ configuration

    /// @inheritdoc IOracleAdapter
    function configure(uint256 marketId, Config calldata c) external onlyRole(RISK_ROLE) {
        _validate(c);
        uint8 decimals = AggregatorV3Interface(c.referenceFeed).decimals();
        if (decimals > 18) revert ParameterOutOfBounds("referenceDecimals", decimals);
        Market memory m = _markets[marketId];
        if (m.lastRoundId != 0) {
            // Checkpoint the ramp under the old settings: a raised factor then rises gradually.
            m.mmFactorCheckpointWad = uint64(_mmFactor(m, block.timestamp));
            m.checkpointTime = uint32(block.timestamp);
        }
        if (m.referenceFeed != c.referenceFeed || m.referenceDecimals != decimals) {
            m.lastRoundId = 0; // a new feed starts its own round history
            m.lastReferenceWad = 0;
        }
        (m.referenceFeed, m.referenceMaxAge, m.maxDeviationWad) =
        (c.referenceFeed, c.referenceMaxAge, c.maxDeviationWad);
        (m.ewmaLambdaWad, m.refVolatilityWad, m.maxVolFactorWad, m.factorRisePerDayWad) =
        (c.ewmaLambdaWad, c.refVolatilityWad, c.maxVolFactorWad, c.factorRisePerDayWad);
        m.priceId = c.priceId;
        (m.maxPriceAge, m.maxConfRatioWad, m.maxReferenceDeviationWad, m.referenceDecimals) =
        (c.maxPriceAge, c.maxConfRatioWad, c.maxReferenceDeviationWad, decimals);
        m.maxExecutionAge = c.maxExecutionAge;
        _markets[marketId] = m;
        emit MarketOracleConfigured(marketId, c, decimals);
    }

    /// @inheritdoc IOracleAdapter
    function setSequencerFeed(address feed, uint256 gracePeriod) external onlyRole(RISK_ROLE) {
        if (gracePeriod > MAX_SEQUENCER_GRACE) revert ParameterOutOfBounds("sequencerGrace", gracePeriod);
        sequencerFeed = AggregatorV3Interface(feed);
        sequencerGracePeriod = gracePeriod;
        emit SequencerFeedSet(feed, gracePeriod);
    }

    // ------------------------------------------------------------------ prices

    /// @inheritdoc IOracleAdapter
    function settlementPrice(uint256 marketId, bytes calldata update, uint64 minPublishTime, uint64 maxPublishTime)
        external
        payable
        returns (PriceData memory)
    {
        Market memory m = _configured(marketId);
        _checkSequencer();
        (uint256 priceWad, uint256 publishTime) = _parse(marketId, m, update, minPublishTime, maxPublishTime, true);
        (uint256 referenceWad, uint256 referenceTime) = _recordReference(marketId, m, true);
        // A settlement price may be minutes old: it is held against the reference only if that
        // reference was the one in force when the price was published.
        if (referenceTime <= publishTime) _checkReferenceDeviation(marketId, m, priceWad, referenceWad);
        _storeIfNewer(marketId, m, priceWad, publishTime);
        _markets[marketId] = m;
        return _data(m, priceWad, publishTime, referenceWad);
    }

    /// @inheritdoc IOracleAdapter
    function updatePrices(PriceUpdate[] calldata updates) external payable {
        _checkSequencer();
        uint256 fee = pyth.getUpdateFee(new bytes[](1));
        uint256 spent;
        for (uint256 i; i < updates.length; ++i) {
            uint256 marketId = updates[i].marketId;
            Market memory m = _configured(marketId);
            uint256 earliest = block.timestamp > m.maxPriceAge ? block.timestamp - m.maxPriceAge : 0;
            if (m.latestPublishTime >= earliest) earliest = uint256(m.latestPublishTime) + 1;
            if (earliest > block.timestamp) continue; // nothing newer can exist yet
            if (spent + fee > msg.value) revert UpdateFeeUnpaid(spent + fee, msg.value);
            (bool ok, uint256 priceWad, uint256 publishTime) =
                _tryParse(marketId, m, updates[i].data, uint64(earliest), uint64(block.timestamp), fee);
            if (!ok) continue; // an older (or unrelated) blob is skipped, its fee unspent
            spent += fee;
            (uint256 referenceWad,) = _recordReference(marketId, m, false);
            if (referenceWad != 0) _checkReferenceDeviation(marketId, m, priceWad, referenceWad);
            _storeIfNewer(marketId, m, priceWad, publishTime);
            _markets[marketId] = m;
        }
        if (msg.value > spent) Address.sendValue(payable(msg.sender), msg.value - spent);
    }

    /// @inheritdoc IOracleAdapter
    function recordReference(uint256 marketId) external {
        Market memory m = _configured(marketId);
        _recordReference(marketId, m, true);
        _markets[marketId] = m;
    }

    /// @inheritdoc IOracleAdapter
    function confirmShock(uint256 marketId) external onlyRole(ORACLE_ROLE) {
        Market memory m = _configured(marketId);
        _recordReference(marketId, m, true);
        m.shocked = false;
        _markets[marketId] = m;
        emit ShockConfirmed(marketId, m.lastRoundId);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IOracleAdapter
    function latest(uint256 marketId) public view returns (PriceData memory) {
        Market memory m = _markets[marketId];
        if (m.referenceFeed == address(0)) revert OracleNotConfigured(marketId);
        return _data(m, m.latestPriceWad, m.latestPublishTime, _viewReference(m));
    }

    /// @inheritdoc IOracleAdapter
    function latestFresh(uint256 marketId) external view returns (PriceData memory) {
        return _within(marketId, _markets[marketId].maxPriceAge);
    }

    /// @inheritdoc IOracleAdapter
    function latestRecent(uint256 marketId) external view returns (PriceData memory) {
        return _within(marketId, _markets[marketId].maxExecutionAge);
    }

    function _within(uint256 marketId, uint256 maxAge) internal view returns (PriceData memory d) {
        _checkSequencer(); // nothing executes at a stored price while the sequencer is down or in its grace
        d = latest(marketId);
        if (d.publishTime + maxAge < block.timestamp) revert OracleStalePrice(marketId, d.publishTime, maxAge);
    }

    /// @inheritdoc IOracleAdapter
    function updateFee() external view returns (uint256) {
        return pyth.getUpdateFee(new bytes[](1));
    }

    /// @inheritdoc IOracleAdapter
    function isConfigured(uint256 marketId) external view returns (bool) {
        return _markets[marketId].referenceFeed != address(0);
    }

    /// @inheritdoc IOracleAdapter
    function config(uint256 marketId) external view returns (Config memory c) {
        Market memory m = _markets[marketId];
        (c.referenceFeed, c.referenceMaxAge, c.maxDeviationWad) =
        (m.referenceFeed, m.referenceMaxAge, m.maxDeviationWad);
        (c.ewmaLambdaWad, c.refVolatilityWad, c.maxVolFactorWad, c.factorRisePerDayWad) =
        (m.ewmaLambdaWad, m.refVolatilityWad, m.maxVolFactorWad, m.factorRisePerDayWad);
        (c.priceId, c.maxPriceAge, c.maxConfRatioWad, c.maxReferenceDeviationWad) =
        (m.priceId, m.maxPriceAge, m.maxConfRatioWad, m.maxReferenceDeviationWad);
        c.maxExecutionAge = m.maxExecutionAge;
    }

    /// @notice The market's recorded reference and pull-price state, as stored.
    function state(uint256 marketId) external view returns (ReferenceState memory s) {
        Market memory m = _markets[marketId];
        (s.lastReferenceWad, s.lastRoundId, s.varianceWad) = (m.lastReferenceWad, m.lastRoundId, m.varianceWad);
        (s.mmFactorCheckpointWad, s.checkpointTime, s.shocked) = (m.mmFactorCheckpointWad, m.checkpointTime, m.shocked);
        (s.latestPriceWad, s.latestPublishTime) = (m.latestPriceWad, m.latestPublishTime);
    }

    // ------------------------------------------------------------------ internals: pull price

    function _parse(
        uint256 marketId,
        Market memory m,
        bytes calldata update,
        uint64 minTime,
        uint64 maxTime,
        bool unique
    ) internal returns (uint256 priceWad, uint256 publishTime) {
        bytes[] memory data = new bytes[](1);
        data[0] = update;
        uint256 fee = pyth.getUpdateFee(data);
        if (msg.value != fee) revert UpdateFeeUnpaid(fee, msg.value);
        (PythStructs.PriceFeed[] memory feeds,) = pyth.parsePriceFeedUpdatesWithConfig{value: fee}(
            data, _ids(m.priceId), minTime, maxTime, unique, false, false
        );
        return _toWad(marketId, m, feeds[0].price);
    }

    function _tryParse(
        uint256 marketId,
        Market memory m,
        bytes calldata update,
        uint64 minTime,
        uint64 maxTime,
        uint256 fee
    ) internal returns (bool ok, uint256 priceWad, uint256 publishTime) {
        bytes[] memory data = new bytes[](1);
        data[0] = update;
        try pyth.parsePriceFeedUpdatesWithConfig{value: fee}(
            data, _ids(m.priceId), minTime, maxTime, false, false, false
        ) returns (
            PythStructs.PriceFeed[] memory feeds, uint64[] memory
        ) {
            (priceWad, publishTime) = _toWad(marketId, m, feeds[0].price);
            ok = true;
        } catch {}
    }

    function _ids(bytes32 id) internal pure returns (bytes32[] memory ids) {
        ids = new bytes32[](1);
        ids[0] = id;
    }

    /// @dev Pyth's (price, conf, expo) to WAD, validated: positive, exponent in [-18, 0], at most
    ///      MAX_PRICE_WAD, confidence interval within the market's bound.
    function _toWad(uint256 marketId, Market memory m, PythStructs.Price memory p)
        internal
        pure
        returns (uint256 priceWad, uint256 publishTime)
    {
        if (p.price <= 0) revert OracleNonPositivePrice(marketId, p.price);
        if (p.expo > 0 || p.expo < -18) revert OracleExponentInvalid(marketId, p.expo);
        uint256 scale = 10 ** uint256(int256(18 + p.expo));
        priceWad = uint256(int256(p.price)) * scale;
        if (priceWad > MAX_PRICE_WAD) revert OraclePriceTooHigh(marketId, priceWad);
        uint256 confWad = uint256(p.conf) * scale;
        if (confWad > priceWad.mulDivDown(m.maxConfRatioWad, WAD)) {
            revert OracleConfidenceTooWide(marketId, confWad, priceWad);
        }
        publishTime = p.publishTime;
    }

    function _checkReferenceDeviation(uint256 marketId, Market memory m, uint256 priceWad, uint256 referenceWad)
        internal
        pure
    {
        uint256 gap = priceWad > referenceWad ? priceWad - referenceWad : referenceWad - priceWad;
        if (gap > referenceWad.mulDivDown(m.maxReferenceDeviationWad, WAD)) {
            revert OracleReferenceDeviation(marketId, priceWad, referenceWad);
        }
    }

    function _storeIfNewer(uint256 marketId, Market memory m, uint256 priceWad, uint256 publishTime) internal {
        if (publishTime <= m.latestPublishTime) return;
        m.latestPriceWad = uint112(priceWad); // <= MAX_PRICE_WAD < 2^112
        m.latestPublishTime = uint32(publishTime);
        emit PriceStored(marketId, priceWad, publishTime);
    }

    function _checkSequencer() internal view {
        AggregatorV3Interface feed = sequencerFeed;
        if (address(feed) == address(0)) return;
        (, int256 answer, uint256 startedAt,,) = feed.latestRoundData();
        if (answer != 0) revert SequencerDown();
        uint256 until = startedAt + sequencerGracePeriod;
        if (block.timestamp < until) revert SequencerGracePeriod(until);
    }

    // ------------------------------------------------------------------ internals: reference feed

    /// @dev Reads the reference feed's latest round. `strict`: an invalid or stale round reverts
    ///      with its error; otherwise it returns price 0.
    function _reference(uint256 marketId, Market memory m, bool strict)
        internal
        view
        returns (uint80 roundId, uint256 priceWad, uint256 updatedAt)
    {
        int256 answer;
        uint80 answeredInRound;
        (roundId, answer,, updatedAt, answeredInRound) = AggregatorV3Interface(m.referenceFeed).latestRoundData();
        uint256 scale = 10 ** (18 - m.referenceDecimals);
        if (answer <= 0) {
            if (strict) revert OracleNonPositivePrice(marketId, answer);
            return (roundId, 0, updatedAt);
        }
        if (uint256(answer) > MAX_PRICE_WAD / scale) {
            if (strict) revert OraclePriceTooHigh(marketId, uint256(answer) * scale);
            return (roundId, 0, updatedAt);
        }
        if (updatedAt == 0 || answeredInRound < roundId) {
            if (strict) revert OracleIncompleteRound(marketId, roundId, answeredInRound);
            return (roundId, 0, updatedAt);
        }
        // A timestamp in the future counts as fresh rather than underflowing.
        if (updatedAt < block.timestamp && block.timestamp - updatedAt > m.referenceMaxAge) {
            if (strict) revert OracleStalePrice(marketId, updatedAt, m.referenceMaxAge);
            return (roundId, 0, updatedAt);
        }
        priceWad = uint256(answer) * scale;
    }

    /// @dev Records a new reference round into `m` (in memory; the caller stores `m`) and returns
    ///      the reference price (0 if not `strict` and the round is unusable) and its time.
    function _recordReference(uint256 marketId, Market memory m, bool strict) internal returns (uint256, uint256) {
        (uint80 roundId, uint256 priceWad, uint256 updatedAt) = _reference(marketId, m, strict);
        if (priceWad == 0) return (0, updatedAt);
        if (roundId != m.lastRoundId) {
            _record(m, roundId, priceWad);
            emit ReferenceRecorded(marketId, roundId, priceWad, m.varianceWad, _mmFactor(m, block.timestamp), m.shocked);
        }
        return (priceWad, updatedAt);
    }

    /// @dev What `_recordReference` would record now, for views (an unusable round is ignored);
    ///      returns the usable reference price (0 if none).
    function _viewReference(Market memory m) internal view returns (uint256) {
        (uint80 roundId, uint256 priceWad,) = _reference(0, m, false);
        if (priceWad != 0 && roundId != m.lastRoundId) _record(m, roundId, priceWad);
        return priceWad;
    }

    /// @dev Records a new round into `m`. The ramp is checkpointed under the old variance first;
    ///      the variance saturates at 2^64 - 1.
    function _record(Market memory m, uint80 roundId, uint256 priceWad) internal view {
        if (m.lastRoundId == 0) {
            m.mmFactorCheckpointWad = uint64(WAD);
        } else {
            m.mmFactorCheckpointWad = uint64(_mmFactor(m, block.timestamp));
            uint256 r = VolatilityMath.returnWad(m.lastReferenceWad, priceWad);
            uint256 variance = VolatilityMath.nextVarianceWad(m.varianceWad, r, m.ewmaLambdaWad);
            m.varianceWad = variance < type(uint64).max ? uint64(variance) : type(uint64).max;
            m.shocked = r > m.maxDeviationWad;
        }
        m.checkpointTime = uint32(block.timestamp);
        m.lastReferenceWad = uint112(priceWad); // <= MAX_PRICE_WAD < 2^112
        m.lastRoundId = roundId;
    }

    function _data(Market memory m, uint256 priceWad, uint256 publishTime, uint256 referenceWad)
        internal
        view
        returns (PriceData memory)
    {
        uint256 target = VolatilityMath.targetFactorWad(m.varianceWad, m.refVolatilityWad, m.maxVolFactorWad);
        return PriceData({
            priceWad: priceWad,
            publishTime: publishTime,
            imFactorWad: target,
            mmFactorWad: _ramped(m, target, block.timestamp), // one square root for both factors
            shocked: m.shocked,
            referenceWad: referenceWad
        });
    }

    function _mmFactor(Market memory m, uint256 timestamp) internal pure returns (uint256) {
        return
            _ramped(m, VolatilityMath.targetFactorWad(m.varianceWad, m.refVolatilityWad, m.maxVolFactorWad), timestamp);
    }

    function _ramped(Market memory m, uint256 target, uint256 timestamp) internal pure returns (uint256) {
        return VolatilityMath.rampedFactorWad(
            target, m.mmFactorCheckpointWad, m.checkpointTime, m.factorRisePerDayWad, timestamp
        );
    }

    function _configured(uint256 marketId) internal view returns (Market memory m) {
        m = _markets[marketId];
        if (m.referenceFeed == address(0)) revert OracleNotConfigured(marketId);
    }

    function _validate(Config calldata c) internal pure {
        if (c.referenceFeed == address(0)) revert ZeroAddress();
        if (c.referenceMaxAge == 0 || c.referenceMaxAge > MAX_ORACLE_AGE) {
            revert ParameterOutOfBounds("referenceMaxAge", c.referenceMaxAge);
        }
        if (c.maxDeviationWad < MIN_MAX_DEVIATION_WAD || c.maxDeviationWad > WAD) {
            revert ParameterOutOfBounds("maxDeviation", c.maxDeviationWad);
        }
        if (c.ewmaLambdaWad < MIN_EWMA_LAMBDA_WAD || c.ewmaLambdaWad > MAX_EWMA_LAMBDA_WAD) {
            revert ParameterOutOfBounds("ewmaLambda", c.ewmaLambdaWad);
        }
        if (c.refVolatilityWad == 0 || c.refVolatilityWad > WAD) {
            revert ParameterOutOfBounds("refVolatility", c.refVolatilityWad);
        }
        if (c.maxVolFactorWad < WAD || c.maxVolFactorWad > MAX_VOL_FACTOR_WAD) {
            revert ParameterOutOfBounds("maxVolFactor", c.maxVolFactorWad);
        }
        if (c.factorRisePerDayWad == 0 || c.factorRisePerDayWad > MAX_FACTOR_RISE_PER_DAY_WAD) {
            revert ParameterOutOfBounds("factorRisePerDay", c.factorRisePerDayWad);
        }
        if (c.priceId == bytes32(0)) revert ParameterOutOfBounds("priceId", 0);
        if (c.maxPriceAge == 0 || c.maxPriceAge > MAX_ORACLE_AGE) {
            revert ParameterOutOfBounds("maxPriceAge", c.maxPriceAge);
        }
        if (c.maxConfRatioWad == 0 || c.maxConfRatioWad > MAX_CONF_RATIO_WAD) {
            revert ParameterOutOfBounds("maxConfRatio", c.maxConfRatioWad);
        }
        if (c.maxReferenceDeviationWad == 0 || c.maxReferenceDeviationWad > MAX_REFERENCE_DEVIATION_WAD) {
            revert ParameterOutOfBounds("maxReferenceDeviation", c.maxReferenceDeviationWad);
        }
        if (c.maxExecutionAge == 0 || c.maxExecutionAge > c.maxPriceAge) {
            revert ParameterOutOfBounds("maxExecutionAge", c.maxExecutionAge);
        }
    }
}
