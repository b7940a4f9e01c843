"""The keeper on Anvil with a real price service: it brings every price it needs from the service,
settles what is due at the first eligible price, cancels what expired, executes what triggered,
liquidates what is unhealthy, settles LP requests, and never sends a transaction that reverts.
Every test checks the keeper's own transactions: all mined with status 1."""

from __future__ import annotations

from typing import Any

import pytest
from harness import Harness, usdc, wad
from keeper_helpers import (
    keeper_receipts,
    order_events,
    predicted_liquidation,
    step_and_land,
    step_into_one_block,
)

from lever import math as m
from lever.math.orders import Kind

ETH, BTC = "ETH-USD", "BTC-USD"
ZERO = "0x0000000000000000000000000000000000000000"


def place(h: Harness, owner: Any, account: int, kind: Kind, size: str, trigger: str) -> int:
    receipt = h.p.order_book.placeOrder(account, 0, int(kind), wad(size), wad(trigger), 0, usdc(1), sender=owner)
    return int(receipt.events.filter(h.p.order_book.OrderPlaced)[0].orderId)


def step_to_fill(h: Harness, keeper: Any) -> int:
    """A delay after a step that triggered orders: a price is published and the keeper steps
    again, filling them at it. Returns the trigger's publish time bound: the fill's price time."""
    h.advance(h.delay)
    h.publish_all()
    step_and_land(keeper)
    return h.book.feeds[ETH].latest().publish_time


def balance(h: Harness, who: Any) -> int:
    return int(h.p.token.balanceOf(who))


def statuses(h: Harness, keeper: Any, start: int) -> list[int]:
    return [int(r["status"]) for r in keeper_receipts(h, keeper.address, start)]


# --------------------------------------------------------------------------- liquidations


def test_the_keeper_liquidates_an_unhealthy_account_bringing_the_pyth_update_itself(
    h: Harness, alice: Any, bob: Any, make_keeper: Any
) -> None:
    risky = h.open_account(alice, 1_000)
    h.trade(alice, risky, ETH, "6")  # $18,000 on $1,000
    safe = h.open_account(bob, 10_000)
    h.trade(bob, safe, ETH, "1")
    keeper = make_keeper()
    keeper.hydrate()
    start = h.chain.blocks.head.number
    h.set_price(ETH, 2_860)  # the reference feed and the price service; nothing on the pull oracle
    published = h.book.feeds[ETH].latest()
    assert published is not None
    assert h.reader.market(0).oracle_state.latest_publish_time < published.publish_time
    safe_position, before = h.position(safe, ETH), balance(h, keeper.address)
    assert keeper.step() == 1
    [event] = h.p.liquidator.Liquidation.range(start + 1, h.chain.blocks.head.number + 1)
    assert int(event.accountId) == risky
    stored = h.reader.market(0).oracle_state
    assert (stored.latest_price, stored.latest_publish_time) == (
        2_860 * m.WAD,
        published.publish_time,
    )
    prediction, settlement = predicted_liquidation(h, risky, event.block_number)
    assert int(event.closeShareWad) == prediction.share
    assert int(event.rewardToken) == settlement.reward_paid > 0
    # token units, to the keeper
    assert balance(h, keeper.address) - before == settlement.reward_paid
    assert h.margin(risky) == settlement.margin
    assert h.position(safe, ETH) == safe_position
    assert statuses(h, keeper, start) == [1]


def test_a_steps_liquidation_batches_are_all_broadcast_before_the_first_is_mined(
    h: Harness, alice: Any, make_keeper: Any
) -> None:
    """Three unhealthy accounts in three batches (`max_batch=1`): the keeper simulates the
    three, sends them back to back with consecutive nonces, and only then waits for their
    receipts. The node mines only when told: the three are in its pool together, and one block
    liquidates all three. (Sent one at a time, each waiting for its receipt, only the first
    would be there.)"""
    risky = [h.open_account(alice, 1_000) for _ in range(3)]
    for account in risky:
        h.trade(alice, account, ETH, "6")  # $18,000 on $1,000
    keeper = make_keeper(max_batch=1)
    keeper.hydrate()
    start = h.chain.blocks.head.number
    h.set_price(ETH, 2_860)
    all_sent, finished, liquidated = step_into_one_block(h, keeper, 3)
    assert all_sent and finished
    assert liquidated == 3
    receipts = keeper_receipts(h, keeper.address, start)
    assert [r["status"] for r in receipts] == [1, 1, 1]
    assert len({r["blockNumber"] for r in receipts}) == 1  # one block holds the three
    events = h.p.liquidator.Liquidation.range(start + 1, h.chain.blocks.head.number + 1)
    assert sorted(int(e.accountId) for e in events) == sorted(risky)
    assert not keeper.state.in_flight


