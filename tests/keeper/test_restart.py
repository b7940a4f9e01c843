"""A keeper restarted mid-way: it keeps nothing but its key, rebuilds its state from the chain (the
protocol's views and its event history since deployment) and finishes the work, doing nothing
twice and sending nothing that reverts."""

from __future__ import annotations

from typing import Any

import pytest
from eth_utils import keccak
from harness import Harness, usdc, wad
from keeper_helpers import keeper_receipts, order_events, step_and_land

from lever.math.orders import Kind

ETH = "ETH-USD"


class Crash(Exception):
    """The process dies: after broadcasting a transaction, before reading its receipt."""


def crash_after_broadcasts(keeper: Any, n: int) -> list[bytes]:
    """Makes `keeper` die right after its `n`-th broadcast; returns the hashes it broadcast."""
    broadcast, sent = keeper._broadcast, []

    def dying(raw: bytes) -> None:
        broadcast(raw)
        sent.append(keccak(raw))
        if len(sent) == n:
            raise Crash

    keeper._broadcast = dying
    return sent


def test_a_keeper_killed_between_two_batches_is_replaced_by_one_that_finishes_the_rest(
    h: Harness, alice: Any, bob: Any, make_keeper: Any
) -> None:
    risky = h.open_account(alice, 1_000)
    h.trade(alice, risky, ETH, "6")
    traders = [h.open_account(bob, 10_000) for _ in range(4)]
    orders = [h.commit(bob, account, ETH, "1")[0] for account in traders]
    start = int(h.chain.blocks.head.number)
    h.advance(h.delay)
    h.set_price(ETH, 2_860)
    first = make_keeper(max_batch=2)  # the orders go in two batches
    first.hydrate()
    sent = crash_after_broadcasts(first, 2)  # the liquidation, then the first batch of orders
    with pytest.raises(Crash):
        first.step()
    h.chain.provider.web3.eth.wait_for_transaction_receipt(sent[-1])  # it lands after the crash
    settled, _ = order_events(h, start)
    assert len(settled) == 2  # the batch it sent landed; it never saw its receipt
    restarted = make_keeper(max_batch=2)  # a new process with the same key
    restarted.hydrate()
    assert set(restarted.state.orders) == set(orders) - {int(e.orderId) for e in settled}
    step_and_land(restarted)
    settled, cancelled = order_events(h, start)
    assert sorted(int(e.orderId) for e in settled) == sorted(orders) and not cancelled  # each once
    assert all(h.position(account, ETH).size == wad(1) for account in traders)
    liquidations = list(h.p.liquidator.Liquidation.range(start + 1, h.chain.blocks.head.number + 1))
    assert [int(e.accountId) for e in liquidations] == [risky]
    receipts = keeper_receipts(h, restarted.address, start)
    assert [r["status"] for r in receipts] == [1, 1, 1]  # the first two sent, then the one batch left


def test_a_restarted_keeper_finds_what_arrived_while_it_was_down_in_the_chains_history(
    h: Harness, alice: Any, bob: Any, make_keeper: Any
) -> None:
    v = h.p.vault
    trader = h.open_account(alice, 10_000)
    h.trade(alice, trader, ETH, "2")
    first = make_keeper()
    first.hydrate()
    step_and_land(first)
    start = int(h.chain.blocks.head.number)
    # While no keeper runs: a market order, a stop-loss, an LP deposit request.
    other = h.open_account(bob, 10_000)
    order, _ = h.commit(bob, other, ETH, "-1")
    receipt = h.p.order_book.placeOrder(trader, 0, int(Kind.STOP_LOSS), -wad(2), wad(2_900), 0, usdc(1), sender=alice)
    stop = int(receipt.events.filter(h.p.order_book.OrderPlaced)[0].orderId)
    fee = int(v.lpParams().executorFee)
    h.p.token.mint(bob, usdc(500) + fee, sender=bob)
    h.p.token.approve(v, usdc(500) + fee, sender=bob)
    v.requestDeposit(usdc(500), bob, bob, sender=bob)
    h.advance(h.delay)
    h.set_price(ETH, 2_890)  # the order's price, the stop's trigger
    h.advance(h.lp_grace)
    restarted = make_keeper()
    restarted.hydrate()
    assert set(restarted.state.orders) == {order, stop}
    assert list(restarted.state.lp) == [(bob.address, True)]
    before = int(h.p.token.balanceOf(restarted.address))
    step_and_land(restarted)  # settles the order and the LP request, triggers the stop
    assert h.p.order_book.order(stop).triggered
    h.advance(h.delay)
    h.publish_all()
    step_and_land(restarted)  # fills the stop
    settled, _ = order_events(h, start)
    assert sorted(int(e.orderId) for e in settled) == sorted([order, stop])
    assert h.position(trader, ETH).size == 0 and h.position(other, ETH).size == -wad(1)
    assert int(v.maxDeposit(bob)) == usdc(500)
    assert int(h.p.token.balanceOf(restarted.address)) - before == usdc(2) + fee  # two orders' fees, one LP request's
    assert all(r["status"] == 1 for r in keeper_receipts(h, restarted.address, start))
