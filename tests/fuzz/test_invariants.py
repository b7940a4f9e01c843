"""Every DESIGN.md invariant over random action sequences, on revm in process and on Anvil.

The in-process run is split into shards, each with its own seed, that `pytest -n 2` hands to
the two cores as they free up (shards differ in cost; small ones keep both cores busy). A
failure prints the seed and Hypothesis' blob to reproduce it (see the README).
"""

from __future__ import annotations

import json
import os
import time
from functools import cache
from pathlib import Path

import pytest
from fuzz_chain import Artifacts, NodeChain, RevmChain
from fuzz_machine import STATS, machine_for
from fuzz_profiles import SHARDS, Budget, hypothesis_settings, profile, run_seed, under_ape
from fuzz_world import World, build
from hypothesis import seed as hypothesis_seed
from hypothesis.stateful import run_state_machine_as_test


@cache
def _fast_world() -> World:
    """One deployed world per process; every run restores its snapshot."""
    return build(RevmChain(), Artifacts.default())


def _run(world: World, backend: str, budget: Budget, seed: int) -> None:
    machine = hypothesis_seed(seed)(machine_for(world))
    print(f"\n{backend}: seed {seed} (rerun with LEVER_FUZZ_SEED={seed})")
    steps0, started, wall = STATS.steps, time.perf_counter(), time.time()
    run_state_machine_as_test(machine, settings=hypothesis_settings(budget))
    steps, seconds = STATS.steps - steps0, time.perf_counter() - started
    print(f"{backend}: {steps} steps in {seconds:.1f} s ({steps / seconds:,.0f} steps/s)\n{STATS.coverage()}")
    if directory := os.environ.get("LEVER_FUZZ_STATS_DIR"):
        Path(directory).mkdir(parents=True, exist_ok=True)
        record = {"backend": backend, "seed": seed, "steps": steps, "seconds": round(seconds, 3),
                  "process": os.getpid(), "started": wall, "ended": time.time()}
        (Path(directory) / f"{backend}-{seed}.json").write_text(json.dumps(record))
    assert steps >= budget.min_steps, f"the profile promises {budget.min_steps} steps, the run made {steps}"


@pytest.mark.parametrize("shard", range(SHARDS))
def test_invariants_in_process(request: pytest.FixtureRequest, shard: int) -> None:
    if under_ape(request.config):
        pytest.skip("the in-process backend runs under plain pytest (make fuzz)")
    p = profile()
    budget = Budget(p.fast.examples // SHARDS, p.fast.steps_per_example, p.fast.min_steps // SHARDS)
    _run(_fast_world(), "fast", budget, run_seed(shard))


def test_invariants_on_anvil(request: pytest.FixtureRequest) -> None:
    if not under_ape(request.config):
        pytest.skip("the node backend runs under `ape test` on Anvil")
    from ape import chain

    if chain.provider.name != "foundry":
        pytest.skip("the node backend runs on Anvil (ethereum:local:foundry)")
    _run(build(NodeChain(chain.provider.web3), Artifacts.default()), "anvil", profile().anvil, run_seed(0))


def test_storage_reads_match_the_views(request: pytest.FixtureRequest) -> None:
    """The fast backend reads the compared state from storage slots; after a busy sequence they
    must equal what the public views (the lens) report."""
    if under_ape(request.config):
        pytest.skip("in-process check")
    world = build(RevmChain(), Artifacts.default())
    machine = machine_for(world)()
    machine.trade(6, 0, 100)
    machine.trade(6, 1, -150)
    machine.wait(5_000)
    machine.move_against(0, 20)
    machine.lp_deposit(0, 1_000)
    machine.fund_insurance(10)
    machine.claim_protocol_fees(500)
    assert world.state_words() == world.lens_words()
    assert any(v > 2**255 for v in world.lens_words())  # negative values (shorts) are covered
