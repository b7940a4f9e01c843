"""Fuzz throughput on both backends and the mutation score: `build/bench/fuzz.json`.

    python scripts/bench_fuzz.py            (make bench-fuzz)

The `bench` profile (LEVER_FUZZ_PROFILE overrides it):
- fast: the `ci` run in process, its shards shared out over the two cores (`pytest -n 2`);
  steps/s is all steps over the time from the first shard's start to the last one's end, and
  each process' own rate (its steps over its time in runs) is reported too.
- anvil: the same machine on Anvil through ape (`ape test`), 8 runs of 50 steps.
- mutants: `scripts/mutants.py` (every documented mutant must be caught).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "build" / "bench"


def _stats(directory: Path, command: list[str], profile: str) -> list[dict[str, float]]:
    shutil.rmtree(directory, ignore_errors=True)
    env = dict(os.environ, LEVER_FUZZ_PROFILE=profile, LEVER_FUZZ_STATS_DIR=str(directory))
    done = subprocess.run(command, check=False, cwd=ROOT, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed (exit {done.returncode})")
    return [json.loads(p.read_text()) for p in sorted(directory.glob("*.json"))]


def main() -> int:
    profile = os.environ.get("LEVER_FUZZ_PROFILE", "bench")
    fast_runs = _stats(OUT / "fuzz-runs" / "fast",
                       [sys.executable, "-m", "pytest", "tests/fuzz", "-p", "no:ape_test", "-n", "2", "-q", "-k", "in_process"],
                       profile)
    anvil_runs = _stats(OUT / "fuzz-runs" / "anvil",
                        ["ape", "test", "tests/fuzz", "-q", "-k", "on_anvil", "--network", "ethereum:local:foundry"],
                        profile)
    (OUT / "mutants.json").unlink(missing_ok=True)  # never report an earlier run's score
    mutants = subprocess.run([sys.executable, "scripts/mutants.py"], check=False, cwd=ROOT)
    if not (OUT / "mutants.json").exists():
        raise SystemExit(f"scripts/mutants.py did not finish (exit {mutants.returncode})")
    score = json.loads((OUT / "mutants.json").read_text())

    fast_steps = sum(int(r["steps"]) for r in fast_runs)
    fast_seconds = max(r["ended"] for r in fast_runs) - min(r["started"] for r in fast_runs)
    processes: dict[int, list[dict[str, float]]] = {}
    for r in fast_runs:
        processes.setdefault(int(r["process"]), []).append(r)
    anvil_steps = sum(int(r["steps"]) for r in anvil_runs)
    anvil_seconds = sum(r["seconds"] for r in anvil_runs)
    fast_rate = fast_steps / fast_seconds
    anvil_rate = anvil_steps / anvil_seconds
    report = {
        "profile": profile,
        "fast": {
            "steps": fast_steps,
            "steps_per_s": round(fast_rate, 1),
            "seconds": round(fast_seconds, 2),
            "runs": len(fast_runs),
            "steps_per_s_per_process": [
                round(sum(r["steps"] for r in runs) / sum(r["seconds"] for r in runs), 1) for runs in processes.values()
            ],
        },
        "anvil": {"steps": anvil_steps, "steps_per_s": round(anvil_rate, 2)},
        "fast_over_anvil": round(fast_rate / anvil_rate, 1),
        "mutants": {"total": score["total"], "caught": score["caught"]},
    }
    (OUT / "fuzz.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0 if mutants.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