def test_a_cascade_is_batched_by_the_gas_the_node_estimates_per_account_not_the_configured_guess(
    h: Harness, alice: Any, project: Any, make_keeper: Any
) -> None:
    """Thirty-two 18x longs fall through their maintenance margin together. At a configured 5M
    gas an account they would need seven batches of a 30M block; the node's estimate of the
    marginal account says far less, so one transaction liquidates all of them."""
    seeder = project.BulkSeeder.deploy(h.p.engine, h.p.vault, h.p.order_book, h.p.token, sender=alice)
    h.p.token.mint(seeder, usdc(64_000), sender=alice)
    seeder.openAccounts(64, usdc(1_000), sender=alice)
    first = int(h.p.engine.accountCount()) - 63
    ids = list(range(first, first + 64))
    seeder.commitOrders(ids, 0, [wad(6), -wad(6)] * 32, usdc(1), sender=alice)  # longs and shorts
    keeper = make_keeper(gas_per_account=5_000_000)
    keeper.hydrate()
    h.advance(h.delay)
    h.publish_all()
    step_and_land(keeper)  # the keeper fills the orders
    longs = ids[0::2]
    assert all(h.position(a, ETH).size == wad(6) for a in longs)
    h.advance(1)  # a liquidation needs a price newer than the account's last fill
    start = h.chain.blocks.head.number
    h.set_price(ETH, 2_860)
    assert keeper.step() == 32
    events = list(h.p.liquidator.Liquidation.range(start + 1, h.chain.blocks.head.number + 1))
    assert sorted(int(e.accountId) for e in events) == longs
    assert len({e.transaction_hash for e in events}) == 1  # one transaction
    assert statuses(h, keeper, start) == [1]
    assert keeper._measured_gas["liquidation"][1] < 200_000  # what it batched by


def test_an_order_in_flight_does_not_hide_the_account_whose_id_equals_its_own(
    h: Harness, alice: Any, bob: Any, make_keeper: Any
) -> None:
    """Order ids are `account * 8 + slot`, so an order id can equal another account's id. The
    keeper's first step sends the order (its receipt is read at a later step); the price falls
    and, at the next step, the account whose id is the order's is liquidated all the same."""
    trader = h.open_account(bob, 10_000)
    order, _ = h.commit(bob, trader, ETH, "1")
    risky = 0
    while risky < order:
        risky = h.open_account(alice, 1_000)
    assert risky == order  # the account ids run on from the trader's
    h.trade(alice, risky, ETH, "6")  # $18,000 on $1,000
    keeper = make_keeper()
    keeper.hydrate()
    h.advance(h.delay)
    h.publish_all()
    keeper.step()
    assert keeper.state.in_flight == {order}  # sent; its receipt not read yet
    start = h.chain.blocks.head.number
    h.set_price(ETH, 2_860)
    assert keeper.step() == 1
    [event] = h.p.liquidator.Liquidation.range(start + 1, h.chain.blocks.head.number + 1)
    assert int(event.accountId) == risky


