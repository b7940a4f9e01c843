"""The keeper through faults: a flaky RPC, a node outage, competitors, restarts."""

import threading
import time

import pytest
from helpers import eventually, wad, while_mining
from rpc_proxy import FaultyProxy
from web3 import Web3

from lever.keeper.chain import Addresses, ChainClient
from lever.keeper.runner import Keeper, KeeperConfig
from lever.keeper.service import KeeperService


@pytest.fixture
def addresses(protocol):
    return Addresses(
        vault=protocol.vault.address, engine=protocol.engine.address, liquidator=protocol.liquidator.address,
        oracle=protocol.oracle.address,
        feeds={protocol.markets[name]: feed.address for name, feed in protocol.feeds.items()},
    )


@pytest.fixture
def book(engine, eth, alice, open_account):
    """Twelve accounts at 2x to 19x; a fall to $2,860 makes the 18x and 19x ones unhealthy."""
    ids = []
    for margin in (3_000, 1_800, 1_000, 950) * 3:
        account = open_account(alice, margin)
        engine.modifyPosition(account, eth, wad(6), 0, sender=alice)
        ids.append(account)
    return ids


def _keeper(uri, addresses, key, **config):
    # web3's own retries are off: the keeper service retries with its own backoff and breaker.
    w3 = Web3(Web3.HTTPProvider(uri, request_kwargs={"timeout": 2}, exception_retry_configuration=None))
    return Keeper(ChainClient(w3, addresses), key, KeeperConfig(**config))


def _liquidations(liquidator, start, chain):
    return [log.accountId for log in liquidator.Liquidation.range(start, chain.blocks.head.number + 1)]


