// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {LeverVault} from "../LeverVault.sol";
import {IPerpEngine} from "../interfaces/IPerpEngine.sol";

/// @title InvariantLens
/// @notice Test helper for the invariant fuzz suite: every ledger, market state, margin and
///         position the suite compares with its model, read through the public views in one call
///         (one round trip per step instead of dozens). Not part of a deployment.
contract InvariantLens {
    /// @return out [vault balance, totalMargin, poolAssets, insuranceFund, protocolFees, lvLP supply,
    ///         badDebtTotal, badDebtCoveredByInsurance, badDebtCoveredByPool, unpaidProfitTotal],
    ///         then per market its 8 state words, then per account 1..accounts its margin and,
    ///         per market, position size and cost (signed values as two's complement).
    function snapshot(LeverVault vault, IPerpEngine engine, uint256 accounts, uint256 markets)
        external
        view
        returns (uint256[] memory out)
    {
        out = new uint256[](10 + markets * 8 + accounts * (1 + markets * 2));
        out[0] = IERC20(vault.asset()).balanceOf(address(vault));
        (out[1], out[2], out[3], out[4]) = (vault.totalMargin(), vault.poolAssets(), vault.insuranceFund(), vault.protocolFees());
        (out[5], out[6], out[7]) = (vault.totalSupply(), vault.badDebtTotal(), vault.badDebtCoveredByInsurance());
        (out[8], out[9]) = (vault.badDebtCoveredByPool(), vault.unpaidProfitTotal());
        uint256 i = 10;
        for (uint256 m; m < markets; ++m) {
            IPerpEngine.MarketState memory s = engine.marketState(m);
            out[i++] = s.longOpenInterestWad;
            out[i++] = s.shortOpenInterestWad;
            out[i++] = uint256(int256(s.longFundingIndexWad));
            out[i++] = uint256(int256(s.shortFundingIndexWad));
            out[i++] = uint256(int256(s.netCostWad));
            out[i++] = s.lastFundingTime;
            out[i++] = s.mmrRampStart;
            out[i++] = s.mmrRampFromWad;
        }
        for (uint256 a = 1; a <= accounts; ++a) {
            out[i++] = vault.marginOf(a);
            for (uint256 m; m < markets; ++m) {
                IPerpEngine.Position memory p = engine.position(a, m);
                out[i++] = uint256(int256(p.sizeWad));
                out[i++] = uint256(int256(p.costWad));
            }
        }
    }
}