def test_the_batched_account_records_equal_the_accounts_read_one_by_one(h: Harness, alice: Any, bob: Any) -> None:
    """`Liquidator.accountsOf`, which the keeper reads accounts through, against the engine's
    and the vault's own views, for accounts with no, one and two positions and an unknown id."""
    empty = h.open_account(alice, 1_000)
    one = h.open_account(alice, 5_000)
    h.trade(alice, one, ETH, "-1.5")
    two = h.open_account(bob, 20_000)
    h.trade(bob, two, ETH, "2")
    h.trade(bob, two, BTC, "-0.1")
    ids = [two, empty, 999_999, one]
    batched = h.reader.accounts(ids, chunk=3)  # two calls, one of them partial
    assert list(batched) == ids
    for account in ids:
        assert batched[account] == h.reader.account(account)
    assert set(batched[two].positions) == {0, 1} and batched[two].positions[0].size == wad(2)
    assert batched[empty].positions == {} and batched[empty].margin_token == usdc(1_000)


def test_the_keeper_sends_nothing_while_every_account_is_healthy(h: Harness, alice: Any, make_keeper: Any) -> None:
    account = h.open_account(alice, 10_000)
    h.trade(alice, account, ETH, "1")
    keeper = make_keeper()
    keeper.hydrate()
    start = h.chain.blocks.head.number
    h.set_price(ETH, 2_860)
    assert keeper.step() == 0
    assert keeper_receipts(h, keeper.address, start) == []
    assert len(keeper.state.records) == 1


# --------------------------------------------------------------------------- market orders


def test_the_keeper_settles_a_due_market_order_at_the_first_price_published_after_its_delay(
    h: Harness, alice: Any, make_keeper: Any
) -> None:
    account = h.open_account(alice, 10_000)
    order, t = h.commit(alice, account, ETH, "2")
    keeper = make_keeper()
    keeper.hydrate()
    start = h.chain.blocks.head.number
    due = t + h.delay
    for offset, usd in ((-1, 2_990), (0, 3_010), (1, 3_050)):
        h.book.publish(ETH, usd, due + offset)
    h.chain.mine(timestamp=due + 2)
    before = balance(h, keeper.address)
    step_and_land(keeper)
    [settled], cancelled = order_events(h, start)
    assert not cancelled and int(settled.orderId) == order
    assert int(settled.publishTime) == due
    skew_scale = m.MarketParams.from_chain(h.p.engine.marketParams(0)).skew_scale
    assert int(settled.fillPriceWad) == m.perp.fill_price(wad(3_010), 0, wad(2), skew_scale)
    assert h.position(account, ETH).size == wad(2)
    assert balance(h, keeper.address) - before == usdc(1)  # the executor fee
    assert statuses(h, keeper, start) == [1]


def test_the_keeper_settles_orders_of_both_markets_in_one_transaction(
    h: Harness, alice: Any, bob: Any, make_keeper: Any
) -> None:
    first = h.open_account(alice, 10_000)
    second = h.open_account(bob, 10_000)
    orders = [
        h.commit(alice, first, ETH, "1")[0],
        h.commit(bob, second, BTC, "-0.1")[0],
        h.commit(alice, first, ETH, "1")[0],
    ]
    keeper = make_keeper()
    keeper.hydrate()
    start = h.chain.blocks.head.number
    h.advance(h.delay)
    h.publish_all()
    before = balance(h, keeper.address)
    step_and_land(keeper)
    settled, cancelled = order_events(h, start)
    assert sorted(int(e.orderId) for e in settled) == sorted(orders) and not cancelled
    assert (h.position(first, ETH).size, h.position(second, BTC).size) == (wad(2), -wad("0.1"))
    assert balance(h, keeper.address) - before == usdc(3)
    assert statuses(h, keeper, start) == [1]


