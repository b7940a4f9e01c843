"""Fuzz throughput on both backends, what the suite checks, and the mutation score:
`build/bench/fuzz.json`.

    python scripts/bench_fuzz.py            (make bench-fuzz; LEVER_BENCH_SKIP_MUTANTS=1 reports the last
    `make mutants` run instead, with the commit it ran on)

- fast: the `bench` profile in process, its shards claimed by two lanes on the two cores
  (`pytest -n 2`), adversaries on; a run's steps/s is all its steps over the time from the first
  shard's start to the last one's end (each process' own rate is reported too). The run is
  repeated (`LEVER_BENCH_FUZZ_RUNS`, 5) and the median is the figure, with every run's rate and a
  reference loop's seconds on each core before each run: the machine is shared, and the same
  loop has taken from 2.8 to 5.0 s on it. Target: at least 5,000. A step is one action: none to a
  few dozen transactions (an adversary plays its whole strategy in one step), so the
  transactions sent and their rate are reported beside it.
- anvil: the same machine on Anvil through ape, runs of the same length.
- economic_invariants, adversaries: what the machine checks and who attacks it (targets: 8 each).
- mutants: `scripts/mutants.py`; every mutant must be caught (target: at least 20).
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "bench"
TARGETS = {"fast_steps_per_s": 5_000, "economic_invariants": 8, "adversaries": 8, "mutants": 20}


def _stats(directory: Path, command: list[str], profile: str) -> list[dict[str, float]]:
    shutil.rmtree(directory, ignore_errors=True)
    env = dict(os.environ, LEVER_FUZZ_PROFILE=profile, LEVER_FUZZ_STATS_DIR=str(directory))
    done = subprocess.run(command, check=False, cwd=ROOT, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed (exit {done.returncode})")
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]


def _reference_seconds() -> list[float]:
    """A fixed pure-Python loop, timed on each core at once: how fast the machine is right now."""
    code = "import time\nt = time.perf_counter()\nfor i in range(10**7):\n    i += 1\nprint(time.perf_counter() - t)"
    runs = [
        subprocess.Popen(["taskset", "-c", str(core), sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        for core in range(2)
    ]
    return [round(float(r.communicate()[0]), 2) for r in runs]


def _fast(profile: str) -> tuple[float, list[dict[str, float]]]:
    """One in-process run: its steps/s and its shards' records."""
    runs = _stats(
        OUT / "fuzz-runs" / "fast",
        [sys.executable, "-m", "pytest", "tests/fuzz/test_invariants.py", "-p", "no:ape_test", "-n", "2", "-q"]
        + ["-k", "in_process"],
        profile,
    )
    seconds = max(r["ended"] for r in runs) - min(r["started"] for r in runs)
    return sum(int(r["steps"]) for r in runs) / seconds, runs


def main() -> int:
    profile = os.environ.get("LEVER_FUZZ_PROFILE", "bench")
    rates, references = [], []
    for _ in range(int(os.environ.get("LEVER_BENCH_FUZZ_RUNS", "5"))):
        references.append(_reference_seconds())
        rate, fast_runs = _fast(profile)
        rates.append(round(rate, 1))
    anvil_runs = _stats(
        OUT / "fuzz-runs" / "anvil",
        ["ape", "test", "tests/fuzz/test_invariants.py", "-q", "-k", "on_anvil", "--network", "ethereum:local:foundry"],
        profile,
    )
    sys.path.insert(0, str(ROOT / "tests" / "fuzz"))
    from machine import ADVERSARIES, ECONOMIC_INVARIANTS

    score = None
    if os.environ.get("LEVER_BENCH_SKIP_MUTANTS") and (OUT / "mutants.json").exists():
        score = json.loads((OUT / "mutants.json").read_text())  # `make mutants`' last run, with its commit
    elif not os.environ.get("LEVER_BENCH_SKIP_MUTANTS"):
        (OUT / "mutants.json").unlink(missing_ok=True)  # never report an earlier run's score
        subprocess.run([sys.executable, "scripts/mutants.py"], check=False, cwd=ROOT)
        if not (OUT / "mutants.json").exists():
            raise SystemExit("scripts/mutants.py did not finish")
        score = json.loads((OUT / "mutants.json").read_text())

    fast_steps = sum(int(r["steps"]) for r in fast_runs)  # the last run's (fixed seeds: every run's)
    transactions = sum(int(r.get("transactions", 0)) for r in fast_runs)
    fast_seconds = max(r["ended"] for r in fast_runs) - min(r["started"] for r in fast_runs)
    processes: dict[int, list[dict[str, float]]] = {}
    for r in fast_runs:
        processes.setdefault(int(r["process"]), []).append(r)
    anvil_steps = sum(int(r["steps"]) for r in anvil_runs)
    anvil_seconds = sum(r["seconds"] for r in anvil_runs)
    checks: dict[str, int] = {}
    for r in fast_runs:
        for name, n in dict(r.get("checks", {})).items():
            checks[name] = checks.get(name, 0) + int(n)
    fast_rate = statistics.median(rates)
    report = {
        "profile": profile,
        "cores": os.cpu_count(),
        "fast": {
            "steps": fast_steps,
            "steps_per_s": round(fast_rate, 1),  # the median of the runs
            "steps_per_s_runs": rates,
            "reference_loop_seconds_per_core": references,  # before each run; lower is a faster machine
            "transactions": transactions,
            "transactions_per_s": round(transactions * fast_rate / fast_steps, 1),
            "seconds": round(fast_seconds, 2),  # the last run's, as the three below
            "shards": len(fast_runs),
            "steps_per_s_per_process": [
                round(sum(r["steps"] for r in runs) / sum(r["seconds"] for r in runs), 1) for runs in processes.values()
            ],
        },
        "anvil": {"steps": anvil_steps, "steps_per_s": round(anvil_steps / anvil_seconds, 2)},
        "economic_invariants": len(ECONOMIC_INVARIANTS),
        "economic_checks_made": checks,
        "adversaries": len(ADVERSARIES),
        "mutants": {
            "total": score["total"],
            "caught": score["caught"],
            "commits": sorted({r.get("commit", "?") for r in score["mutants"]}),
        }
        if score
        else None,
        "targets": TARGETS,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "fuzz.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0 if score is None or score["caught"] == score["total"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
