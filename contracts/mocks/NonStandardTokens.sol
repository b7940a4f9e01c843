// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @notice Balances, allowances and minting shared by the non-standard test tokens below; each
///         adds its own (non-standard) transfer, transferFrom and approve.
abstract contract BareToken {
    uint8 public constant decimals = 6;
    uint256 public totalSupply;
    mapping(address => uint256) public balanceOf;
    mapping(address => mapping(address => uint256)) public allowance;

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    function mint(address to, uint256 amount) external {
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    function _approve(address spender, uint256 amount) internal {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
    }

    /// @dev Moves `amount` if `from` holds it; reports whether it did.
    function _move(address from, address to, uint256 amount) internal returns (bool) {
        if (balanceOf[from] < amount) return false;
        balanceOf[from] -= amount;
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
        return true;
    }
}

/// @title NoReturnToken
/// @notice Test-only 6-decimal token whose transfer, transferFrom and approve return nothing
///         (as USDT does on mainnet) and revert on failure.
contract NoReturnToken is BareToken {
    string public constant name = "No Return Token";
    string public constant symbol = "NRT";

    function approve(address spender, uint256 amount) external {
        _approve(spender, amount);
    }

    function transfer(address to, uint256 amount) external {
        require(_move(msg.sender, to, amount), "balance");
    }

    function transferFrom(address from, address to, uint256 amount) external {
        require(allowance[from][msg.sender] >= amount, "allowance");
        allowance[from][msg.sender] -= amount;
        require(_move(from, to, amount), "balance");
    }
}

/// @title FalseReturnToken
/// @notice Test-only 6-decimal token that returns false instead of reverting when a transfer
///         cannot be made (some early ERC-20s do); callers that ignore the result lose money.
contract FalseReturnToken is BareToken {
    string public constant name = "False Return Token";
    string public constant symbol = "FRT";

    function approve(address spender, uint256 amount) external returns (bool) {
        _approve(spender, amount);
        return true;
    }

    function transfer(address to, uint256 amount) external returns (bool) {
        return _move(msg.sender, to, amount);
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        if (allowance[from][msg.sender] < amount) return false;
        if (!_move(from, to, amount)) return false;
        allowance[from][msg.sender] -= amount;
        return true;
    }
}
