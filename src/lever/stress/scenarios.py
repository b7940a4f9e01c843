"""The scenario library: versioned data (`data/scenarios/v1.toml`) and seedable generators.

A scenario is a spec (family and parameters, from the data file) turned by `generate` into a
`Scenario`: for each step, each market's price as a multiple of its start price, and the
conditions the agents and the keeper meet (oracle frozen, keeper down, gas price, an LP run, a
wave of one-sided openings). Pure and deterministic: the same spec, steps and seed give the same
arrays on every machine (numpy's PCG64). No network.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lever.paths import REPO
from lever.stress.errors import StressError

DATA = REPO / "data" / "scenarios" / "v1.toml"
WARMUP = 4  # steps before any scenario move: orders commit (0), fill (1), stops are placed (2)
MARKETS = 2  # market 0 carries the scenario; market 1 follows it (beta, corr)
BASE_GAS_GWEI = 20.0
FAMILIES = (
    "historical",
    "gbm",
    "garch",
    "jump",
    "correlated",
    "oracle",
    "keeper",
    "gas",
    "lp-run",
    "squeeze",
    "flash",
    "bleed",
    "pump",
    "whipsaw",
    "cascade",
)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class ScenarioSpec:
    name: str
    family: str
    description: str
    params: dict[str, float]
    source: str = ""

    def get(self, key: str, default: float) -> float:
        return float(self.params.get(key, default))


@dataclass(frozen=True)
class Scenario:
    """A generated scenario: arrays of `steps + 1` rows (row 0 is the start)."""

    spec: ScenarioSpec
    seed: int
    steps: int
    mult: FloatArray  # (steps + 1, MARKETS): price / start price
    frozen: BoolArray  # the oracles publish nothing (pull price nor reference round)
    keeper_down: BoolArray
    gas_gwei: FloatArray
    lp_run: FloatArray  # share of LP shares put up for redemption at that step
    squeeze: FloatArray  # a wave of longs on market 0 opens at that step: its notional / OI cap
    impact_multiplier: float = 1.0
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.spec.name


def load_library(path: Path = DATA) -> dict[str, ScenarioSpec]:
    """Every scenario of the data file, by name."""
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise StressError(f"scenario data missing: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise StressError(f"{path}: not valid TOML: {exc}") from None
    if raw.get("version") != 1:
        raise StressError(f"{path}: unsupported scenario data version {raw.get('version')!r} (expected 1)")
    out = {}
    for name, entry in raw.get("scenarios", {}).items():
        entry = dict(entry)
        family = str(entry.pop("family", ""))
        if family not in FAMILIES:
            raise StressError(f"{path}: scenario {name}: unknown family {family!r}")
        description = str(entry.pop("description", ""))
        source = str(entry.pop("source", ""))
        out[name] = ScenarioSpec(name, family, description, {k: float(v) for k, v in entry.items()}, source)
    return out


def spec(name: str, library: dict[str, ScenarioSpec] | None = None) -> ScenarioSpec:
    lib = library if library is not None else load_library()
    if name not in lib:
        raise StressError(
            f"unknown scenario {name!r} (see `lever stress run --list`; e.g. {', '.join(sorted(lib)[:4])})"
        )
    return lib[name]


def generate(s: ScenarioSpec, steps: int, seed: int) -> Scenario:
    """The scenario `s` over `steps` steps, drawn with `seed`."""
    if steps < WARMUP + 6:
        raise StressError(f"a run needs at least {WARMUP + 6} steps (got {steps})")
    rng = np.random.default_rng([seed, _stable_hash(s.name)])
    n = steps
    days = s.get("episode_hours", 24.0) / 24.0
    sigma = s.get("daily_vol", 0.0) * math.sqrt(days / n)  # per step
    corr = min(max(s.get("corr", 0.8), -1.0), 1.0)
    log = np.zeros((n + 1, MARKETS))
    frozen = np.zeros(n + 1, dtype=bool)
    keeper_down = np.zeros(n + 1, dtype=bool)
    gas = np.full(n + 1, BASE_GAS_GWEI)
    lp_run = np.zeros(n + 1)
    squeeze = np.zeros(n + 1)
    shocks = _correlated(rng, n, corr) * sigma  # (n, 2)
    f = s.family
    if f in ("gbm",):
        drift = s.get("drift_per_day", 0.0) * days / n
        log[1:] = np.cumsum(drift - 0.5 * sigma**2 + shocks, axis=0)
    elif f == "garch":
        log[1:] = np.cumsum(_garch(s, rng, n, sigma, corr, days), axis=0)
    elif f == "jump":
        steps_ = np.zeros((n, MARKETS))
        count = rng.poisson(s.get("jumps", 4.0))
        where = rng.integers(WARMUP, n, size=count)
        sizes = rng.normal(s.get("jump_mean", -0.06), s.get("jump_sd", 0.03), size=count)
        for w, size in zip(where, sizes, strict=True):
            steps_[w, 0] += size
            steps_[w, 1] += size * 0.8
        log[1:] = np.cumsum(shocks + steps_, axis=0)
    elif f == "whipsaw":
        t = np.arange(n + 1) / n
        amp = math.log1p(s.get("amplitude", 0.12))
        wave = amp * np.sign(np.sin(2 * math.pi * s.get("cycles", 5.0) * t + 1e-9))
        wave[: WARMUP + 1] = 0.0
        log[:, 0] = wave
        log[:, 1] = 0.8 * wave
        log[1:] += np.cumsum(shocks, axis=0)
    else:
        log = _crash(s, rng, n, shocks)
    a = max(WARMUP, round(s.get("crash_start", 0.25) * n))
    if f == "oracle":
        start = max(WARMUP, round(s.get("freeze_start", 0.3) * n))
        frozen[start : start + max(1, round(s.get("freeze_len", 0.2) * n))] = True
    if f == "keeper":
        start = max(WARMUP, round(s.get("outage_start", 0.25) * n))
        keeper_down[start : start + int(s.get("outage_blocks", 40))] = True
    if "gas_spike_gwei" in s.params:
        b = a + max(1, round(s.get("crash_len", 0.25) * n))
        gas[a : b + (b - a)] = s.get("gas_spike_gwei", 1000.0)
    if f == "lp-run":
        lp_run[max(WARMUP, round(s.get("run_at", 0.2) * n))] = s.get("run_share", 0.5)
    if f == "squeeze":
        squeeze[max(WARMUP, round(s.get("squeeze_at", 0.1) * n))] = s.get("squeeze_share", 0.4)
    log[: WARMUP + 1] = 0.0
    return Scenario(
        s, seed, steps, np.exp(log), frozen, keeper_down, gas, lp_run, squeeze, s.get("impact_multiplier", 1.0)
    )


def _stable_hash(name: str) -> int:
    return int.from_bytes(name.encode()[:8].ljust(8, b"\0"), "little") % (2**31)


def _correlated(rng: np.random.Generator, n: int, corr: float) -> FloatArray:
    z = rng.standard_normal((n, MARKETS))
    out = np.empty_like(z)
    out[:, 0] = z[:, 0]
    out[:, 1] = corr * z[:, 0] + math.sqrt(max(0.0, 1 - corr * corr)) * z[:, 1]
    return out


def _garch(s: ScenarioSpec, rng: np.random.Generator, n: int, sigma: float, corr: float, days: float) -> FloatArray:
    alpha, beta = s.get("alpha", 0.1), s.get("beta_garch", 0.85)
    calm = sigma**2
    turbulent = (s.get("turbulent_daily_vol", 0.2) * math.sqrt(days / n)) ** 2
    switch = max(WARMUP, round(s.get("regime_start", 0.33) * n))
    z = _correlated(rng, n, corr)
    out = np.zeros((n, MARKETS))
    var = calm
    prev = 0.0
    for t in range(n):
        target = calm if t < switch else turbulent
        omega = target * (1 - alpha - beta)
        var = omega + alpha * prev**2 + beta * var
        out[t] = math.sqrt(var) * z[t]
        prev = out[t, 0]
    return out


def _crash(s: ScenarioSpec, rng: np.random.Generator, n: int, shocks: FloatArray) -> FloatArray:
    """A deterministic fall (with gaps) to the drawdown, a rebound, and noise pinned to the trough
    (a Brownian bridge), so the path's trough matches the drawdown."""
    total = math.log(max(1e-6, 1 - s.get("drawdown", 0.3)))  # < 0 for a fall, > 0 for a pump
    a = max(WARMUP, round(s.get("crash_start", 0.25) * n))
    b = min(n, a + max(1, round(s.get("crash_len", 0.25) * n)))
    leg = b - a
    gaps = min(int(s.get("gaps", 0.0)), leg)
    gap_share = s.get("gap_share", 0.0) if gaps else 0.0
    inc = np.zeros(n)
    inc[a:b] = total * (1 - gap_share) / leg
    if gaps:
        where = rng.choice(np.arange(a, b), size=gaps, replace=False)
        inc[where] += total * gap_share / gaps
    rebound = s.get("rebound", 0.0)
    if rebound and b < n:
        length = int(s.get("rebound_steps", max(1.0, 1.5 * leg)))
        if s.family == "flash":
            length = 10
        end = min(n, b + length)
        inc[b:end] = -total * rebound / (end - b)
    det = np.concatenate([[0.0], np.cumsum(inc)])
    beta = s.get("beta", 0.8)
    noise = np.concatenate([np.zeros((1, MARKETS)), np.cumsum(shocks, axis=0)])
    if b > 0:
        t = np.arange(b + 1) / b
        noise[: b + 1] -= t[:, None] * noise[b]
    log = np.empty((n + 1, MARKETS))
    log[:, 0] = det + noise[:, 0]
    log[:, 1] = beta * det + noise[:, 1]
    if total < 0:
        # Noise can deepen the fall: scale the log path so market 0's maximum drawdown is exactly
        # the crash's (a drawdown in log terms scales linearly; volatility moves by the same factor).
        drawn = float(np.max(np.maximum.accumulate(log[:, 0]) - log[:, 0]))
        if drawn > 0:
            log *= -total / drawn
    return log


def describe(lib: dict[str, ScenarioSpec]) -> list[tuple[str, str, str]]:
    """(name, family, description) of every scenario, for `lever stress run --list`."""
    return [(n, s.family, s.description) for n, s in sorted(lib.items())]