@pytest.mark.parametrize(
    "split",
    [{"max_batch": 1}, {"gas_base": 30_000, "gas_per_order": 20_000}],
    ids=["by-batch-size", "by-gas"],
)
def test_orders_sharing_one_proven_price_each_get_its_proof_when_split_into_several_batches(
    h: Harness, alice: Any, project: Any, make_keeper: Any, split: dict[str, int]
) -> None:
    """Two orders committed in one transaction share their price (same market, same earliest
    publish time): the contract proves it once per batch and lets the batch's later orders of
    that key reuse it. Split into two batches (by the batch size, or by the out-of-gas split),
    each batch's first order of the key must carry the proof, or that batch settles nothing."""
    seeder = project.BulkSeeder.deploy(h.p.engine, h.p.vault, h.p.order_book, h.p.token, sender=alice)
    h.p.token.mint(seeder, usdc(20_000), sender=alice)
    seeder.openAccounts(2, usdc(10_000), sender=alice)
    first = int(h.p.engine.accountCount()) - 1
    receipt = seeder.commitOrders([first, first + 1], 0, [wad(1), wad(-1)], usdc(1), sender=alice)
    orders = [int(e.orderId) for e in receipt.events.filter(h.p.order_book.OrderPlaced)]
    keeper = make_keeper(**split)
    keeper.hydrate()
    start = h.chain.blocks.head.number
    h.advance(h.delay)
    h.publish_all()
    step_and_land(keeper)
    settled, cancelled = order_events(h, start)
    assert sorted(int(e.orderId) for e in settled) == sorted(orders) and not cancelled
    assert len({int(e.publishTime) for e in settled}) == 1  # one price, proven in each batch
    assert len({e.block_number for e in settled}) == 2  # two transactions
    assert (h.position(first, ETH).size, h.position(first + 1, ETH).size) == (wad(1), -wad(1))
    assert set(statuses(h, keeper, start)) == {1}


def test_a_steps_batches_are_all_broadcast_before_the_first_is_mined(h: Harness, bob: Any, make_keeper: Any) -> None:
    """Three due orders in three batches (`max_batch=1`): the keeper simulates the three and
    sends them back to back with consecutive nonces; the step ends without waiting for them to
    be mined. The node mines only when told: the three are in its pool together before the first
    block, which holds all three. (Sent one at a time, each waiting for its receipt, only the
    first would be there.) The next step reads their receipts and forgets the orders."""
    traders = [h.open_account(bob, 10_000) for _ in range(3)]
    orders = [h.commit(bob, account, ETH, "1")[0] for account in traders]
    keeper = make_keeper(max_batch=1)
    keeper.hydrate()
    start = h.chain.blocks.head.number
    h.advance(h.delay)
    h.publish_all()
    all_sent, finished, _ = step_into_one_block(h, keeper, 3)
    assert all_sent
    assert finished
    assert keeper.state.in_flight == set(orders)  # sent, receipts not read yet
    keeper.step()
    receipts = keeper_receipts(h, keeper.address, start)
    assert [r["status"] for r in receipts] == [1, 1, 1]
    assert len({r["blockNumber"] for r in receipts}) == 1  # one block holds the three
    nonces = [int(h.chain.provider.web3.eth.get_transaction(r["transactionHash"])["nonce"]) for r in receipts]
    assert nonces == list(range(nonces[0], nonces[0] + 3))
    settled, cancelled = order_events(h, start)
    assert sorted(int(e.orderId) for e in settled) == sorted(orders) and not cancelled
    assert not keeper.state.in_flight and not set(orders) & set(keeper.state.orders)


def test_a_steps_triggers_go_ahead_of_its_fills_so_a_stop_never_waits_behind_a_backlog(
    h: Harness, alice: Any, bob: Any, make_keeper: Any
) -> None:
    """A due market order and a stop-loss whose trigger the price meets, in batches of one: the
    stop's trigger is sent first (its delay then runs while the fills are settled), the market
    order behind it (a market order's batch is always done, whatever the batches ahead did). A
    delay later the stop fills. Every transaction succeeds."""
    account = h.open_account(alice, 20_000)
    h.trade(alice, account, ETH, "1")
    stop = place(h, alice, account, Kind.STOP_LOSS, "-1", "3000")
    other = h.open_account(bob, 10_000)
    order, _ = h.commit(bob, other, ETH, "1")
    keeper = make_keeper(max_batch=1)
    keeper.hydrate()
    start = h.chain.blocks.head.number
    h.advance(h.delay)
    h.set_price(ETH, 2_990)
    step_and_land(keeper)
    [triggered] = h.p.order_book.OrderTriggered.range(start + 1, h.chain.blocks.head.number + 1)
    [settled], _ = order_events(h, start)
    assert int(triggered.orderId) == stop and int(settled.orderId) == order
    assert triggered.block_number <= settled.block_number
    w3 = h.chain.provider.web3
    nonce = [int(w3.eth.get_transaction(e.transaction_hash)["nonce"]) for e in (triggered, settled)]
    assert nonce[0] < nonce[1]  # the trigger was sent first
    step_to_fill(h, keeper)
    settled, cancelled = order_events(h, start)
    assert [int(e.orderId) for e in settled] == [order, stop] and not cancelled
    assert h.position(account, ETH).size == 0
    assert set(statuses(h, keeper, start)) == {1}


