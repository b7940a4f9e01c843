"""The engines' cross-check: the same cells on the exact and the vectorised engine, and how far
apart their figures are.

Money figures are compared relative to the larger of the exact value and a floor of $100 (so a
few cents of rounding on a figure near zero does not read as a large relative error); counts
(liquidations, fills, top-ups) must be equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lever.stress.exact import run_exact
from lever.stress.model import Cell
from lever.stress.vector import run_vector

MONEY = (
    "bad_debt",
    "bad_debt_by_insurance",
    "bad_debt_by_pool",
    "keeper_rewards",
    "keeper_fees",
    "unpaid_profit",
    "lp_redeemed",
    "pool_end",
    "insurance_end",
    "margin_end",
)
COUNTS = (
    "liquidations",
    "full_liquidations",
    "orders_filled",
    "stops_filled",
    "topups",
    "profit_cap_hits",
    "saturated_blocks",
    "cascade_depth",
)
FLOOR_USD = 100.0


@dataclass
class CrossCheck:
    cells: int = 0
    account_steps: int = 0
    max_rel_error: float = 0.0
    worst: str = ""
    count_mismatches: list[str] = field(default_factory=list)
    exact_seconds: float = 0.0
    vector_seconds: float = 0.0


def cross_check(cells: list[Cell]) -> CrossCheck:
    out = CrossCheck()
    for cell in cells:
        a, b = run_exact(cell), run_vector(cell)
        out.cells += 1
        out.account_steps += a.account_steps
        out.exact_seconds += a.seconds
        out.vector_seconds += b.seconds
        for name in MONEY:
            x, y = float(getattr(a, name)), float(getattr(b, name))
            err = abs(x - y) / max(abs(x), FLOOR_USD)
            if err > out.max_rel_error:
                out.max_rel_error, out.worst = err, f"{cell.id}: {name} exact {x:.6f} vector {y:.6f}"
        dd = abs(a.lp_drawdown - b.lp_drawdown)
        if dd > out.max_rel_error:
            out.max_rel_error, out.worst = dd, f"{cell.id}: lp_drawdown exact {a.lp_drawdown} vector {b.lp_drawdown}"
        for name in COUNTS:
            if getattr(a, name) != getattr(b, name):
                out.count_mismatches.append(f"{cell.id}: {name} exact {getattr(a, name)} vector {getattr(b, name)}")
    return out
