// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title ILeverVault
/// @notice Custodies every token of the protocol and keeps its ledgers, in token units:
///         margin per account, pool assets (ERC-4626 LP shares), insurance fund, protocol fees.
///         Solvency identity: `token.balanceOf(vault) == totalMargin + poolAssets + insurance +
///         protocolFees + surplus`, where `surplus` is only what was sent to the vault outside
///         the protocol (donations); ledgers move between each other exactly, so no rounding
///         dust arises in token units.
interface ILeverVault {
    event MarginDeposited(uint256 indexed accountId, address indexed from, uint256 amount);
    event MarginWithdrawn(uint256 indexed accountId, address indexed to, uint256 amount);
    /// @notice A module settled realised PnL, funding and fees of an account against the pool.
    /// @param pnlToken credited (positive) or debited (negative) to the margin, before fees.
    /// @param unpaidProfitToken profit the pool could not pay (the position closed anyway).
    event Settled(
        uint256 indexed accountId, int256 pnlToken, uint256 feeToken, uint256 feeCollectedToken, uint256 unpaidProfitToken
    );
    /// @notice A realised loss exceeded the account's margin; the shortfall is covered by the
    ///         insurance fund first, and what it cannot cover is a loss to the pool.
    event BadDebt(uint256 indexed accountId, uint256 shortfallToken, uint256 coveredByInsurance, uint256 coveredByPool);
    event InsuranceFunded(address indexed from, uint256 amount);
    event ProtocolFeesClaimed(address indexed to, uint256 amount);
    event ProtocolFeeShareSet(uint256 shareWad);

    /// @notice Adds `amount` tokens to an existing account's margin. Anyone may top up any account.
    /// @dev Reverts `ZeroAmount`, `UnknownAccount`, `TransferAmountMismatch` (fee-on-transfer token).
    function depositMargin(uint256 accountId, uint256 amount) external;

    /// @notice Sends `amount` of the account's margin to `to`. Only the account's owner.
    /// @dev Reverts `ZeroAmount`, `ZeroAddress`, `NotAccountOwner`, `WithdrawExceedsMargin`, and
    ///      `InsufficientMargin` if the account's equity would fall below its initial margin.
    function withdrawMargin(uint256 accountId, uint256 amount, address to) external;

    /// @notice Adds `amount` tokens to the insurance fund. Anyone may.
    function fundInsurance(uint256 amount) external;

    /// @notice Sends protocol fees to `to`. Only the admin.
    function claimProtocolFees(address to, uint256 amount) external;

    /// @notice Share of each trading fee kept as protocol fees (the rest goes to the pool). Only `RISK_ROLE`.
    function setProtocolFeeShare(uint256 shareWad) external;

    /// @notice Moves realised PnL and fees between the account's margin and the pool. Only the engine.
    /// @dev A profit the pool cannot pay is capped at the pool's assets (`Settled.unpaidProfitToken`);
    ///      a loss above the margin is bad debt (`BadDebt`). A fee the margin cannot cover is dropped.
    /// @return marginAfter the account's margin after settlement.
    function settle(uint256 accountId, int256 pnlToken, uint256 feeToken) external returns (uint256 marginAfter);

    /// @notice `settle`, then the keeper reward (sent to `keeper`) and the liquidation penalty
    ///         (to the insurance fund), each capped by the margin left. Only the engine.
    /// @return rewardPaid what the keeper received (token units)
    /// @return penaltyPaid what the insurance fund received
    /// @return badDebt the realised shortfall
    function settleLiquidation(
        uint256 accountId,
        int256 pnlToken,
        uint256 feeToken,
        uint256 rewardToken,
        uint256 penaltyToken,
        address keeper
    ) external returns (uint256 rewardPaid, uint256 penaltyPaid, uint256 badDebt);

    function marginOf(uint256 accountId) external view returns (uint256);
    function totalMargin() external view returns (uint256);
    function poolAssets() external view returns (uint256);
    function insuranceFund() external view returns (uint256);
    function protocolFees() external view returns (uint256);
    /// @notice 10^(18 - token decimals): token units to WAD.
    function tokenScale() external view returns (uint256);

    /// @notice The solvency identity: the vault's token balance against the sum of its ledgers.
    /// @return balance `token.balanceOf(vault)`
    /// @return liabilities `totalMargin + poolAssets + insuranceFund + protocolFees`
    /// @return solvent `balance >= liabilities`
    function solvency() external view returns (uint256 balance, uint256 liabilities, bool solvent);
}
