// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IOracleAdapter
/// @notice Every price the protocol uses, per market, from two sources:
///         - a **pull price** (Pyth's `IPyth` interface; `MockPyth` on local chains): fills,
///           liquidations and LP settlements are priced by update blobs that the caller brings,
///           and the contract, never the caller, decides which published price is eligible;
///         - a **reference feed** (Chainlink's `AggregatorV3Interface` shape): a pull price that
///           deviates from it by more than a bound is refused, and its rounds drive a running
///           volatility estimate (margin factors) and the shock guard.
///         An optional L2 sequencer-uptime feed (Chainlink's shape: answer 0 = up) stops fills and
///         liquidations while the sequencer is down and for a grace period after it restarts.
/// @dev The latest accepted pull price of each market is stored; views, margin checks on other
///      markets and liquidations read it, so it only moves forward in publish time.
interface IOracleAdapter {
    /// @notice Oracle settings of one market; ratios and factors are WADs.
    struct Config {
        address referenceFeed; // AggregatorV3Interface-shaped feed
        uint32 referenceMaxAge; // seconds a reference answer stays fresh, in (0, 1 day]
        uint64 maxDeviationWad; // a reference round moving more than this from the last is a shock
        uint64 ewmaLambdaWad; // volatility EWMA decay per reference round, e.g. 0.94e18
        uint64 refVolatilityWad; // per-round volatility at which the margin factor starts to rise
        uint64 maxVolFactorWad; // cap of the margin factor, >= 1e18
        uint64 factorRisePerDayWad; // how fast the maintenance factor may rise (factor units a day)
        bytes32 priceId; // the pull oracle's price feed id
        uint32 maxPriceAge; // seconds a stored pull price stays fresh for margin checks and valuations
        uint64 maxConfRatioWad; // widest confidence interval accepted, as a share of the price
        uint64 maxReferenceDeviationWad; // |pull - reference| / reference at most this
        uint32 maxExecutionAge; // liquidations and conditional orders need a price at most this old
    }

    /// @notice What the protocol needs from a market's oracle at one instant.
    struct PriceData {
        uint256 priceWad; // the pull price
        uint256 publishTime; // when it was published
        uint256 imFactorWad; // multiplies initial margin ratios: reacts at once
        uint256 mmFactorWad; // multiplies maintenance margin ratios: rises along a bounded ramp
        bool shocked; // the latest reference round moved more than maxDeviation and is not confirmed
        uint256 referenceWad; // the reference feed's price now (0 if unusable): margin checks take the worse
    }

    /// @notice A pull-oracle update blob for one market.
    struct PriceUpdate {
        uint256 marketId;
        bytes data;
    }

    event MarketOracleConfigured(uint256 indexed marketId, Config config, uint8 referenceDecimals);
    event SequencerFeedSet(address feed, uint256 gracePeriod);
    /// @notice A new reference round was recorded.
    event ReferenceRecorded(
        uint256 indexed marketId,
        uint80 roundId,
        uint256 priceWad,
        uint256 varianceWad,
        uint256 mmFactorWad,
        bool shocked
    );
    /// @notice A newer pull price was stored as the market's latest.
    event PriceStored(uint256 indexed marketId, uint256 priceWad, uint256 publishTime);
    /// @notice The oracle role confirmed a shocked reference round.
    event ShockConfirmed(uint256 indexed marketId, uint80 roundId);

    /// @notice Configures a market's oracle. Only `RISK_ROLE`. Bounds are checked; a change that
    ///         raises the margin factor reaches maintenance margin only through the ramp.
    function configure(uint256 marketId, Config calldata config) external;

    /// @notice Names the L2 sequencer-uptime feed (zero address: none) and its grace period.
    ///         Only `RISK_ROLE`.
    function setSequencerFeed(address feed, uint256 gracePeriod) external;

    /// @notice The earliest price published at or after `minPublishTime`, no later than
    ///         `maxPublishTime`, from `update` (it must be that price: the pull oracle checks that
    ///         the previous publication was before `minPublishTime`). Validated, recorded with the
    ///         reference round, stored as the latest if newer. Anyone may call it (the order book and
    ///         the vault do, to price settlements): like `updatePrices`, it stores only a newer price.
    /// @dev Pays the pull oracle's update fee from `msg.value`; reverts with the pull oracle's
    ///      `PriceFeedNotFoundWithinRange` when `update` is not that price.
    function settlementPrice(uint256 marketId, bytes calldata update, uint64 minPublishTime, uint64 maxPublishTime)
        external
        payable
        returns (PriceData memory);

    /// @notice Stores newer prices from update blobs (each at most `maxPriceAge` old and newer
    ///         than the stored one; older blobs are skipped). Anyone may call; keepers do before
    ///         liquidations. Pays the pull oracle's fees from `msg.value`; returns what is unspent
    ///         to the caller.
    function updatePrices(PriceUpdate[] calldata updates) external payable;

    /// @notice Records the reference feed's latest round if it is new (one sample of the
    ///         volatility estimate and the reference of the shock check). Anyone may call.
    function recordReference(uint256 marketId) external;

    /// @notice The stored latest pull price with the current margin factors and shock flag. Never
    ///         reverts for staleness: callers compare `publishTime` with `maxPriceAge`.
    function latest(uint256 marketId) external view returns (PriceData memory);

    /// @notice Like `latest`, but reverts `OracleStalePrice` if the price is older than the
    ///         market's `maxPriceAge`, and `SequencerDown` / `SequencerGracePeriod` while an L2
    ///         sequencer is down or just back (margin checks that let value out use it).
    function latestFresh(uint256 marketId) external view returns (PriceData memory);

    /// @notice Like `latestFresh`, with the market's `maxExecutionAge`: what liquidations and
    ///         conditional orders execute at, so that a keeper cannot pick a favourable price
    ///         from the past (nor one stored before the sequencer went down).
    function latestRecent(uint256 marketId) external view returns (PriceData memory);

    /// @notice Clears a shock on `marketId` so opening is allowed again. Only `ORACLE_ROLE`.
    function confirmShock(uint256 marketId) external;

    /// @notice The pull oracle's fee for one update blob, in wei.
    function updateFee() external view returns (uint256);

    function isConfigured(uint256 marketId) external view returns (bool);
    function config(uint256 marketId) external view returns (Config memory);
}
