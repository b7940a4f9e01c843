"""The keeper against a real chain: a crash makes some accounts unhealthy; it liquidates exactly those."""

import pytest
from helpers import position_of, wad

from lever.keeper.chain import Addresses, ChainClient
from lever.keeper.runner import Keeper, KeeperConfig


@pytest.fixture
def keeper_factory(protocol, chain, accounts):
    addresses = Addresses(
        vault=protocol.vault.address,
        engine=protocol.engine.address,
        liquidator=protocol.liquidator.address,
        oracle=protocol.oracle.address,
        feeds={protocol.markets[name]: feed.address for name, feed in protocol.feeds.items()},
    )

    def _make(index: int = 8, **config):
        client = ChainClient(chain.provider.web3, addresses)
        return Keeper(client, accounts[index].private_key, KeeperConfig(**config))

    return _make


@pytest.fixture
def book(engine, eth, btc, alice, bob, open_account):
    """Accounts at leverages from 2x to ~20x, long and short, one with two markets."""
    ids = {}
    for label, margin, size in (
        ("long_2x", 3_000, 2), ("long_10x", 1_800, 6), ("long_18x", 1_000, 6), ("long_19x", 950, 6),
        ("short_18x", 1_000, -6), ("short_5x", 3_600, -6),
    ):
        ids[label] = open_account(alice, margin)
        engine.modifyPosition(ids[label], eth, wad(size), 0, sender=alice)
    ids["cross"] = open_account(bob, 2_000)
    engine.modifyPosition(ids["cross"], eth, wad(8), 0, sender=bob)
    engine.modifyPosition(ids["cross"], btc, wad("0.2"), 0, sender=bob)
    return ids


def test_keeper_does_nothing_while_everyone_is_healthy(keeper_factory, book):
    keeper = keeper_factory()
    keeper.hydrate()
    assert len(keeper.state.records) == len(book)
    assert keeper.step() == 0


def test_keeper_liquidates_exactly_the_unhealthy_accounts_after_a_crash(
    protocol, keeper_factory, book, set_price, chain
):
    liquidator, engine = protocol.liquidator, protocol.engine
    keeper = keeper_factory()
    keeper.hydrate()
    before = {label: position_of(engine, account, 0) for label, account in book.items()}
    set_price("ETH-USD", 2_860)  # -4.7%
    unhealthy = {h.accountId for h in liquidator.healthOf(list(book.values())) if h.liquidatable}
    assert unhealthy and unhealthy != set(book.values())
    start = chain.blocks.head.number
    assert keeper.step() == len(unhealthy)
    logs = list(liquidator.Liquidation.range(start, chain.blocks.head.number + 1))
    assert sorted(log.accountId for log in logs) == sorted(unhealthy)  # each exactly once
    for label, account in book.items():
        if account not in unhealthy:
            assert position_of(engine, account, 0) == before[label]  # no healthy account touched
    assert not any(h.liquidatable for h in liquidator.healthOf(list(book.values())))
    assert keeper.metrics.won._value.get() == len(unhealthy)


def test_second_keeper_finds_nothing_left_and_sends_nothing(protocol, keeper_factory, book, set_price, chain):
    first, second = keeper_factory(8), keeper_factory(7)
    first.hydrate()
    second.hydrate()
    set_price("ETH-USD", 2_860)
    assert first.step() > 0
    nonce = chain.provider.web3.eth.get_transaction_count(second.address)
    assert second.step() == 0
    assert chain.provider.web3.eth.get_transaction_count(second.address) == nonce  # no reverting tx


def test_dry_run_keeper_sends_nothing(protocol, keeper_factory, book, set_price):
    keeper = keeper_factory(dry_run=True)
    keeper.hydrate()
    set_price("ETH-USD", 2_860)
    assert keeper.step() == 0
    assert any(h.liquidatable for h in protocol.liquidator.healthOf(list(book.values())))


def test_batch_that_would_run_out_of_gas_is_split_not_sent(protocol, keeper_factory, book, set_price, chain, node_uri):
    """A per-account gas budget far too small: the simulation (run with the transaction's gas
    limit) catches it, the keeper splits the batch, and no transaction fails on chain. (On a
    JSON-RPC node: eth-tester reports running out of gas with its own exception type.)"""
    keeper = keeper_factory(gas_per_account=20_000, gas_base=30_000)
    keeper.hydrate()
    set_price("ETH-USD", 2_860)
    unhealthy = {h.accountId for h in protocol.liquidator.healthOf(list(book.values())) if h.liquidatable}
    assert len(unhealthy) >= 2
    start = chain.blocks.head.number
    assert keeper.step() == len(unhealthy)
    w3 = chain.provider.web3
    statuses = [
        w3.eth.get_transaction_receipt(tx)["status"]
        for n in range(start + 1, chain.blocks.head.number + 1)
        for tx in w3.eth.get_block(n)["transactions"]
    ]
    assert len(statuses) > 1 and all(status == 1 for status in statuses)  # split; nothing failed
    assert keeper.metrics.errors._value.get() == 0
