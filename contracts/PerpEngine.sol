// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Pausable} from "@openzeppelin/contracts/utils/Pausable.sol";
import {IPerpEngine} from "./interfaces/IPerpEngine.sol";
import {ILeverVault} from "./interfaces/ILeverVault.sol";
import {IOracleAdapter} from "./interfaces/IOracleAdapter.sol";
import {FixedPointMath} from "./libraries/FixedPointMath.sol";
import {PerpMath} from "./libraries/PerpMath.sol";
import "./libraries/Constants.sol";
import "./libraries/Errors.sol";

/// @title PerpEngine
/// @notice The perpetual-position manager: accounts, markets, positions, funding, open interest.
/// @dev Entry points follow checks -> accrue funding -> math -> storage -> emit -> vault
///      settlement. The one exception: an increase checks margin *after* `vault.settle`, which
///      returns the settled margin; the vault is a trusted module and a failed check reverts all.
contract PerpEngine is IPerpEngine, AccessControl, Pausable {
    using FixedPointMath for uint256;
    using FixedPointMath for int256;

    bytes32 public constant RISK_ROLE = keccak256("RISK_ROLE");
    bytes32 public constant PAUSER_ROLE = keccak256("PAUSER_ROLE");

    struct Account {
        address owner;
        uint64 marketMask; // bit m set: the account holds a position in market m
    }

    ILeverVault public immutable vault;
    IOracleAdapter public immutable oracle;
    uint256 internal immutable _tokenScale;

    uint256 public accountCount;
    uint256 public marketCount;
    mapping(uint256 accountId => Account) internal _accounts;
    mapping(uint256 marketId => MarketParams) internal _params;
    mapping(uint256 marketId => MarketState) internal _state;
    mapping(uint256 marketId => bytes32) public marketName;
    mapping(uint256 accountId => mapping(uint256 marketId => Position)) internal _positions;

    constructor(ILeverVault vault_, IOracleAdapter oracle_, address admin) {
        if (address(vault_) == address(0) || address(oracle_) == address(0) || admin == address(0)) {
            revert ZeroAddress();
        }
        vault = vault_;
        oracle = oracle_;
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
        MarketParams memory p = _marketParams(marketId);
        _state[marketId] = _accrue(marketId, p, oracle.priceWad(p.feed));
    }

    /// @dev What a trade does to one position, computed before any storage write.
    struct TradeMath {
        int256 newSizeWad;
        int256 newOpenNotionalWad;
        int256 sideIndexWad; // the funding index the position settles to
        int256 fundingWad; // funding settled now (positive: the trader pays)
        int256 realisedPnlWad;
        uint256 feeWad;
        bool increasing;
        bool isLong;
    }

    function _trade(
        uint256 accountId,
        Account memory account,
        uint256 marketId,
        int256 sizeDeltaWad,
        uint256 limitPriceWad
    ) internal {
        MarketParams memory p = _marketParams(marketId);
        uint256 price = oracle.priceWad(p.feed);
        if (limitPriceWad != 0 && (sizeDeltaWad > 0 ? price > limitPriceWad : price < limitPriceWad)) {
            revert PriceLimitExceeded(price, limitPriceWad);
        }
        MarketState memory s = _accrue(marketId, p, price);
        Position memory pos = _positions[accountId][marketId];
        TradeMath memory t = _tradeMath(marketId, pos, s, p, sizeDeltaWad, price);
        if (t.increasing) _requireNotPaused();

        // Market open interest and aggregate open notional.
        uint256 sideOi = (t.isLong ? s.longOpenInterestWad : s.shortOpenInterestWad) - int256(pos.sizeWad).abs()
            + t.newSizeWad.abs();
        if (t.isLong) s.longOpenInterestWad = uint128(sideOi);
        else s.shortOpenInterestWad = uint128(sideOi);
        s.netOpenNotionalWad = int128(s.netOpenNotionalWad + t.newOpenNotionalWad - pos.openNotionalWad);
        if (t.increasing) {
            uint256 oiNotional = sideOi.mulDivUp(price, WAD);
            uint256 cap = (vault.poolAssets() * _tokenScale).mulDivDown(p.oiCapRatioWad, WAD);
            if (oiNotional > cap) revert OpenInterestCapExceeded(marketId, oiNotional, cap);
        }

        // Storage.
        _state[marketId] = s;
        _writePosition(accountId, account, marketId, pos.sizeWad, t);
        emit PositionChanged(
            accountId, marketId, sizeDeltaWad, t.newSizeWad, price, t.realisedPnlWad, t.fundingWad, t.feeWad
        );

        // Settlement: credits round down to token units, debts round up.
        uint256 marginAfter =
            vault.settle(accountId, _toTokenFloor(t.realisedPnlWad - t.fundingWad), t.feeWad.divUp(_tokenScale));

        if (t.increasing) {
            _checkIncrease(accountId, account.marketMask, marginAfter, marketId, p, t.newSizeWad, price);
        }
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
        t.sideIndexWad = t.isLong ? s.longFundingIndexWad : s.shortFundingIndexWad;
        if (size != 0) t.fundingWad = PerpMath.fundingOwedWad(size, t.sideIndexWad, pos.fundingIndexWad);
        if (t.increasing) {
            // The added cost rounds toward +inf so the trader's future PnL rounds down.
            t.newOpenNotionalWad = pos.openNotionalWad + sizeDeltaWad.mulDivCeil(price, WAD);
        } else {
            int256 removed = PerpMath.removedNotionalWad(pos.openNotionalWad, -sizeDeltaWad, size);
            t.realisedPnlWad = (-sizeDeltaWad).mulDivFloor(price, WAD) - removed;
            t.newOpenNotionalWad = pos.openNotionalWad - removed;
        }
        t.feeWad = PerpMath.feeWad(PerpMath.notionalWad(sizeDeltaWad, price), p.tradingFeeWad);
    }

    function _writePosition(
        uint256 accountId,
        Account memory account,
        uint256 marketId,
        int256 sizeBefore,
        TradeMath memory t
    ) internal {
        uint64 bit = uint64(1) << uint64(marketId);
        if (t.newSizeWad == 0) {
            delete _positions[accountId][marketId];
            account.marketMask &= ~bit;
            _accounts[accountId].marketMask = account.marketMask;
            return;
        }
        _positions[accountId][marketId] = Position({
            sizeWad: int128(t.newSizeWad),
            openNotionalWad: int128(t.newOpenNotionalWad),
            fundingIndexWad: int128(t.sideIndexWad)
        });
        if (sizeBefore == 0) {
            if (_popCount(account.marketMask) >= MAX_POSITIONS_PER_ACCOUNT) revert TooManyPositions(accountId);
            account.marketMask |= bit;
            _accounts[accountId].marketMask = account.marketMask;
        }
    }

    /// @dev After an increase: the position's leverage, then the account's initial margin.
    function _checkIncrease(
        uint256 accountId,
        uint64 mask,
        uint256 marginToken,
        uint256 marketId,
        MarketParams memory p,
        int256 sizeWad,
        uint256 price
    ) internal view {
        AccountState memory a = _accountState(accountId, mask, marginToken, marketId, price);
        uint256 notional = PerpMath.notionalWad(sizeWad, price);
        if (a.equityWad <= 0 || notional > uint256(a.equityWad) * p.maxLeverage) {
            uint256 leverage = a.equityWad <= 0 ? type(uint256).max : notional.mulDivUp(WAD, uint256(a.equityWad));
            revert LeverageTooHigh(accountId, marketId, leverage, uint256(p.maxLeverage) * WAD);
        }
        if (a.equityWad < int256(a.initialMarginWad)) {
            revert InsufficientMargin(accountId, a.equityWad, a.initialMarginWad);
        }
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
        _state[marketId].lastFundingTime = uint64(block.timestamp);
        emit MarketCreated(marketId, name, params.feed);
        emit MarketParamsSet(marketId, params);
    }

    /// @inheritdoc IPerpEngine
    function setMarketParams(uint256 marketId, MarketParams calldata params) external onlyRole(RISK_ROLE) {
        MarketParams memory current = _marketParams(marketId);
        _validate(params);
        // Funding accrues under the old parameters up to now.
        _state[marketId] = _accrue(marketId, current, oracle.priceWad(current.feed));
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

    function marketParams(uint256 marketId) external view returns (MarketParams memory) {
        return _marketParams(marketId);
    }

    function marketState(uint256 marketId) external view returns (MarketState memory) {
        _marketParams(marketId);
        return _state[marketId];
    }

    function currentMarketState(uint256 marketId) external view returns (MarketState memory) {
        MarketParams memory p = _marketParams(marketId);
        return _accrued(_state[marketId], p, oracle.priceWad(p.feed));
    }

    function position(uint256 accountId, uint256 marketId) external view returns (Position memory) {
        return _positions[accountId][marketId];
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

    function accountState(uint256 accountId) external view returns (AccountState memory) {
        Account memory account = _accounts[accountId];
        if (account.owner == address(0)) revert UnknownAccount(accountId);
        return _accountState(accountId, account.marketMask, vault.marginOf(accountId), type(uint256).max, 0);
    }

    /// @inheritdoc IPerpEngine
    /// @dev Solves equity(p) = maintenance(p) with every other price fixed:
    ///      A + s*p - (fee + mmr)*|s|*p = 0, where A gathers the terms that do not move with p.
    ///      Rounding makes it exact only to within a few wei of price.
    function liquidationPrice(uint256 accountId, uint256 marketId) external view returns (uint256) {
        Account memory account = _accounts[accountId];
        Position memory pos = _positions[accountId][marketId];
        if (pos.sizeWad == 0) revert NoPosition(accountId, marketId);
        MarketParams memory p = _params[marketId];
        uint256 price = oracle.priceWad(p.feed);
        AccountState memory a = _accountState(accountId, account.marketMask, vault.marginOf(accountId), marketId, price);
        PositionFigures memory f = _figures(pos, p, _accrued(_state[marketId], p, price), price);
        uint256 mmr = PerpMath.marginRatioWad(p.maintenanceMarginRatioWad, pos.sizeWad, p.skewScaleWad);
        // A = (equity - maintenance) without this position's price-dependent terms.
        int256 a0 = a.equityWad - int256(a.maintenanceMarginWad) - (f.pnlWad - int256(f.closeFeeWad))
            + int256(f.maintenanceWad - p.minMarginWad) - pos.openNotionalWad;
        uint256 k = uint256(p.tradingFeeWad) + mmr;
        uint256 absSize = int256(pos.sizeWad).abs();
        if (pos.sizeWad > 0) {
            if (a0 >= 0 || k >= WAD) return 0;
            return uint256(-a0).mulDivDown(WAD * WAD, absSize * (WAD - k));
        }
        if (a0 <= 0) return 0;
        return uint256(a0).mulDivDown(WAD * WAD, absSize * (WAD + k));
    }

    /// @inheritdoc IPerpEngine
    function poolExposure() external view returns (int256 traderPnlWad, uint256 reservedWad) {
        uint256 n = marketCount;
        for (uint256 m; m < n; ++m) {
            MarketState memory s = _state[m];
            if (s.longOpenInterestWad == 0 && s.shortOpenInterestWad == 0) continue;
            MarketParams memory p = _params[m];
            uint256 price = oracle.priceWad(p.feed);
            int256 skew = int256(uint256(s.longOpenInterestWad)) - int256(uint256(s.shortOpenInterestWad));
            // What the pool owes rounds up.
            traderPnlWad += skew.mulDivCeil(price, WAD) - s.netOpenNotionalWad;
            reservedWad += skew.abs().mulDivUp(price, WAD).mulDivUp(p.reserveRatioWad, WAD);
        }
    }

    /// @inheritdoc IPerpEngine
    function checkWithdrawal(uint256 accountId, address caller, uint256 marginAfterToken) external view {
        Account memory account = _accounts[accountId];
        if (account.owner == address(0)) revert UnknownAccount(accountId);
        if (account.owner != caller) revert NotAccountOwner(accountId, caller);
        if (account.marketMask == 0) return;
        AccountState memory a = _accountState(accountId, account.marketMask, marginAfterToken, type(uint256).max, 0);
        if (a.equityWad < int256(a.initialMarginWad)) revert InsufficientMargin(accountId, a.equityWad, a.initialMarginWad);
    }

    // ------------------------------------------------------------------ internals

    struct PositionFigures {
        int256 pnlWad;
        int256 fundingWad;
        uint256 closeFeeWad;
        uint256 notionalWad;
        uint256 initialWad;
        uint256 maintenanceWad;
    }

    /// @dev Sums every position of the account at current prices. `knownMarket`/`knownPrice`
    ///      spare an oracle read for the market being traded.
    function _accountState(
        uint256 accountId,
        uint64 mask,
        uint256 marginToken,
        uint256 knownMarket,
        uint256 knownPrice
    ) internal view returns (AccountState memory a) {
        a.marginWad = marginToken * _tokenScale;
        a.equityWad = int256(a.marginWad);
        for (uint256 m; mask != 0; ++m) {
            if (mask & 1 == 1) {
                MarketParams memory p = _params[m];
                uint256 price = m == knownMarket ? knownPrice : oracle.priceWad(p.feed);
                PositionFigures memory f = _figures(_positions[accountId][m], p, _accrued(_state[m], p, price), price);
                a.equityWad += f.pnlWad - f.fundingWad - int256(f.closeFeeWad);
                a.initialMarginWad += f.initialWad;
                a.maintenanceMarginWad += f.maintenanceWad;
                a.notionalWad += f.notionalWad;
                ++a.positionCount;
            }
            mask >>= 1;
        }
    }

    function _figures(Position memory pos, MarketParams memory p, MarketState memory s, uint256 price)
        internal
        pure
        returns (PositionFigures memory f)
    {
        int256 index = pos.sizeWad > 0 ? s.longFundingIndexWad : s.shortFundingIndexWad;
        f.pnlWad = PerpMath.pnlWad(pos.sizeWad, pos.openNotionalWad, price);
        f.fundingWad = PerpMath.fundingOwedWad(pos.sizeWad, index, pos.fundingIndexWad);
        f.notionalWad = PerpMath.notionalWad(pos.sizeWad, price);
        f.closeFeeWad = PerpMath.feeWad(f.notionalWad, p.tradingFeeWad);
        f.initialWad = PerpMath.marginRequirementWad(
            pos.sizeWad, price, p.initialMarginRatioWad, p.skewScaleWad, p.minMarginWad
        );
        f.maintenanceWad = PerpMath.marginRequirementWad(
            pos.sizeWad, price, p.maintenanceMarginRatioWad, p.skewScaleWad, p.minMarginWad
        );
    }

    /// @dev Accrues funding in memory and emits; the caller writes the state back.
    function _accrue(uint256 marketId, MarketParams memory p, uint256 price)
        internal
        returns (MarketState memory s)
    {
        s = _state[marketId];
        if (s.lastFundingTime == block.timestamp) return s;
        s = _accrued(s, p, price);
        int256 skew = int256(uint256(s.longOpenInterestWad)) - int256(uint256(s.shortOpenInterestWad));
        emit FundingAccrued(
            marketId,
            PerpMath.fundingRatePerDayWad(skew, p.skewScaleWad, p.maxFundingRatePerDayWad),
            s.longFundingIndexWad,
            s.shortFundingIndexWad
        );
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
        s.lastFundingTime = uint64(block.timestamp);
        if (elapsed == 0) return s;
        uint256 longOi = s.longOpenInterestWad;
        uint256 shortOi = s.shortOpenInterestWad;
        int256 rate = PerpMath.fundingRatePerDayWad(int256(longOi) - int256(shortOi), p.skewScaleWad, p.maxFundingRatePerDayWad);
        if (rate == 0) return s;
        uint256 payerDelta = PerpMath.payerIndexDeltaWad(rate.abs(), price, elapsed);
        if (rate > 0) {
            s.longFundingIndexWad += int128(int256(payerDelta));
            if (shortOi > 0) {
                s.shortFundingIndexWad -= int128(int256(PerpMath.receiverIndexDeltaWad(payerDelta, longOi, shortOi)));
            }
        } else {
            s.shortFundingIndexWad += int128(int256(payerDelta));
            if (longOi > 0) {
                s.longFundingIndexWad -= int128(int256(PerpMath.receiverIndexDeltaWad(payerDelta, shortOi, longOi)));
            }
        }
        return s;
    }

    function _ownedAccount(uint256 accountId) internal view returns (Account memory account) {
        account = _accounts[accountId];
        if (account.owner == address(0)) revert UnknownAccount(accountId);
        if (account.owner != msg.sender) revert NotAccountOwner(accountId, msg.sender);
    }

    function _marketParams(uint256 marketId) internal view returns (MarketParams memory) {
        if (marketId >= marketCount) revert UnknownMarket(marketId);
        return _params[marketId];
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
