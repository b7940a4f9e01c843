// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {TimelockController} from "@openzeppelin/contracts/governance/TimelockController.sol";

/// @title LeverTimelock
/// @notice OpenZeppelin's `TimelockController`, unchanged: it holds every risk role, so a change
///         of parameters is scheduled, public for `minDelay` seconds (zero on local chains), then
///         executed. The deployer proposes and executes; the timelock administers itself.
contract LeverTimelock is TimelockController {
    constructor(uint256 minDelay, address[] memory proposers, address[] memory executors)
        TimelockController(minDelay, proposers, executors, address(0))
    {}
}
