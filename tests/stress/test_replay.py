"""The chain replay: two small cells on Anvil with the real contracts and keeper, equal to the
exact engine to the wei (ledgers, margins, positions, market states, every liquidation)."""

from __future__ import annotations

from typing import Any

import pytest

from lever.stress.model import Agents, make_cell
from lever.stress.replay import replay

REPLAY_AGENTS = Agents(accounts=10, leverage_median=12.0, leverage_sigma=0.5, stop_loss_share=0.35,
                       take_profit_share=0.2, topup_share=0.3, lp_run_drawdown=0.0)


def _on_anvil(chain: Any) -> bool:
    return "anvil" in str(chain.provider.web3.provider.make_request("web3_clientVersion", [])["result"]).lower()


@pytest.mark.parametrize(("scenario", "seed"), [("replay-crash", 8), ("replay-freeze", 3)])
def test_replaying_a_small_cell_on_anvil_matches_the_exact_engine_to_the_wei(
    scenario: str, seed: int, chain: Any, project: Any, accounts: Any
) -> None:
    if not _on_anvil(chain):
        pytest.skip("the replay mines at chosen timestamps: Anvil only")
    cell = make_cell(scenario, seed=seed, steps=16, agents=REPLAY_AGENTS, replay=True)
    report = replay(cell, chain.provider, project, accounts)
    assert report.ok
    assert report.liquidations >= 3 and report.bad_debt_token > 0  # liquidations, one into bad debt
    assert report.keeper_liquidations == report.liquidations  # the real keeper did them
    assert report.compared > 1000
