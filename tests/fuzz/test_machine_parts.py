"""The fuzz machine's own parts: its calldata encoder against eth-abi, its reads of storage
against the contracts' views, and its use of Hypothesis' public API."""

from __future__ import annotations

import pytest
from eth_abi import encode as abi_encode
from world import encode_args


@pytest.mark.parametrize(
    ("types", "values"),
    [
        (
            ["uint256[]", "bytes[]", "(uint256,bytes)[]"],
            [[1, 2**255], [b"", b"\x01" * 33], [(0, b"\x02" * 320), (1, b"")]],
        ),
        (["uint256", "(uint256,bytes)[]"], [7, []]),
        (
            ["address", "uint256", "bytes", "bytes32", "bytes32", "uint256"],
            ["0x" + "ab" * 20, 0, b"\x05" * 70, b"\x00" * 32, b"\x01" * 32, 3],
        ),
        (["uint256", "(uint16,uint64,int128,uint256)"], [1, (2, 3, -4, 5)]),
        (["int256", "bool"], [-(2**200), True]),
    ],
)
def test_calldata_matches_eth_abi(types: list[str], values: list[object]) -> None:
    assert encode_args(types, values) == abi_encode(types, values)


def test_hypothesis_drives_the_machine_through_its_public_api() -> None:
    """The machine is a plain `RuleBasedStateMachine` (one `@initialize`, the swarm's choice; one
    `@rule`, the steps) run by `run_state_machine_as_test`. If a Hypothesis upgrade changed how
    either is found or drawn, the suite would silently run nothing: this fails instead."""
    from hypothesis import seed, settings
    from hypothesis.stateful import run_state_machine_as_test
    from machine import STATS, STEPS_PER_RULE, machine_for
    from test_invariants import _fast_world

    steps, swarms = STATS.steps, len(STATS.swarms)
    machine = seed(5)(machine_for(_fast_world()))
    run_state_machine_as_test(
        machine, settings=settings(max_examples=6, stateful_step_count=5, deadline=None, database=None)
    )
    assert STATS.steps - steps >= 6 * STEPS_PER_RULE, "the machine's rule did not run"
    chosen = STATS.swarms[swarms:]
    assert len(chosen) >= 6 and len(set(chosen)) > 1, "every example must draw its own set of actions"


def test_storage_reads_match_the_views() -> None:
    """The machine reads the chain from storage (the compiler's layouts); after a busy sequence
    those reads equal what the contracts' own views return."""
    from machine import Machine, machine_for
    from test_invariants import _fast_world

    from lever import math as m

    machine: Machine = machine_for(_fast_world())()
    d, obs, w = machine.d, machine.d.w.observer, machine.d.w
    for action in (
        "commit_order",
        "wait",
        "keeper_settles",
        "publish_price",
        "lp_request_deposit",
        "wait",
        "lp_settle",
        "place_conditional",
        "accrue",
    ):
        import machine as machine_module

        getattr(machine_module, action)(d, 1, 3, 5)
    for i in range(w.n_markets):
        assert obs.market(i) == m.MarketState.from_chain(d.view("PerpEngine", w.engine, "marketState", i))
        assert obs.params(i) == m.MarketParams.from_chain(d.view("PerpEngine", w.engine, "marketParams", i))
        assert obs.oracle_state(i) == m.OracleState.from_chain(d.view("OracleAdapter", w.oracle, "state", i))
    for a in w.accounts:
        assert obs.margin(a) == d.view("LeverVault", w.vault, "marginOf", a)
        assert obs.pending_orders(a) == d.view("LeverVault", w.vault, "pendingOrders", a)
        for i in range(w.n_markets):
            assert obs.position(a, i) == m.Position.from_chain(d.view("PerpEngine", w.engine, "position", a, i))
        ids, orders = d.view("OrderBook", w.book, "ordersOf", a)
        assert obs.orders(a) == {i % 8: m.orders.Order.from_chain(a, i, o) for i, o in zip(ids, orders, strict=True)}
    scalars = obs.scalars()
    assert scalars["pool"] == d.view("LeverVault", w.vault, "poolAssets")
    assert scalars["total_reserve"] == d.view("PerpEngine", w.engine, "totalReserveWad")
    assert scalars["open_mask"] == d.view("PerpEngine", w.engine, "openMarketsMask")
    assert scalars["paused"] == d.view("PerpEngine", w.engine, "paused")
    assert scalars["order_escrow"] == d.view("LeverVault", w.vault, "orderEscrow")
    assert scalars["margin_and_escrow"] - scalars["order_escrow"] == d.view("LeverVault", w.vault, "totalMargin")
    assert any(obs.pending_orders(a) for a in w.accounts)  # the packed count is read too
    assert any(pos.size < 0 for pos in d.g.s.positions.values())  # negative values are read too
