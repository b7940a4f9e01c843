"""Parameter sweeps: a grid (or a random search) of parameters x scenarios x seeds, each cell one
simulation, run on local processes or on a Dask cluster (the same code either way).

A sweep is a list of cell descriptors (plain tuples, cheap to ship); a worker builds each cell with
`model.make_cell` (pure and seeded: the same descriptor gives the same cell on any machine), runs
it on the chosen engine, and returns its `RunResult`. Tasks carry a chunk of cells each.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from decimal import Decimal
from typing import Any

import numpy as np

from lever.stress.errors import StressError
from lever.stress.metrics import CellFigures, RunResult, figures
from lever.stress.model import Agents, make_cell, parse_knobs
from lever.stress.scenarios import load_library

Progress = Callable[[int, int], None]
Knobs = tuple[tuple[str, str], ...]
SERIES_KEPT = 3  # cells per scenario whose step series go into the report (the worst by bad debt)


@dataclass(frozen=True)
class SweepSpec:
    name: str = "default"
    scenarios: tuple[str, ...] = ("march-2020", "luna-2022", "oracle-freeze-jump", "keeper-outage", "cascade")
    seeds: int = 4
    grid: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("maintenance_margin_ratio", ("0.01", "0.02", "0.04")),  # the initial margin follows at twice it
        ("max_leverage", ("5", "10", "25")),
    )
    random: int = 0  # > 0: this many random points in the grid's ranges instead of the grid
    accounts: int = 300
    steps: int = 300
    engine: str = "vector"
    agents: Agents = field(default_factory=Agents)
    seed: int = 1  # the random search's own seed

    def knob_sets(self) -> list[Knobs]:
        names = [k for k, _ in self.grid]
        if self.random:
            rng = np.random.default_rng(self.seed)
            out = []
            for _ in range(self.random):
                point = {}
                for name, values in self.grid:
                    lo, hi = float(values[0]), float(values[-1])
                    point[name] = str(Decimal(str(round(rng.uniform(lo, hi), 6))))
                out.append(parse_knobs(point))
            return out
        return [
            parse_knobs(dict(zip(names, combo, strict=True)))
            for combo in itertools.product(*(values for _, values in self.grid))
        ]

    def cells(self) -> list[tuple[str, int, Knobs]]:
        lib = load_library()
        for s in self.scenarios:
            if s not in lib:
                raise StressError(f"unknown scenario {s!r} (see `lever stress run --list`)")
        if self.engine not in ("vector", "exact"):
            raise StressError(f"unknown engine {self.engine!r} (vector or exact)")
        if self.seeds < 1:
            raise StressError("a sweep needs at least one seed")
        return [
            (s, seed, knobs) for knobs in self.knob_sets() for s in self.scenarios for seed in range(1, self.seeds + 1)
        ]


def run_cells(
    descriptors: Sequence[tuple[str, int, Knobs]], steps: int, agents: Agents, engine: str, keep_series: bool = True
) -> list[RunResult]:
    """A worker's task: build and run each cell (pure: no I/O)."""
    from lever.stress.exact import run_exact
    from lever.stress.vector import run_vector

    run = run_vector if engine == "vector" else run_exact
    out = []
    for scenario, seed, knobs in descriptors:
        result = run(make_cell(scenario, seed, steps, knobs, agents))
        if not keep_series:
            result.share_price, result.insurance, result.price = [], [], []
            result.liquidations_per_step, result.liquidatable_per_step = [], []
        out.append(result)
    return out


