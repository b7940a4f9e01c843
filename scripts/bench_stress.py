"""`make bench-stress`: the stress lab's figures -> build/bench/stress.json.

- scenarios: the library's size;
- account_steps_per_s: the vectorised engine in one process (1,000 accounts x 500 steps a cell);
- exact_account_steps_per_s: the exact engine on a smaller cell;
- vectorised_vs_exact_max_rel_error: the cross-check on a sample of cells;
- replay_mismatches: the two replay cells of `make test` on Anvil (0: both equal to the wei);
- cells, sweep_seconds: a sweep of 1,000 cells (1,000 accounts x 500 steps each) on local processes;
- dask_speedup_2_workers: one sweep on a one-worker and on a two-worker local Dask cluster.

Wall-clock rates depend on what else the machine runs: the load average and the CPU-time rates
are recorded next to them. `--quick` runs everything smaller (a smoke test of this script).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def vector_rate(accounts: int, steps: int, scenarios: list[str]) -> dict[str, float]:
    from lever.stress.model import Agents, make_cell
    from lever.stress.vector import run_vector

    cells = [make_cell(s, 1, steps, agents=Agents(accounts=accounts)) for s in scenarios]
    wall, cpu = time.perf_counter(), time.process_time()
    for c in cells:
        run_vector(c)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    n = accounts * steps * len(cells)
    return {"account_steps_per_s": n / wall, "account_steps_per_cpu_s": n / cpu}


def exact_rate(accounts: int, steps: int) -> dict[str, float]:
    from lever.stress.exact import run_exact
    from lever.stress.model import Agents, make_cell

    cell = make_cell("march-2020", 1, steps, agents=Agents(accounts=accounts))
    wall, cpu = time.perf_counter(), time.process_time()
    run_exact(cell)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "exact_account_steps_per_s": accounts * steps / wall,
        "exact_account_steps_per_cpu_s": accounts * steps / cpu,
    }


def cross_check(accounts: int, steps: int, seeds: int) -> dict[str, object]:
    from lever.stress.crosscheck import cross_check as check
    from lever.stress.model import Agents, make_cell
    from lever.stress.scenarios import load_library

    names = [n for n in load_library() if not n.startswith("replay")]
    cells = [make_cell(n, seed, steps, agents=Agents(accounts=accounts)) for n in names for seed in range(1, seeds + 1)]
    c = check(cells)
    return {
        "vectorised_vs_exact_max_rel_error": c.max_rel_error,
        "cross_check_cells": c.cells,
        "cross_check_worst": c.worst,
        "cross_check_count_mismatches": c.count_mismatches,
    }


def replays() -> dict[str, object]:
    os.environ.setdefault("APE_FOUNDRY_HOST", "auto")
    from ape import accounts, networks, project

    from lever.stress.errors import ReplayMismatch
    from lever.stress.model import REPLAY_AGENTS, make_cell
    from lever.stress.replay import REPLAY_CELLS, REPLAY_STEPS, replay

    out: dict[str, object] = {}
    mismatches = 0
    with networks.parse_network_choice("ethereum:local:foundry") as provider:
        for scenario, seed in REPLAY_CELLS:
            cell = make_cell(scenario, seed, REPLAY_STEPS, agents=REPLAY_AGENTS, replay=True)
            try:
                r = replay(cell, provider, project, accounts.test_accounts)
                out[cell.id] = {
                    "values_compared": r.compared,
                    "liquidations": r.liquidations,
                    "bad_debt_token": r.bad_debt_token,
                    "seconds": round(r.seconds, 1),
                }
            except ReplayMismatch as exc:
                mismatches += 1
                out[cell.id] = {"mismatch": str(exc)}
    return {"replay_mismatches": mismatches, "replays": out}


def sweep(quick: bool, accounts: int, steps: int, workers: int) -> dict[str, object]:
    """25 parameter sets x 20 scenarios x 2 seeds = 1,000 cells (quick: 25 x 2 x 1 = 50)."""
    from lever.stress.scenarios import load_library
    from lever.stress.sweep import SweepSpec, run_sweep

    names = tuple(n for n in load_library() if not n.startswith("replay"))[: 2 if quick else 20]
    grid = (
        ("maintenance_margin_ratio", ("0.01", "0.015", "0.02", "0.025", "0.03")),
        ("penalty_ratio", ("0.0025", "0.005", "0.0075", "0.01", "0.0125")),
    )
    spec = SweepSpec(name="bench", scenarios=names, seeds=1 if quick else 2, grid=grid, accounts=accounts, steps=steps)
    done = {"n": 0}

    def tick(n: int, total: int) -> None:
        if n - done["n"] >= max(1, total // 20) or n == total:
            done["n"] = n
            print(f"  sweep: {n}/{total} cells", flush=True)

    result = run_sweep(spec, workers=workers, progress=tick)
    return {
        "cells": len(result.runs),
        "cell_accounts": accounts,
        "cell_steps": steps,
        "sweep_seconds": round(result.seconds, 1),
        "sweep_workers": result.workers,
        # the cells' own CPU time per worker: the sweep's duration on an otherwise idle machine
        "sweep_cpu_seconds_per_worker": round(sum(r.cpu_seconds for r in result.runs) / result.workers, 1),
        "sweep_account_steps_per_s": result.account_steps / result.seconds,
    }


def dask_speedup(cells: int, accounts: int, steps: int) -> dict[str, object]:
    from dask.distributed import Client, LocalCluster

    from lever.stress.sweep import SweepSpec, run_sweep

    spec = SweepSpec(
        name="speedup",
        scenarios=("march-2020", "luna-2022", "gbm-volatile", "cascade"),
        seeds=max(1, cells // 36),
        accounts=accounts,
        steps=steps,
    )
    times = {}
    for n in (1, 2):
        with (
            LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
            Client(cluster) as client,
        ):
            client.run(lambda: __import__("lever.stress.vector"))  # imports before the clock starts
            started = time.perf_counter()
            run_sweep(spec, client=client)
            times[n] = time.perf_counter() - started
    return {
        "dask_speedup_2_workers": times[1] / times[2],
        "dask_seconds_1_worker": round(times[1], 1),
        "dask_seconds_2_workers": round(times[2], 1),
        "dask_cells": len(spec.cells()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test of this script")
    parser.add_argument("--out", type=Path, default=REPO / "build" / "bench" / "stress.json")
    args = parser.parse_args()
    from lever.stress.scenarios import load_library

    q = args.quick
    out: dict[str, object] = {"scenarios": len(load_library()), "load_average_before": os.getloadavg()[0]}
    steps = [
        (
            "vectorised engine",
            lambda: vector_rate(1000, 100 if q else 500, ["march-2020", "gbm-calm", "keeper-outage"]),
        ),
        ("exact engine", lambda: exact_rate(200, 60 if q else 200)),
        ("cross-check", lambda: cross_check(60 if q else 150, 60 if q else 150, 1 if q else 2)),
        ("replays on Anvil", replays),
        ("dask speedup", lambda: dask_speedup(36 if q else 72, 300 if q else 1000, 100 if q else 500)),
        ("1,000-cell sweep", lambda: sweep(q, 200 if q else 1000, 60 if q else 500, 2)),
    ]
    for what, fn in steps:
        print(f"{what} ...", flush=True)
        started = time.perf_counter()
        out.update(fn())
        print(f"  {what}: {time.perf_counter() - started:.1f} s", flush=True)
    out["load_average_after"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, default=str) + "\n")
    keys = (
        "scenarios",
        "cells",
        "sweep_seconds",
        "account_steps_per_s",
        "account_steps_per_cpu_s",
        "exact_account_steps_per_s",
        "vectorised_vs_exact_max_rel_error",
        "replay_mismatches",
        "dask_speedup_2_workers",
    )
    print(json.dumps({k: out.get(k) for k in keys}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
