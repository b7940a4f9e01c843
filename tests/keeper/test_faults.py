"""The keeper through faults: a flaky node connection, a node outage, the price service down or
answering errors, batches that would run out of gas, a transaction the node drops. It survives
each, catches up, and never sends a transaction that reverts."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from harness import Harness
from hexbytes import HexBytes
from keeper_helpers import eventually, keeper_receipts, order_events, step_and_land, stepping
from rpc_proxy import FaultyProxy

from lever.keeper.service import KeeperService

ETH = "ETH-USD"


def run_until(service: KeeperService, done: Callable[[], bool], timeout: float = 90.0) -> bool:
    """Runs the service in a thread until `done()` holds (or `timeout`), then stops it as SIGTERM
    would; returns whether `done()` held."""
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    finished = eventually(done, timeout=timeout, pause=0.2)
    service.stopping.set()
    thread.join(timeout=30)
    assert not thread.is_alive()
    return finished


class Work:
    """Two accounts a fall to $2,860 makes liquidatable, one it leaves healthy, and two market
    orders due at that price: what the keeper must finish."""

    def __init__(self, h: Harness, alice: Any, bob: Any):
        self.h = h
        self.risky = []
        for _ in range(2):
            account = h.open_account(alice, 1_000)
            h.trade(alice, account, ETH, "6")
            self.risky.append(account)
        self.safe = h.open_account(bob, 10_000)
        h.trade(bob, self.safe, ETH, "1")
        committed = {}
        for size in ("1", "-1"):
            order, t = h.commit(bob, self.safe, ETH, size)
            committed[order] = t
        self.orders = list(committed)
        self.start = int(h.chain.blocks.head.number)
        h.advance(h.delay)
        h.set_price(ETH, 2_860)
        feed = h.book.feeds[ETH]
        self.first_eligible = {o: feed.at_or_after(t + h.delay)[0].publish_time for o, t in committed.items()}  # type: ignore[index]

    def liquidated(self) -> list[int]:
        h = self.h
        return [
            int(e.accountId) for e in h.p.liquidator.Liquidation.range(self.start + 1, h.chain.blocks.head.number + 1)
        ]

    def done(self) -> bool:
        pending = [o for o in self.orders if int(self.h.p.order_book.order(o).updatedAt) != 0]
        return not pending and sorted(self.liquidated()) == sorted(self.risky)

    def check(self, keeper: Any) -> None:
        """Each account liquidated once, each order filled once at its first eligible price, by
        the keeper, with nothing reverted."""
        assert sorted(self.liquidated()) == sorted(self.risky)
        settled, cancelled = order_events(self.h, self.start)
        assert {int(e.orderId): int(e.publishTime) for e in settled} == self.first_eligible and not cancelled
        receipts = keeper_receipts(self.h, keeper.address, self.start)
        assert receipts and all(r["status"] == 1 for r in receipts)


@pytest.fixture
def work(h: Harness, alice: Any, bob: Any) -> Work:
    return Work(h, alice, bob)


def test_the_keeper_through_a_flaky_node_connection_finishes_the_work_and_sends_nothing_twice(
    node_uri: str, work: Work, make_keeper: Any
) -> None:
    with FaultyProxy(node_uri, fail=0.1, drop=0.05, lose=0.05, delay=0.05) as proxy:
        keeper = make_keeper(rpc_url=proxy.url)
        service = KeeperService(keeper, poll_interval=0.05, max_consecutive_errors=50, breaker_cooldown=0.2)
        assert run_until(service, work.done)
        assert proxy.faults > 0
    work.check(keeper)


def test_the_keeper_rides_out_a_node_outage_then_rebuilds_its_state_and_catches_up(
    node_uri: str, h: Harness, alice: Any, bob: Any, make_keeper: Any
) -> None:
    with FaultyProxy(node_uri) as proxy:
        keeper = make_keeper(rpc_url=proxy.url)
        service = KeeperService(keeper, poll_interval=0.05, max_consecutive_errors=3, breaker_cooldown=0.3)
        thread = threading.Thread(target=service.run, daemon=True)
        thread.start()
        try:
            assert eventually(lambda: service.hydrated)
            proxy.down = True
            work = Work(h, alice, bob)  # everything happens while the keeper cannot see the node
            assert eventually(lambda: service.breaker_open)
            assert service.health()[0] == 503
            assert not work.liquidated()
            proxy.down = False
            assert eventually(work.done, timeout=60)
            assert eventually(lambda: service.health()[0] == 200)
        finally:
            service.stopping.set()
            thread.join(timeout=30)
    work.check(keeper)
    assert keeper.metrics.errors._value.get() >= 3


@pytest.mark.parametrize("mode", ["refuse", "down"], ids=["refusing", "answering-503"])
def test_the_keeper_survives_its_price_service_failing_and_settles_within_the_window(
    node_uri: str, mode: str, work: Work, price_service: Any, make_keeper: Any
) -> None:
    with FaultyProxy(price_service.url) as prices:
        setattr(prices, mode, True)
        keeper = make_keeper(prices_url=prices.url)
        service = KeeperService(keeper, poll_interval=0.05, max_consecutive_errors=100, breaker_cooldown=0.2)
        thread = threading.Thread(target=service.run, daemon=True)
        thread.start()
        try:
            assert eventually(lambda: prices.faults >= 5 and service.hydrated)
            assert not work.liquidated()  # without prices it can neither liquidate nor settle
            assert thread.is_alive()
            setattr(prices, mode, False)
            assert eventually(work.done, timeout=60)
        finally:
            service.stopping.set()
            thread.join(timeout=30)
    work.check(keeper)


def test_batches_that_would_run_out_of_gas_are_split_and_nothing_fails_on_chain(work: Work, make_keeper: Any) -> None:
    """Gas budgets far too small: the simulation (run with the gas limit the transaction would
    carry) finds it, the keeper splits the batch (or raises one order's limit), and every
    transaction it sends succeeds."""
    keeper = make_keeper(gas_base=30_000, gas_per_account=20_000, gas_per_order=20_000)
    keeper.hydrate()
    step_and_land(keeper)
    assert work.done()
    work.check(keeper)
    assert len(keeper_receipts(work.h, keeper.address, work.start)) >= 4  # split: 2 + 2 at least
    assert keeper.metrics.errors._value.get() == 0


def test_a_settlement_the_node_drops_from_its_pool_is_broadcast_again(h: Harness, bob: Any, make_keeper: Any) -> None:
    """Anvil drops a pending transaction now and then (foundry-rs/foundry#13352: one a block
    skipped for gas leaves the later nonces executed out of order, refused, removed). The
    keeper, looking for its receipt at the next steps, finds the node no longer knows it and
    sends the same bytes again: it is mined, and nothing was sent twice."""
    account = h.open_account(bob, 10_000)
    order, _ = h.commit(bob, account, ETH, "1")
    keeper = make_keeper()
    keeper.hydrate()
    start = int(h.chain.blocks.head.number)
    h.advance(h.delay)
    h.publish_all()
    w3 = h.chain.provider.web3

    def pooled() -> list[str]:
        content = w3.provider.make_request("txpool_content", [])["result"]
        return [tx["hash"] for by_nonce in content["pending"].values() for tx in by_nonce.values()]

    w3.provider.make_request("evm_setAutomine", [False])
    try:
        with stepping(keeper) as steps:
            assert eventually(lambda: len(pooled()) == 1, timeout=10.0)
            [sent] = pooled()
            w3.provider.make_request("anvil_dropTransaction", [sent])
            assert pooled() == []
            assert eventually(lambda: pooled() == [sent], timeout=10.0)  # the same transaction again
            w3.provider.make_request("evm_mine", [])
            assert eventually(lambda: not keeper.state.in_flight, timeout=10.0)  # its receipt read
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
    assert not steps.is_alive()
    [receipt] = keeper_receipts(h, keeper.address, start)
    assert receipt["status"] == 1 and receipt["transactionHash"] == HexBytes(sent)
    settled, _ = order_events(h, start)
    assert [int(e.orderId) for e in settled] == [order]
