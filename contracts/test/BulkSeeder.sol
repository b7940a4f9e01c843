// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {IPerpEngine} from "../interfaces/IPerpEngine.sol";
import {ILeverVault} from "../interfaces/ILeverVault.sol";
import {IOrderBook} from "../interfaces/IOrderBook.sol";

/// @title BulkSeeder
/// @notice Benchmark only (`make bench-keeper`, scripts/bench_keeper.py): creates thousands of
///         accounts and commits or places their orders, hundreds per transaction, through the
///         protocol's public entry points and nothing else (no privileged hook). It owns every
///         account it creates, so only its deployer may drive it. Never deployed outside the
///         benchmark; Slither skips `contracts/test`.
contract BulkSeeder {
    using SafeERC20 for IERC20;

    IPerpEngine public immutable engine;
    ILeverVault public immutable vault;
    IOrderBook public immutable orderBook;
    address public immutable operator;

    error NotOperator(address caller);
    error LengthMismatch(uint256 ids, uint256 sizes);

    constructor(IPerpEngine engine_, ILeverVault vault_, IOrderBook orderBook_, IERC20 token) {
        (engine, vault, orderBook, operator) = (engine_, vault_, orderBook_, msg.sender);
        token.forceApprove(address(vault_), type(uint256).max);
    }

    modifier onlyOperator() {
        if (msg.sender != operator) revert NotOperator(msg.sender);
        _;
    }

    /// @notice Creates `count` accounts and deposits `marginEach` (token units, from this
    ///         contract's balance) into each; returns the first new account id (the rest follow).
    function openAccounts(uint256 count, uint256 marginEach) external onlyOperator returns (uint256 first) {
        for (uint256 i; i < count; ++i) {
            uint256 id = engine.createAccount();
            if (i == 0) first = id;
            vault.depositMargin(id, marginEach);
        }
    }

    /// @notice Commits a market order of `sizesWad[i]` for account `ids[i]`; returns the order ids.
    function commitOrders(uint256[] calldata ids, uint256 marketId, int256[] calldata sizesWad, uint256 executorFee)
        external
        onlyOperator
        returns (uint256[] memory orderIds)
    {
        if (ids.length != sizesWad.length) revert LengthMismatch(ids.length, sizesWad.length);
        orderIds = new uint256[](ids.length);
        for (uint256 i; i < ids.length; ++i) {
            orderIds[i] = orderBook.commitOrder(ids[i], marketId, sizesWad[i], 0, executorFee);
        }
    }

    /// @notice Places a conditional order (`kind`, `sizesWad[i]`, one trigger for all) for account
    ///         `ids[i]`; returns the order ids.
    function placeOrders(
        uint256[] calldata ids,
        uint256 marketId,
        IOrderBook.OrderKind kind,
        int256[] calldata sizesWad,
        uint256 triggerPriceWad,
        uint256 executorFee
    ) external onlyOperator returns (uint256[] memory orderIds) {
        if (ids.length != sizesWad.length) revert LengthMismatch(ids.length, sizesWad.length);
        orderIds = new uint256[](ids.length);
        for (uint256 i; i < ids.length; ++i) {
            orderIds[i] = orderBook.placeOrder(ids[i], marketId, kind, sizesWad[i], triggerPriceWad, 0, executorFee);
        }
    }
}