def test_a_backlog_is_batched_by_the_gas_the_node_estimates_not_the_configured_guess(
    h: Harness, alice: Any, project: Any, make_keeper: Any
) -> None:
    """Six orders at a configured 5M gas each would need two batches of a 30M block; the node's
    estimate of a batch says far less, so they go in one transaction."""
    seeder = project.BulkSeeder.deploy(h.p.engine, h.p.vault, h.p.order_book, h.p.token, sender=alice)
    h.p.token.mint(seeder, usdc(60_000), sender=alice)
    seeder.openAccounts(6, usdc(10_000), sender=alice)
    first = int(h.p.engine.accountCount()) - 5
    ids = list(range(first, first + 6))
    receipt = seeder.commitOrders(ids, 0, [wad(1), -wad(1)] * 3, usdc(1), sender=alice)
    orders = [int(e.orderId) for e in receipt.events.filter(h.p.order_book.OrderPlaced)]
    keeper = make_keeper(gas_per_order=5_000_000)
    keeper.hydrate()
    start = h.chain.blocks.head.number
    h.advance(h.delay)
    h.publish_all()
    step_and_land(keeper)
    settled, cancelled = order_events(h, start)
    assert sorted(int(e.orderId) for e in settled) == sorted(orders) and not cancelled
    assert len({e.block_number for e in settled}) == 1  # one transaction
    assert statuses(h, keeper, start) == [1]


def test_an_order_a_batch_leaves_pending_stays_known_and_is_settled_once_it_can_be(
    h: Harness, alice: Any, bob: Any, make_keeper: Any
) -> None:
    """A batch may leave an order pending: here a limit order whose trigger the price meets but
    whose fill, above the price by the skew premium, exceeds its limit: the contract sends it back
    to waiting for its trigger. The keeper keeps it too (reading it back from `OrderRearmed`),
    triggers it again when the price allows, and fills it a delay later."""
    buyer = h.open_account(alice, 20_000)
    limit = place(h, alice, buyer, Kind.LIMIT, "10", "3000")
    trader = h.open_account(bob, 10_000)
    order, _ = h.commit(bob, trader, ETH, "1")
    keeper = make_keeper()
    keeper.hydrate()
    start = h.chain.blocks.head.number
    h.advance(h.delay)
    h.set_price(ETH, "2999.99")  # the limit triggers; with the premium it would fill above $3,000
    step_and_land(keeper)
    [settled], cancelled = order_events(h, start)
    assert int(settled.orderId) == order and not cancelled
    assert h.p.order_book.order(limit).triggered
    step_to_fill(h, keeper)  # its fill price breaches the limit: back to waiting
    assert order_events(h, start) == ([settled], [])
    assert int(h.p.order_book.order(limit).updatedAt) != 0 and not h.p.order_book.order(limit).triggered
    assert limit in keeper.state.orders  # still pending: still the keeper's to settle
    h.advance(h.delay)
    h.set_price(ETH, 2_990)
    step_and_land(keeper)  # triggered again
    step_to_fill(h, keeper)
    settled, cancelled = order_events(h, start)
    assert [int(e.orderId) for e in settled] == [order, limit] and not cancelled
    assert int(settled[1].fillPriceWad) <= wad(3_000)
    assert h.position(buyer, ETH).size == wad(10)
    assert limit not in keeper.state.orders
    assert set(statuses(h, keeper, start)) == {1}


