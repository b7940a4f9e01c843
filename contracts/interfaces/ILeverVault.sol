// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IOracleAdapter} from "./IOracleAdapter.sol";

/// @title ILeverVault
/// @notice Custodies every token of the protocol and keeps its ledgers, in token units: margin
///         per account (signed: a loss realised beyond the margin while other positions remain is
///         the account's debt), pool assets (LP shares, ERC-7540), insurance fund, protocol fees,
///         and escrows (orders' executor fees; LP requests' assets and fees).
///         Solvency identity: `token.balanceOf(vault) == totalMargin + poolAssets + insurance +
///         protocolFees + orderEscrow + lpEscrow + surplus`, where `surplus` is only what was sent
///         to the vault outside the protocol; ledgers move between each other exactly.
/// @dev The pool is an ERC-7540 vault, asynchronous both ways: `requestDeposit` / `requestRedeem`
///      escrow the assets or shares, a settlement prices the request at pull prices published
///      after the request plus `lpSettlementDelay` (and at least `lpLiquidationGrace` before the
///      settlement, so keepers have liquidated what those prices made liquidatable), and the
///      controller then claims with `deposit` / `mint` / `redeem` / `withdraw`. Requests use
///      request id 0: each controller has at most one pending deposit and one pending redemption;
///      only the controller (or its operator) may add to one, which restarts its delay.
interface ILeverVault {
    /// @notice Timing and the executor fee of LP requests.
    struct LpParams {
        uint32 settlementDelay; // seconds from a request to the earliest price that may settle it
        uint32 settlementWindow; // a request's price must be published within this after the delay
        uint32 liquidationGrace; // a settlement waits this long after its prices
        uint96 executorFee; // token units paid with each request to whoever settles (or expires) it
    }

    event MarginDeposited(uint256 indexed accountId, address indexed from, uint256 amount);
    event MarginWithdrawn(uint256 indexed accountId, address indexed to, uint256 amount);
    /// @notice A trade's realised PnL and fee moved between the account's margin and the pool.
    event Settled(uint256 indexed accountId, int256 pnlToken, uint256 feeToken, int256 marginAfterToken);
    /// @notice A liquidation left the account owing more than its margin; the shortfall is
    ///         covered by the insurance fund first, and what it cannot cover is a loss to the pool.
    event BadDebt(uint256 indexed accountId, uint256 shortfallToken, uint256 coveredByInsurance, uint256 coveredByPool);
    event InsuranceFunded(address indexed from, uint256 amount);
    event ProtocolFeesClaimed(address indexed to, uint256 amount);
    event ProtocolFeeShareSet(uint256 shareWad);
    event ExecutorFeeEscrowed(uint256 indexed accountId, uint256 amount);
    /// @notice An order's executor fee left escrow: to `to`, or back to the margin if `to` is zero.
    event ExecutorFeeReleased(uint256 indexed accountId, address indexed to, uint256 amount);
    event LpParamsSet(LpParams params);
    event DepositSettled(address indexed controller, uint256 assets, uint256 shares, uint256 poolValue, address keeper);
    event RedeemSettled(address indexed controller, uint256 shares, uint256 assets, uint256 poolValue, address keeper);
    /// @notice An LP request was cancelled: its assets or shares went back to the controller.
    event LpRequestCancelled(address indexed controller, bool deposit, uint256 amount, address by, bytes4 reason);
    // ERC-7540
    event DepositRequest(
        address indexed controller, address indexed owner, uint256 indexed requestId, address sender, uint256 assets
    );
    event RedeemRequest(
        address indexed controller, address indexed owner, uint256 indexed requestId, address sender, uint256 shares
    );
    event OperatorSet(address indexed controller, address indexed operator, bool approved);

    // --- margin accounts ---

    /// @notice Adds `amount` tokens to an existing account's margin. Anyone may top up any account.
    /// @dev Pulls the tokens before crediting them. Reverts `ZeroAmount`, `UnknownAccount`,
    ///      `TransferAmountMismatch` (fee-on-transfer token).
    function depositMargin(uint256 accountId, uint256 amount) external;

    /// @notice Sends `amount` of the account's margin to `to`. Only the account's owner.
    /// @dev Reverts `ZeroAmount`, `ZeroAddress`, `NotAccountOwner`, `WithdrawExceedsMargin`, and
    ///      `InsufficientMargin` if equity at fresh prices would fall below the initial margin.
    function withdrawMargin(uint256 accountId, uint256 amount, address to) external;

    /// @notice Adds `amount` tokens to the insurance fund. Anyone may.
    function fundInsurance(uint256 amount) external;