def _run_until(service, done, timeout=60.0):
    thread = threading.Thread(target=service.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not done():
        time.sleep(0.2)
    service.stopping.set()
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_keeper_through_a_faulty_rpc_crashes_not_and_misses_nothing(
    protocol, node_uri, addresses, accounts, book, set_price, chain
):
    liquidator = protocol.liquidator
    set_price("ETH-USD", 2_860)
    unhealthy = {h.accountId for h in liquidator.healthOf(book) if h.liquidatable}
    start = chain.blocks.head.number
    with FaultyProxy(node_uri, fail=0.15, drop=0.05, delay=0.05) as proxy:
        keeper = _keeper(proxy.url, addresses, accounts[8].private_key)
        service = KeeperService(keeper, poll_interval=0.05, max_consecutive_errors=50, breaker_cooldown=0.2)
        _run_until(service, while_mining(lambda: not any(h.liquidatable for h in liquidator.healthOf(book))))
        assert proxy.faults > 0 and keeper.metrics.errors._value.get() > 0
    assert sorted(_liquidations(liquidator, start, chain)) == sorted(unhealthy)


def test_keeper_rides_out_a_node_outage_and_rebuilds_its_state(
    protocol, node_uri, addresses, accounts, book, set_price, chain
):
    liquidator = protocol.liquidator
    with FaultyProxy(node_uri) as proxy:
        keeper = _keeper(proxy.url, addresses, accounts[8].private_key)
        service = KeeperService(keeper, poll_interval=0.05, max_consecutive_errors=3, breaker_cooldown=0.3)
        thread = threading.Thread(target=service.run, daemon=True)
        thread.start()
        assert eventually(lambda: service.hydrated)
        proxy.down = True
        set_price("ETH-USD", 2_860)  # the crash happens while the keeper cannot see the node
        assert eventually(lambda: service.breaker_open)
        assert service.health()[0] == 503
        proxy.down = False
        assert eventually(while_mining(lambda: not any(h.liquidatable for h in liquidator.healthOf(book))))
        assert eventually(lambda: service.health()[0] == 200)
        service.stopping.set()
        thread.join(timeout=30)


def test_three_competing_keepers_liquidate_each_account_once_and_losers_send_nothing(
    protocol, node_uri, addresses, accounts, book, set_price, chain
):
    keepers = [_keeper(node_uri, addresses, accounts[i].private_key) for i in (7, 8, 9)]
    for keeper in keepers:
        keeper.hydrate()
    w3 = keepers[0].client.w3
    nonces = [w3.eth.get_transaction_count(k.address) for k in keepers]
    set_price("ETH-USD", 2_860)
    unhealthy = {h.accountId for h in protocol.liquidator.healthOf(book) if h.liquidatable}
    start = chain.blocks.head.number
    results = [keeper.step() for keeper in keepers]
    assert results[0] == len(unhealthy) and results[1:] == [0, 0]
    assert sorted(_liquidations(protocol.liquidator, start, chain)) == sorted(unhealthy)
    assert [w3.eth.get_transaction_count(k.address) for k in keepers[1:]] == nonces[1:]


def test_restarted_keeper_does_not_liquidate_twice(protocol, node_uri, addresses, accounts, book, set_price, chain):
    first = _keeper(node_uri, addresses, accounts[8].private_key)
    first.hydrate()
    set_price("ETH-USD", 2_860)
    assert first.step() > 0
    restarted = _keeper(node_uri, addresses, accounts[8].private_key)  # a new process, same signer
    restarted.hydrate()
    nonce = restarted.client.w3.eth.get_transaction_count(restarted.address)
    assert restarted.step() == 0
    assert restarted.client.w3.eth.get_transaction_count(restarted.address) == nonce


def _automine(w3, on: bool) -> None:
    w3.provider.make_request("evm_setAutomine", [on])


def test_stuck_transaction_is_replaced_with_bumped_fees(protocol, node_uri, addresses, accounts, book, set_price, chain):
    keeper = _keeper(node_uri, addresses, accounts[8].private_key, stuck_after=0.5, max_fee_bumps=3)
    keeper.hydrate()
    set_price("ETH-USD", 2_860)
    w3 = keeper.client.w3
    _automine(w3, False)  # the keeper's transaction sits in the mempool: "stuck"
    try:
        worker = threading.Thread(target=keeper.step, daemon=True)
        worker.start()
        assert eventually(lambda: len(w3.provider.make_request("txpool_content", [])["result"]["pending"]) > 0)
        first = _pending_max_fee(w3, keeper.address)
        assert eventually(lambda: _pending_max_fee(w3, keeper.address) > first, timeout=10)  # replaced
        w3.provider.make_request("evm_mine", [])
        worker.join(timeout=30)
        assert not worker.is_alive()
    finally:
        _automine(w3, True)
    assert keeper.metrics.won._value.get() > 0
    assert not any(h.liquidatable for h in protocol.liquidator.healthOf(book))


def _pending_max_fee(w3, sender) -> int:
    pending = w3.provider.make_request("txpool_content", [])["result"]["pending"]
    txs = next((v for k, v in pending.items() if k.lower() == sender.lower()), {})
    return max((int(tx["maxFeePerGas"], 16) for tx in txs.values()), default=0)


def test_sigterm_while_a_batch_is_in_flight_finishes_it_and_exits_cleanly(
    protocol, node_uri, addresses, accounts, book, set_price, chain
):
    keeper = _keeper(node_uri, addresses, accounts[8].private_key, stuck_after=30)
    service = KeeperService(keeper, poll_interval=0.05)
    set_price("ETH-USD", 2_860)
    w3 = keeper.client.w3
    _automine(w3, False)
    exit_codes = []
    try:
        thread = threading.Thread(target=lambda: exit_codes.append(service.run()), daemon=True)
        thread.start()
        assert eventually(lambda: bool(keeper.state.in_flight))  # a batch is being sent
        assert eventually(lambda: _pending_max_fee(w3, keeper.address) > 0)  # ...and is in the mempool
        service.stopping.set()  # what the SIGTERM handler does
        w3.provider.make_request("evm_mine", [])
        thread.join(timeout=30)
        assert not thread.is_alive()
    finally:
        _automine(w3, True)
    assert exit_codes == [0]
    assert not keeper.state.in_flight
    assert not any(h.liquidatable for h in protocol.liquidator.healthOf(book))


def test_keeper_rebuilds_its_state_after_a_reorg(protocol, node_uri, addresses, accounts, engine, eth, alice, open_account, chain):
    keeper = _keeper(node_uri, addresses, accounts[8].private_key)
    keeper.hydrate()
    account = open_account(alice, 1_000)
    engine.modifyPosition(account, eth, wad(6), 0, sender=alice)  # in the newest block
    keeper.step()
    assert account in keeper.state.records
    w3 = keeper.client.w3
    w3.provider.make_request("anvil_reorg", [1, []])  # the block with the trade is replaced by an empty one
    assert engine.accountMarkets(account) == []
    w3.provider.make_request("evm_mine", [])
    keeper.step()  # the new head's parent is not the block the keeper handled: rebuild
    assert account not in keeper.state.records