def test_the_keeper_cancels_an_expired_order_and_its_fee_goes_to_the_insurance_fund(
    h: Harness, alice: Any, make_keeper: Any
) -> None:
    account = h.open_account(alice, 10_000)
    order, t = h.commit(alice, account, ETH, "1", executor_fee="2")
    keeper = make_keeper()
    keeper.hydrate()
    start = h.chain.blocks.head.number
    h.chain.mine(timestamp=t + h.delay + h.window + 1)  # no price published in its window
    h.publish_all()
    before, insurance = balance(h, keeper.address), int(h.p.vault.insuranceFund())
    step_and_land(keeper)
    settled, [cancelled] = order_events(h, start)
    assert not settled and int(cancelled.orderId) == order
    assert cancelled.feeTo == h.p.vault.address
    assert int(h.p.vault.insuranceFund()) - insurance == usdc(2)
    assert balance(h, keeper.address) == before  # cancelling pays the keeper nothing
    assert h.margin(account) == usdc(9_998) and h.position(account, ETH).size == 0
    assert statuses(h, keeper, start) == [1]


def test_a_keeper_that_finds_an_order_already_settled_sends_nothing(
    h: Harness, alice: Any, make_keeper: Any, accounts: Any
) -> None:
    account = h.open_account(alice, 10_000)
    order, _ = h.commit(alice, account, ETH, "1")
    keeper, rival = make_keeper(), make_keeper(signer=accounts[6])
    keeper.hydrate()
    rival.hydrate()
    start = h.chain.blocks.head.number
    h.advance(h.delay)
    h.publish_all()
    step_and_land(rival)
    step_and_land(keeper)  # its state still holds the order until it reads the rival's block
    [settled], _ = order_events(h, start)
    assert settled.keeper == accounts[6].address
    assert keeper_receipts(h, keeper.address, start) == []
    assert order not in keeper.state.orders


def test_a_dry_run_keeper_sends_nothing(h: Harness, alice: Any, make_keeper: Any) -> None:
    account = h.open_account(alice, 10_000)
    order, _ = h.commit(alice, account, ETH, "1")
    keeper = make_keeper(dry_run=True)
    keeper.hydrate()
    start = h.chain.blocks.head.number
    h.advance(h.delay)
    h.publish_all()
    step_and_land(keeper)
    assert keeper_receipts(h, keeper.address, start) == []
    assert int(h.p.order_book.order(order).updatedAt) != 0


# --------------------------------------------------------------------------- conditional orders


def test_the_keeper_executes_a_triggered_stop_loss_and_its_take_profit_is_cancelled_with_the_fee_back(
    h: Harness, alice: Any, make_keeper: Any
) -> None:
    account = h.open_account(alice, 10_000)
    h.trade(alice, account, ETH, "2")
    stop = place(h, alice, account, Kind.STOP_LOSS, "-2", "2900")
    take = place(h, alice, account, Kind.TAKE_PROFIT, "-2", "3100")
    keeper = make_keeper()
    keeper.hydrate()
    start = h.chain.blocks.head.number
    h.advance(h.delay)
    h.set_price(ETH, 2_950)  # not yet
    step_and_land(keeper)
    assert keeper_receipts(h, keeper.address, start) == []
    h.set_price(ETH, 2_890)
    before = balance(h, keeper.address)
    step_and_land(keeper)  # triggers the stop
    assert order_events(h, start) == ([], []) and h.p.order_book.order(stop).triggered
    published = step_to_fill(h, keeper)
    [settled], [cancelled] = order_events(h, start)
    assert (int(settled.orderId), int(settled.sizeDeltaWad)) == (stop, -wad(2))
    assert int(settled.publishTime) == published  # the price a delay after the trigger, which it brought
    assert int(cancelled.orderId) == take and cancelled.feeTo == ZERO  # its fee back to the margin
    assert h.position(account, ETH).size == 0
    assert balance(h, keeper.address) - before == usdc(1)  # the stop's fee, and only it
    [closed] = h.p.vault.Settled.range(settled.block_number, settled.block_number + 1)
    assert h.margin(account) == int(closed.marginAfterToken) + usdc(1)
    assert statuses(h, keeper, start) == [1, 1]


