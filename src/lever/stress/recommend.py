"""`lever stress recommend --budget ...`: the parameter set of a sweep that meets a risk budget in
every scenario with the lowest margin requirement.

A budget is one or more conditions joined by commas, each `metric<=value`; the value is a number
(USD for money, a share for probabilities and drawdowns) or `insurance` (the insurance fund at the
start of the runs). Metrics: es99, var99 and mean (bad debt), dry (probability the insurance fund
runs dry), drawdown and drawdown99 (LP share-price drawdown, max and 99th percentile), saturated
(blocks with the keeper saturated, mean), unpaid (unpaid profit, mean).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from lever.config import load_network_config
from lever.stress.errors import StressError

METRICS = {
    "es99": "bad_debt_es99",
    "var99": "bad_debt_var99",
    "mean": "bad_debt_mean",
    "dry": "insurance_dry_probability",
    "drawdown": "lp_drawdown_max",
    "drawdown99": "lp_drawdown_p99",
    "saturated": "saturated_blocks_mean",
    "unpaid": "unpaid_profit_mean",
}
CONDITION = re.compile(r"^\s*([a-z0-9]+)\s*<=\s*(-?[A-Za-z0-9_.]+)\s*$")


@dataclass(frozen=True)
class Condition:
    metric: str
    limit: str  # a number, or "insurance"

    def bound(self, figures: dict[str, Any]) -> float:
        return float(figures["insurance_start"]) if self.limit == "insurance" else float(self.limit)

    def holds(self, figures: dict[str, Any]) -> bool:
        return float(figures[METRICS[self.metric]]) <= self.bound(figures)

    def __str__(self) -> str:
        return f"{self.metric}<={self.limit}"


def parse_budget(text: str) -> list[Condition]:
    out = []
    for part in text.split(","):
        match = CONDITION.match(part)
        if not match:
            raise StressError(f"budget {part.strip()!r}: expected metric<=value, e.g. es99<=insurance")
        metric, limit = match.groups()
        if metric not in METRICS:
            raise StressError(f"budget: unknown metric {metric!r} (one of: {', '.join(METRICS)})")
        if limit != "insurance":
            try:
                Decimal(limit)
            except ArithmeticError:
                raise StressError(f"budget: {limit!r} is not a number (or `insurance`)") from None
        out.append(Condition(metric, limit))
    return out


@dataclass(frozen=True)
class Recommendation:
    knobs: dict[str, str]
    maintenance_margin_ratio: Decimal
    initial_margin_ratio: Decimal
    figures: list[dict[str, Any]]  # per scenario
    candidates: int
    meeting: int


def margin_requirement(knobs: dict[str, str]) -> tuple[Decimal, Decimal]:
    """(maintenance, initial) margin ratio a parameter set deploys on its strictest market."""
    cfg = load_network_config("local")
    mm = max(m.maintenance_margin_ratio for m in cfg.markets.values())
    im = max(m.initial_margin_ratio for m in cfg.markets.values())
    if "maintenance_margin_ratio" in knobs:
        mm = Decimal(knobs["maintenance_margin_ratio"])
        im = Decimal(knobs.get("initial_margin_ratio", str(mm * 2)))
    elif "initial_margin_ratio" in knobs:
        im = Decimal(knobs["initial_margin_ratio"])
    return mm, im


def recommend(report: dict[str, Any], budget: list[Condition]) -> Recommendation | None:
    """The parameter set meeting `budget` in every scenario with the lowest margin requirement
    (then the lowest worst-case ES99); None if none does."""
    groups: dict[tuple[tuple[str, str], ...], list[dict[str, Any]]] = {}
    for f in report.get("figures", []):
        groups.setdefault(tuple(sorted(f["knobs"].items())), []).append(f)
    if not groups:
        raise StressError("the report has no figures (run `lever stress run` first)")
    meeting = [(k, fs) for k, fs in groups.items() if all(c.holds(f) for c in budget for f in fs)]
    if not meeting:
        return None
    knobs, figs = min(meeting, key=lambda kf: (margin_requirement(dict(kf[0])), max(f["bad_debt_es99"] for f in kf[1])))
    mm, im = margin_requirement(dict(knobs))
    return Recommendation(dict(knobs), mm, im, sorted(figs, key=lambda f: f["scenario"]), len(groups), len(meeting))


def load_report(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise StressError(f"no report at {path} (run `lever stress run --name {path.parent.name}` first)")
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise StressError(f"{path}: not a stress report ({exc})") from None
    return data
