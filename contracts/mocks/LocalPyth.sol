// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MockPyth} from "@pythnetwork/pyth-sdk-solidity/MockPyth.sol";

/// @title LocalPyth
/// @notice Pyth's own `MockPyth` (npm `@pythnetwork/pyth-sdk-solidity`), deployed as is on local
///         chains. Update blobs are `abi.encode(PriceFeed, prevPublishTime)`; `lever.pyth` and
///         `lever price serve` make them. `parsePriceFeedUpdatesWithConfig` with
///         `checkUniqueness` proves a price is the earliest at or after a time, as the real
///         contract does.
contract LocalPyth is MockPyth {
    constructor(uint256 validTimePeriod, uint256 updateFeeWei) MockPyth(validTimePeriod, updateFeeWei) {}
}