@dataclass
class SweepResult:
    spec: SweepSpec
    runs: list[RunResult]
    seconds: float
    workers: int
    scheduler: str

    def cells(self) -> list[CellFigures]:
        """Figures per (parameters, scenario), over the seeds."""
        groups: dict[tuple[Knobs, str], list[RunResult]] = {}
        for r in self.runs:
            groups.setdefault((tuple(sorted(r.knobs.items())), r.scenario), []).append(r)
        insurance = self.spec.agents.insurance_per_account_usd * self.spec.accounts
        return [figures(rs, float(insurance)) for rs in groups.values()]

    @property
    def account_steps(self) -> int:
        return sum(r.account_steps for r in self.runs)

    def to_json(self) -> dict[str, Any]:
        spec = asdict(self.spec)
        return {
            "name": self.spec.name,
            "spec": spec,
            "cells": len(self.runs),
            "workers": self.workers,
            "scheduler": self.scheduler,
            "seconds": round(self.seconds, 3),
            "account_steps": self.account_steps,
            "cpu_seconds": round(sum(r.cpu_seconds for r in self.runs), 3),
            "figures": [asdict(c) for c in self.cells()],
            "runs": [r.summary() for r in self.runs],
        }


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def run_sweep(
    spec: SweepSpec,
    scheduler: str | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
    client: Any = None,
    chunk: int = 0,
) -> SweepResult:
    """Runs every cell of `spec`: on the Dask cluster at `scheduler` (tcp://host:port), on
    `client`, on a local cluster of `workers` processes (default: the machine's cores), or in this
    process when `workers == 0`. Results come back in the cells' order."""
    descriptors = spec.cells()
    agents = replace(spec.agents, accounts=spec.accounts)
    tick = progress or (lambda done, total: None)
    started = time.perf_counter()
    total = len(descriptors)
    if workers == 0 and scheduler is None and client is None:
        runs: list[RunResult] = []
        for d in descriptors:
            runs.extend(run_cells([d], spec.steps, agents, spec.engine))
            tick(len(runs), total)
        return SweepResult(spec, _trim(runs), time.perf_counter() - started, 0, "in-process")
    own = None
    if client is None:
        from dask.distributed import Client, LocalCluster

        if scheduler:
            try:
                client = Client(scheduler, timeout="10s")  # type: ignore[no-untyped-call]
            except OSError as exc:
                raise StressError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
        else:
            n = workers or os.cpu_count() or 1
            own = LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,  # type: ignore[no-untyped-call]
                dashboard_address=None,
            )
            client = Client(own)  # type: ignore[no-untyped-call]
    try:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        size = chunk or max(1, min(8, total // (4 * n_workers) or 1))
        from dask.distributed import as_completed

        pieces = list(_chunks(list(enumerate(descriptors)), size))
        futures = [client.submit(_task, piece, spec.steps, agents, spec.engine, pure=False) for piece in pieces]
        results: dict[int, RunResult] = {}
        for future in as_completed(futures):  # type: ignore[no-untyped-call]
            for i, r in future.result():
                results[i] = r
            tick(len(results), total)
        runs = [results[i] for i in range(total)]
        where = scheduler or ("local cluster" if own is not None else str(client.scheduler.address))
        return SweepResult(spec, _trim(runs), time.perf_counter() - started, n_workers, where)
    finally:
        if own is not None:
            client.close()
            own.close()


def _task(
    piece: list[tuple[int, tuple[str, int, Knobs]]], steps: int, agents: Agents, engine: str
) -> list[tuple[int, RunResult]]:
    results = run_cells([d for _, d in piece], steps, agents, engine)
    return [(i, r) for (i, _), r in zip(piece, results, strict=True)]


def _trim(runs: list[RunResult]) -> list[RunResult]:
    """Keeps the step series of the worst cells of each scenario (for the report's timelines)."""
    keep: set[int] = set()
    by_scenario: dict[str, list[int]] = {}
    for i, r in enumerate(runs):
        by_scenario.setdefault(r.scenario, []).append(i)
    for ids in by_scenario.values():
        worst = sorted(ids, key=lambda i: (-runs[i].bad_debt, -runs[i].liquidations))[:SERIES_KEPT]
        keep.update(worst)
        keep.add(ids[0])
    for i, r in enumerate(runs):
        if i not in keep:
            r.liquidatable_per_step, r.insurance, r.price = [], [], []
            r.liquidations_per_step = []
            # the share price series stays: the LP drawdown distributions need only the scalar
            r.share_price = []
    return runs


def parse_grid(items: Sequence[str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`name=v1,v2,...` items (a random search reads the first and last as the range)."""
    out = []
    for item in items:
        if "=" not in item:
            raise StressError(f"--grid {item!r}: expected name=value1,value2,...")
        name, values = item.split("=", 1)
        vals = tuple(v.strip() for v in values.split(",") if v.strip())
        if not vals:
            raise StressError(f"--grid {item!r}: no values")
        parse_knobs({name.strip(): v for v in vals[:1]})
        for v in vals:
            parse_knobs({name.strip(): v})
        out.append((name.strip(), vals))
    return tuple(out)