def test_the_keeper_executes_a_take_profit_when_the_price_reaches_it(h: Harness, alice: Any, make_keeper: Any) -> None:
    account = h.open_account(alice, 10_000)
    h.trade(alice, account, ETH, "-1")
    take = place(h, alice, account, Kind.TAKE_PROFIT, "1", "2800")
    keeper = make_keeper()
    keeper.hydrate()
    start = h.chain.blocks.head.number
    h.advance(h.delay)
    h.set_price(ETH, 2_790)
    before = balance(h, keeper.address)
    step_and_land(keeper)
    step_to_fill(h, keeper)
    [settled], _ = order_events(h, start)
    assert int(settled.orderId) == take and int(settled.fillPriceWad) < wad(2_800)
    assert h.position(account, ETH).size == 0
    assert balance(h, keeper.address) - before == usdc(1)
    assert statuses(h, keeper, start) == [1, 1]


def test_the_keeper_waits_for_a_price_published_a_delay_after_the_position_grew(
    h: Harness, alice: Any, make_keeper: Any
) -> None:
    account = h.open_account(alice, 20_000)
    h.trade(alice, account, ETH, "1")
    stop = place(h, alice, account, Kind.STOP_LOSS, "-1", "2900")
    h.advance(h.delay)
    h.set_price(ETH, 2_890)  # would trigger it ...
    h.trade(alice, account, ETH, "1")  # ... but the position grew after that price was published
    keeper = make_keeper()
    keeper.hydrate()
    start = h.chain.blocks.head.number
    step_and_land(keeper)
    assert keeper_receipts(h, keeper.address, start) == []
    h.advance(h.delay)
    h.set_price(ETH, 2_880)
    step_and_land(keeper)
    step_to_fill(h, keeper)
    [settled], _ = order_events(h, start)
    assert int(settled.orderId) == stop and int(settled.sizeDeltaWad) == -wad(1)
    assert h.position(account, ETH).size == wad(1)
    assert statuses(h, keeper, start) == [1, 1]


# --------------------------------------------------------------------------- LP requests


def test_the_keeper_settles_a_deposit_and_a_redemption_at_prices_it_brings(
    h: Harness, alice: Any, bob: Any, lp: Any, make_keeper: Any
) -> None:
    v = h.p.vault
    trader = h.open_account(alice, 10_000)
    h.trade(alice, trader, ETH, "1")  # open interest: every settlement needs an ETH price
    fee = int(v.lpParams().executorFee)
    h.p.token.mint(bob, usdc(1_000) + fee, sender=bob)
    h.p.token.approve(v, usdc(1_000) + fee, sender=bob)
    v.requestDeposit(usdc(1_000), bob, bob, sender=bob)
    shares = int(v.balanceOf(lp)) // 100
    h.p.token.mint(lp, fee, sender=lp)
    h.p.token.approve(v, fee, sender=lp)
    t = int(v.requestRedeem(shares, lp, lp, sender=lp).timestamp)
    keeper = make_keeper()
    keeper.hydrate()
    assert len(keeper.state.lp) == 2
    start = h.chain.blocks.head.number
    h.chain.mine(timestamp=t + h.lp_delay)
    h.publish_all()  # the price service publishes after the requests' delay
    h.advance(h.lp_grace)
    supply, before = int(v.totalSupply()), balance(h, keeper.address)
    step_and_land(keeper)
    [deposited] = v.DepositSettled.range(start + 1, h.chain.blocks.head.number + 1)
    [redeemed] = v.RedeemSettled.range(start + 1, h.chain.blocks.head.number + 1)
    # Each at the pool's value and supply when it settled (the other one may have come first).
    redeem_first = redeemed.block_number < deposited.block_number
    minted = m.pool.to_shares_down(usdc(1_000), int(deposited.poolValue), supply - shares * redeem_first)
    paid = m.pool.to_assets_down(shares, int(redeemed.poolValue), supply + minted * (not redeem_first))
    assert (int(v.maxDeposit(bob)), int(v.maxMint(bob))) == (usdc(1_000), minted)
    assert int(v.maxWithdraw(lp)) == paid > 0
    assert balance(h, keeper.address) - before == 2 * fee  # both requests' executor fees
    assert keeper.state.lp == {}
    assert statuses(h, keeper, start) == [1, 1]
