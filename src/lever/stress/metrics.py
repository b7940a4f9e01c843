"""What a run measures, the same for both engines, and how runs aggregate into a cell's figures."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

USD = 10**6  # token units per dollar


@dataclass
class RunResult:
    """One simulation's outcome. Money in USD (floats; the exact engine's integers are in
    `ledgers`), per-step series for the report's pictures."""

    cell: str
    scenario: str
    seed: int
    knobs: dict[str, str]
    engine: str
    accounts: int
    steps: int
    bad_debt: float = 0.0
    bad_debt_by_insurance: float = 0.0
    bad_debt_by_pool: float = 0.0
    liquidations: int = 0
    full_liquidations: int = 0
    keeper_rewards: float = 0.0
    keeper_fees: float = 0.0
    keeper_gas: float = 0.0
    profit_cap_hits: int = 0
    unpaid_profit: float = 0.0
    saturated_blocks: int = 0
    cascade_depth: int = 0
    insurance_dry: bool = False
    lp_drawdown: float = 0.0
    orders_filled: int = 0
    stops_filled: int = 0
    topups: int = 0
    lp_redeemed: float = 0.0
    pool_end: float = 0.0
    insurance_end: float = 0.0
    margin_end: float = 0.0
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # the process's CPU time (what other load on the machine does not inflate)
    share_price: list[float] = field(default_factory=list)
    insurance: list[float] = field(default_factory=list)
    liquidations_per_step: list[int] = field(default_factory=list)
    liquidatable_per_step: list[int] = field(default_factory=list)
    price: list[float] = field(default_factory=list)  # market 0, USD
    ledgers: dict[str, int] = field(default_factory=dict)

    @property
    def keeper_profit(self) -> float:
        return self.keeper_rewards + self.keeper_fees - self.keeper_gas

    @property
    def account_steps(self) -> int:
        return self.accounts * self.steps

    def summary(self) -> dict[str, Any]:
        """The scalar figures (no series)."""
        out = {k: v for k, v in asdict(self).items() if not isinstance(v, list | dict) or k == "knobs"}
        out["keeper_profit"] = self.keeper_profit
        return out


def cascade_depth(liquidations_per_step: list[int]) -> int:
    """The longest run of consecutive blocks that each had a liquidation."""
    best = run = 0
    for n in liquidations_per_step:
        run = run + 1 if n else 0
        best = max(best, run)
    return best


def max_drawdown(series: list[float]) -> float:
    """The largest fall from a running peak, as a share of the peak."""
    peak, worst = -math.inf, 0.0
    for v in series:
        peak = max(peak, v)
        if peak > 0:
            worst = max(worst, (peak - v) / peak)
    return worst


def var_es(values: list[float], level: float = 0.99) -> tuple[float, float]:
    """Value at risk and expected shortfall of a loss sample at `level` (empirical: the
    `level` quantile, and the mean of the losses at or above it)."""
    if not values:
        return 0.0, 0.0
    x = np.sort(np.asarray(values, dtype=np.float64))
    var = float(np.quantile(x, level, method="higher"))
    tail = x[x >= var]
    return var, float(tail.mean()) if tail.size else var


@dataclass(frozen=True)
class CellFigures:
    """A cell's figures over its seeds: what the report and `recommend` read."""

    scenario: str
    knobs: dict[str, str]
    runs: int
    bad_debt_mean: float
    bad_debt_var99: float
    bad_debt_es99: float
    insurance_dry_probability: float
    lp_drawdown_max: float
    lp_drawdown_p99: float
    liquidations_mean: float
    cascade_depth_max: int
    saturated_blocks_mean: float
    profit_cap_hits_mean: float
    unpaid_profit_mean: float
    keeper_profit_mean: float
    insurance_start: float


def figures(runs: list[RunResult], insurance_start: float) -> CellFigures:
    bad = [r.bad_debt for r in runs]
    var, es = var_es(bad)
    dd = [r.lp_drawdown for r in runs]
    return CellFigures(
        scenario=runs[0].scenario,
        knobs=dict(runs[0].knobs),
        runs=len(runs),
        bad_debt_mean=float(np.mean(bad)),
        bad_debt_var99=var,
        bad_debt_es99=es,
        insurance_dry_probability=float(np.mean([r.insurance_dry for r in runs])),
        lp_drawdown_max=float(np.max(dd)),
        lp_drawdown_p99=float(np.quantile(dd, 0.99, method="higher")),
        liquidations_mean=float(np.mean([r.liquidations for r in runs])),
        cascade_depth_max=int(max(r.cascade_depth for r in runs)),
        saturated_blocks_mean=float(np.mean([r.saturated_blocks for r in runs])),
        profit_cap_hits_mean=float(np.mean([r.profit_cap_hits for r in runs])),
        unpaid_profit_mean=float(np.mean([r.unpaid_profit for r in runs])),
        keeper_profit_mean=float(np.mean([r.keeper_profit for r in runs])),
        insurance_start=insurance_start,
    )
