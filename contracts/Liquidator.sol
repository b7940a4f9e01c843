// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {Address} from "@openzeppelin/contracts/utils/Address.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ILiquidator} from "./interfaces/ILiquidator.sol";
import {IPerpEngine} from "./interfaces/IPerpEngine.sol";
import {ILeverVault} from "./interfaces/ILeverVault.sol";
import {IOracleAdapter} from "./interfaces/IOracleAdapter.sol";
import {LiquidationMath} from "./libraries/LiquidationMath.sol";
import "./libraries/Constants.sol";
import "./libraries/Errors.sol";

/// @title Liquidator
/// @notice Entry points, parameters and keeper views of liquidation; the engine closes the
///         positions and the vault settles the money.
contract Liquidator is ILiquidator, AccessControl, ReentrancyGuardTransient {
    bytes32 public constant RISK_ROLE = keccak256("RISK_ROLE");

    IPerpEngine public immutable engine;
    IOracleAdapter public immutable oracle;
    LiquidationMath.Params internal _params;

    constructor(IPerpEngine engine_, IOracleAdapter oracle_, address admin, LiquidationMath.Params memory params_) {
        if (address(engine_) == address(0) || address(oracle_) == address(0) || admin == address(0)) {
            revert ZeroAddress();
        }
        (engine, oracle) = (engine_, oracle_);
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
        _grantRole(RISK_ROLE, admin);
        _setParams(params_);
    }

    /// @dev The pull oracle returns unspent update fees here; they go back to the keeper.
    receive() external payable {
        if (msg.sender != address(oracle)) revert Unauthorized(msg.sender);
    }

    /// @inheritdoc ILiquidator
    function liquidate(uint256 accountId, IOracleAdapter.PriceUpdate[] calldata updates)
        external
        payable
        nonReentrant
        returns (IPerpEngine.LiquidationResult memory r)
    {
        _update(updates);
        r = _liquidate(accountId, _params);
        if (!r.liquidated) revert AccountNotLiquidatable(accountId, r.equityWad, r.maintenanceMarginWad);
        _refund();
    }

    /// @inheritdoc ILiquidator
    function liquidateBatch(uint256[] calldata accountIds, IOracleAdapter.PriceUpdate[] calldata updates)
        external
        payable
        nonReentrant
        returns (uint256 liquidated)
    {
        _update(updates);
        LiquidationMath.Params memory p = _params;
        for (uint256 i; i < accountIds.length; ++i) {
            if (_liquidate(accountIds[i], p).liquidated) ++liquidated;
        }
        if (liquidated == 0) revert NothingToLiquidate();
        _refund();
    }

    /// @inheritdoc ILiquidator
    function setParams(LiquidationMath.Params calldata params_) external onlyRole(RISK_ROLE) {
        _setParams(params_);
    }

    /// @inheritdoc ILiquidator
    function params() external view returns (LiquidationMath.Params memory) {
        return _params;
    }

    /// @inheritdoc ILiquidator
    function accountsWithPositions(uint256 fromId, uint256 count) external view returns (uint256[] memory ids) {
        uint256 end = fromId + count;
        uint256 last = engine.accountCount() + 1;
        if (end > last) end = last;
        if (fromId == 0) fromId = 1;
        ids = new uint256[](end > fromId ? end - fromId : 0);
        uint256 n;
        for (uint256 id = fromId; id < end; ++id) {
            if (engine.accountMarketMask(id) != 0) ids[n++] = id;
        }
        assembly ("memory-safe") {
            mstore(ids, n) // shrink to the ids found
        }
    }

    /// @inheritdoc ILiquidator
    function healthOf(uint256[] calldata accountIds) external view returns (AccountHealth[] memory health) {
        health = new AccountHealth[](accountIds.length);
        for (uint256 i; i < accountIds.length; ++i) {
            uint256 id = accountIds[i];
            health[i].accountId = id;
            if (engine.accountMarketMask(id) == 0) continue;
            IPerpEngine.AccountState memory a = engine.accountState(id);
            health[i].equityWad = a.equityWad;
            health[i].maintenanceMarginWad = a.maintenanceMarginWad;
            health[i].initialMarginWad = a.initialMarginWad;
            health[i].notionalWad = a.notionalWad;
            health[i].liquidatable = a.equityWad < int256(a.maintenanceMarginWad);
        }
    }

    /// @inheritdoc ILiquidator
    function accountsOf(uint256[] calldata accountIds) external view returns (AccountRecord[] memory records) {
        ILeverVault vault = engine.vault();
        records = new AccountRecord[](accountIds.length);
        for (uint256 i; i < accountIds.length; ++i) {
            uint256 id = accountIds[i];
            AccountRecord memory r = records[i];
            r.accountId = id;
            r.margin = vault.marginOf(id);
            r.lastTradeTime = engine.accountLastTradeTime(id);
            r.markets = engine.accountMarkets(id);
            r.positions = new IPerpEngine.Position[](r.markets.length);
            for (uint256 j; j < r.markets.length; ++j) {
                r.positions[j] = engine.position(id, r.markets[j]);
            }
        }
    }

    function _liquidate(uint256 accountId, LiquidationMath.Params memory p)
        internal
        returns (IPerpEngine.LiquidationResult memory r)
    {
        r = engine.liquidate(accountId, msg.sender, p);
        if (!r.liquidated) return r;
        emit Liquidation(
            accountId,
            msg.sender,
            r.full,
            r.closeShareWad,
            r.closedNotionalWad,
            r.rewardToken,
            r.penaltyToken,
            r.badDebtToken,
            r.equityWad,
            r.maintenanceMarginWad
        );
    }

    function _update(IOracleAdapter.PriceUpdate[] calldata updates) internal {
        if (updates.length > 0) oracle.updatePrices{value: msg.value}(updates);
    }

    function _refund() internal {
        uint256 left = address(this).balance;
        if (left > 0) Address.sendValue(payable(msg.sender), left);
    }

    function _setParams(LiquidationMath.Params memory p) internal {
        if (p.targetHealthWad < WAD || p.targetHealthWad > MAX_TARGET_HEALTH_WAD) {
            revert ParameterOutOfBounds("targetHealth", p.targetHealthWad);
        }
        if (p.maxPartialShareWad == 0 || p.maxPartialShareWad > WAD) {
            revert ParameterOutOfBounds("maxPartialShare", p.maxPartialShareWad);
        }
        if (p.penaltyRatioWad > MAX_PENALTY_RATIO_WAD) revert ParameterOutOfBounds("penaltyRatio", p.penaltyRatioWad);
        if (p.rewardRatioWad > MAX_REWARD_RATIO_WAD) revert ParameterOutOfBounds("rewardRatio", p.rewardRatioWad);
        if (p.maxRewardWad > MAX_KEEPER_REWARD_WAD) revert ParameterOutOfBounds("maxReward", p.maxRewardWad);
        if (p.minRewardWad > p.maxRewardWad) revert ParameterOutOfBounds("minReward", p.minRewardWad);
        if (p.minLeftoverNotionalWad > MAX_MIN_LEFTOVER_WAD) {
            revert ParameterOutOfBounds("minLeftoverNotional", p.minLeftoverNotionalWad);
        }
        _params = p;
        emit LiquidationParamsSet(p);
    }
}
