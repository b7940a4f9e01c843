"""Fuzz throughput on both backends and the mutation score: `build/bench/fuzz.json`.

    python scripts/bench_fuzz.py            (make bench-fuzz)

The `bench` profile (LEVER_FUZZ_PROFILE overrides it):
- fast: three times the `ci` run in process, its shards shared out over the two cores
  (`pytest -n 2`); steps/s is all steps over the time from the first shard's start to the last
  one's end, and each process' own rate (its steps over its time in runs) is reported too.
- anvil: the same machine on Anvil through ape (`ape test`), 3 runs of 400 steps (the length
  of the in-process runs: a run's exit and snapshot restore weigh the same per step).
- node_paths: one transaction and one view on Anvil through ape's contract objects and through
  the node backend's raw JSON-RPC (`scripts/bench_node_paths.py`): what the Anvil rate rests on.
- hypothesis_floor: the machine's rules, strategies and rule selection with empty bodies, in
  this process: what Hypothesis alone costs a step, the bound on any in-process backend.
- mutants: `scripts/mutants.py` (every documented mutant must be caught).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
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


def hypothesis_floor(runs: int = 32, steps: int = 400) -> dict[str, float]:
    """Steps/s of `ProtocolMachine`'s rules, strategies and rule selection with empty bodies."""
    sys.path.insert(0, str(ROOT / "tests" / "fuzz"))
    from fuzz_machine import _Machine, swarm_rules
    from fuzz_profiles import Budget, hypothesis_settings
    from hypothesis import seed
    from hypothesis.stateful import (
        RULE_MARKER,
        RuleBasedStateMachine,
        invariant,
        rule,
        run_state_machine_as_test,
    )

    done = [0]

    def empty(self: RuleBasedStateMachine, **_: object) -> None:
        done[0] += 1

    def init(self: RuleBasedStateMachine) -> None:
        RuleBasedStateMachine.__init__(self)
        self._rules_strategy = swarm_rules(self._rules_strategy.rules)

    body: dict[str, object] = {"__init__": init, "check": invariant()(lambda self: None)}
    for name, f in vars(_Machine).items():
        if r := getattr(f, RULE_MARKER, None):
            body[name] = rule(**r.arguments)(empty)
    machine = type("EmptyMachine", (RuleBasedStateMachine,), body)
    started = time.perf_counter()
    for i in range(runs // 8):
        run_state_machine_as_test(seed(1000 + i)(machine), settings=hypothesis_settings(Budget(8, steps, 0)))
    seconds = time.perf_counter() - started
    return {"steps": done[0], "steps_per_s": round(done[0] / seconds, 1), "rules": len(body) - 2}


def main() -> int:
    profile = os.environ.get("LEVER_FUZZ_PROFILE", "bench")
    fast_runs = _stats(OUT / "fuzz-runs" / "fast",
                       [sys.executable, "-m", "pytest", "tests/fuzz", "-p", "no:ape_test", "-n", "2", "-q", "-k", "in_process"],
                       profile)
    anvil_runs = _stats(OUT / "fuzz-runs" / "anvil",
                        ["ape", "test", "tests/fuzz", "-q", "-k", "on_anvil", "--network", "ethereum:local:foundry"],
                        profile)
    (OUT / "node-paths.json").unlink(missing_ok=True)
    paths = subprocess.run(["ape", "run", "bench_node_paths", "--network", "ethereum:local:foundry"],
                           check=False, cwd=ROOT, stdout=subprocess.DEVNULL)
    if paths.returncode != 0:
        raise SystemExit(f"bench_node_paths failed (exit {paths.returncode})")
    node_paths = json.loads((OUT / "node-paths.json").read_text())
    floor = hypothesis_floor()
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
        "node_paths": node_paths,
        "hypothesis_floor": floor,
        "mutants": {"total": score["total"], "caught": score["caught"]},
    }
    (OUT / "fuzz.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0 if mutants.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
