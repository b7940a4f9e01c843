// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IPerpEngine} from "../interfaces/IPerpEngine.sol";
import {ILeverVault} from "../interfaces/ILeverVault.sol";

/// @title BulkSeeder
/// @notice Benchmark-only helper: opens many accounts (owned by this contract) in one transaction,
///         each with the same margin and position. Never deploy to a public network.
contract BulkSeeder {
    function seed(
        IPerpEngine engine,
        ILeverVault vault,
        IERC20 token,
        uint256 marketId,
        uint256 count,
        uint256 marginEach,
        int256 sizeEach
    ) external {
        token.approve(address(vault), marginEach * count);
        for (uint256 i; i < count; ++i) {
            uint256 accountId = engine.createAccount();
            vault.depositMargin(accountId, marginEach);
            engine.modifyPosition(accountId, marketId, sizeEach, 0);
        }
    }
}
