// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice Called by HookToken on a registered sender before, and a registered recipient after, a transfer.
interface ITransferHook {
    function beforeTokenTransfer(address from, address to, uint256 value) external;
    function afterTokenTransfer(address from, address to, uint256 value) external;
}

/// @title HookToken
/// @notice Test-only 6-decimal token with ERC-777-style transfer hooks: an address that registers
///         itself is called before it sends and after it receives, so it can try to re-enter.
contract HookToken is ERC20 {
    mapping(address => bool) public hooked;

    constructor() ERC20("Hook Token", "HOOK") {}

    function decimals() public pure override returns (uint8) {
        return 6;
    }

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function setHooked(bool on) external {
        hooked[msg.sender] = on;
    }

    function _update(address from, address to, uint256 value) internal override {
        if (hooked[from]) ITransferHook(from).beforeTokenTransfer(from, to, value);
        super._update(from, to, value);
        if (hooked[to]) ITransferHook(to).afterTokenTransfer(from, to, value);
    }
}
