// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {AggregatorV3Interface} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";

/// @title MockPriceFeed
/// @notice A price feed with Chainlink's `AggregatorV3Interface` shape for local chains: every
///         `setPrice` starts and completes a new round. Only `ORACLE_ROLE` may write.
/// @dev `setRoundData` writes a raw round so tests can produce stale or incomplete rounds.
contract MockPriceFeed is AggregatorV3Interface, AccessControl {
    bytes32 public constant ORACLE_ROLE = keccak256("ORACLE_ROLE");

    struct Round {
        int256 answer;
        uint64 startedAt;
        uint64 updatedAt;
        uint80 answeredInRound;
    }

    uint8 public immutable override decimals;
    string public override description;
    uint80 public latestRound;
    mapping(uint80 roundId => Round) internal _rounds;

    /// @notice Chainlink's event for a new answer.
    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);
    /// @notice Chainlink's event for a new round.
    event NewRound(uint256 indexed roundId, address indexed startedBy, uint256 startedAt);

    /// @notice No round exists with this id.
    error NoDataPresent(uint80 roundId);

    constructor(uint8 decimals_, string memory description_, int256 initialAnswer, address admin) {
        decimals = decimals_;
        description = description_;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(ORACLE_ROLE, admin);
        _writeRound(initialAnswer, block.timestamp, block.timestamp, 0);
    }

    function version() external pure override returns (uint256) {
        return 4;
    }

    /// @notice Publishes `answer` as a new, complete round stamped now.
    function setPrice(int256 answer) external onlyRole(ORACLE_ROLE) {
        _writeRound(answer, block.timestamp, block.timestamp, 0);
    }

    /// @notice Publishes a raw round; `answeredInRound` of 0 means "this round".
    function setRoundData(int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
        external
        onlyRole(ORACLE_ROLE)
    {
        _writeRound(answer, startedAt, updatedAt, answeredInRound);
    }

    function getRoundData(uint80 roundId) public view override returns (uint80, int256, uint256, uint256, uint80) {
        Round memory r = _rounds[roundId];
        if (roundId == 0 || roundId > latestRound) revert NoDataPresent(roundId);
        return (roundId, r.answer, r.startedAt, r.updatedAt, r.answeredInRound);
    }

    function latestRoundData() external view override returns (uint80, int256, uint256, uint256, uint80) {
        return getRoundData(latestRound);
    }

    function _writeRound(int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound) internal {
        uint80 roundId = latestRound + 1;
        latestRound = roundId;
        _rounds[roundId] = Round({
            answer: answer,
            startedAt: uint64(startedAt),
            updatedAt: uint64(updatedAt),
            answeredInRound: answeredInRound == 0 ? roundId : answeredInRound
        });
        emit NewRound(roundId, msg.sender, startedAt);
        emit AnswerUpdated(answer, roundId, updatedAt);
    }
}
