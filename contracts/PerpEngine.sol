// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {IPerpEngine} from "./interfaces/IPerpEngine.sol";
import {ILeverVault} from "./interfaces/ILeverVault.sol";
import {IOracleAdapter} from "./interfaces/IOracleAdapter.sol";
import {FixedPointMath} from "./libraries/FixedPointMath.sol";
import {PerpMath} from "./libraries/PerpMath.sol";
import {LiquidationMath} from "./libraries/LiquidationMath.sol";
import "./libraries/Constants.sol";
import "./libraries/Errors.sol";

/// @title PerpEngine
/// @notice The perpetual-position manager: accounts, markets, positions, funding, open interest,
///         margin requirements, and the position side of liquidations.
/// @dev Entry points follow checks -> accrue funding -> math -> storage -> emit -> vault
///      settlement. The one exception: an increase checks margin *after* `vault.settle`, which
///      returns the settled margin; the vault is a trusted module and a failed check reverts all.
contract PerpEngine is IPerpEngine, AccessControl, Pausable {
    using FixedPointMath for uint256;
    using FixedPointMath for int256;
    using SafeCast for uint256;
    using SafeCast for int256;

    bytes32 public constant RISK_ROLE = keccak256("RISK_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    struct Account {
        address owner;
        uint64 marketMask; // bit m set: the account holds a position in market m
    }

    /// @dev One market as an entry point sees it: parameters, oracle data, accrued state.
    struct Ctx {
        uint256 marketId;
        MarketParams p;
        IOracleAdapter.PriceData d;
        MarketState s;
        uint256 mmrWad; // effective base maintenance ratio (after any ramp)
    }

    ILeverVault public immutable vault;
    IOracleAdapter public immutable oracle;
    /// @notice The liquidation module, fixed at deployment (no role lookup on the hot path).
    address public immutable liquidator;
    uint256 internal immutable _tokenScale;

    uint256 public accountCount;
    uint256 public marketCount;
    mapping(uint256 accountId => Account) internal _accounts;
    mapping(uint256 marketId => MarketParams) internal _params;
    mapping(uint256 marketId => MarketState) internal _state;
    mapping(uint256 marketId => bytes32) public marketName;
    mapping(uint256 accountId => mapping(uint256 marketId => Position)) internal _positions;

    constructor(ILeverVault vault_, IOracleAdapter oracle_, address liquidator_, address admin) {
        if (
            address(vault_) == address(0) || address(oracle_) == address(0) || liquidator_ == address(0)
                || admin == address(0)
        ) revert ZeroAddress();
        vault = vault_;
        oracle = oracle_;
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
    function modifyPosition(uint256 accountId, uint256 marketId, int256 sizeDeltaWad, uint256 limitPriceWad)
        external
    {
        if (sizeDeltaWad == 0) revert ZeroSize();
        _trade(accountId, _ownedAccount(accountId), marketId, sizeDeltaWad, limitPriceWad);
    }

    /// @inheritdoc IPerpEngine
    function closePosition(uint256 accountId, uint256 marketId, uint256 limitPriceWad) external {
        Account memory account = _ownedAccount(accountId);
        int256 size = _positions[accountId][marketId].sizeWad;
        if (size == 0) revert NoPosition(accountId, marketId);
        _trade(accountId, account, marketId, -size, limitPriceWad);
    }

    /// @inheritdoc IPerpEngine
    function accrueFunding(uint256 marketId) external {
        Ctx memory c = _loadTx(marketId);
        _state[marketId] = c.s;
    }

    function _trade(
        uint256 accountId,
        Account memory account,
        uint256 marketId,
        int256 sizeDeltaWad,
        uint256 limitPriceWad
    ) internal {
        Ctx memory c = _loadTx(marketId);
        uint256 price = c.d.priceWad;
        if (limitPriceWad != 0 && (sizeDeltaWad > 0 ? price > limitPriceWad : price < limitPriceWad)) {
            revert PriceLimitExceeded(price, limitPriceWad);
        }
        Position memory pos = _positions[accountId][marketId];
        TradeMath memory t = _tradeMath(marketId, pos, c.s, c.p, sizeDeltaWad, price);
        if (t.increasing) {
            _requireNotPaused();
            if (c.d.shocked) revert OracleShockUnconfirmed(c.p.feed);
        }
        uint256 sideOi = _applyToMarket(c.s, pos, t);
        if (t.increasing) {
            uint256 oiNotional = sideOi.mulDivUp(price, WAD);
            uint256 cap = (vault.poolAssets() * _tokenScale).mulDivDown(_params[marketId].oiCapRatioWad, WAD);
            if (oiNotional > cap) revert OpenInterestCapExceeded(marketId, oiNotional, cap);
        }

        // Storage.
        _state[marketId] = c.s;
        account.marketMask = _writePosition(accountId, account, marketId, pos.sizeWad, t);
        emit PositionChanged(accountId, marketId, sizeDeltaWad, t.newSizeWad, price, t.realisedWad, t.feeWad);

        // Settlement: credits round down to token units, debts round up.
        uint256 marginAfter = vault.settle(accountId, _toTokenFloor(t.realisedWad), t.feeWad.divUp(_tokenScale));

        if (t.increasing) _checkIncrease(accountId, account.marketMask, marginAfter, c, t.newSizeWad);
    }

    /// @dev What a trade does to one position, computed before any storage write.
    struct TradeMath {
        int256 newSizeWad;
        int256 newCostWad;
        int256 realisedWad; // PnL net of funding realised by a reduction
        uint256 feeWad;
        bool increasing;
        bool isLong;
    }

    function _tradeMath(
        uint256 marketId,
        Position memory pos,
        MarketState memory s,
        MarketParams memory p,
        int256 sizeDeltaWad,
        uint256 price
    ) internal pure returns (TradeMath memory t) {
        int256 size = pos.sizeWad;
        t.newSizeWad = size + sizeDeltaWad;
        t.increasing = size == 0 || (size > 0) == (sizeDeltaWad > 0);
        if (!t.increasing && t.newSizeWad != 0 && (t.newSizeWad > 0) != (size > 0)) {
            revert PositionFlip(marketId, size, sizeDeltaWad);
        }
        if (t.newSizeWad != 0 && t.newSizeWad.abs() < p.minPositionSizeWad) {
            revert PositionTooSmall(marketId, t.newSizeWad.abs(), p.minPositionSizeWad);
        }
        t.isLong = size > 0 || (size == 0 && sizeDeltaWad > 0);
        int256 mark = PerpMath.markWad(t.isLong, price, s.longFundingIndexWad, s.shortFundingIndexWad);
        if (t.increasing) {
            t.newCostWad = pos.costWad + PerpMath.addedCostWad(sizeDeltaWad, mark);
        } else {
            int256 removed = PerpMath.removedCostWad(pos.costWad, -sizeDeltaWad, size);
            t.realisedWad = PerpMath.valueWad(-sizeDeltaWad, removed, mark);
            t.newCostWad = pos.costWad - removed;
        }
        t.feeWad = PerpMath.feeWad(PerpMath.notionalWad(sizeDeltaWad, price), p.tradingFeeWad);
    }

    /// @dev Open interest and aggregate open notional after the trade (in memory); returns the
    ///      traded side's open interest.
    function _applyToMarket(MarketState memory s, Position memory pos, TradeMath memory t)
        internal
        pure
        returns (uint256 sideOi)
    {
        sideOi = (t.isLong ? s.longOpenInterestWad : s.shortOpenInterestWad) - int256(pos.sizeWad).abs()
            + t.newSizeWad.abs();
        if (t.isLong) s.longOpenInterestWad = sideOi.toUint128();
        else s.shortOpenInterestWad = sideOi.toUint128();
        s.netCostWad = (s.netCostWad + t.newCostWad - pos.costWad).toInt112();
    }

    /// @return mask the account's market mask after the write
    function _writePosition(
        uint256 accountId,
        Account memory account,
        uint256 marketId,
        int256 sizeBefore,
        TradeMath memory t
    ) internal returns (uint64 mask) {
        uint64 bit = uint64(1) << uint64(marketId);
        mask = account.marketMask;
        if (t.newSizeWad == 0) {
            delete _positions[accountId][marketId];
            mask &= ~bit;
            _accounts[accountId].marketMask = mask;
            return mask;
        }
        _positions[accountId][marketId] = Position({sizeWad: t.newSizeWad.toInt128(), costWad: t.newCostWad.toInt128()});
        if (sizeBefore == 0) {
            if (_popCount(mask) >= MAX_POSITIONS_PER_ACCOUNT) revert TooManyPositions(accountId);
            mask |= bit;
            _accounts[accountId].marketMask = mask;
        }
    }

    /// @dev After an increase: the position's leverage, then the account's initial margin.
    function _checkIncrease(uint256 accountId, uint64 mask, uint256 marginToken, Ctx memory c, int256 sizeWad)
        internal
        view
    {
        AccountState memory a = _accountStateView(accountId, mask, marginToken, c);
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
        (Ctx[] memory ctxs, Position[] memory positions) = _loadAccountTx(accountId, account.marketMask);
        AccountState memory a = _sum(ctxs, positions, vault.marginOf(accountId));
        r.equityWad = a.equityWad;
        r.maintenanceMarginWad = a.maintenanceMarginWad;
        if (a.equityWad >= int256(a.maintenanceMarginWad)) return r;

        r.liquidated = true;
        r.closeShareWad = LiquidationMath.closeShareWad(a.equityWad, a.maintenanceMarginWad, a.minMarginWad, a.notionalWad, lp);
        r.full = r.closeShareWad == WAD;
        int256[2] memory totals; // [pnl - funding, fees] in WAD
        for (uint256 i; i < ctxs.length; ++i) {
            _liquidatePosition(accountId, account, ctxs[i], positions[i], r, totals);
        }
        // What the account owes the keeper and the insurance fund; the vault caps both by the margin left.
        r.rewardToken = LiquidationMath.rewardWad(r.closedNotionalWad, lp) / _tokenScale;
        r.penaltyToken = LiquidationMath.penaltyWad(r.closedNotionalWad, lp).divUp(_tokenScale);
        _settleLiquidation(accountId, keeper, r, totals);
    }

    function _settleLiquidation(uint256 accountId, address keeper, LiquidationResult memory r, int256[2] memory totals)
        internal
    {
        (r.rewardToken, r.penaltyToken, r.badDebtToken) = vault.settleLiquidation(
            accountId,
            _toTokenFloor(totals[0]),
            uint256(totals[1]).divUp(_tokenScale),
            r.rewardToken,
            r.penaltyToken,
            keeper
        );
    }

    function _liquidatePosition(
        uint256 accountId,
        Account memory account,
        Ctx memory c,
        Position memory pos,
        LiquidationResult memory r,
        int256[2] memory totals
    ) internal {
        int256 closeSize = _liquidationCloseSize(pos.sizeWad, r.closeShareWad, c.p.minPositionSizeWad);
        TradeMath memory t = _tradeMath(c.marketId, pos, c.s, c.p, -closeSize, c.d.priceWad);
        _applyToMarket(c.s, pos, t);
        _state[c.marketId] = c.s;
        account.marketMask = _writePosition(accountId, account, c.marketId, pos.sizeWad, t);
        emit PositionChanged(accountId, c.marketId, -closeSize, t.newSizeWad, c.d.priceWad, t.realisedWad, t.feeWad);
        totals[0] += t.realisedWad;
        totals[1] += int256(t.feeWad);
        r.closedNotionalWad += PerpMath.notionalWad(closeSize, c.d.priceWad);
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
        _validate(params);
        marketId = marketCount++;
        marketName[marketId] = name;
        _params[marketId] = params;
        _state[marketId].lastFundingTime = uint40(block.timestamp);
        emit MarketCreated(marketId, name, params.feed);
        emit MarketParamsSet(marketId, params);
    }

    /// @inheritdoc IPerpEngine
    function setMarketParams(uint256 marketId, MarketParams calldata params) external onlyRole(RISK_ROLE) {
        _validate(params);
        Ctx memory c = _loadTx(marketId); // funding accrues under the old parameters up to now
        if (params.maintenanceMarginRatioWad > c.mmrWad) {
            (c.s.mmrRampStart, c.s.mmrRampFromWad) = (uint40(block.timestamp), uint64(c.mmrWad));
        } else {
            (c.s.mmrRampStart, c.s.mmrRampFromWad) = (0, 0);
        }
        _state[marketId] = c.s;
        _params[marketId] = params;
        emit MarketParamsSet(marketId, params);
    }

    function pause() external onlyRole(PAUSER_ROLE) {
        _pause();
    }

    function unpause() external onlyRole(PAUSER_ROLE) {
        _unpause();
    }

    // ------------------------------------------------------------------ views

    function accountOwner(uint256 accountId) external view returns (address) {
        return _accounts[accountId].owner;
    }

    function accountMarketMask(uint256 accountId) external view returns (uint256) {
        return _accounts[accountId].marketMask;
    }

    function marketParams(uint256 marketId) external view returns (MarketParams memory) {
        return _marketParams(marketId);
    }

    function marketState(uint256 marketId) external view returns (MarketState memory) {
        _marketParams(marketId);
        return _state[marketId];
    }

    function currentMarketState(uint256 marketId) external view returns (MarketState memory) {
        return _loadView(marketId).s;
    }

    /// @inheritdoc IPerpEngine
    function effectiveMaintenanceRatio(uint256 marketId) external view returns (uint256) {
        return _effectiveMmr(_marketParams(marketId).maintenanceMarginRatioWad, _state[marketId]);
    }

    function position(uint256 accountId, uint256 marketId) external view returns (Position memory) {
        return _positions[accountId][marketId];
    }

    /// @inheritdoc IPerpEngine
    function positionDetails(uint256 accountId, uint256 marketId) external view returns (PositionDetails memory d) {
        Position memory pos = _positions[accountId][marketId];
        if (pos.sizeWad == 0) revert NoPosition(accountId, marketId);
        Ctx memory c = _loadView(marketId);
        PositionFigures memory f = _figures(pos, c);
        (d.sizeWad, d.costWad, d.priceWad, d.valueWad) = (pos.sizeWad, pos.costWad, c.d.priceWad, f.valueWad);
        (d.notionalWad, d.closeFeeWad) = (f.notionalWad, f.closeFeeWad);
        (d.initialMarginWad, d.maintenanceMarginWad) = (f.initialWad, f.maintenanceWad);
        d.liquidationPriceWad = liquidationPrice(accountId, marketId);
    }

    function accountMarkets(uint256 accountId) external view returns (uint256[] memory markets) {
        uint256 mask = _accounts[accountId].marketMask;
        markets = new uint256[](_popCount(uint64(mask)));
        uint256 n;
        for (uint256 m; mask != 0; ++m) {
            if (mask & 1 == 1) markets[n++] = m;
            mask >>= 1;
        }
    }

    function accountState(uint256 accountId) public view returns (AccountState memory) {
        Account memory account = _accounts[accountId];
        if (account.owner == address(0)) revert UnknownAccount(accountId);
        Ctx memory none;
        none.marketId = type(uint256).max;
        return _accountStateView(accountId, account.marketMask, vault.marginOf(accountId), none);
    }

    /// @inheritdoc IPerpEngine
    /// @dev Solves equity(p) = maintenance(p) with every other price fixed:
    ///      A + s*p - (fee + mmr)*|s|*p = 0, where A gathers the terms that do not move with p.
    ///      Rounding makes it exact only to within a few wei of price.
    function liquidationPrice(uint256 accountId, uint256 marketId) public view returns (uint256) {
        Position memory pos = _positions[accountId][marketId];
        if (pos.sizeWad == 0) revert NoPosition(accountId, marketId);
        Ctx memory c = _loadView(marketId);
        AccountState memory a =
            _accountStateView(accountId, _accounts[accountId].marketMask, vault.marginOf(accountId), c);
        PositionFigures memory f = _figures(pos, c);
        uint256 mmr = _mmRatio(pos.sizeWad, c);
        // A = (equity - maintenance) without this position's price-dependent terms
        //   = equity - maintenance + closeFee + (maintenance_i - minMargin) - size * price.
        int256 a0 = a.equityWad - int256(a.maintenanceMarginWad) + int256(f.closeFeeWad)
            + int256(f.maintenanceWad - c.p.minMarginWad) - int256(pos.sizeWad).mulDivFloor(c.d.priceWad, WAD);
        uint256 k = uint256(c.p.tradingFeeWad) + mmr;
        uint256 absSize = int256(pos.sizeWad).abs();
        if (pos.sizeWad > 0) {
            if (a0 >= 0 || k >= WAD) return 0;
            return uint256(-a0).mulDivDown(WAD * WAD, absSize * (WAD - k));
        }
        if (a0 <= 0) return 0;
        return uint256(a0).mulDivDown(WAD * WAD, absSize * (WAD + k));
    }

    /// @inheritdoc IPerpEngine
    /// @dev Traders' value including pending funding: L * markL - S * markS - netCost, with
    ///      funding accrued to now; what the pool owes rounds up.
    function poolExposure() external view returns (int256 traderPnlWad, uint256 reservedWad) {
        uint256 n = marketCount;
        for (uint256 m; m < n; ++m) {
            if (_state[m].longOpenInterestWad == 0 && _state[m].shortOpenInterestWad == 0) continue;
            MarketParams memory p = _params[m];
            uint256 price = oracle.priceWad(p.feed);
            MarketState memory s = _accrued(_state[m], p, price);
            int256 longOi = int256(uint256(s.longOpenInterestWad));
            int256 shortOi = int256(uint256(s.shortOpenInterestWad));
            traderPnlWad += FixedPointMath.mulWadCeil(longOi, int256(price) - s.longFundingIndexWad)
                - FixedPointMath.mulWadFloor(shortOi, int256(price) + s.shortFundingIndexWad) - s.netCostWad;
            reservedWad += (longOi - shortOi).abs().mulDivUp(price, WAD).mulDivUp(p.reserveRatioWad, WAD);
        }
    }

    /// @inheritdoc IPerpEngine
    function checkWithdrawal(uint256 accountId, address caller, uint256 marginAfterToken) external view {
        Account memory account = _accounts[accountId];
        if (account.owner == address(0)) revert UnknownAccount(accountId);
        if (account.owner != caller) revert NotAccountOwner(accountId, caller);
        if (account.marketMask == 0) return;
        Ctx memory none;
        none.marketId = type(uint256).max;
        AccountState memory a = _accountStateView(accountId, account.marketMask, marginAfterToken, none);
        if (a.equityWad < int256(a.initialMarginWad)) revert InsufficientMargin(accountId, a.equityWad, a.initialMarginWad);
    }

    // ------------------------------------------------------------------ internals: state

    struct PositionFigures {
        int256 valueWad; // unrealised PnL - pending funding
        uint256 closeFeeWad;
        uint256 notionalWad;
        uint256 initialWad;
        uint256 maintenanceWad;
    }

    /// @dev A market for a transaction: records the oracle round, accrues funding (in memory;
    ///      the caller writes `c.s` back). Funding is deterministic from the market state, the
    ///      price and the time, so it has no event: `currentMarketState` (or `lever.math.accrued`)
    ///      gives the indices at any moment.
    function _loadTx(uint256 marketId) internal returns (Ctx memory c) {
        if (marketId >= marketCount) revert UnknownMarket(marketId);
        c = _loadTxKnown(marketId);
    }

    /// @dev `_loadTx` for a market id known to exist (taken from an account's market mask).
    function _loadTxKnown(uint256 marketId) internal returns (Ctx memory c) {
        c.marketId = marketId;
        c.p = _coreParams(marketId);
        c.d = oracle.update(c.p.feed);
        c.s = _accrued(_state[marketId], c.p, c.d.priceWad);
        c.mmrWad = _effectiveMmr(c.p.maintenanceMarginRatioWad, c.s);
    }

    /// @dev The same market as a view sees it (`oracle.read` is what `update` would record).
    function _loadView(uint256 marketId) internal view returns (Ctx memory c) {
        if (marketId >= marketCount) revert UnknownMarket(marketId);
        c = _loadViewKnown(marketId);
    }

    function _loadViewKnown(uint256 marketId) internal view returns (Ctx memory c) {
        c.marketId = marketId;
        c.p = _coreParams(marketId);
        c.d = oracle.read(c.p.feed);
        c.s = _accrued(_state[marketId], c.p, c.d.priceWad);
        c.mmrWad = _effectiveMmr(c.p.maintenanceMarginRatioWad, c.s);
    }

    function _loadAccountTx(uint256 accountId, uint64 mask)
        internal
        returns (Ctx[] memory ctxs, Position[] memory positions)
    {
        uint256 n = _popCount(mask);
        ctxs = new Ctx[](n);
        positions = new Position[](n);
        uint256 i;
        for (uint256 m; mask != 0; ++m) {
            if (mask & 1 == 1) {
                ctxs[i] = _loadTxKnown(m);
                positions[i++] = _positions[accountId][m];
            }
            mask >>= 1;
        }
    }

    /// @dev Every position of the account as views see it; `known` (if its market id matches)
    ///      spares reloading the market being traded.
    function _accountStateView(uint256 accountId, uint64 mask, uint256 marginToken, Ctx memory known)
        internal
        view
        returns (AccountState memory)
    {
        uint256 n = _popCount(mask);
        Ctx[] memory ctxs = new Ctx[](n);
        Position[] memory positions = new Position[](n);
        uint256 i;
        for (uint256 m; mask != 0; ++m) {
            if (mask & 1 == 1) {
                ctxs[i] = m == known.marketId ? known : _loadViewKnown(m);
                positions[i++] = _positions[accountId][m];
            }
            mask >>= 1;
        }
        return _sum(ctxs, positions, marginToken);
    }

    function _sum(Ctx[] memory ctxs, Position[] memory positions, uint256 marginToken)
        internal
        view
        returns (AccountState memory a)
    {
        a.marginWad = marginToken * _tokenScale;
        a.equityWad = int256(a.marginWad);
        for (uint256 i; i < ctxs.length; ++i) {
            PositionFigures memory f = _figures(positions[i], ctxs[i]);
            a.equityWad += f.valueWad - int256(f.closeFeeWad);
            a.initialMarginWad += f.initialWad;
            a.maintenanceMarginWad += f.maintenanceWad;
            a.minMarginWad += ctxs[i].p.minMarginWad;
            a.notionalWad += f.notionalWad;
        }
        a.positionCount = ctxs.length;
    }

    function _figures(Position memory pos, Ctx memory c) internal pure returns (PositionFigures memory f) {
        uint256 price = c.d.priceWad;
        int256 mark = PerpMath.markWad(pos.sizeWad > 0, price, c.s.longFundingIndexWad, c.s.shortFundingIndexWad);
        f.valueWad = PerpMath.valueWad(pos.sizeWad, pos.costWad, mark);
        f.notionalWad = PerpMath.notionalWad(pos.sizeWad, price);
        f.closeFeeWad = PerpMath.feeWad(f.notionalWad, c.p.tradingFeeWad);
        uint256 imRatio =
            PerpMath.scaledRatioWad(c.p.initialMarginRatioWad, pos.sizeWad, c.p.skewScaleWad, c.d.imFactorWad);
        f.initialWad = f.notionalWad.mulDivUp(imRatio, WAD) + c.p.minMarginWad;
        f.maintenanceWad = f.notionalWad.mulDivUp(_mmRatio(pos.sizeWad, c), WAD) + c.p.minMarginWad;
    }

    function _mmRatio(int256 sizeWad, Ctx memory c) internal pure returns (uint256) {
        return PerpMath.scaledRatioWad(c.mmrWad, sizeWad, c.p.skewScaleWad, c.d.mmFactorWad);
    }

    /// @dev The base maintenance ratio in force: a raised ratio phases in linearly from the old
    ///      one over MM_RAMP_DURATION (rounded up); a lowered one applies at once.
    function _effectiveMmr(uint256 targetWad, MarketState memory s) internal view returns (uint256) {
        if (s.mmrRampStart == 0 || targetWad <= s.mmrRampFromWad) return targetWad;
        uint256 elapsed = block.timestamp - s.mmrRampStart;
        if (elapsed >= MM_RAMP_DURATION) return targetWad;
        return s.mmrRampFromWad + (targetWad - s.mmrRampFromWad).mulDivUp(elapsed, MM_RAMP_DURATION);
    }

    /// @dev Funding indices moved to now. The paying side (the larger one) pays
    ///      rate * price * elapsed per unit of size; the other side receives the same total,
    ///      shared over its open interest. With no receivers the pool receives it.
    function _accrued(MarketState memory s, MarketParams memory p, uint256 price)
        internal
        view
        returns (MarketState memory)
    {
        uint256 elapsed = block.timestamp - s.lastFundingTime;
        s.lastFundingTime = uint40(block.timestamp);
        if (elapsed == 0) return s;
        uint256 longOi = s.longOpenInterestWad;
        uint256 shortOi = s.shortOpenInterestWad;
        int256 rate = _fundingRate(s, p);
        if (rate == 0) return s;
        uint256 payerDelta = PerpMath.payerIndexDeltaWad(rate.abs(), price, elapsed);
        if (rate > 0) {
            s.longFundingIndexWad += payerDelta.toInt256().toInt128();
            if (shortOi > 0) {
                s.shortFundingIndexWad -= PerpMath.receiverIndexDeltaWad(payerDelta, longOi, shortOi).toInt256().toInt128();
            }
        } else {
            s.shortFundingIndexWad += payerDelta.toInt256().toInt128();
            if (longOi > 0) {
                s.longFundingIndexWad -= PerpMath.receiverIndexDeltaWad(payerDelta, shortOi, longOi).toInt256().toInt128();
            }
        }
        return s;
    }

    function _fundingRate(MarketState memory s, MarketParams memory p) internal pure returns (int256) {
        int256 skew = int256(uint256(s.longOpenInterestWad)) - int256(uint256(s.shortOpenInterestWad));
        return PerpMath.fundingRatePerDayWad(skew, p.skewScaleWad, p.maxFundingRatePerDayWad);
    }

    // ------------------------------------------------------------------ internals: misc

    function _ownedAccount(uint256 accountId) internal view returns (Account memory account) {
        account = _accounts[accountId];
        if (account.owner == address(0)) revert UnknownAccount(accountId);
        if (account.owner != msg.sender) revert NotAccountOwner(accountId, msg.sender);
    }

    function _marketParams(uint256 marketId) internal view returns (MarketParams memory) {
        if (marketId >= marketCount) revert UnknownMarket(marketId);
        return _params[marketId];
    }

    /// @dev The first three slots of a market's parameters: everything but the OI cap and the
    ///      reserve ratio (left zero), which only increases and pool views read. No id check.
    function _coreParams(uint256 marketId) internal view returns (MarketParams memory p) {
        MarketParams storage s = _params[marketId];
        (p.feed, p.maxLeverage, p.minMarginWad) = (s.feed, s.maxLeverage, s.minMarginWad);
        (p.tradingFeeWad, p.initialMarginRatioWad, p.maintenanceMarginRatioWad, p.maxFundingRatePerDayWad) =
            (s.tradingFeeWad, s.initialMarginRatioWad, s.maintenanceMarginRatioWad, s.maxFundingRatePerDayWad);
        (p.skewScaleWad, p.minPositionSizeWad) = (s.skewScaleWad, s.minPositionSizeWad);
    }

    /// @dev Trader value in WAD to token units, rounded toward negative infinity.
    function _toTokenFloor(int256 valueWad) internal view returns (int256) {
        if (valueWad >= 0) return int256(uint256(valueWad) / _tokenScale);
        return -int256(uint256(-valueWad).divUp(_tokenScale));
    }

    function _popCount(uint64 mask) internal pure returns (uint256 n) {
        for (; mask != 0; mask &= mask - 1) ++n;
    }

    function _validate(MarketParams calldata p) internal view {
        if (p.feed == address(0)) revert ZeroAddress();
        if (oracle.maxAge(p.feed) == 0) revert OracleFeedUnknown(p.feed);
        if (p.maxLeverage == 0 || p.maxLeverage > MAX_LEVERAGE) revert ParameterOutOfBounds("maxLeverage", p.maxLeverage);
        if (p.tradingFeeWad > MAX_TRADING_FEE_WAD) revert ParameterOutOfBounds("tradingFee", p.tradingFeeWad);
        if (p.maintenanceMarginRatioWad < MIN_MARGIN_RATIO_WAD) {
            revert ParameterOutOfBounds("maintenanceMarginRatio", p.maintenanceMarginRatioWad);
        }
        if (p.initialMarginRatioWad <= p.maintenanceMarginRatioWad || p.initialMarginRatioWad > MAX_MARGIN_RATIO_WAD) {
            revert ParameterOutOfBounds("initialMarginRatio", p.initialMarginRatioWad);
        }
        if (p.maxFundingRatePerDayWad > MAX_FUNDING_RATE_PER_DAY_WAD) {
            revert ParameterOutOfBounds("maxFundingRatePerDay", p.maxFundingRatePerDayWad);
        }
        if (p.reserveRatioWad > MAX_RESERVE_RATIO_WAD) revert ParameterOutOfBounds("reserveRatio", p.reserveRatioWad);
        if (p.skewScaleWad == 0) revert ParameterOutOfBounds("skewScale", 0);
        if (p.minPositionSizeWad == 0) revert ParameterOutOfBounds("minPositionSize", 0);
        if (p.minMarginWad > MAX_MIN_MARGIN_WAD) revert ParameterOutOfBounds("minMargin", p.minMarginWad);
        if (p.oiCapRatioWad == 0 || p.oiCapRatioWad > MAX_OI_CAP_RATIO_WAD) {
            revert ParameterOutOfBounds("oiCapRatio", p.oiCapRatioWad);
        }
    }
}
