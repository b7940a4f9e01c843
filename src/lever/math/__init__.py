"""The contracts' math, mirrored exactly: Python ints, the same rounding, the same order.

The one home of every formula the tooling uses: the keeper, the command line, the demo, the
stress lab and the fuzz model all call it. Each function's docstring names the Solidity function
it mirrors (`tests/unit/test_mirror_coverage.py` checks that every library function has one);
the fuzz suite's ghost (`tests/fuzz/ghost.py`) runs the mirror beside the contracts on every step
and compares them word for word.

- `fixed`: FixedPointMath; `perp`: PerpMath; `pool`: PoolMath; `volatility`: VolatilityMath;
  `liquidation`: LiquidationMath; `oracle`: OracleAdapter's arithmetic; `engine`: PerpEngine's;
  `vault`: LeverVault's ledgers; `constants`: Constants.sol.
"""

from lever.math import engine, fixed, liquidation, oracle, orders, perp, pool, vault, volatility
from lever.math.constants import WAD
from lever.math.engine import (
    AccountState,
    Coverage,
    Figures,
    LiquidationPrediction,
    MarketParams,
    MarketState,
    MarketView,
    Position,
    TradeMath,
    TradeOutcome,
    account_state,
    accrued,
    execute_trade,
    figures,
    liquidation_close_size,
    liquidation_price,
    market_liability,
    market_reserve,
    market_view,
    pool_liability,
    predict_liquidation,
    trade_math,
)
from lever.math.liquidation import (
    LiquidationParams,
    close_share,
    keeper_reward,
    liquidation_penalty,
)
from lever.math.oracle import OracleConfig, OracleState, PriceData
from lever.math.refusal import Refused

__all__ = [
    "WAD",
    "AccountState",
    "Coverage",
    "Figures",
    "LiquidationParams",
    "LiquidationPrediction",
    "MarketParams",
    "MarketState",
    "MarketView",
    "OracleConfig",
    "OracleState",
    "Position",
    "PriceData",
    "Refused",
    "TradeMath",
    "TradeOutcome",
    "account_state",
    "accrued",
    "close_share",
    "engine",
    "execute_trade",
    "figures",
    "fixed",
    "keeper_reward",
    "liquidation",
    "liquidation_close_size",
    "liquidation_penalty",
    "liquidation_price",
    "market_liability",
    "market_reserve",
    "market_view",
    "oracle",
    "orders",
    "perp",
    "pool",
    "pool_liability",
    "predict_liquidation",
    "trade_math",
    "vault",
    "volatility",
]
