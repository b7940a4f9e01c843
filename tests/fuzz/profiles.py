"""The fuzz suite's profiles and budgets.

`LEVER_FUZZ_PROFILE` picks the budget (default `ci`); the backend follows the runner: plain
pytest (`-p no:ape_test`) runs the in-process revm backend, `ape test` on Anvil the node backend.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, Phase, settings


@dataclass(frozen=True)
class Budget:
    examples: int
    rules_per_example: int  # each rule runs the machine's STEPS_PER_RULE steps
    min_steps: int  # what the run must reach (the profile's promise), counted by the machine


@dataclass(frozen=True)
class Profile:
    fast: Budget
    anvil: Budget
    fixed_seeds: bool  # the same examples every run (CI); otherwise fresh seeds (exploration)


PROFILES = {
    # make test: at least 20,000 steps in process, and a short run on Anvil. Fixed seeds: CI runs
    # the same examples every time (the nightly profile explores).
    "ci": Profile(Budget(64, 200, 20_000), Budget(3, 15, 60), fixed_seeds=True),
    # make fuzz-nightly: at least 1,000,000 steps in process, and a longer run on Anvil.
    "nightly": Profile(Budget(3_200, 200, 1_000_000), Budget(40, 25, 1_000), fixed_seeds=False),
    # make bench-fuzz: the ci run in process, and runs of the same length on Anvil.
    "bench": Profile(Budget(64, 200, 20_000), Budget(2, 200, 400), fixed_seeds=True),
    # quick iterations while developing.
    "dev": Profile(Budget(16, 50, 0), Budget(2, 10, 0), fixed_seeds=False),
}


def profile() -> Profile:
    name = os.environ.get("LEVER_FUZZ_PROFILE", "ci")
    if name not in PROFILES:
        raise pytest.UsageError(f"LEVER_FUZZ_PROFILE={name!r}: expected one of {', '.join(PROFILES)}")
    return PROFILES[name]


SHARDS = int(os.environ.get("LEVER_FUZZ_SHARDS", "8"))  # in-process runs, each with its own seed
LANES = 2  # tests that claim the shards one at a time, one per core under `pytest -n 2`


def run_seed(shard: int) -> int:
    """`LEVER_FUZZ_SEED` reruns a printed seed; the ci profile uses fixed seeds, the others fresh."""
    if chosen := os.environ.get("LEVER_FUZZ_SEED"):
        return int(chosen)
    if profile().fixed_seeds:
        return 1000 + shard
    return int.from_bytes(os.urandom(4), "big")


def hypothesis_settings(budget: Budget) -> settings:
    return settings(
        max_examples=budget.examples,
        stateful_step_count=budget.rules_per_example,
        deadline=None,
        database=None,
        print_blob=True,
        # The mutation check only needs to know that a run fails, not the smallest failing run.
        phases=[Phase.explicit, Phase.reuse, Phase.generate]
        + ([] if os.environ.get("LEVER_FUZZ_NO_SHRINK") else [Phase.shrink]),
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
            HealthCheck.large_base_example,
        ],
    )


def under_ape(config: pytest.Config) -> bool:
    return config.pluginmanager.hasplugin("ape_test")
