"""The two engines on one model: the exact engine keeps every token, and the vectorised engine
stays within a stated bound of it on sampled cells."""

from __future__ import annotations

import pytest

from lever.stress.crosscheck import cross_check
from lever.stress.errors import StressError
from lever.stress.exact import ExactEngine
from lever.stress.model import Agents, make_cell

# Bounds on the vectorised engine (floats, no wei rounding) against the exact one.
MAX_REL_ERROR = 1e-3
SAMPLE = [
    ("march-2020", 1),
    ("luna-2022", 2),
    ("oracle-freeze-jump", 1),
    ("keeper-outage", 2),
    ("lp-run", 1),
    ("pump", 1),
    ("skew-squeeze", 2),
    ("gas-spike", 1),
    ("whipsaw", 1),
]


def test_the_vectorised_engine_matches_the_exact_engine_within_the_bound_on_sampled_cells() -> None:
    cells = [make_cell(s, seed, steps=120, agents=Agents(accounts=120)) for s, seed in SAMPLE]
    check = cross_check(cells)
    assert check.cells == len(SAMPLE)
    assert check.count_mismatches == []
    assert check.max_rel_error <= MAX_REL_ERROR, check.worst


def test_the_cross_check_sees_a_difference_when_the_vectorised_engine_is_wrong(monkeypatch: pytest.MonkeyPatch) -> None:
    from lever.stress import vector

    monkeypatch.setattr(vector.VectorEngine, "_close_share", lambda self, *a: 1.0)  # every liquidation full
    check = cross_check([make_cell("march-2020", 1, steps=120, agents=Agents(accounts=120))])
    assert check.count_mismatches or check.max_rel_error > MAX_REL_ERROR


@pytest.mark.parametrize("scenario", ["march-2020", "lp-run", "oracle-freeze-jump"])
def test_the_exact_engine_keeps_every_token_through_a_crash(scenario: str) -> None:
    cell = make_cell(scenario, 1, steps=100, agents=Agents(accounts=80))
    e = ExactEngine(cell)
    e.run()
    led, actions = e.chain.ledgers, [a for s in e.trace.steps for a in s.actions]
    vault = (
        sum(e.chain.margin.values())
        + led["pool"]
        + led["insurance"]
        + led["protocol_fees"]
        + led["order_escrow"]
        + led["lp_escrow"]
    )
    paid_in = (
        cell.pool
        + cell.insurance
        + sum(a.amount for a in actions if a.kind == "deposit")
        + cell.params.lp_executor_fee * sum(1 for a in actions if a.kind == "redeem")
    )
    # What the vault holds and the keeper was paid is what came in, plus the executor fees that
    # wallets paid for margins too small to escrow them (at most one per order).
    from_wallets = vault + led["keeper"] - paid_in
    orders = sum(1 for a in actions if a.kind in ("commit", "place"))
    assert e.result.liquidations > 0
    assert 0 <= from_wallets <= cell.population.executor_fee * orders
    assert from_wallets % cell.population.executor_fee == 0


def test_a_liquidation_that_the_mirror_predicts_full_closes_the_position() -> None:
    e = ExactEngine(make_cell("march-2020", 1, steps=100, agents=Agents(accounts=80)))
    e.run()
    full = [ev for ev in e.trace.liquidations if ev.full]
    assert full
    for ev in full:
        later = [x for x in e.trace.liquidations if x.account == ev.account and x.step > ev.step]
        assert not later  # a fully liquidated account has nothing left to liquidate


def test_an_unknown_parameter_or_an_impossible_margin_is_one_clear_error() -> None:
    with pytest.raises(StressError, match="unknown parameter 'maintenance'"):
        make_cell("gbm-calm", 1, steps=20, knobs={"maintenance": "0.02"})
    with pytest.raises(StressError, match="initial_margin_ratio"):
        make_cell("gbm-calm", 1, steps=20, knobs={"maintenance_margin_ratio": "0.05", "initial_margin_ratio": "0.04"})
