// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20, IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {IERC4626} from "@openzeppelin/contracts/interfaces/IERC4626.sol";
import {IERC165} from "@openzeppelin/contracts/utils/introspection/IERC165.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ILeverVault} from "./interfaces/ILeverVault.sol";
import {IPerpEngine} from "./interfaces/IPerpEngine.sol";
import {IOracleAdapter} from "./interfaces/IOracleAdapter.sol";
import {FixedPointMath} from "./libraries/FixedPointMath.sol";
import {PoolMath} from "./libraries/PoolMath.sol";
import "./libraries/Constants.sol";
import "./libraries/Errors.sol";

/// @title LeverVault
/// @notice The collateral vault: margin accounts, the liquidity pool (an asynchronous ERC-7540
///         vault whose shares are the counterparty to traders' PnL), the insurance fund,
///         protocol fees and escrows, in one token.
/// @dev The pool is valued from its ledger, never from `balanceOf`, so donations change nothing;
///      10^6 virtual shares per virtual asset defend against share inflation.
contract LeverVault is ILeverVault, IERC4626, ERC20, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using FixedPointMath for uint256;
    using SafeCast for uint256;
    using SafeCast for int256;

    bytes32 public constant RISK_ROLE = keccak256("RISK_ROLE");

    /// @dev A pending request: assets (deposit) or shares (redeem), when it was made, its fee.
    struct Request {
        uint128 amount;
        uint32 time;
        uint96 fee;
    }

    /// @dev A fulfilled request not yet claimed.
    struct Claimable {
        uint128 assets;
        uint128 shares;
    }

    /// @dev An account's margin (signed: a debt is negative) and how many of its orders hold an
    ///      escrowed fee, in one slot: placing and removing an order write the slot they write
    ///      anyway, and the order book skips scanning the order slots of an account without pending
    ///      orders (a liquidation, a closed position). int248 is wider than the margin ledger's
    ///      int128, which bounds every deposit.
    struct MarginSlot {
        int248 margin;
        uint8 pendingOrders; // at most MAX_ORDERS_PER_ACCOUNT
    }

    /// @dev The order escrow beside the LP parameters: one slot that is never zero (the window is
    ///      at least MIN_SETTLEMENT_WINDOW), so escrowing a fee never writes a fresh slot. The
    ///      parameters are `LpParams` in narrower types, exact under `_setLpParams`'s bounds
    ///      (delay and grace at most an hour, window at most a day, fee < 2^72).
    struct EscrowSlot {
        uint128 orderEscrow;
        uint16 lpSettlementDelay;
        uint24 lpSettlementWindow;
        uint16 lpLiquidationGrace;
        uint72 lpExecutorFee;
    }

    IERC20 internal immutable _token;
    uint8 internal immutable _decimals;
    uint256 public immutable tokenScale;
    /// @notice The modules, fixed at deployment (the deploy script predicts their addresses).
    IPerpEngine public immutable engine;
    address public immutable orderBook;
    IOracleAdapter public immutable oracle;

    mapping(uint256 accountId => MarginSlot) internal _margin;
    /// @dev Every margin plus the order escrow: escrowing an order's fee from its margin moves
    ///      money inside this sum and writes only the escrow. `totalMargin()` subtracts it.
    int128 internal _marginAndEscrow;
    uint128 internal _poolAssets;
    uint96 internal _insuranceFund;
    uint96 internal _protocolFees;
    uint64 internal _protocolFeeShareWad;
    EscrowSlot internal _e;
    uint128 internal _lpEscrow;

    mapping(address controller => Request) internal _pendingDeposit;
    mapping(address controller => Request) internal _pendingRedeem;
    mapping(address controller => Claimable) internal _claimableDeposit;
    mapping(address controller => Claimable) internal _claimableRedeem;
    /// @notice ERC-7540 operators: `isOperator[controller][operator]`.
    mapping(address controller => mapping(address operator => bool)) public isOperator;

    /// @notice Cumulative bad debt, and how it was covered (token units).
    uint256 public badDebtTotal;
    uint256 public badDebtCoveredByInsurance;
    uint256 public badDebtCoveredByPool;

    modifier only(address module) {
        if (msg.sender != module) revert Unauthorized(msg.sender);
        _;
    }

    constructor(
        IERC20Metadata token_,
        address admin,
        uint256 protocolFeeShareWad_,
        LpParams memory lp_,
        IPerpEngine engine_,
        address orderBook_,
        IOracleAdapter oracle_
    ) ERC20("Lever LP", "lvLP") {
        if (
            admin == address(0) || address(token_) == address(0) || address(engine_) == address(0)
                || orderBook_ == address(0) || address(oracle_) == address(0)
        ) revert ZeroAddress();
        uint8 decimals_ = token_.decimals();
        if (decimals_ > 18) revert UnsupportedTokenDecimals(decimals_);
        (_token, _decimals, tokenScale) = (token_, decimals_, 10 ** (18 - decimals_));
        (engine, orderBook, oracle) = (engine_, orderBook_, oracle_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(RISK_ROLE, admin);
        _setProtocolFeeShare(protocolFeeShareWad_);
        _setLpParams(lp_);
    }

    // ------------------------------------------------------------------ margin accounts

    /// @inheritdoc ILeverVault
    function depositMargin(uint256 accountId, uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        if (engine.accountOwner(accountId) == address(0)) revert UnknownAccount(accountId);
        _pull(msg.sender, amount);
        _margin[accountId].margin = (_margin[accountId].margin + int256(amount)).toInt248();
        _marginAndEscrow += amount.toInt256().toInt128();
        emit MarginDeposited(accountId, msg.sender, amount);
    }

    /// @inheritdoc ILeverVault
    function withdrawMargin(uint256 accountId, uint256 amount, address to) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        if (to == address(0)) revert ZeroAddress();
        int256 margin = _margin[accountId].margin;
        if (margin < 0 || amount > uint256(margin)) revert WithdrawExceedsMargin(accountId, amount, margin);
        margin -= int256(amount);
        engine.checkWithdrawal(accountId, msg.sender, margin);
        _margin[accountId].margin = int248(margin); // in [0, the margin before]
        _marginAndEscrow -= amount.toInt256().toInt128();
        emit MarginWithdrawn(accountId, to, amount);
        _token.safeTransfer(to, amount);
    }

    /// @inheritdoc ILeverVault
    function fundInsurance(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        _pull(msg.sender, amount);
        _insuranceFund += amount.toUint96();
        emit InsuranceFunded(msg.sender, amount);
    }

    /// @inheritdoc ILeverVault
    function claimProtocolFees(address to, uint256 amount) external onlyRole(DEFAULT_ADMIN_ROLE) nonReentrant {
        if (to == address(0)) revert ZeroAddress();
        if (amount == 0) revert ZeroAmount();
        if (amount > _protocolFees) revert ParameterOutOfBounds("amount", amount);
        _protocolFees -= amount.toUint96();
        emit ProtocolFeesClaimed(to, amount);
        _token.safeTransfer(to, amount);
    }

    /// @inheritdoc ILeverVault
    function setProtocolFeeShare(uint256 shareWad) external onlyRole(RISK_ROLE) {
        _setProtocolFeeShare(shareWad);
    }

    /// @inheritdoc ILeverVault
    function setLpParams(LpParams calldata params) external onlyRole(RISK_ROLE) {
        _setLpParams(params);
    }

    // ------------------------------------------------------------------ module settlement

    /// @inheritdoc ILeverVault
    /// @dev nonReentrant although it moves no tokens: a trade must not run inside a token hook
    ///      fired by another vault operation.
    function settle(uint256 accountId, int256 pnlToken, uint256 feeToken)
        external
        only(address(engine))
        nonReentrant
        returns (int256 margin)
    {
        margin = _margin[accountId].margin + pnlToken - int256(feeToken);
        _margin[accountId].margin = margin.toInt248();
        _marginAndEscrow = (_marginAndEscrow + pnlToken - int256(feeToken)).toInt128();
        uint256 protocolCut = _collectFee(feeToken);
        _poolAssets = (int256(uint256(_poolAssets)) - pnlToken + int256(feeToken - protocolCut)).toUint256().toUint128();
        emit Settled(accountId, pnlToken, feeToken, margin);
    }

    /// @inheritdoc ILeverVault
    function settleLiquidation(
        uint256 accountId,
        int256 pnlToken,
        uint256 feeToken,
        uint256 rewardToken,
        uint256 penaltyToken,
        uint256 rewardFloorToken,
        address keeper
    ) external only(address(engine)) nonReentrant returns (uint256 rewardPaid, uint256 penaltyPaid, uint256 badDebt) {
        int256 before = _margin[accountId].margin;
        int256 margin = before + pnlToken;
        int256 pool = int256(uint256(_poolAssets)) - pnlToken;
        // Each charge is capped by what the margin still holds.
        uint256 fee = _capped(feeToken, margin);
        margin -= int256(fee);
        uint256 protocolCut = _collectFee(fee);
        pool += int256(fee - protocolCut);
        rewardPaid = _capped(rewardToken, margin);
        margin -= int256(rewardPaid);
        penaltyPaid = _capped(penaltyToken, margin);
        margin -= int256(penaltyPaid);
        uint256 insurance = uint256(_insuranceFund) + penaltyPaid;
        if (rewardPaid < rewardFloorToken) {
            // The keeper of an account too poor to pay is still paid the floor, before any bad debt.
            uint256 topUp = (rewardFloorToken - rewardPaid).min(insurance);
            insurance -= topUp;
            rewardPaid += topUp;
        }
        if (margin < 0) {
            badDebt = uint256(-margin);
            uint256 byInsurance = badDebt.min(insurance);
            insurance -= byInsurance;
            // The pool was credited the whole loss above; it keeps only what was collected.
            pool -= int256(badDebt - byInsurance);
            (badDebtTotal, badDebtCoveredByInsurance, badDebtCoveredByPool) =
            (
                badDebtTotal + badDebt,
                badDebtCoveredByInsurance + byInsurance,
                badDebtCoveredByPool + badDebt - byInsurance
            );
            emit BadDebt(accountId, badDebt, byInsurance, badDebt - byInsurance);
            margin = 0;
        }
        _margin[accountId].margin = margin.toInt248();
        _marginAndEscrow = (_marginAndEscrow + margin - before).toInt128();
        _poolAssets = pool.toUint256().toUint128();
        _insuranceFund = insurance.toUint96();
        if (rewardPaid > 0) _token.safeTransfer(keeper, rewardPaid);
    }

    /// @inheritdoc ILeverVault
    function escrowExecutorFee(uint256 accountId, uint256 amount, address payer) external only(orderBook) nonReentrant {
        MarginSlot memory a = _margin[accountId];
        if (a.margin >= int256(amount)) {
            a.margin -= int248(int256(amount)); // within margin + escrow; amount <= margin < 2^247
        } else {
            // An account whose margin cannot cover the fee (one in debt, say) pays it from the
            // owner's wallet: an order must never be paid for by the pool.
            _pull(payer, amount);
            _marginAndEscrow += amount.toInt256().toInt128();
        }
        ++a.pendingOrders;
        _margin[accountId] = a;
        _e.orderEscrow += amount.toUint128();
        emit ExecutorFeeEscrowed(accountId, amount);
    }

    /// @inheritdoc ILeverVault
    function forfeitExecutorFee(uint256 accountId, uint256 amount) external only(orderBook) {
        _e.orderEscrow -= amount.toUint128();
        _marginAndEscrow -= amount.toInt256().toInt128();
        --_margin[accountId].pendingOrders;
        _insuranceFund += amount.toUint96();
        emit ExecutorFeeReleased(accountId, address(this), amount);
    }

    /// @inheritdoc ILeverVault
    function releaseExecutorFee(uint256 accountId, uint256 amount, address to) external only(orderBook) nonReentrant {
        _e.orderEscrow -= amount.toUint128();
        emit ExecutorFeeReleased(accountId, to, amount);
        MarginSlot memory a = _margin[accountId];
        --a.pendingOrders;
        if (to == address(0)) a.margin = (a.margin + amount.toInt256()).toInt248(); // within margin + escrow
        _margin[accountId] = a;
        if (to != address(0)) {
            _marginAndEscrow -= amount.toInt256().toInt128();
            if (amount > 0) _token.safeTransfer(to, amount);
        }
    }

    /// @inheritdoc ILeverVault
    function releaseExecutorFees(uint256[] calldata accountIds, uint256[] calldata amounts, address to)
        external
        only(orderBook)
        nonReentrant
    {
        uint256 total;
        for (uint256 i; i < accountIds.length; ++i) {
            total += amounts[i];
            --_margin[accountIds[i]].pendingOrders;
            emit ExecutorFeeReleased(accountIds[i], to, amounts[i]);
        }
        _e.orderEscrow -= total.toUint128();
        _marginAndEscrow -= total.toInt256().toInt128();
        if (total > 0) _token.safeTransfer(to, total);
    }

    // ------------------------------------------------------------------ LP requests (ERC-7540)

    /// @notice Escrows `assets` (plus the LP executor fee for a new request) from `owner` and
    ///         adds them to `controller`'s pending deposit. Returns request id 0.
    function requestDeposit(uint256 assets, address controller, address owner) external nonReentrant returns (uint256) {
        if (assets == 0) revert ZeroAmount();
        if (controller == address(0)) revert ZeroAddress();
        _requireOperator(owner);
        Request memory q = _pendingDeposit[controller];
        // Adding restarts the request's delay: only its controller (or an operator) may do that.
        if (q.amount != 0) _requireOperator(controller);
        uint256 fee = q.amount == 0 ? _e.lpExecutorFee : 0;
        _pull(owner, assets + fee);
        _lpEscrow += (assets + fee).toUint128();
        (q.amount, q.time, q.fee) = ((q.amount + assets).toUint128(), uint32(block.timestamp), q.fee + uint96(fee));
        _pendingDeposit[controller] = q;
        emit DepositRequest(controller, owner, 0, msg.sender, assets);
        return 0;
    }

    /// @notice Locks `shares` of `owner` in the vault (and escrows the LP executor fee, in
    ///         tokens, from the caller, for a new request) as `controller`'s pending redemption.
    ///         Returns request id 0.
    /// @dev The fee is the caller's: a spender of `owner`'s shares must not reach `owner`'s token
    ///      approval (many one-share requests, settled by the spender, would drain it).
    function requestRedeem(uint256 shares, address controller, address owner) external nonReentrant returns (uint256) {
        if (shares == 0) revert ZeroAmount();
        if (controller == address(0)) revert ZeroAddress();
        if (owner != msg.sender && !isOperator[owner][msg.sender]) _spendAllowance(owner, msg.sender, shares);
        Request memory q = _pendingRedeem[controller];
        if (q.amount != 0) _requireOperator(controller);
        if (_lastSharesBackOpenPositions(q.amount + shares, totalSupply())) {
            revert LastSharesBackOpenPositions(engine.totalReserveWad()); // and again at settlement
        }
        uint256 fee = q.amount == 0 ? _e.lpExecutorFee : 0;
        if (fee > 0) {
            _pull(msg.sender, fee);
            _lpEscrow += fee.toUint128();
        }
        _transfer(owner, address(this), shares);
        (q.amount, q.time, q.fee) = ((q.amount + shares).toUint128(), uint32(block.timestamp), q.fee + uint96(fee));
        _pendingRedeem[controller] = q;
        emit RedeemRequest(controller, owner, 0, msg.sender, shares);
        return 0;
    }

    /// @inheritdoc ILeverVault
    function settleDeposit(address controller, IOracleAdapter.PriceUpdate[] calldata updates)
        external
        payable
        nonReentrant
    {
        Request memory q = _pendingDeposit[controller];
        if (q.amount == 0) revert NoPendingRequest(controller);
        (uint256 value,) = _valueAt(controller, q.time, updates, true);
        uint256 supply = totalSupply();
        uint256 shares = PoolMath.toSharesDown(q.amount, value, supply);
        delete _pendingDeposit[controller];
        _lpEscrow -= (uint256(q.amount) + q.fee).toUint128();
        if (shares == 0 || (supply > 0 && value == 0)) {
            // The pool is worth nothing: the assets go back rather than to the traders.
            emit LpRequestCancelled(controller, true, q.amount, msg.sender, PoolWorthless.selector);
            _token.safeTransfer(controller, q.amount);
        } else {
            _poolAssets += q.amount;
            _mint(address(this), shares);
            Claimable memory c = _claimableDeposit[controller];
            (c.assets, c.shares) = (c.assets + q.amount, (c.shares + shares).toUint128());
            _claimableDeposit[controller] = c;
            emit DepositSettled(controller, q.amount, shares, value, msg.sender);
        }
        _payFeeAndRefund(q.fee);
    }

    /// @inheritdoc ILeverVault
    function settleRedeem(address controller, IOracleAdapter.PriceUpdate[] calldata updates)
        external
        payable
        nonReentrant
    {
        Request memory q = _pendingRedeem[controller];
        if (q.amount == 0) revert NoPendingRequest(controller);
        (uint256 value, uint256[] memory prices) = _valueAt(controller, q.time, updates, false);
        uint256 supply = totalSupply();
        uint256 assets = PoolMath.toAssetsDown(q.amount, value, supply);
        delete _pendingRedeem[controller];
        _lpEscrow -= uint256(q.fee).toUint128();
        bytes4 refused;
        if (assets > freeAssets()) {
            refused = ReserveExceeded.selector;
        } else if (_lastSharesBackOpenPositions(q.amount, supply)) {
            refused = LastSharesBackOpenPositions.selector;
        } else if (!engine.oiCapsHold(prices, (_poolAssets - assets) * tokenScale)) {
            refused = OpenInterestCapExceeded.selector;
        }
        if (refused != 0) {
            // The pool cannot shrink below what open positions need: the shares stay with their LP.
            emit LpRequestCancelled(controller, false, q.amount, msg.sender, refused);
            _transfer(address(this), controller, q.amount);
        } else {
            _burn(address(this), q.amount);
            _poolAssets -= assets.toUint128();
            _lpEscrow += assets.toUint128();
            Claimable memory c = _claimableRedeem[controller];
            (c.assets, c.shares) = ((c.assets + assets).toUint128(), c.shares + q.amount);
            _claimableRedeem[controller] = c;
            emit RedeemSettled(controller, q.amount, assets, value, msg.sender);
        }
        _payFeeAndRefund(q.fee);
    }

    /// @inheritdoc ILeverVault
    function cancelExpiredRequest(address controller, bool isDeposit) external nonReentrant {
        Request memory q = isDeposit ? _pendingDeposit[controller] : _pendingRedeem[controller];
        if (q.amount == 0) revert NoPendingRequest(controller);
        uint256 expiry = _expiry(q.time);
        if (block.timestamp <= expiry) revert RequestNotExpired(controller, expiry);
        emit LpRequestCancelled(controller, isDeposit, q.amount, msg.sender, RequestExpired.selector);
        if (isDeposit) {
            delete _pendingDeposit[controller];
            _lpEscrow -= (uint256(q.amount) + q.fee).toUint128();
            _token.safeTransfer(controller, q.amount);
        } else {
            delete _pendingRedeem[controller];
            _lpEscrow -= uint256(q.fee).toUint128();
            _transfer(address(this), controller, q.amount);
        }
        // An expired request's fee goes to the insurance fund, not to whoever cancels it: letting a
        // request lapse must cost its controller (it would otherwise be a free option on the price).
        if (q.fee > 0) _insuranceFund += uint256(q.fee).toUint96();
    }

    // ------------------------------------------------------------------ claims (ERC-4626 / ERC-7540)

    /// @notice Claims `assets` of the caller's fulfilled deposit: their shares go to `receiver`.
    function deposit(uint256 assets, address receiver) external returns (uint256) {
        return deposit(assets, receiver, msg.sender);
    }

    /// @notice ERC-7540 claim of `assets` of `controller`'s fulfilled deposit.
    function deposit(uint256 assets, address receiver, address controller)
        public
        nonReentrant
        returns (uint256 shares)
    {
        _requireOperator(controller);
        Claimable memory c = _claimableDeposit[controller];
        if (assets > c.assets) revert ClaimExceedsClaimable(assets, c.assets);
        if (assets == 0) return 0;
        shares = assets == c.assets ? c.shares : PoolMath.proRataDown(assets, c.shares, c.assets);
        _claimDeposit(controller, receiver, c, assets, shares);
    }

    /// @notice Claims `shares` of the caller's fulfilled deposit.
    function mint(uint256 shares, address receiver) external returns (uint256) {
        return mint(shares, receiver, msg.sender);
    }

    /// @notice ERC-7540 claim of `shares` of `controller`'s fulfilled deposit.
    function mint(uint256 shares, address receiver, address controller) public nonReentrant returns (uint256 assets) {
        _requireOperator(controller);
        Claimable memory c = _claimableDeposit[controller];
        if (shares > c.shares) revert ClaimExceedsClaimable(shares, c.shares);
        if (shares == 0) return 0;
        assets = shares == c.shares ? c.assets : PoolMath.proRataUp(shares, c.assets, c.shares).min(c.assets);
        _claimDeposit(controller, receiver, c, assets, shares);
    }

    /// @notice Claims `shares` of `controller`'s fulfilled redemption: their assets go to `receiver`.
    function redeem(uint256 shares, address receiver, address controller)
        external
        nonReentrant
        returns (uint256 assets)
    {
        _requireOperator(controller);
        Claimable memory c = _claimableRedeem[controller];
        if (shares > c.shares) revert ClaimExceedsClaimable(shares, c.shares);
        if (shares == 0) return 0;
        assets = shares == c.shares ? c.assets : PoolMath.proRataDown(shares, c.assets, c.shares);
        _claimRedeem(controller, receiver, c, assets, shares);
    }

    /// @notice Claims `assets` of `controller`'s fulfilled redemption.
    function withdraw(uint256 assets, address receiver, address controller)
        external
        nonReentrant
        returns (uint256 shares)
    {
        _requireOperator(controller);
        Claimable memory c = _claimableRedeem[controller];
        if (assets > c.assets) revert ClaimExceedsClaimable(assets, c.assets);
        if (assets == 0) return 0;
        shares = assets == c.assets ? c.shares : PoolMath.proRataUp(assets, c.shares, c.assets).min(c.shares);
        _claimRedeem(controller, receiver, c, assets, shares);
    }

    function setOperator(address operator, bool approved) external returns (bool) {
        isOperator[msg.sender][operator] = approved;
        emit OperatorSet(msg.sender, operator, approved);
        return true;
    }

    function _claimDeposit(address controller, address receiver, Claimable memory c, uint256 assets, uint256 shares)
        internal
    {
        (c.assets, c.shares) = (uint128(c.assets - assets), uint128(c.shares - shares));
        _claimableDeposit[controller] = c;
        _transfer(address(this), receiver, shares);
        emit Deposit(controller, receiver, assets, shares);
    }

    function _claimRedeem(address controller, address receiver, Claimable memory c, uint256 assets, uint256 shares)
        internal
    {
        (c.assets, c.shares) = (uint128(c.assets - assets), uint128(c.shares - shares));
        _claimableRedeem[controller] = c;
        _lpEscrow -= assets.toUint128();
        emit Withdraw(msg.sender, receiver, controller, assets, shares);
        _token.safeTransfer(receiver, assets);
    }

    // ------------------------------------------------------------------ ERC-4626 / ERC-7540 views

    function asset() external view returns (address) {
        return address(_token);
    }

    /// @notice ERC-7575: the share token is this contract.
    function share() external view returns (address) {
        return address(this);
    }

    /// @notice The pool's value at the stored latest prices; a market without a fresh price counts
    ///         at its worst case for LPs. Never reverts.
    function totalAssets() public view returns (uint256) {
        int256 liability;
        try engine.poolLiabilityAtLatestWad() returns (int256 l) {
            liability = l;
        } catch {
            liability = int256(engine.totalReserveWad());
        }
        return PoolMath.poolValue(_poolAssets, liability, tokenScale);
    }

    function convertToShares(uint256 assets) external view returns (uint256) {
        return PoolMath.toSharesDown(assets, totalAssets(), totalSupply());
    }

    function convertToAssets(uint256 shares) external view returns (uint256) {
        return PoolMath.toAssetsDown(shares, totalAssets(), totalSupply());
    }

    /// @notice ERC-7540: what `controller` may claim with `deposit` (its fulfilled assets).
    function maxDeposit(address controller) external view returns (uint256) {
        return _claimableDeposit[controller].assets;
    }

    function maxMint(address controller) external view returns (uint256) {
        return _claimableDeposit[controller].shares;
    }

    function maxWithdraw(address controller) external view returns (uint256) {
        return _claimableRedeem[controller].assets;
    }

    function maxRedeem(address controller) external view returns (uint256) {
        return _claimableRedeem[controller].shares;
    }

    /// @notice ERC-7540: previews of asynchronous flows revert.
    function previewDeposit(uint256) external pure returns (uint256) {
        revert AsyncFlow();
    }

    function previewMint(uint256) external pure returns (uint256) {
        revert AsyncFlow();
    }

    function previewWithdraw(uint256) external pure returns (uint256) {
        revert AsyncFlow();
    }

    function previewRedeem(uint256) external pure returns (uint256) {
        revert AsyncFlow();
    }

    function pendingDepositRequest(uint256, address controller) external view returns (uint256) {
        return _pendingDeposit[controller].amount;
    }

    function claimableDepositRequest(uint256, address controller) external view returns (uint256) {
        return _claimableDeposit[controller].assets;
    }

    function pendingRedeemRequest(uint256, address controller) external view returns (uint256) {
        return _pendingRedeem[controller].amount;
    }

    function claimableRedeemRequest(uint256, address controller) external view returns (uint256) {
        return _claimableRedeem[controller].shares;
    }

    /// @notice A pending request as stored: amount, request time, escrowed fee.
    function pendingRequest(address controller, bool isDeposit) external view returns (Request memory) {
        return isDeposit ? _pendingDeposit[controller] : _pendingRedeem[controller];
    }

    function claimable(address controller, bool isDeposit) external view returns (Claimable memory) {
        return isDeposit ? _claimableDeposit[controller] : _claimableRedeem[controller];
    }

    function lpParams() external view returns (LpParams memory) {
        return _lpParams();
    }

    function decimals() public view override(ERC20, IERC20Metadata) returns (uint8) {
        return _decimals + 6;
    }

    function supportsInterface(bytes4 interfaceId) public view override returns (bool) {
        return interfaceId == 0xe3bc4e65 // ERC-7540 operator methods
            || interfaceId == 0x2f0a18c5 // ERC-7575
            || interfaceId == 0xce3bbe50 // ERC-7540 asynchronous deposit
            || interfaceId == 0x620ee8e4 // ERC-7540 asynchronous redemption
            || super.supportsInterface(interfaceId);
    }

    // ------------------------------------------------------------------ ledger views

    function marginOf(uint256 accountId) external view returns (int256) {
        return _margin[accountId].margin;
    }

    /// @inheritdoc ILeverVault
    function pendingOrders(uint256 accountId) external view returns (uint256) {
        return _margin[accountId].pendingOrders;
    }

    function totalMargin() external view returns (int256) {
        return int256(_marginAndEscrow) - int256(uint256(_e.orderEscrow));
    }

    function poolAssets() external view returns (uint256) {
        return _poolAssets;
    }

    function insuranceFund() external view returns (uint256) {
        return _insuranceFund;
    }

    function protocolFees() external view returns (uint256) {
        return _protocolFees;
    }

    function orderEscrow() external view returns (uint256) {
        return _e.orderEscrow;
    }

    function lpEscrow() external view returns (uint256) {
        return _lpEscrow;
    }

    /// @notice Share of each trading fee kept as protocol fees (WAD).
    function protocolFeeShareWad() external view returns (uint256) {
        return _protocolFeeShareWad;
    }

    /// @inheritdoc ILeverVault
    function freeAssets() public view returns (uint256) {
        uint256 reserve = engine.totalReserveWad().toTokenUp(tokenScale);
        uint256 pool = _poolAssets;
        return pool > reserve ? pool - reserve : 0;
    }

    /// @inheritdoc ILeverVault
    function solvency() external view returns (uint256 balance, uint256 liabilities, bool solvent) {
        balance = _token.balanceOf(address(this));
        int256 total = int256(_marginAndEscrow) + int256(uint256(_poolAssets)) + int256(uint256(_insuranceFund))
            + int256(uint256(_protocolFees)) + int256(uint256(_lpEscrow)); // the order escrow is in the first
        liabilities = total > 0 ? uint256(total) : 0;
        solvent = balance >= liabilities;
    }

    // ------------------------------------------------------------------ internals

    /// @dev The pool's value for a request made at `time`: every market with open interest priced
    ///      by its update (the earliest price at or after time + delay, within the window), each
    ///      at least the liquidation grace old, and again at its newest stored price (at least
    ///      as new as that update and every fill); the worse of the two for the requester. A
    ///      redemption may leave out a market whose stored price is stale: it counts at its worst
    ///      case in both.
    function _valueAt(address controller, uint256 time, IOracleAdapter.PriceUpdate[] calldata updates, bool isDeposit)
        internal
        returns (uint256 value, uint256[] memory prices)
    {
        LpParams memory lp = _lpParams();
        uint256 earliest = time + lp.settlementDelay;
        uint256 expiry = _expiry(time);
        if (block.timestamp > expiry) revert RequestExpired(controller, expiry);
        if (block.timestamp < earliest + lp.liquidationGrace) {
            revert RequestNotDue(controller, earliest + lp.liquidationGrace);
        }
        uint256 mask = engine.openMarketsMask();
        prices = new uint256[](MAX_MARKETS);
        uint256 fee = updates.length == 0 ? 0 : oracle.updateFee();
        for (uint256 i; i < updates.length; ++i) {
            uint256 m = updates[i].marketId;
            if (m >= MAX_MARKETS || mask & (1 << m) == 0 || prices[m] != 0) continue;
            uint256 latestTime = earliest + lp.settlementWindow;
            if (latestTime > block.timestamp) latestTime = block.timestamp;
            IOracleAdapter.PriceData memory d =
                oracle.settlementPrice{value: fee}(m, updates[i].data, uint64(earliest), uint64(latestTime));
            if (block.timestamp < d.publishTime + lp.liquidationGrace) {
                revert RequestNotDue(controller, d.publishTime + lp.liquidationGrace);
            }
            prices[m] = d.priceWad;
        }
        uint256[] memory newest = new uint256[](MAX_MARKETS);
        bool newer = false; // a newest price differs from the request's: the pool is valued twice
        for (uint256 m; mask != 0; ++m) {
            if (mask & 1 == 1) {
                IOracleAdapter.PriceData memory d = oracle.latest(m);
                if (prices[m] != 0) {
                    newest[m] = d.priceWad; // stored by the update above if it was newer
                    if (d.priceWad != prices[m]) newer = true;
                } else {
                    // Only a redemption's own controller (or operator) may accept the worst case
                    // for a market whose feed has gone silent; nobody can impose it on another LP.
                    bool stale = d.publishTime + oracle.config(m).maxPriceAge < block.timestamp;
                    if (isDeposit || !stale || !_isOperator(controller)) revert LpPriceMissing(m);
                }
            }
            mask >>= 1;
        }
        value = PoolMath.poolValue(_poolAssets, engine.poolLiabilityWad(prices), tokenScale);
        if (newer) {
            value = PoolMath.requestValue(
                value, PoolMath.poolValue(_poolAssets, engine.poolLiabilityWad(newest), tokenScale), isDeposit
            );
        }
    }

    /// @dev Redeeming every share while positions are open would leave what they later lose or
    ///      pay to no LP: the last shares wait for the book to close.
    function _lastSharesBackOpenPositions(uint256 shares, uint256 supply) internal view returns (bool) {
        return shares == supply && engine.totalReserveWad() != 0;
    }

    function _expiry(uint256 time) internal view returns (uint256) {
        LpParams memory lp = _lpParams();
        return time + lp.settlementDelay + lp.settlementWindow + lp.liquidationGrace;
    }

    function _payFeeAndRefund(uint256 fee) internal {
        if (fee > 0) _token.safeTransfer(msg.sender, fee);
        uint256 left = address(this).balance;
        if (left > 0) Address.sendValue(payable(msg.sender), left);
    }

    /// @dev The fee's protocol share (rounded down) goes to protocol fees; returns it.
    function _collectFee(uint256 feeToken) internal returns (uint256 protocolCut) {
        protocolCut = feeToken.mulDivDown(_protocolFeeShareWad, WAD);
        if (protocolCut > 0) _protocolFees += protocolCut.toUint96();
    }

    /// @dev `amount`, at most the (positive part of the) margin.
    function _capped(uint256 amount, int256 margin) internal pure returns (uint256) {
        return margin <= 0 ? 0 : amount.min(uint256(margin));
    }

    function _requireOperator(address controller) internal view {
        if (!_isOperator(controller)) revert NotOperator(controller, msg.sender);
    }

    function _isOperator(address controller) internal view returns (bool) {
        return controller == msg.sender || isOperator[controller][msg.sender];
    }

    /// @dev Pulls exactly `amount` or reverts: fee-on-transfer tokens are rejected.
    function _pull(address from, uint256 amount) internal {
        uint256 balanceBefore = _token.balanceOf(address(this));
        _token.safeTransferFrom(from, address(this), amount);
        uint256 received = _token.balanceOf(address(this)) - balanceBefore;
        if (received != amount) revert TransferAmountMismatch(amount, received);
    }

    function _setProtocolFeeShare(uint256 shareWad) internal {
        if (shareWad > MAX_PROTOCOL_FEE_SHARE_WAD) revert ParameterOutOfBounds("protocolFeeShare", shareWad);
        _protocolFeeShareWad = uint64(shareWad);
        emit ProtocolFeeShareSet(shareWad);
    }

    function _setLpParams(LpParams memory p) internal {
        if (p.settlementDelay > MAX_SETTLEMENT_DELAY) {
            revert ParameterOutOfBounds("lpSettlementDelay", p.settlementDelay);
        }
        if (p.settlementWindow < MIN_SETTLEMENT_WINDOW || p.settlementWindow > MAX_SETTLEMENT_WINDOW) {
            revert ParameterOutOfBounds("lpSettlementWindow", p.settlementWindow);
        }
        if (p.liquidationGrace > MAX_LIQUIDATION_GRACE) {
            revert ParameterOutOfBounds("lpLiquidationGrace", p.liquidationGrace);
        }
        if (p.executorFee > MAX_EXECUTOR_FEE_WAD / tokenScale) {
            revert ParameterOutOfBounds("lpExecutorFee", p.executorFee);
        }
        (_e.lpSettlementDelay, _e.lpSettlementWindow, _e.lpLiquidationGrace, _e.lpExecutorFee) =
        (uint16(p.settlementDelay), uint24(p.settlementWindow), uint16(p.liquidationGrace), uint72(p.executorFee));
        emit LpParamsSet(p);
    }

    function _lpParams() internal view returns (LpParams memory) {
        EscrowSlot memory e = _e;
        return LpParams(e.lpSettlementDelay, e.lpSettlementWindow, e.lpLiquidationGrace, e.lpExecutorFee);
    }
}
