"""One model for both engines: the protocol's parameters (config/local.toml with a cell's
overrides), the agents (traders, LPs, the keeper) and the price path in chain units.

Everything an engine needs to run a cell is in a `Cell` and is built here, deterministically, as
exact integers: the exact engine uses them as they are, the vectorised engine as floats. The
replay deploys the same parameters (`network_config`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import numpy.typing as npt

from lever import math as m
from lever.config import NetworkConfig, load_network_config
from lever.keeper.core import KeeperConfig, items_per_batch
from lever.math.constants import MAX_LEVERAGE
from lever.stress.errors import StressError
from lever.stress.scenarios import MARKETS, Scenario, ScenarioSpec, generate, load_library

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

TOKEN_DECIMALS = 6
TOKEN_SCALE = 10**12  # WAD per token unit (a 6-decimal stablecoin)
SIZE_UNIT = 10**12  # sizes are drawn in millionths of a unit: WAD = units * SIZE_UNIT
KEEPER = KeeperConfig()  # the keeper the lab models: its gas per item, batch sizes and budgets
CENT = 10**16  # prices are whole cents: WAD = cents * CENT
DT = 12  # seconds between steps (one block)
OPEN_PER_STEP = 120

# Parameters a sweep may set: (section, field). Market fields apply to every market.
MARKET_KNOBS = (
    "max_leverage",
    "taker_fee",
    "maker_fee",
    "initial_margin_ratio",
    "maintenance_margin_ratio",
    "max_funding_rate_per_day",
    "borrow_rate_per_day",
    "max_profit_ratio",
    "skew_scale",
    "funding_scale",
    "min_margin",
    "oi_cap_ratio",
)
LIQUIDATION_KNOBS = (
    "target_health",
    "max_partial_share",
    "penalty_ratio",
    "reward_ratio",
    "min_reward",
    "max_reward",
    "min_leftover_notional",
)
ORACLE_KNOBS = ("max_deviation", "ewma_lambda", "ref_volatility", "max_vol_factor", "factor_rise_per_day")


@dataclass(frozen=True)
class Agents:
    """How the agents behave (the population is drawn from these with the cell's seed)."""

    accounts: int = 200
    eth_share: float = 0.75  # traders on market 0
    long_share: float = 0.6
    leverage_median: float = 6.0
    leverage_sigma: float = 0.6  # lognormal; capped at 90% of the market's maximum leverage
    notional_median_usd: float = 5_000.0
    notional_sigma: float = 0.8
    stop_loss_share: float = 0.3
    stop_loss_distance: float = 0.05
    take_profit_share: float = 0.2
    take_profit_distance: float = 0.10
    topup_share: float = 0.3  # traders who add margin when their health falls below topup_health
    topup_health: float = 1.25  # equity / maintenance margin
    topup_fraction: float = 0.5  # of the initial margin, each time
    max_topups: int = 2
    executor_fee_usd: str = "0.5"
    pool_per_account_usd: int = 10_000
    insurance_per_account_usd: int = 100
    lp_run_drawdown: float = 0.03  # LPs request redemptions when the share price falls this far ...
    lp_run_share: float = 0.25  # ... for this share of their shares
    keeper_capacity: int = 0  # liquidations per block; 0: what the keeper's batches of a block hold
    block_gas_limit: int = 30_000_000
    gas_per_liquidation: int = KEEPER.gas_per_account
    gas_base: int = KEEPER.gas_base
    keeper_latency: int = 0  # blocks between an account becoming liquidatable and the keeper acting
    profit_gate: bool = True  # the keeper skips liquidations whose reward does not pay for gas
    impact_depth_usd: float = 0.0  # market impact: liquidation volume / depth moves the price; 0: none

    def capacity(self) -> int:
        """Liquidations per block: `keeper_capacity`, or the keeper's batches of a block
        (`KeeperConfig.liquidation_batches_per_block`, each within `liquidation_budget`)."""
        if self.keeper_capacity:
            return self.keeper_capacity
        budget = KEEPER.liquidation_budget(self.block_gas_limit)
        return KEEPER.liquidation_batches_per_block * items_per_batch(budget, self.gas_base, self.gas_per_liquidation)


# The replay's agents: ten accounts, more leverage, stops and top-ups (small enough for Anvil).
REPLAY_AGENTS = Agents(
    accounts=10,
    leverage_median=12.0,
    leverage_sigma=0.5,
    stop_loss_share=0.35,
    take_profit_share=0.2,
    topup_share=0.3,
    lp_run_drawdown=0.0,
)


@dataclass(frozen=True)
class Params:
    """The protocol's parameters in chain units (what `deploy_protocol` deploys)."""

    markets: tuple[m.MarketParams, ...]
    oracle: m.OracleConfig
    liquidation: m.LiquidationParams
    initial_prices: tuple[int, ...]  # cents
    protocol_fee_share: int  # WAD
    order_delay: int
    order_window: int
    lp_delay: int
    lp_window: int
    lp_grace: int
    lp_executor_fee: int  # token units
    min_executor_fee: int
    max_executor_fee: int


@dataclass(frozen=True)
class Population:
    """The traders, as exact integers (index i is account i + 1)."""

    market: IntArray
    size_units: IntArray  # signed, millionths of a unit
    margin: IntArray  # token units deposited at the start
    open_step: IntArray  # the step the market order is committed
    stop_cents: IntArray  # stop-loss trigger (0: none)
    take_cents: IntArray  # take-profit trigger (0: none)
    topup: IntArray  # token units per top-up (0: never)
    executor_fee: int

    @property
    def count(self) -> int:
        return len(self.market)


@dataclass(frozen=True)
class Cell:
    """One simulation: parameters, scenario, seed, agents, and the price path in cents."""

    scenario: Scenario
    knobs: tuple[tuple[str, str], ...]
    params: Params
    agents: Agents
    population: Population
    prices: IntArray  # (steps + 1, markets) cents, before market impact
    pool: int  # token units the LP deposits
    insurance: int
    seed: int
    replay: bool = False  # the keeper as `lever.keeper` runs in a replay: no capacity, latency or gas gate
    labels: dict[str, Any] = field(default_factory=dict)

    def saturated(self, liquidatable: int, keeper_up: bool) -> bool:
        """A block in which the keeper cannot clear every liquidatable account: more than its
        capacity (a replay's keeper has none), or any while it is down. Both engines count these."""
        return liquidatable > (10**9 if self.replay else self.agents.capacity()) or (liquidatable > 0 and not keeper_up)

    @property
    def steps(self) -> int:
        return self.scenario.steps

    @property
    def id(self) -> str:
        knobs = ",".join(f"{k}={v}" for k, v in self.knobs)
        return f"{self.scenario.name}/{self.seed}" + (f"/{knobs}" if knobs else "")


def parse_knobs(items: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """Checked (name, decimal text) pairs; a name is a market, liquidation or oracle field."""
    out = []
    for name, value in sorted(items.items()):
        if name not in MARKET_KNOBS + LIQUIDATION_KNOBS + ORACLE_KNOBS:
            known = ", ".join(MARKET_KNOBS + LIQUIDATION_KNOBS)
            raise StressError(f"unknown parameter {name!r} (one of: {known})")
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            raise StressError(f"parameter {name}: not a number: {value!r}") from None
        if not number.is_finite() or number < 0:
            raise StressError(f"parameter {name}: must be a non-negative number, not {value!r}")
        out.append((name, str(number)))
    return tuple(out)


def network_config(knobs: tuple[tuple[str, str], ...], base: NetworkConfig | None = None) -> NetworkConfig:
    """config/local.toml with the knobs applied. A maintenance margin set without an initial one
    sets the initial one to twice it (the shipped ratio). Checked as the contracts check them."""
    cfg = base or load_network_config("local")
    values = dict(knobs)
    if "maintenance_margin_ratio" in values and "initial_margin_ratio" not in values:
        values["initial_margin_ratio"] = str(Decimal(values["maintenance_margin_ratio"]) * 2)
    market_updates = {k: Decimal(v) for k, v in values.items() if k in MARKET_KNOBS}
    if "max_leverage" in market_updates:
        market_updates["max_leverage"] = int(market_updates["max_leverage"])  # type: ignore[assignment]
    markets = {name: mk.model_copy(update=market_updates) for name, mk in cfg.markets.items()}
    liquidation = cfg.liquidation.model_copy(
        update={k: Decimal(v) for k, v in values.items() if k in LIQUIDATION_KNOBS}
    )
    oracle = cfg.oracle.model_copy(update={k: Decimal(v) for k, v in values.items() if k in ORACLE_KNOBS})
    out = cfg.model_copy(update={"markets": markets, "liquidation": liquidation, "oracle": oracle})
    _check(out)
    return out


def _check(cfg: NetworkConfig) -> None:
    """The bounds `PerpEngine._validate` and `Liquidator._setParams` enforce, as one-line errors."""
    for name, mk in cfg.markets.items():
        if not 0 < mk.max_leverage <= MAX_LEVERAGE:
            raise StressError(f"{name}: max_leverage must be between 1 and 100")
        if mk.maintenance_margin_ratio < Decimal("0.001"):
            raise StressError(f"{name}: maintenance_margin_ratio must be at least 0.001")
        if not mk.maintenance_margin_ratio < mk.initial_margin_ratio <= 1:
            raise StressError(
                f"{name}: initial_margin_ratio ({mk.initial_margin_ratio}) must be above the "
                f"maintenance margin ratio ({mk.maintenance_margin_ratio}) and at most 1"
            )
        if mk.taker_fee > Decimal("0.01") or mk.maker_fee > mk.taker_fee:
            raise StressError(f"{name}: taker_fee must be at most 0.01 and maker_fee at most taker_fee")
        if not Decimal("0.01") <= mk.max_profit_ratio <= 10:
            raise StressError(f"{name}: max_profit_ratio must be between 0.01 and 10")
    lq = cfg.liquidation
    if not 1 <= lq.target_health <= 3:
        raise StressError("target_health must be between 1 and 3")
    if not 0 < lq.max_partial_share <= 1:
        raise StressError("max_partial_share must be above 0 and at most 1")
    if lq.penalty_ratio > Decimal("0.05") or lq.reward_ratio > Decimal("0.02"):
        raise StressError("penalty_ratio must be at most 0.05 and reward_ratio at most 0.02")
    if lq.min_reward > lq.max_reward:
        raise StressError("min_reward must be at most max_reward")


def params_of(cfg: NetworkConfig) -> Params:
    decimals = cfg.collateral.decimals
    if decimals != TOKEN_DECIMALS:
        raise StressError(f"the stress lab models a {TOKEN_DECIMALS}-decimal collateral (config has {decimals})")
    markets = list(cfg.markets.values())
    if len(markets) != MARKETS:
        raise StressError(f"the stress lab models {MARKETS} markets (config has {len(markets)})")
    lp = cfg.lp.params(decimals)
    orders = cfg.orders.settings(decimals)
    oracle = m.OracleConfig(*cfg.oracle.config("0x" + "00" * 20, b"\x01" * 32))  # type: ignore[arg-type]
    return Params(
        markets=tuple(m.MarketParams(*mk.params()) for mk in markets),
        oracle=oracle,
        liquidation=m.LiquidationParams(*cfg.liquidation.params()),
        initial_prices=tuple(int(mk.initial_price * 100) for mk in markets),
        protocol_fee_share=int(cfg.vault.protocol_fee_share * 10**18),
        order_delay=orders[0],
        order_window=orders[1],
        min_executor_fee=orders[2],
        max_executor_fee=orders[3],
        lp_delay=lp[0],
        lp_window=lp[1],
        lp_grace=lp[2],
        lp_executor_fee=lp[3],
    )


def price_path(scenario: Scenario, initial_cents: tuple[int, ...]) -> IntArray:
    """Each step's price in whole cents (at least one cent)."""
    start = np.array(initial_cents, dtype=np.float64)
    out: IntArray = np.maximum(1, np.rint(scenario.mult * start)).astype(np.int64)
    return out


def population(agents: Agents, params: Params, scenario: Scenario, prices: IntArray, seed: int) -> Population:
    """The traders: market, side, leverage and notional drawn with `seed`; margins, stops and
    top-ups in token units; a skew squeeze adds a wave of longs on market 0."""
    rng = np.random.default_rng([seed, 7919])
    n = agents.accounts
    market = (rng.random(n) >= agents.eth_share).astype(np.int64)
    long = rng.random(n) < agents.long_share
    # A trader asks for at most 90% of what the market allows: its maximum leverage, and the
    # leverage its initial margin ratio permits (so stricter parameters mean smaller positions, not
    # refused traders).
    max_lev = np.array(
        [min(p.max_leverage, 10**18 / p.initial_margin_ratio) for p in params.markets], dtype=np.float64
    )[market]
    leverage = np.clip(rng.lognormal(math.log(agents.leverage_median), agents.leverage_sigma, n), 1.1, 0.9 * max_lev)
    notional = np.clip(rng.lognormal(math.log(agents.notional_median_usd), agents.notional_sigma, n), 200.0, 250_000.0)
    # At most OPEN_PER_STEP market orders a step: what the keeper's `settleOrders` batches of one
    # block hold at its default gas per order, so a step's due orders settle in that step.
    open_step = (np.arange(n) // OPEN_PER_STEP).astype(np.int64)
    squeeze_at = np.flatnonzero(scenario.squeeze)
    if squeeze_at.size:
        # A share of the accounts becomes the wave: longs on market 0 at the squeeze step, their
        # notional together `squeeze` of market 0's OI cap (pool * oi_cap_ratio).
        wave = rng.random(n) < 0.25
        step = int(squeeze_at[0])
        cap_usd = agents.pool_per_account_usd * n * params.markets[0].oi_cap_ratio / 10**18
        market[wave] = 0
        long[wave] = True
        open_step[wave] = step
        notional[wave] = scenario.squeeze[step] * cap_usd / max(1, int(wave.sum()))
        leverage[wave] = np.minimum(leverage[wave] * 1.5, 0.9 * max_lev[wave])
    fill_cents = prices[np.minimum(open_step + 1, scenario.steps), market].astype(np.float64)
    units = np.rint(notional / (fill_cents / 100) * 1e6)
    min_units = np.array([p.min_position_size // SIZE_UNIT for p in params.markets], dtype=np.float64)[market]
    units = np.maximum(units, min_units)
    size_units = np.where(long, units, -units).astype(np.int64)
    fee_rate = np.array([p.taker_fee / 1e18 for p in params.markets])[market]
    exec_fee = int(Decimal(agents.executor_fee_usd) * 10**TOKEN_DECIMALS)
    margin_usd = units / 1e6 * fill_cents / 100 / leverage + 3 * fee_rate * notional
    margin = (np.rint(margin_usd * 10**TOKEN_DECIMALS) + 3 * exec_fee).astype(np.int64)
    side = np.where(long, 1.0, -1.0)
    stop = np.where(
        rng.random(n) < agents.stop_loss_share, np.rint(fill_cents * (1 - side * agents.stop_loss_distance)), 0
    )
    take = np.where(
        rng.random(n) < agents.take_profit_share, np.rint(fill_cents * (1 + side * agents.take_profit_distance)), 0
    )
    topup = np.where(rng.random(n) < agents.topup_share, np.rint(margin * agents.topup_fraction), 0)
    return Population(
        market,
        size_units,
        margin,
        open_step,
        stop.astype(np.int64),
        take.astype(np.int64),
        topup.astype(np.int64),
        exec_fee,
    )


def make_cell(
    scenario: str | ScenarioSpec,
    seed: int,
    steps: int = 500,
    knobs: dict[str, Any] | tuple[tuple[str, str], ...] = (),
    agents: Agents | None = None,
    replay: bool = False,
    library: dict[str, ScenarioSpec] | None = None,
    base: NetworkConfig | None = None,
) -> Cell:
    from lever.stress.scenarios import spec as find

    s = scenario if isinstance(scenario, ScenarioSpec) else find(scenario, library)
    k = parse_knobs(knobs) if isinstance(knobs, dict) else knobs
    a = agents or Agents()
    if a.accounts < 1:
        raise StressError("a cell needs at least one trader account")
    params = params_of(network_config(k, base))
    sc = generate(s, steps, seed)
    prices = price_path(sc, params.initial_prices)
    pop = population(a, params, sc, prices, seed)
    pool = a.pool_per_account_usd * a.accounts * 10**TOKEN_DECIMALS
    insurance = a.insurance_per_account_usd * a.accounts * 10**TOKEN_DECIMALS
    return Cell(sc, k, params, a, pop, prices, pool, insurance, seed, replay)


def with_agents(cell: Cell, **changes: Any) -> Cell:
    """The cell rebuilt with other agent settings."""
    return make_cell(
        cell.scenario.spec, cell.seed, cell.steps, cell.knobs, replace(cell.agents, **changes), cell.replay
    )


def library() -> dict[str, ScenarioSpec]:
    return load_library()
