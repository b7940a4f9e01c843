"""The chain replay: two small cells on Anvil with the real contracts and keeper, equal to the
exact engine to the wei (ledgers, margins, positions, market states, every liquidation)."""

from __future__ import annotations

from typing import Any

import pytest

from lever.stress.model import REPLAY_AGENTS, make_cell
from lever.stress.replay import REPLAY_CELLS, REPLAY_STEPS, replay


def _on_anvil(chain: Any) -> bool:
    return "anvil" in str(chain.provider.web3.provider.make_request("web3_clientVersion", [])["result"]).lower()


@pytest.mark.parametrize(("scenario", "seed"), REPLAY_CELLS)
def test_replaying_a_small_cell_on_anvil_matches_the_exact_engine_to_the_wei(
    scenario: str, seed: int, chain: Any, project: Any, accounts: Any
) -> None:
    if not _on_anvil(chain):
        pytest.skip("the replay mines at chosen timestamps: Anvil only")
    cell = make_cell(scenario, seed=seed, steps=REPLAY_STEPS, agents=REPLAY_AGENTS, replay=True)
    report = replay(cell, chain.provider, project, accounts)
    assert report.ok
    assert report.liquidations >= 3 and report.bad_debt_token > 0  # liquidations, one into bad debt
    assert report.keeper_liquidations == report.liquidations  # the real keeper did them
    assert report.compared > 1000
