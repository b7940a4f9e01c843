// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ITransferHook} from "./HookToken.sol";

/// @title ReentrancyAttacker
/// @notice Test-only account that acts as a trader or keeper (`execute`, `executeAll` run calls
///         in one transaction) and, when a token hook fires, makes one armed call back into the
///         protocol, recording whether it succeeded and what it returned instead of bubbling it.
contract ReentrancyAttacker is ITransferHook {
    address public armedTarget;
    bytes public armedCall;
    bool public attempted;
    bool public succeeded;
    bytes public result;

    /// @dev Forwards `msg.value` (a pull-price fee); what the target returns stays here.
    function execute(address to, bytes calldata data) external payable returns (bytes memory) {
        return _call(to, data, msg.value);
    }

    function executeAll(address[] calldata to, bytes[] calldata data) external {
        for (uint256 i; i < to.length; ++i) {
            _call(to[i], data[i], 0);
        }
    }

    receive() external payable {}

    /// @notice The call to make from inside the next hook (once).
    function arm(address to, bytes calldata data) external {
        armedTarget = to;
        armedCall = data;
        attempted = false;
        succeeded = false;
        delete result;
    }

    function beforeTokenTransfer(address, address, uint256) external {
        _fire();
    }

    function afterTokenTransfer(address, address, uint256) external {
        _fire();
    }

    function _fire() internal {
        address target = armedTarget;
        if (target == address(0)) return;
        armedTarget = address(0);
        attempted = true;
        (succeeded, result) = target.call(armedCall);
    }

    function _call(address to, bytes calldata data, uint256 value) internal returns (bytes memory out) {
        bool ok;
        (ok, out) = to.call{value: value}(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(out, 32), mload(out))
            }
        }
    }
}