    /// @notice Sends protocol fees to `to`. Only the admin.
    function claimProtocolFees(address to, uint256 amount) external;

    /// @notice Share of each trading fee kept as protocol fees (the rest goes to the pool). Only `RISK_ROLE`.
    function setProtocolFeeShare(uint256 shareWad) external;

    /// @notice LP request timing and executor fee. Only `RISK_ROLE`; bounds are checked.
    function setLpParams(LpParams calldata params) external;

    // --- modules ---

    /// @notice Moves a trade's realised PnL and fee between the account's margin and the pool.
    ///         Only the engine. The margin may go negative (the account's debt to the pool).
    function settle(uint256 accountId, int256 pnlToken, uint256 feeToken) external returns (int256 marginAfter);

    /// @notice A liquidation's PnL, then its closing fee, keeper reward and penalty, each capped by
    ///         the margin left; a margin left negative is bad debt (insurance first, then the
    ///         pool). If the margin cannot pay `rewardFloorToken`, the insurance fund tops the
    ///         reward up to it, so an underwater account is still worth clearing. Only the engine.
    function settleLiquidation(
        uint256 accountId,
        int256 pnlToken,
        uint256 feeToken,
        uint256 rewardToken,
        uint256 penaltyToken,
        uint256 rewardFloorToken,
        address keeper
    ) external returns (uint256 rewardPaid, uint256 penaltyPaid, uint256 badDebt);

    /// @notice Moves an order's executor fee into escrow: from the account's margin, or, when the
    ///         margin cannot cover it, from `payer`'s wallet. Only the order book.
    function escrowExecutorFee(uint256 accountId, uint256 amount, address payer) external;

    /// @notice Releases an order's escrowed executor fee to `to` (zero address: back to the
    ///         account's margin). Only the order book.
    function releaseExecutorFee(uint256 accountId, uint256 amount, address to) external;

    /// @notice Releases the escrowed executor fees of filled orders to `to` (not zero) in one
    ///         transfer: one `ExecutorFeeReleased` per order, as `releaseExecutorFee` would emit.
    ///         Only the order book (a settlement batch pays its settler once).
    function releaseExecutorFees(uint256[] calldata accountIds, uint256[] calldata amounts, address to) external;

    /// @notice Sends an expired order's escrowed executor fee to the insurance fund. Only the order book.
    function forfeitExecutorFee(uint256 accountId, uint256 amount) external;

    /// @notice How many of the account's orders hold an escrowed fee (each escrow counts one, each
    ///         release or forfeit takes one off): its pending orders.
    function pendingOrders(uint256 accountId) external view returns (uint256);

    // --- LP settlements ---

    /// @notice Prices a controller's pending deposit with pull prices (one update per market with
    ///         open interest, each the earliest published at or after the request plus the delay)
    ///         and makes its shares claimable; the executor fee goes to the caller. Cancels it
    ///         (assets back to the controller) if the pool is worth nothing.
    /// @dev Reverts `RequestNotDue`, `RequestExpired`, `LpPriceMissing`.
    function settleDeposit(address controller, IOracleAdapter.PriceUpdate[] calldata updates) external payable;

    /// @notice Prices a controller's pending redemption like `settleDeposit` and makes its assets
    ///         claimable; cancels it (shares back) if it would take more than the pool's assets
    ///         above its reserve or leave a side's open interest above its cap. The controller
    ///         itself (or its operator) may leave out a market with no price on chain for its
    ///         maximum age: that market then counts at its worst case for the redeemer.
    function settleRedeem(address controller, IOracleAdapter.PriceUpdate[] calldata updates) external payable;

    /// @notice Cancels an expired LP request (assets or shares back to the controller); its
    ///         executor fee goes to the insurance fund (letting a request lapse is not free).
    function cancelExpiredRequest(address controller, bool isDeposit) external;

    // --- views ---
    function marginOf(uint256 accountId) external view returns (int256);
    function totalMargin() external view returns (int256);
    function poolAssets() external view returns (uint256);
    function insuranceFund() external view returns (uint256);
    function protocolFees() external view returns (uint256);
    function orderEscrow() external view returns (uint256);
    function lpEscrow() external view returns (uint256);
    /// @notice 10^(18 - token decimals): token units to WAD.
    function tokenScale() external view returns (uint256);
    /// @notice Pool assets above the reserve open positions need: the most redemptions can take.
    function freeAssets() external view returns (uint256);

    /// @notice The solvency identity: the vault's token balance against the sum of its ledgers.
    function solvency() external view returns (uint256 balance, uint256 liabilities, bool solvent);
}
