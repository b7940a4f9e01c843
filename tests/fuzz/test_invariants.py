"""The protocol against its ghost and its economic invariants, over random action sequences with
adversaries, on revm in process and on Anvil.

The in-process run is split into shards, each with its own seed, that two lanes (the tests
`pytest -n 2` hands to the two cores) claim one at a time. A failure prints the seed and
Hypothesis' blob to reproduce it (docs/fuzzing.md).
"""

from __future__ import annotations

import gc
import json
import os
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from backends import NodeChain, RevmChain
from hypothesis import seed as hypothesis_seed
from hypothesis.stateful import run_state_machine_as_test
from machine import STATS, machine_for, seed
from profiles import LANES, SHARDS, Budget, hypothesis_settings, profile, run_seed, under_ape
from world import World, deploy


@cache
def _fast_world() -> World:
    """One deployed world per process; every example restores its snapshot.

    The deployed world, the artifacts and the imported modules live as long as the process: they
    are moved out of the garbage collector's generations (`gc.freeze`), and the youngest
    generation is collected every 50,000 allocations instead of 700. A step allocates thousands
    of short-lived objects (ghost clones, decoded words) that reference counting frees; the
    collector's passes over them found nothing to free and cost a tenth of the run."""
    world = seed(deploy(RevmChain()))
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    return world


def _run(world: World, backend: str, budget: Budget, run: int) -> None:
    machine = hypothesis_seed(run)(machine_for(world))
    print(f"\n{backend}: seed {run} (rerun with LEVER_FUZZ_SEED={run})")
    steps0, started, wall = STATS.steps, time.perf_counter(), time.time()
    sent0, checks0 = sum(STATS.outcomes.values()), dict(STATS.checks)
    run_state_machine_as_test(machine, settings=hypothesis_settings(budget))
    steps, seconds = STATS.steps - steps0, time.perf_counter() - started
    print(f"{backend}: {steps} steps in {seconds:.1f} s ({steps / seconds:,.0f} steps/s)\n{STATS.coverage()}")
    if directory := os.environ.get("LEVER_FUZZ_STATS_DIR"):
        Path(directory).mkdir(parents=True, exist_ok=True)
        record = {
            "backend": backend,
            "seed": run,
            "steps": steps,
            "transactions": sum(STATS.outcomes.values()) - sent0,  # each step sends none to dozens
            "seconds": round(seconds, 3),
            "process": os.getpid(),
            "started": wall,
            "ended": time.time(),
            "checks": {name: n - checks0.get(name, 0) for name, n in STATS.checks.items()},  # this run's
        }
        (Path(directory) / f"{backend}-{run}.json").write_text(json.dumps(record))
    assert steps >= budget.min_steps, f"the profile promises {budget.min_steps} steps, the run made {steps}"


def _shards(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The shards this lane claims, one at a time, as it becomes free: the first lane to create a
    shard's file in the session's shared directory runs it. A lane on a core the machine slows
    takes fewer shards instead of holding the run up (`pytest -n` would hand each worker its four
    shards ahead). `LEVER_FUZZ_SEED` replays one run, in one lane."""
    if os.environ.get("LEVER_FUZZ_SEED"):
        yield from [0] if request.node.callspec.params["lane"] == 0 else []
        return
    base = tmp_path_factory.getbasetemp()
    claims = (base.parent if hasattr(request.config, "workerinput") else base) / "fuzz-shards"
    claims.mkdir(exist_ok=True)
    for shard in range(SHARDS):
        try:
            os.close(os.open(claims / str(shard), os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            continue
        yield shard


@pytest.mark.parametrize("lane", range(LANES))
def test_invariants_in_process(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, lane: int
) -> None:
    if under_ape(request.config):
        pytest.skip("the in-process backend runs under plain pytest (make fuzz)")
    p = profile()
    budget = Budget(p.fast.examples // SHARDS, p.fast.rules_per_example, p.fast.min_steps // SHARDS)
    for shard in _shards(request, tmp_path_factory):
        _run(_fast_world(), "fast", budget, run_seed(shard))


def test_invariants_on_anvil(request: pytest.FixtureRequest) -> None:
    if not under_ape(request.config):
        pytest.skip("the node backend runs under `ape test` on Anvil")
    from ape import chain

    if chain.provider.name != "foundry":
        pytest.skip("the node backend runs on Anvil (ethereum:local:foundry)")
    _run(seed(deploy(NodeChain(chain.provider.web3))), "anvil", profile().anvil, run_seed(0))
