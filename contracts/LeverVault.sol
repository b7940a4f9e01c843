// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20, IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {ERC4626} from "@openzeppelin/contracts/token/ERC20/extensions/ERC4626.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {ILeverVault} from "./interfaces/ILeverVault.sol";
import {IPerpEngine} from "./interfaces/IPerpEngine.sol";
import {FixedPointMath} from "./libraries/FixedPointMath.sol";
import {WAD, MAX_PROTOCOL_FEE_SHARE_WAD} from "./libraries/Constants.sol";
import "./libraries/Errors.sol";

/// @title LeverVault
/// @notice The collateral vault: margin accounts, the liquidity pool (ERC-4626 shares, the
///         counterparty to traders' PnL), the insurance fund and protocol fees, in one token.
/// @dev Pool value for LPs = pool assets - traders' net unrealised PnL (read from the engine).
///      OpenZeppelin's virtual shares (`_decimalsOffset`) defend against share inflation, and
///      the pool is valued from its ledger, never from `balanceOf`, so donations change nothing.
contract LeverVault is ILeverVault, ERC4626, AccessControl, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;
    using FixedPointMath for uint256;
    using SafeCast for uint256;

    bytes32 public constant RISK_ROLE = keccak256("RISK_ROLE");

    IERC20 internal immutable _token;
    uint256 public immutable tokenScale;
    /// @notice The engine, the only module that settles accounts; fixed at deployment (the
    ///         deploy script predicts its address), so no role lookup on the hot path.
    IPerpEngine public immutable engine;

    mapping(uint256 accountId => uint256) internal _margin;
    // Ledgers packed in pairs: a margin change touches one slot, a fee split the other.
    uint128 internal _totalMargin;
    uint128 internal _poolAssets;
    uint96 internal _insuranceFund;
    uint96 internal _protocolFees;
    uint64 internal _protocolFeeShareWad;

    /// @notice Cumulative bad debt, and how it was covered (token units).
    uint256 public badDebtTotal;
    uint256 public badDebtCoveredByInsurance;
    uint256 public badDebtCoveredByPool;
    /// @notice Cumulative profit the pool could not pay.
    uint256 public unpaidProfitTotal;

    modifier onlyEngine() {
        if (msg.sender != address(engine)) revert Unauthorized(msg.sender);
        _;
    }

    constructor(IERC20Metadata token_, address admin, uint256 protocolFeeShareWad_, IPerpEngine engine_)
        ERC20("Lever LP", "lvLP")
        ERC4626(token_)
    {
        if (admin == address(0) || address(token_) == address(0) || address(engine_) == address(0)) {
            revert ZeroAddress();
        }
        engine = engine_;
        uint8 decimals_ = token_.decimals();
        if (decimals_ > 18) revert UnsupportedTokenDecimals(decimals_);
        _token = token_;
        tokenScale = 10 ** (18 - decimals_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(RISK_ROLE, admin);
        _setProtocolFeeShare(protocolFeeShareWad_);
    }

    // ------------------------------------------------------------------ margin accounts

    /// @inheritdoc ILeverVault
    function depositMargin(uint256 accountId, uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        if (engine.accountOwner(accountId) == address(0)) revert UnknownAccount(accountId);
        _margin[accountId] += amount;
        _totalMargin += amount.toUint128();
        emit MarginDeposited(accountId, msg.sender, amount);
        _pull(msg.sender, amount);
    }

    /// @inheritdoc ILeverVault
    function withdrawMargin(uint256 accountId, uint256 amount, address to) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        if (to == address(0)) revert ZeroAddress();
        uint256 margin = _margin[accountId];
        if (amount > margin) revert WithdrawExceedsMargin(accountId, amount, margin);
        unchecked {
            margin -= amount;
        }
        engine.checkWithdrawal(accountId, msg.sender, margin);
        _margin[accountId] = margin;
        _totalMargin -= amount.toUint128();
        emit MarginWithdrawn(accountId, to, amount);
        _token.safeTransfer(to, amount);
    }

    /// @inheritdoc ILeverVault
    function fundInsurance(uint256 amount) external nonReentrant {
        if (amount == 0) revert ZeroAmount();
        _insuranceFund += amount.toUint96();
        emit InsuranceFunded(msg.sender, amount);
        _pull(msg.sender, amount);
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

    // ------------------------------------------------------------------ module settlement

    /// @inheritdoc ILeverVault
    /// @dev nonReentrant although it moves no tokens: a trade must not run inside a token hook
    ///      fired by another vault operation (found by tests/test_adversarial.py).
    function settle(uint256 accountId, int256 pnlToken, uint256 feeToken)
        external
        onlyEngine
        nonReentrant
        returns (uint256 margin)
    {
        SettleResult memory r = _settle(accountId, pnlToken, feeToken, 0, 0);
        emit Settled(accountId, pnlToken, feeToken, r.feeCollected, r.unpaidProfit);
        return r.margin;
    }

    /// @inheritdoc ILeverVault
    function settleLiquidation(
        uint256 accountId,
        int256 pnlToken,
        uint256 feeToken,
        uint256 rewardToken,
        uint256 penaltyToken,
        address keeper
    ) external onlyEngine nonReentrant returns (uint256 rewardPaid, uint256 penaltyPaid, uint256 badDebt) {
        // The liquidation module's `Liquidation` event carries the reward, penalty and bad debt.
        SettleResult memory r = _settle(accountId, pnlToken, feeToken, rewardToken, penaltyToken);
        if (r.rewardPaid > 0) _token.safeTransfer(keeper, r.rewardPaid);
        return (r.rewardPaid, r.penaltyPaid, r.badDebt);
    }

    struct SettleResult {
        uint256 margin;
        uint256 feeCollected;
        uint256 unpaidProfit;
        uint256 rewardPaid;
        uint256 penaltyPaid;
        uint256 badDebt;
    }

    /// @dev Order: PnL (a loss beyond the margin is bad debt), trading fee, keeper reward,
    ///      penalty; each later item is capped by the margin left after the earlier ones.
    function _settle(uint256 accountId, int256 pnlToken, uint256 feeToken, uint256 rewardToken, uint256 penaltyToken)
        internal
        returns (SettleResult memory r)
    {
        uint256 margin = _margin[accountId];
        uint256 marginBefore = margin;
        uint256 pool = _poolAssets;
        if (pnlToken > 0) {
            uint256 pay = uint256(pnlToken).min(pool);
            r.unpaidProfit = uint256(pnlToken) - pay;
            pool -= pay;
            margin += pay;
        } else if (pnlToken < 0) {
            uint256 loss = uint256(-pnlToken);
            uint256 paid = loss.min(margin);
            margin -= paid;
            pool += paid;
            if (loss > paid) {
                r.badDebt = loss - paid;
                pool = _realiseBadDebt(accountId, r.badDebt, pool);
            }
        }
        r.feeCollected = feeToken.min(margin);
        if (r.feeCollected > 0) {
            margin -= r.feeCollected;
            // The protocol's share rounds down; the pool takes the rest.
            uint256 protocolCut = r.feeCollected.mulDivDown(_protocolFeeShareWad, WAD);
            _protocolFees += protocolCut.toUint96();
            pool += r.feeCollected - protocolCut;
        }
        r.rewardPaid = rewardToken.min(margin);
        margin -= r.rewardPaid;
        r.penaltyPaid = penaltyToken.min(margin);
        if (r.penaltyPaid > 0) {
            margin -= r.penaltyPaid;
            _insuranceFund += r.penaltyPaid.toUint96();
        }
        if (r.unpaidProfit > 0) unpaidProfitTotal += r.unpaidProfit;
        _margin[accountId] = margin;
        _poolAssets = pool.toUint128();
        if (margin != marginBefore) {
            _totalMargin = (margin > marginBefore
                ? _totalMargin + (margin - marginBefore)
                : _totalMargin - (marginBefore - margin)).toUint128();
        }
        r.margin = margin;
    }

    /// @dev Insurance covers the shortfall first (paying the pool what the account could not);
    ///      the rest is a loss the pool absorbs by never receiving it.
    function _realiseBadDebt(uint256 accountId, uint256 shortfall, uint256 pool) internal returns (uint256) {
        uint256 insurance = _insuranceFund;
        uint256 byInsurance = shortfall.min(insurance);
        _insuranceFund = uint96(insurance - byInsurance);
        badDebtTotal += shortfall;
        badDebtCoveredByInsurance += byInsurance;
        badDebtCoveredByPool += shortfall - byInsurance;
        emit BadDebt(accountId, shortfall, byInsurance, shortfall - byInsurance);
        return pool + byInsurance;
    }

    // ------------------------------------------------------------------ liquidity pool (ERC-4626)

    /// @notice Pool assets minus traders' net unrealised PnL, in tokens; rounds against LPs.
    function totalAssets() public view override returns (uint256) {
        (int256 traderPnlWad,) = _exposure();
        return _poolValue(traderPnlWad);
    }

    /// @notice Assets LPs may take out now: the pool's ledger (capped by its value) minus the
    ///         reserve that open positions may need (`reserveRatio * |skew| * price` per market).
    function freeAssets() public view returns (uint256) {
        (int256 traderPnlWad, uint256 reservedWad) = _exposure();
        uint256 available = uint256(_poolAssets).min(_poolValue(traderPnlWad));
        uint256 reserved = reservedWad.divUp(tokenScale);
        return available > reserved ? available - reserved : 0;
    }

    /// @notice No deposits while the pool is worth nothing (traders' unrealised profit exceeds its
    ///         assets): shares would be priced at zero and the deposit would go to the traders.
    function maxDeposit(address) public view override returns (uint256) {
        return totalSupply() > 0 && totalAssets() == 0 ? 0 : type(uint256).max;
    }

    function maxMint(address receiver) public view override returns (uint256) {
        return maxDeposit(receiver);
    }

    function maxWithdraw(address owner) public view override returns (uint256) {
        return super.maxWithdraw(owner).min(freeAssets());
    }

    function maxRedeem(address owner) public view override returns (uint256) {
        uint256 shares = balanceOf(owner);
        uint256 free = freeAssets();
        // All of them if they pay out no more than is free: converting `free` back to shares
        // rounds down and would strand the last share of an LP who owns the whole pool.
        if (_convertToAssets(shares, Math.Rounding.Floor) <= free) return shares;
        return _convertToShares(free, Math.Rounding.Floor);
    }

    function _deposit(address caller, address receiver, uint256 assets, uint256 shares)
        internal
        override
        nonReentrant
    {
        if (assets == 0 || shares == 0) revert ZeroAmount();
        _poolAssets += assets.toUint128();
        uint256 balanceBefore = _token.balanceOf(address(this));
        super._deposit(caller, receiver, assets, shares);
        uint256 received = _token.balanceOf(address(this)) - balanceBefore;
        if (received != assets) revert TransferAmountMismatch(assets, received);
    }

    function _withdraw(address caller, address receiver, address owner, uint256 assets, uint256 shares)
        internal
        override
        nonReentrant
    {
        if (assets == 0 || shares == 0) revert ZeroAmount();
        _poolAssets -= assets.toUint128();
        super._withdraw(caller, receiver, owner, assets, shares);
    }

    /// @dev 10^6 virtual shares per virtual asset: OpenZeppelin's inflation-attack defence.
    function _decimalsOffset() internal pure override returns (uint8) {
        return 6;
    }

    // ------------------------------------------------------------------ views

    function marginOf(uint256 accountId) external view returns (uint256) {
        return _margin[accountId];
    }

    function totalMargin() external view returns (uint256) {
        return _totalMargin;
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

    /// @notice Share of each trading fee kept as protocol fees (WAD).
    function protocolFeeShareWad() external view returns (uint256) {
        return _protocolFeeShareWad;
    }

    /// @inheritdoc ILeverVault
    function solvency() external view returns (uint256 balance, uint256 liabilities, bool solvent) {
        balance = _token.balanceOf(address(this));
        liabilities = uint256(_totalMargin) + _poolAssets + _insuranceFund + _protocolFees;
        solvent = balance >= liabilities;
    }

    function supportsInterface(bytes4 interfaceId) public view override returns (bool) {
        return super.supportsInterface(interfaceId);
    }

    // ------------------------------------------------------------------ internals

    function _exposure() internal view returns (int256 traderPnlWad, uint256 reservedWad) {
        return engine.poolExposure();
    }

    /// @dev Pool ledger minus traders' unrealised PnL: what the pool owes rounds up, what it
    ///      is owed rounds down.
    function _poolValue(int256 traderPnlWad) internal view returns (uint256) {
        uint256 pool = _poolAssets;
        if (traderPnlWad >= 0) {
            uint256 owed = uint256(traderPnlWad).divUp(tokenScale);
            return pool > owed ? pool - owed : 0;
        }
        return pool + uint256(-traderPnlWad) / tokenScale;
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
}
