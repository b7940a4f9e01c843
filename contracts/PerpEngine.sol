// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IPerpEngine} from "./interfaces/IPerpEngine.sol";
import {ILeverVault} from "./interfaces/ILeverVault.sol";
import {IOracleAdapter} from "./interfaces/IOracleAdapter.sol";
import {IOrderBook} from "./interfaces/IOrderBook.sol";
import {FixedPointMath} from "./libraries/FixedPointMath.sol";
import {PerpMath} from "./libraries/PerpMath.sol";
import {LiquidationMath} from "./libraries/LiquidationMath.sol";
import "./libraries/Constants.sol";
import "./libraries/Errors.sol";

/// @title PerpEngine
/// @notice The perpetual-position manager: accounts, markets, positions, funding, borrowing,
///         open interest and reserves, margin requirements, and the position side of
///         liquidations. Trades arrive only from the order book and the liquidation module.
/// @dev Entry points follow checks -> accrue -> math -> storage -> emit -> vault settlement. The
///      exceptions: an increase checks margin, and closing the last position checks for a debt,
///      *after* `vault.settle`, which returns the settled margin (one call instead of two); the
///      vault is a trusted module and a failed check reverts all.
contract PerpEngine is IPerpEngine, AccessControl {
    using FixedPointMath for uint256;
    using FixedPointMath for int256;
    using SafeCast for uint256;
    using SafeCast for int256;

    bytes32 public constant RISK_ROLE = keccak256("RISK_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    struct Account {
        address owner;
        uint32 marketMask; // bit m set: the account holds a position in market m
        uint32 lastTradeTime;
    }

    /// @dev One market as an entry point sees it: parameters, price, accrued state, ramp.
    struct Ctx {
        uint256 marketId;
        MarketParams p;
        MarketParams prev; // the parameters a ramp starts from (loaded only during a ramp)
        uint256 rampWad; // share of the ramp done; WAD: no ramp
        IOracleAdapter.PriceData d;
        MarketState s;
    }

    /// @dev The pool's coverage of every side's reserve (profits scale down when it is short).
    struct Coverage {
        uint256 poolWad;
        uint256 reserveWad;
    }

    /// @dev What a trade does to one position, computed before any storage write.
    struct TradeMath {
        int256 newSizeWad;
        int256 newCostWad;
        int256 newEntryChargeWad;
        int256 realisedWad; // value realised by a reduction (capped and covered)
        uint256 feeWad;
        uint256 fillWad;
        bool increasing;
        bool isLong;
    }

    struct Figures {
        int256 valueWad; // what closing the position is worth: PnL - charges, capped, covered
        uint256 closeFeeWad;
        uint256 notionalWad;
        uint256 initialWad;
        uint256 maintenanceWad;
    }

    ILeverVault public immutable vault;
    IOracleAdapter public immutable oracle;
    /// @notice The order book and the liquidation module, fixed at deployment.
    address public immutable orderBook;
    address public immutable liquidator;
    uint256 internal immutable _tokenScale;

    /// @dev What every trade reads, in one slot. The reserve fits 192 bits: each side's cost is
    ///      below 2^128 and its profit ratio at most 10, over at most 32 markets.
    struct Globals {
        uint192 totalReserveWad;
        uint32 openMask; // bit m: market m has open interest
        bool paused; // opening and increasing positions are stopped (OpenZeppelin Pausable's rules)
    }

    /// @notice OpenZeppelin `Pausable`'s events and errors, kept with its behaviour.
    event Paused(address account);
    event Unpaused(address account);

    error EnforcedPause();
    error ExpectedPause();

    uint256 public accountCount;
    uint256 public marketCount;
    Globals internal _g;
    mapping(uint256 accountId => Account) internal _accounts;
    mapping(uint256 marketId => MarketParams) internal _params;
    mapping(uint256 marketId => MarketParams) internal _prevParams;
    mapping(uint256 marketId => MarketState) internal _state;
    mapping(uint256 marketId => bytes32) public marketName;
    mapping(uint256 accountId => mapping(uint256 marketId => Position)) internal _positions;

    constructor(ILeverVault vault_, IOracleAdapter oracle_, address orderBook_, address liquidator_, address admin) {
        if (
            address(vault_) == address(0) || address(oracle_) == address(0) || orderBook_ == address(0)
                || liquidator_ == address(0) || admin == address(0)
        ) revert ZeroAddress();
        vault = vault_;
        oracle = oracle_;
        orderBook = orderBook_;
        liquidator = liquidator_;
        _tokenScale = vault_.tokenScale();
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(RISK_ROLE, admin);
        _grantRole(PAUSER_ROLE, admin);
    }

    // ------------------------------------------------------------------ accounts & trading

    /// @inheritdoc IPerpEngine
    function createAccount() external returns (uint256 accountId) {
        accountId = ++accountCount;
        _accounts[accountId].owner = msg.sender;
        emit AccountCreated(accountId, msg.sender);
    }

    /// @inheritdoc IPerpEngine
    function executeTrade(Trade calldata q) external returns (TradeResult memory r) {
        if (msg.sender != orderBook) revert Unauthorized(msg.sender);
        Account memory account = _accounts[q.accountId];
        Coverage memory cov = _coverage();
        Ctx memory c = _ctx(q.marketId, q.price, cov.poolWad);
        Position memory pos = _positions[q.accountId][q.marketId];
        int256 delta = q.reduceOnly ? _reduceOnly(q.accountId, q.marketId, pos.sizeWad, q.sizeDeltaWad) : q.sizeDeltaWad;
        if (delta == 0) revert ZeroSize();
        TradeMath memory t = _tradeMath(c, pos, delta, cov);
        if (
            q.acceptablePriceWad != 0
                && (delta > 0 ? t.fillWad > q.acceptablePriceWad : t.fillWad < q.acceptablePriceWad)
        ) {
            revert AcceptablePriceExceeded(t.fillWad, q.acceptablePriceWad);
        }
        if (t.increasing) {
            _requireNotPaused();
            if (c.d.shocked) revert OracleShockUnconfirmed(q.marketId);
        }
        uint256 reserveBefore = _marketReserve(c.s, c.p);
        uint256 sideOi = _applyToMarket(c.s, pos, t);
        uint256 totalReserve = cov.reserveWad + _marketReserve(c.s, c.p) - reserveBefore;
        if (t.increasing) _checkCaps(c, sideOi, totalReserve, cov.poolWad);
        // Closing the account's last position must not leave a debt (checked on the margin the
        // settlement below returns: the vault's margin plus the credit minus the fee).
        bool closesLast = t.newSizeWad == 0 && account.marketMask == uint32(1 << q.marketId);

        // Storage.
        _writeMarket(c);
        _g.totalReserveWad = totalReserve.toUint192();
        account.marketMask = _writePosition(q.accountId, account, q.marketId, pos, t);
        account.lastTradeTime = uint32(block.timestamp);
        _accounts[q.accountId] = account;
        emit PositionChanged(
            q.accountId, q.marketId, delta, t.newSizeWad, t.fillWad, c.d.priceWad, t.realisedWad, t.feeWad
        );

        // Settlement: credits round down to token units, debts round up.
        r.marginAfterToken =
            vault.settle(q.accountId, t.realisedWad.toTokenFloor(_tokenScale), t.feeWad.toTokenUp(_tokenScale));
        if (closesLast && r.marginAfterToken < 0) revert AccountUnderwater(q.accountId, r.marginAfterToken);
        if (t.increasing) _checkIncrease(q.accountId, account.marketMask, r.marginAfterToken, c, t.newSizeWad, cov);
        (r.sizeDeltaWad, r.sizeAfterWad, r.fillPriceWad, r.realisedWad, r.feeWad) =
        (delta, t.newSizeWad, t.fillWad, t.realisedWad, t.feeWad);
    }

    /// @dev A reduce-only order's size: opposite to the position, at most its size.
    function _reduceOnly(uint256 accountId, uint256 marketId, int256 sizeWad, int256 deltaWad)
        internal
        pure
        returns (int256)
    {
        if (sizeWad == 0 || (sizeWad > 0) == (deltaWad > 0)) revert ReduceOnlyViolated(accountId, marketId);
        return deltaWad.abs() > sizeWad.abs() ? -sizeWad : deltaWad;
    }

    function _tradeMath(Ctx memory c, Position memory pos, int256 delta, Coverage memory cov)
        internal
        pure
        returns (TradeMath memory t)
    {
        int256 size = pos.sizeWad;
        t.newSizeWad = size + delta;
        t.increasing = size == 0 || (size > 0) == (delta > 0);
        if (!t.increasing && t.newSizeWad != 0 && (t.newSizeWad > 0) != (size > 0)) {
            revert PositionFlip(c.marketId, size, delta);
        }
        if (t.newSizeWad != 0 && t.newSizeWad.abs() < c.p.minPositionSizeWad) {
            revert PositionTooSmall(c.marketId, t.newSizeWad.abs(), c.p.minPositionSizeWad);
        }
        t.isLong = size > 0 || (size == 0 && delta > 0);
        int256 index = t.isLong ? c.s.longIndexWad : c.s.shortIndexWad;
        int256 skew = _skew(c.s);
        if (t.increasing) {
            t.fillWad = _fill(c, c.p, skew, delta);
            t.feeWad = PerpMath.tradeFeeWad(skew, delta, t.fillWad, c.p.makerFeeWad, c.p.takerFeeWad);
            t.newCostWad = pos.costWad + PerpMath.addedCostWad(delta, t.fillWad);
            t.newEntryChargeWad = pos.entryChargeWad + PerpMath.addedEntryChargeWad(delta.abs(), index);
            return t;
        }
        uint256 closed = delta.abs();
        uint256 absSize = size.abs();
        int256 removedCost = PerpMath.removedCostWad(pos.costWad, closed, absSize);
        int256 removedCharge = PerpMath.removedEntryChargeWad(pos.entryChargeWad, closed, absSize);
        t.newCostWad = pos.costWad - removedCost;
        t.newEntryChargeWad = pos.entryChargeWad - removedCharge;
        (t.fillWad, t.realisedWad, t.feeWad) = _reduction(c, c.p, skew, delta, removedCost, removedCharge, index);
        if (c.rampWad < WAD) {
            // A reduction during a ramp realises the blend of old and new terms, like equity.
            (, int256 oldRealised, uint256 oldFee) =
                _reduction(c, c.prev, skew, delta, removedCost, removedCharge, index);
            t.realisedWad = _blendValue(oldRealised, t.realisedWad, c.rampWad);
            t.feeWad = _blendCost(oldFee, t.feeWad, c.rampWad);
        }
        t.realisedWad = PerpMath.coveredWad(t.realisedWad, cov.poolWad, cov.reserveWad);
    }

    /// @dev Fill price, fee and value realised by closing `-delta` of a position under `p`.
    function _reduction(
        Ctx memory c,
        MarketParams memory p,
        int256 skew,
        int256 delta,
        int256 removedCost,
        int256 removedCharge,
        int256 index
    ) internal pure returns (uint256 fill, int256 realised, uint256 fee) {
        // A reduction is never refused for its price: at an extreme skew a sell may fill at zero.
        fill = PerpMath.fillPriceWad(c.d.priceWad, skew, delta, p.skewScaleWad);
        fee = PerpMath.tradeFeeWad(skew, delta, fill, p.makerFeeWad, p.takerFeeWad);
        realised = PerpMath.valueWad(-delta, removedCost, removedCharge, fill, index, p.maxProfitRatioWad);
    }

    function _fill(Ctx memory c, MarketParams memory p, int256 skew, int256 delta)
        internal
        pure
        returns (uint256 fill)
    {
        fill = PerpMath.fillPriceWad(c.d.priceWad, skew, delta, p.skewScaleWad);
        if (fill == 0) revert FillPriceInvalid(c.marketId);
    }

    /// @dev Open interest, costs and entry charges after the trade (in memory); returns the traded
    ///      side's open interest.
    function _applyToMarket(MarketState memory s, Position memory pos, TradeMath memory t)
        internal
        pure
        returns (uint256 sideOi)
    {
        uint256 oldSize = int256(pos.sizeWad).abs();
        uint256 oldCost = int256(pos.costWad).abs();
        if (t.isLong) {
            sideOi = uint256(s.longOpenInterestWad) - oldSize + t.newSizeWad.abs();
            s.longOpenInterestWad = sideOi.toUint96();
            s.longCostWad = (uint256(s.longCostWad) - oldCost + t.newCostWad.abs()).toUint128();
            s.longEntryChargeWad = (s.longEntryChargeWad - pos.entryChargeWad + t.newEntryChargeWad).toInt128();
        } else {
            sideOi = uint256(s.shortOpenInterestWad) - oldSize + t.newSizeWad.abs();
            s.shortOpenInterestWad = sideOi.toUint96();
            s.shortCostWad = (uint256(s.shortCostWad) - oldCost + t.newCostWad.abs()).toUint128();
            s.shortEntryChargeWad = (s.shortEntryChargeWad - pos.entryChargeWad + t.newEntryChargeWad).toInt128();
        }
    }

    /// @dev After an increase: the side's open-interest cap and the pool's reserve.
    function _checkCaps(Ctx memory c, uint256 sideOi, uint256 totalReserve, uint256 poolWad) internal pure {
        uint256 oiNotional = sideOi.mulDivUp(c.d.priceWad, WAD);
        uint256 cap = poolWad.mulDivDown(c.p.oiCapRatioWad, WAD);
        if (oiNotional > cap) revert OpenInterestCapExceeded(c.marketId, oiNotional, cap);
        if (totalReserve > poolWad) revert ReserveExceeded(totalReserve, poolWad);
    }

    /// @return mask the account's market mask after the write
    function _writePosition(
        uint256 accountId,
        Account memory account,
        uint256 marketId,
        Position memory pos,
        TradeMath memory t
    ) internal returns (uint32 mask) {
        uint32 bit = uint32(1 << marketId);
        mask = account.marketMask;
        if (t.newSizeWad == 0) {
            delete _positions[accountId][marketId];
            return mask & ~bit;
        }
        if (pos.sizeWad == 0) {
            if (_popCount(mask) >= MAX_POSITIONS_PER_ACCOUNT) revert TooManyPositions(accountId);
            mask |= bit;
        }
        _positions[accountId][marketId] = Position({
            sizeWad: t.newSizeWad.toInt128(),
            costWad: t.newCostWad.toInt128(),
            entryChargeWad: t.newEntryChargeWad.toInt128(),
            lastIncreaseTime: t.increasing ? uint32(block.timestamp) : pos.lastIncreaseTime
        });
    }

    /// @dev After an increase: the position's leverage, then the account's initial margin, every
    ///      other market at its fresh latest price.
    function _checkIncrease(
        uint256 accountId,
        uint32 mask,
        int256 marginToken,
        Ctx memory c,
        int256 sizeWad,
        Coverage memory cov
    ) internal view {
        AccountState memory a = _accountState(accountId, mask, marginToken, c, cov, true);
        uint256 notional = PerpMath.notionalWad(sizeWad, c.d.priceWad);
        if (a.equityWad <= 0 || notional > uint256(a.equityWad) * c.p.maxLeverage) {
            uint256 leverage = a.equityWad <= 0 ? type(uint256).max : notional.mulDivUp(WAD, uint256(a.equityWad));
            revert LeverageTooHigh(accountId, c.marketId, leverage, uint256(c.p.maxLeverage) * WAD);
        }
        if (a.equityWad < int256(a.initialMarginWad)) {
            revert InsufficientMargin(accountId, a.equityWad, a.initialMarginWad);
        }
    }

    // ------------------------------------------------------------------ liquidation (module)

    /// @inheritdoc IPerpEngine
    function liquidate(uint256 accountId, address keeper, LiquidationMath.Params calldata lp)
        external
        returns (LiquidationResult memory r)
    {
        if (msg.sender != liquidator) revert Unauthorized(msg.sender);
        Account memory account = _accounts[accountId];
        if (account.marketMask == 0) return r;
        Coverage memory cov = _coverage();
        (Ctx[] memory ctxs, Position[] memory positions) = _loadAccount(accountId, account.marketMask, cov.poolWad);
        for (uint256 i; i < ctxs.length; ++i) {
            if (ctxs[i].d.publishTime <= account.lastTradeTime) return r; // needs a price newer than its last trade
        }
        AccountState memory a = _sum(ctxs, positions, vault.marginOf(accountId), cov);
        (r.equityWad, r.maintenanceMarginWad) = (a.equityWad, a.maintenanceMarginWad);
        if (a.equityWad >= int256(a.maintenanceMarginWad)) return r;
        // Below maintenance: its pending orders are cancelled and their fees return to the margin,
        // so the liquidation reaches them (an account they make healthy again is not liquidated).
        if (IOrderBook(orderBook).onLiquidation(accountId) != 0) {
            a = _sum(ctxs, positions, vault.marginOf(accountId), cov);
            (r.equityWad, r.maintenanceMarginWad) = (a.equityWad, a.maintenanceMarginWad);
            if (a.equityWad >= int256(a.maintenanceMarginWad)) return r;
        }

        r.liquidated = true;
        r.closeShareWad =
            LiquidationMath.closeShareWad(a.equityWad, a.maintenanceMarginWad, a.minMarginWad, a.notionalWad, lp);
        r.full = r.closeShareWad == WAD;
        int256 pnl;
        uint256 fees;
        uint256 totalReserve = cov.reserveWad;
        for (uint256 i; i < ctxs.length; ++i) {
            (int256 legPnl, uint256 legFee, uint256 reserveChange, bool up) =
                _liquidateLeg(accountId, account, ctxs[i], positions[i], r, cov);
            pnl += legPnl;
            fees += legFee;
            totalReserve = up ? totalReserve + reserveChange : totalReserve - reserveChange;
        }
        _g.totalReserveWad = totalReserve.toUint192();
        account.lastTradeTime = uint32(block.timestamp);
        _accounts[accountId] = account;
        // What the account owes the keeper and the insurance fund; the vault caps both by the margin left.
        // An owner liquidating its own account is paid no reward: from an account in debt it would
        // come out of the pool's share; and the insurance fund tops up the minimum reward for an
        // account too poor to pay it only for other keepers.
        bool own = keeper == account.owner;
        (r.rewardToken, r.penaltyToken, r.badDebtToken) = vault.settleLiquidation(
            accountId,
            pnl.toTokenFloor(_tokenScale),
            fees.toTokenUp(_tokenScale),
            own ? 0 : LiquidationMath.rewardWad(r.closedNotionalWad, lp).toTokenDown(_tokenScale),
            LiquidationMath.penaltyWad(r.closedNotionalWad, lp).toTokenUp(_tokenScale),
            own ? 0 : uint256(lp.minRewardWad).toTokenDown(_tokenScale),
            keeper
        );
    }

    function _liquidateLeg(
        uint256 accountId,
        Account memory account,
        Ctx memory c,
        Position memory pos,
        LiquidationResult memory r,
        Coverage memory cov
    ) internal returns (int256 pnl, uint256 fee, uint256 reserveChange, bool up) {
        int256 closeSize = _liquidationCloseSize(pos.sizeWad, r.closeShareWad, c.p.minPositionSizeWad);
        TradeMath memory t = _tradeMath(c, pos, -closeSize, cov);
        uint256 before = _marketReserve(c.s, c.p);
        _applyToMarket(c.s, pos, t);
        uint256 afterwards = _marketReserve(c.s, c.p);
        (reserveChange, up) = afterwards >= before ? (afterwards - before, true) : (before - afterwards, false);
        _writeMarket(c);
        account.marketMask = _writePosition(accountId, account, c.marketId, pos, t);
        if (t.newSizeWad == 0) r.closedMask |= 1 << c.marketId;
        emit PositionChanged(
            accountId, c.marketId, -closeSize, t.newSizeWad, t.fillWad, c.d.priceWad, t.realisedWad, t.feeWad
        );
        r.closedNotionalWad += PerpMath.notionalWad(closeSize, c.d.priceWad);
        return (t.realisedWad, t.feeWad, reserveChange, up);
    }

    /// @dev |size| * share, rounded up (closing more is the safe side); the whole position when
    ///      the share is 100% or the rest would be below the market's minimum size.
    function _liquidationCloseSize(int256 sizeWad, uint256 shareWad, uint256 minSizeWad)
        internal
        pure
        returns (int256)
    {
        uint256 absSize = sizeWad.abs();
        uint256 close = absSize.mulDivUp(shareWad, WAD);
        if (close >= absSize || absSize - close < minSizeWad) close = absSize;
        return sizeWad > 0 ? int256(close) : -int256(close);
    }

    // ------------------------------------------------------------------ markets (risk role)

    /// @inheritdoc IPerpEngine
    function createMarket(bytes32 name, MarketParams calldata params)
        external
        onlyRole(RISK_ROLE)
        returns (uint256 marketId)
    {
        if (marketCount >= MAX_MARKETS) revert TooManyMarkets();
        marketId = marketCount;
        if (!oracle.isConfigured(marketId)) revert OracleNotConfigured(marketId);
        _validate(params);
        marketCount = marketId + 1;
        marketName[marketId] = name;
        _params[marketId] = params;
        _state[marketId].lastAccrualTime = uint32(block.timestamp);
        emit MarketCreated(marketId, name);
        emit MarketParamsSet(marketId, params, block.timestamp);
    }

    /// @inheritdoc IPerpEngine
    function setMarketParams(uint256 marketId, MarketParams calldata params) external onlyRole(RISK_ROLE) {
        _validate(params);
        Ctx memory c = _loadLatest(_known(marketId), _coverage().poolWad); // accrue under the old parameters
        if (c.rampWad < WAD) revert ParameterRampInProgress(marketId, c.s.rampStart + PARAM_RAMP_DURATION);
        bool open = c.s.longOpenInterestWad != 0 || c.s.shortOpenInterestWad != 0;
        // A lower profit cap would cut open positions' profits (and the pool's reserve) at once:
        // it applies only to a market without open interest.
        if (open && params.maxProfitRatioWad < c.p.maxProfitRatioWad) {
            revert ParameterOutOfBounds("maxProfitRatio", params.maxProfitRatioWad);
        }
        uint256 reserveBefore = _marketReserve(c.s, c.p);
        _prevParams[marketId] = c.p;
        c.p = params;
        c.s.rampStart = uint32(block.timestamp);
        uint256 totalBefore = _g.totalReserveWad;
        uint256 totalReserve = totalBefore + _marketReserve(c.s, params) - reserveBefore;
        // A change that raises the reserves is refused beyond the pool; one that does not always passes.
        uint256 poolWad = _coverage().poolWad;
        if (totalReserve > totalBefore && totalReserve > poolWad) revert ReserveExceeded(totalReserve, poolWad);
        _g.totalReserveWad = totalReserve.toUint192();
        _writeMarket(c);
        _params[marketId] = params;
        emit MarketParamsSet(marketId, params, block.timestamp + PARAM_RAMP_DURATION);
    }

    /// @inheritdoc IPerpEngine
    function accrue(uint256 marketId) external {
        _writeMarket(_loadLatest(_known(marketId), _coverage().poolWad));
    }

    function pause() external onlyRole(PAUSER_ROLE) {
        if (_g.paused) revert EnforcedPause();
        _g.paused = true;
        emit Paused(msg.sender);
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        if (!_g.paused) revert ExpectedPause();
        _g.paused = false;
        emit Unpaused(msg.sender);
    }

    function paused() external view returns (bool) {
        return _g.paused;
    }

    /// @inheritdoc IPerpEngine
    function totalReserveWad() external view returns (uint256) {
        return _g.totalReserveWad;
    }

    // ------------------------------------------------------------------ views

    function accountOwner(uint256 accountId) external view returns (address) {
        return _accounts[accountId].owner;
    }

    /// @inheritdoc IPerpEngine
    function accountOwnerAndMarketCount(uint256 accountId) external view returns (address, uint256) {
        return (_accounts[accountId].owner, marketCount);
    }

    function accountMarketMask(uint256 accountId) external view returns (uint256) {
        return _accounts[accountId].marketMask;
    }

    function accountLastTradeTime(uint256 accountId) external view returns (uint256) {
        return _accounts[accountId].lastTradeTime;
    }

    function marketParams(uint256 marketId) external view returns (MarketParams memory) {
        return _params[_known(marketId)];
    }

    function previousMarketParams(uint256 marketId) external view returns (MarketParams memory) {
        return _prevParams[_known(marketId)];
    }

    function marketState(uint256 marketId) external view returns (MarketState memory) {
        return _state[_known(marketId)];
    }

    function currentMarketState(uint256 marketId) external view returns (MarketState memory) {
        return _loadLatest(_known(marketId), _coverage().poolWad).s;
    }

    function position(uint256 accountId, uint256 marketId) external view returns (Position memory) {
        return _positions[accountId][marketId];
    }

    function accountMarkets(uint256 accountId) external view returns (uint256[] memory markets) {
        uint256 mask = _accounts[accountId].marketMask;
        markets = new uint256[](_popCount(uint32(mask)));
        uint256 n;
        for (uint256 m; mask != 0; ++m) {
            if (mask & 1 == 1) markets[n++] = m;
            mask >>= 1;
        }
    }

    function accountState(uint256 accountId) external view returns (AccountState memory) {
        Account memory account = _accounts[accountId];
        if (account.owner == address(0)) revert UnknownAccount(accountId);
        Ctx memory none;
        none.marketId = type(uint256).max;
        return _accountState(accountId, account.marketMask, vault.marginOf(accountId), none, _coverage(), false);
    }

    function openMarketsMask() external view returns (uint256) {
        return _g.openMask;
    }

    /// @inheritdoc IPerpEngine
    function poolLiabilityWad(uint256[] calldata pricesWad) external view returns (int256 liability) {
        Coverage memory cov = _coverage();
        uint256 mask = _g.openMask;
        for (uint256 m; mask != 0; ++m) {
            if (mask & 1 == 1) liability += _marketLiability(m, m < pricesWad.length ? pricesWad[m] : 0, cov);
            mask >>= 1;
        }
    }

    /// @inheritdoc IPerpEngine
    function poolLiabilityAtLatestWad() external view returns (int256 liability) {
        Coverage memory cov = _coverage();
        uint256 mask = _g.openMask;
        for (uint256 m; mask != 0; ++m) {
            if (mask & 1 == 1) {
                IOracleAdapter.PriceData memory d = oracle.latest(m);
                bool fresh = d.priceWad != 0 && d.publishTime + oracle.config(m).maxPriceAge >= block.timestamp;
                liability += _marketLiability(m, fresh ? d.priceWad : 0, cov);
            }
            mask >>= 1;
        }
    }

    /// @inheritdoc IPerpEngine
    function oiCapsHold(uint256[] calldata pricesWad, uint256 poolWad) external view returns (bool) {
        uint256 mask = _g.openMask;
        for (uint256 m; mask != 0; ++m) {
            if (mask & 1 == 1 && m < pricesWad.length && pricesWad[m] != 0) {
                MarketState storage s = _state[m];
                uint256 oi =
                    s.longOpenInterestWad > s.shortOpenInterestWad ? s.longOpenInterestWad : s.shortOpenInterestWad;
                if (oi.mulDivUp(pricesWad[m], WAD) > poolWad.mulDivDown(_params[m].oiCapRatioWad, WAD)) return false;
            }
            mask >>= 1;
        }
        return true;
    }

    /// @inheritdoc IPerpEngine
    function checkWithdrawal(uint256 accountId, address caller, int256 marginAfterToken) external view {
        Account memory account = _accounts[accountId];
        if (account.owner == address(0)) revert UnknownAccount(accountId);
        if (account.owner != caller) revert NotAccountOwner(accountId, caller);
        if (account.marketMask == 0) return;
        Ctx memory none;
        none.marketId = type(uint256).max;
        AccountState memory a = _accountState(accountId, account.marketMask, marginAfterToken, none, _coverage(), true);
        if (a.equityWad < int256(a.initialMarginWad)) {
            revert InsufficientMargin(accountId, a.equityWad, a.initialMarginWad);
        }
    }

    // ------------------------------------------------------------------ internals: state

    /// @dev The price data with the price that values a position of `sizeWad` worst: the lower of
    ///      the pull and reference prices for a long, the higher for a short.
    function _worstFor(int256 sizeWad, IOracleAdapter.PriceData memory d)
        internal
        pure
        returns (IOracleAdapter.PriceData memory)
    {
        uint256 ref = d.referenceWad;
        if (ref != 0 && (sizeWad > 0 ? ref < d.priceWad : ref > d.priceWad)) d.priceWad = ref;
        return d;
    }

    function _coverage() internal view returns (Coverage memory) {
        return Coverage(vault.poolAssets() * _tokenScale, _g.totalReserveWad);
    }

    /// @dev A market at a given price: parameters, accrued state, ramp (nothing written).
    function _ctx(uint256 marketId, IOracleAdapter.PriceData memory d, uint256 poolWad)
        internal
        view
        returns (Ctx memory c)
    {
        c.marketId = marketId;
        c.p = _params[marketId];
        c.d = d;
        c.s = _state[marketId];
        c.rampWad = _rampShare(c.s.rampStart);
        if (c.rampWad < WAD) c.prev = _prevParams[marketId];
        c.s = _accrued(c.s, c.p, d.priceWad, poolWad);
    }

    function _loadLatest(uint256 marketId, uint256 poolWad) internal view returns (Ctx memory) {
        return _ctx(marketId, oracle.latest(marketId), poolWad);
    }

    function _writeMarket(Ctx memory c) internal {
        MarketState storage stored = _state[c.marketId];
        if (stored.lastAccrualTime != c.s.lastAccrualTime) {
            emit Accrued(c.marketId, c.s.longIndexWad, c.s.shortIndexWad, c.d.priceWad, block.timestamp);
        }
        _state[c.marketId] = c.s;
        uint32 bit = uint32(1 << c.marketId);
        bool open = c.s.longOpenInterestWad != 0 || c.s.shortOpenInterestWad != 0;
        uint32 mask = _g.openMask;
        if (open != (mask & bit != 0)) _g.openMask = open ? mask | bit : mask & ~bit;
    }

    /// @dev Every position of the account at its latest price, which must be recent (a liquidation
    ///      cannot pick a favourable price from the past).
    function _loadAccount(uint256 accountId, uint32 mask, uint256 poolWad)
        internal
        view
        returns (Ctx[] memory ctxs, Position[] memory positions)
    {
        uint256 n = _popCount(mask);
        ctxs = new Ctx[](n);
        positions = new Position[](n);
        uint256 i;
        for (uint256 m; mask != 0; ++m) {
            if (mask & 1 == 1) {
                ctxs[i] = _ctx(m, oracle.latestRecent(m), poolWad);
                positions[i++] = _positions[accountId][m];
            }
            mask >>= 1;
        }
    }

    /// @dev Every position of the account; `known` (if its market id matches) is the market being
    ///      traded. `fresh` (a margin check that lets value out: a withdrawal, an increase): other
    ///      markets' stored prices must be within their maximum age, and each position is valued
    ///      at the worse of that price and the reference feed's, so a stale favourable price
    ///      cannot be withdrawn against.
    function _accountState(
        uint256 accountId,
        uint32 mask,
        int256 marginToken,
        Ctx memory known,
        Coverage memory cov,
        bool fresh
    ) internal view returns (AccountState memory) {
        uint256 n = _popCount(mask);
        Ctx[] memory ctxs = new Ctx[](n);
        Position[] memory positions = new Position[](n);
        uint256 i;
        for (uint256 m; mask != 0; ++m) {
            if (mask & 1 == 1) {
                positions[i] = _positions[accountId][m];
                if (m == known.marketId) {
                    ctxs[i] = known;
                } else if (fresh) {
                    ctxs[i] = _ctx(m, _worstFor(positions[i].sizeWad, oracle.latestFresh(m)), cov.poolWad);
                } else {
                    ctxs[i] = _ctx(m, oracle.latest(m), cov.poolWad);
                }
                ++i;
            }
            mask >>= 1;
        }
        return _sum(ctxs, positions, marginToken, cov);
    }

    function _sum(Ctx[] memory ctxs, Position[] memory positions, int256 marginToken, Coverage memory cov)
        internal
        view
        returns (AccountState memory a)
    {
        a.marginWad = marginToken * int256(_tokenScale);
        a.equityWad = a.marginWad;
        for (uint256 i; i < ctxs.length; ++i) {
            Figures memory f = _figures(positions[i], ctxs[i], cov);
            a.equityWad += f.valueWad - int256(f.closeFeeWad);
            a.initialMarginWad += f.initialWad;
            a.maintenanceMarginWad += f.maintenanceWad;
            a.minMarginWad += ctxs[i].p.minMarginWad;
            a.notionalWad += f.notionalWad;
        }
        a.positionCount = ctxs.length;
    }

    /// @dev A position's figures; during a ramp, each figure the change tightens moves linearly
    ///      from its value under the old parameters to the new (relaxations apply at once).
    function _figures(Position memory pos, Ctx memory c, Coverage memory cov) internal pure returns (Figures memory f) {
        f = _figuresUnder(pos, c, c.p);
        if (c.rampWad < WAD) {
            Figures memory old = _figuresUnder(pos, c, c.prev);
            f.valueWad = _blendValue(old.valueWad, f.valueWad, c.rampWad);
            f.closeFeeWad = _blendCost(old.closeFeeWad, f.closeFeeWad, c.rampWad);
            f.maintenanceWad = _blendCost(old.maintenanceWad, f.maintenanceWad, c.rampWad);
        }
        f.valueWad = PerpMath.coveredWad(f.valueWad, cov.poolWad, cov.reserveWad);
    }

    function _figuresUnder(Position memory pos, Ctx memory c, MarketParams memory p)
        internal
        pure
        returns (Figures memory f)
    {
        uint256 price = c.d.priceWad;
        int256 size = pos.sizeWad;
        uint256 closeFill = PerpMath.fillPriceWad(price, _skew(c.s), -size, p.skewScaleWad);
        int256 index = size > 0 ? c.s.longIndexWad : c.s.shortIndexWad;
        f.valueWad = PerpMath.valueWad(size, pos.costWad, pos.entryChargeWad, closeFill, index, p.maxProfitRatioWad);
        f.notionalWad = PerpMath.notionalWad(size, price);
        f.closeFeeWad = PerpMath.feeWad(f.notionalWad, p.takerFeeWad);
        uint256 imRatio = PerpMath.scaledRatioWad(p.initialMarginRatioWad, size, p.fundingScaleWad, c.d.imFactorWad);
        f.initialWad = f.notionalWad.mulDivUp(imRatio, WAD) + p.minMarginWad;
        uint256 mmRatio = PerpMath.scaledRatioWad(p.maintenanceMarginRatioWad, size, p.fundingScaleWad, c.d.mmFactorWad);
        f.maintenanceWad = f.notionalWad.mulDivUp(mmRatio, WAD) + p.minMarginWad;
    }

    /// @dev A value moving from `old` to a lower `target` over the ramp (rounded down); a higher
    ///      target applies at once.
    function _blendValue(int256 old, int256 target, uint256 rampWad) internal pure returns (int256) {
        if (target >= old) return target;
        return old - int256(uint256(old - target).mulDivUp(rampWad, WAD));
    }

    /// @dev A cost moving from `old` to a higher `target` over the ramp (rounded up); a lower
    ///      target applies at once.
    function _blendCost(uint256 old, uint256 target, uint256 rampWad) internal pure returns (uint256) {
        if (target <= old) return target;
        return old + (target - old).mulDivUp(rampWad, WAD);
    }

    /// @dev Share of PARAM_RAMP_DURATION elapsed since `rampStart`, rounded up; WAD when done.
    function _rampShare(uint256 rampStart) internal view returns (uint256) {
        if (rampStart == 0) return WAD;
        uint256 elapsed = block.timestamp - rampStart;
        if (elapsed >= PARAM_RAMP_DURATION) return WAD;
        return elapsed.mulDivUp(WAD, PARAM_RAMP_DURATION);
    }

    /// @dev Funding and borrowing moved to now. The paying side pays rate * price * elapsed per
    ///      unit of size; the other side receives the same total shared over its open interest,
    ///      at most the payers' rate per unit (the rest, and all borrowing, goes to the pool).
    function _accrued(MarketState memory s, MarketParams memory p, uint256 price, uint256 poolWad)
        internal
        view
        returns (MarketState memory)
    {
        uint256 elapsed = block.timestamp - s.lastAccrualTime;
        if (elapsed == 0) return s;
        s.lastAccrualTime = uint32(block.timestamp);
        uint256 longOi = s.longOpenInterestWad;
        uint256 shortOi = s.shortOpenInterestWad;
        int256 rate = PerpMath.fundingRatePerDayWad(_skew(s), p.fundingScaleWad, p.maxFundingRatePerDayWad);
        if (rate != 0) {
            uint256 payer = PerpMath.chargeIndexDeltaWad(rate.abs(), price, elapsed);
            if (rate > 0) {
                s.longIndexWad += payer.toInt256().toInt128();
                s.shortIndexWad -= PerpMath.receiverIndexDeltaWad(payer, longOi, shortOi).toInt256().toInt128();
            } else {
                s.shortIndexWad += payer.toInt256().toInt128();
                s.longIndexWad -= PerpMath.receiverIndexDeltaWad(payer, shortOi, longOi).toInt256().toInt128();
            }
        }
        if (p.borrowRatePerDayWad != 0) {
            if (longOi != 0) s.longIndexWad += _borrowDelta(p, s.longCostWad, poolWad, price, elapsed);
            if (shortOi != 0) s.shortIndexWad += _borrowDelta(p, s.shortCostWad, poolWad, price, elapsed);
        }
        return s;
    }

    function _borrowDelta(MarketParams memory p, uint256 sideCost, uint256 poolWad, uint256 price, uint256 elapsed)
        internal
        pure
        returns (int128)
    {
        uint256 rate = PerpMath.borrowRatePerDayWad(
            p.borrowRatePerDayWad, PerpMath.reserveWad(sideCost, p.maxProfitRatioWad), poolWad
        );
        return PerpMath.chargeIndexDeltaWad(rate, price, elapsed).toInt256().toInt128();
    }

    function _marketReserve(MarketState memory s, MarketParams memory p) internal pure returns (uint256) {
        return PerpMath.reserveWad(s.longCostWad, p.maxProfitRatioWad)
            + PerpMath.reserveWad(s.shortCostWad, p.maxProfitRatioWad);
    }

    /// @dev What the pool owes one market's traders at `price` (0: no usable price, worst case).
    function _marketLiability(uint256 marketId, uint256 price, Coverage memory cov) internal view returns (int256) {
        MarketParams memory p = _params[marketId];
        MarketState memory s = _state[marketId];
        if (price == 0) return int256(_marketReserve(s, p));
        s = _accrued(s, p, price, cov.poolWad);
        int256 longs = PerpMath.sideValueWad(
            true, s.longOpenInterestWad, s.longCostWad, s.longEntryChargeWad, price, s.longIndexWad, p.maxProfitRatioWad
        );
        int256 shorts = PerpMath.sideValueWad(
            false,
            s.shortOpenInterestWad,
            s.shortCostWad,
            s.shortEntryChargeWad,
            price,
            s.shortIndexWad,
            p.maxProfitRatioWad
        );
        return PerpMath.coveredWad(longs, cov.poolWad, cov.reserveWad)
            + PerpMath.coveredWad(shorts, cov.poolWad, cov.reserveWad);
    }

    // ------------------------------------------------------------------ internals: misc

    function _skew(MarketState memory s) internal pure returns (int256) {
        return int256(uint256(s.longOpenInterestWad)) - int256(uint256(s.shortOpenInterestWad));
    }

    function _requireNotPaused() internal view {
        if (_g.paused) revert EnforcedPause();
    }

    function _known(uint256 marketId) internal view returns (uint256) {
        if (marketId >= marketCount) revert UnknownMarket(marketId);
        return marketId;
    }

    function _popCount(uint32 mask) internal pure returns (uint256 n) {
        for (; mask != 0; mask &= mask - 1) {
            ++n;
        }
    }

    function _validate(MarketParams calldata p) internal pure {
        if (p.maxLeverage == 0 || p.maxLeverage > MAX_LEVERAGE) {
            revert ParameterOutOfBounds("maxLeverage", p.maxLeverage);
        }
        if (p.takerFeeWad > MAX_TRADING_FEE_WAD) revert ParameterOutOfBounds("takerFee", p.takerFeeWad);
        if (p.makerFeeWad > p.takerFeeWad) revert ParameterOutOfBounds("makerFee", p.makerFeeWad);
        if (p.maintenanceMarginRatioWad < MIN_MARGIN_RATIO_WAD) {
            revert ParameterOutOfBounds("maintenanceMarginRatio", p.maintenanceMarginRatioWad);
        }
        if (p.initialMarginRatioWad <= p.maintenanceMarginRatioWad || p.initialMarginRatioWad > MAX_MARGIN_RATIO_WAD) {
            revert ParameterOutOfBounds("initialMarginRatio", p.initialMarginRatioWad);
        }
        if (p.maxFundingRatePerDayWad > MAX_FUNDING_RATE_PER_DAY_WAD) {
            revert ParameterOutOfBounds("maxFundingRatePerDay", p.maxFundingRatePerDayWad);
        }
        if (p.borrowRatePerDayWad > MAX_BORROW_RATE_PER_DAY_WAD) {
            revert ParameterOutOfBounds("borrowRatePerDay", p.borrowRatePerDayWad);
        }
        if (p.maxProfitRatioWad < MIN_PROFIT_RATIO_WAD || p.maxProfitRatioWad > MAX_PROFIT_RATIO_WAD) {
            revert ParameterOutOfBounds("maxProfitRatio", p.maxProfitRatioWad);
        }
        if (p.skewScaleWad == 0 || p.skewScaleWad > MAX_SKEW_SCALE_WAD) {
            revert ParameterOutOfBounds("skewScale", p.skewScaleWad);
        }
        if (p.fundingScaleWad == 0 || p.fundingScaleWad > MAX_SKEW_SCALE_WAD) {
            revert ParameterOutOfBounds("fundingScale", p.fundingScaleWad);
        }
        if (p.minPositionSizeWad == 0) revert ParameterOutOfBounds("minPositionSize", 0);
        if (p.minMarginWad > MAX_MIN_MARGIN_WAD) revert ParameterOutOfBounds("minMargin", p.minMarginWad);
        if (p.oiCapRatioWad == 0 || p.oiCapRatioWad > MAX_OI_CAP_RATIO_WAD) {
            revert ParameterOutOfBounds("oiCapRatio", p.oiCapRatioWad);
        }
    }
}
