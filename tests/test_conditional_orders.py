"""Limit, stop-loss and take-profit orders. A keeper triggers one when the stored latest price,
published at least the delay after the order's last update and the position's last increase,
meets its trigger; it then fills as a market order committed at the trigger: at the earliest price
published at or after the trigger plus the delay."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ape
from harness import Harness, usdc, wad

from lever.math.orders import Kind

ETH = "ETH-USD"


def place(h: Harness, owner: Any, account: int, kind: Kind, size: str, trigger: str, acceptable: str = "0") -> int:
    receipt = h.p.order_book.placeOrder(
        account, 0, int(kind), wad(size), wad(trigger), wad(acceptable), usdc(1), sender=owner
    )
    return int(receipt.events.filter(h.p.order_book.OrderPlaced)[0].orderId)


def execute(
    h: Harness, order: int, usd: str | int, wait: int | None = None, fill: str | int | None = None
) -> tuple[list[Any], list[Any]]:
    """Moves the price (both oracles) after `wait` seconds (default: the delay) to `usd`, which
    triggers the order, then fills it at the price published at the trigger plus the delay:
    `fill` (default `usd`)."""
    h.advance(h.delay if wait is None else wait)
    h.set_price(ETH, usd)
    book = h.p.order_book
    triggered = h.trigger([order], [ETH])
    assert [int(e.orderId) for e in triggered.events.filter(book.OrderTriggered)] == [order]
    assert not triggered.events.filter(book.OrderSettled)  # never filled in the transaction that triggers it
    if fill is not None:
        h.set_price(ETH, fill)
    receipt = h.settle([order], [ETH], int(triggered.timestamp))
    return list(receipt.events.filter(book.OrderSettled)), list(receipt.events.filter(book.OrderCancelled))


def test_a_buy_limit_fills_only_at_or_below_its_limit(h: Harness, alice: Any) -> None:
    account = h.open_account(alice, 10_000)
    order = place(h, alice, account, Kind.LIMIT, "1", "2950")
    h.advance(h.delay)
    h.set_price(ETH, 2960)
    with ape.reverts(h.p.order_book.NothingToSettle):
        h.trigger([order], [ETH])
    [settled], _ = execute(h, order, 2940)
    assert int(settled.fillPriceWad) <= wad(2950)
    assert h.position(account, ETH).size == wad(1)


def test_a_triggered_order_fills_at_the_first_price_after_its_trigger_not_at_the_triggering_price(
    h: Harness, alice: Any
) -> None:
    account = h.open_account(alice, 10_000)
    order = place(h, alice, account, Kind.LIMIT, "1", "2950")
    h.advance(h.delay)
    h.set_price(ETH, 2900)
    triggered = h.trigger([order], [ETH])
    h.set_price(ETH, 2940)
    [settled] = h.settle([order], [ETH], int(triggered.timestamp)).events.filter(h.p.order_book.OrderSettled)
    assert int(settled.publishTime) == int(triggered.timestamp) + h.delay
    assert wad(2940) <= int(settled.fillPriceWad) <= wad(2950)  # 2,940 and its premium, not 2,900


def test_a_triggered_limit_whose_fill_breaches_its_limit_pays_the_settler_and_waits_for_its_trigger_again(
    h: Harness, alice: Any
) -> None:
    account = h.open_account(alice, 10_000)
    order = place(h, alice, account, Kind.LIMIT, "1", "2950")
    keeper = int(h.p.token.balanceOf(h.keeper))
    settled, cancelled = execute(h, order, 2940, fill=2970)
    assert settled == [] and cancelled == []
    o = h.p.order_book.order(order)
    assert not o.triggered and int(o.updatedAt) == h.now()  # back to waiting, its delay restarted
    assert int(h.p.token.balanceOf(h.keeper)) - keeper == usdc(1)  # the attempt's fee
    assert h.margin(account) == usdc(9_998)  # and a new fee escrowed from the margin
    [settled], _ = execute(h, order, 2930)
    assert int(settled.fillPriceWad) <= wad(2950)


def test_a_never_fillable_order_pays_for_every_attempt_until_its_margin_runs_out(h: Harness, alice: Any) -> None:
    """A limit buy that every price triggers and no fill can meet (acceptable price 1 wei): each
    trigger-and-refuse round pays the keeper the order's fee, escrowed again from the margin;
    once the margin cannot pay, the order is cancelled. Keepers never work for nothing."""
    account = h.open_account(alice, 3)
    receipt = h.p.order_book.placeOrder(account, 0, int(Kind.LIMIT), wad(1), wad(10**9), 1, usdc(1), sender=alice)
    order = int(receipt.events.filter(h.p.order_book.OrderPlaced)[0].orderId)
    keeper = int(h.p.token.balanceOf(h.keeper))
    for margin_left in (1, 0):
        assert execute(h, order, 3000) == ([], [])
        assert int(h.p.order_book.order(order).updatedAt) != 0 and h.margin(account) == usdc(margin_left)
    _, [cancelled] = execute(h, order, 3000)
    assert cancelled.feeTo == h.keeper.address and int(h.p.order_book.order(order).updatedAt) == 0
    assert int(h.p.token.balanceOf(h.keeper)) - keeper == usdc(3)
    assert h.margin(account) == 0


def test_a_triggered_order_cannot_be_updated_or_cancelled_and_lapses_like_a_market_order(
    h: Harness, alice: Any, bob: Any
) -> None:
    account = h.open_account(alice, 10_000)
    order = place(h, alice, account, Kind.LIMIT, "1", "2950")
    h.advance(h.delay)
    h.set_price(ETH, 2940)
    h.trigger([order], [ETH])
    expiry = h.now() + h.delay + h.window
    assert int(h.p.order_book.expiryOf(order)) == expiry
    with ape.reverts(h.p.order_book.OrderNotCancellable):
        h.p.order_book.updateOrder(order, wad(1), wad(2000), 0, sender=alice)
    with ape.reverts(h.p.order_book.OrderNotCancellable):
        h.p.order_book.cancelOrder(order, sender=alice)
    insurance = int(h.p.vault.insuranceFund())
    h.advance(expiry + 1 - h.now())
    h.p.order_book.cancelOrder(order, sender=bob)  # lapsed: anyone may remove it
    assert int(h.p.vault.insuranceFund()) - insurance == usdc(1)
    assert h.margin(account) == usdc(9_999)


def test_a_stop_loss_closes_a_long_when_the_price_falls_to_its_trigger(h: Harness, alice: Any) -> None:
    account = h.open_account(alice, 10_000)
    h.trade(alice, account, ETH, "2")
    order = place(h, alice, account, Kind.STOP_LOSS, "-5", "2900")  # larger than the position: clipped
    h.advance(h.delay)
    h.set_price(ETH, 2950)
    with ape.reverts(h.p.order_book.NothingToSettle):
        h.trigger([order], [ETH])
    [settled], _ = execute(h, order, 2890)
    assert int(settled.sizeDeltaWad) == -wad(2)
    assert h.position(account, ETH).size == 0


def test_a_take_profit_closes_a_short_when_the_price_falls_to_its_trigger(h: Harness, alice: Any) -> None:
    account = h.open_account(alice, 10_000)
    h.trade(alice, account, ETH, "-1")
    order = place(h, alice, account, Kind.TAKE_PROFIT, "1", "2800")
    [settled], _ = execute(h, order, 2790)
    assert h.position(account, ETH).size == 0
    assert int(settled.fillPriceWad) < wad(2800)


def test_stop_loss_and_take_profit_are_reduce_only(h: Harness, alice: Any) -> None:
    account = h.open_account(alice, 10_000)
    with ape.reverts(h.p.order_book.ReduceOnlyViolated):  # no position yet
        place(h, alice, account, Kind.STOP_LOSS, "-1", "2900")
    h.trade(alice, account, ETH, "1")
    with ape.reverts(h.p.order_book.ReduceOnlyViolated):  # same side as the position
        place(h, alice, account, Kind.TAKE_PROFIT, "1", "3100")


def test_closing_the_position_cancels_its_stop_and_take_profit_and_refunds_their_fees(h: Harness, alice: Any) -> None:
    account = h.open_account(alice, 10_000)
    h.trade(alice, account, ETH, "1")
    stop = place(h, alice, account, Kind.STOP_LOSS, "-1", "2500")
    take = place(h, alice, account, Kind.TAKE_PROFIT, "-1", "3500")
    before = h.margin(account)
    receipt = h.close(alice, account, ETH)
    cancelled = {int(e.orderId) for e in receipt.events.filter(h.p.order_book.OrderCancelled)}
    assert cancelled == {stop, take}
    assert int(h.p.order_book.order(stop).updatedAt) == 0 == int(h.p.order_book.order(take).updatedAt)
    fee_back = usdc(2)
    assert h.margin(account) - before > fee_back - usdc(10)  # both fees back, less the close's own costs


def test_a_stop_cannot_be_triggered_by_a_price_from_before_the_positions_last_increase(h: Harness, alice: Any) -> None:
    account = h.open_account(alice, 20_000)
    h.trade(alice, account, ETH, "1")
    order = place(h, alice, account, Kind.STOP_LOSS, "-1", "2900")
    h.advance(h.delay)
    h.set_price(ETH, 2890)  # a price that would trigger it ...
    early = h.latest_updates([ETH])
    h.trade(alice, account, ETH, "1")  # ... but the position grew after it was published
    with ape.reverts(h.p.order_book.NothingToSettle):
        h.p.order_book.settleOrders([order], [b""], early, sender=h.keeper, value=h.fee(1))
    [settled], _ = execute(h, order, 2880)
    assert h.position(account, ETH).size == wad(1)  # the stop's size was -1: one of two closed
    assert int(settled.sizeDeltaWad) == -wad(1)


def test_updating_an_order_restarts_its_delay(h: Harness, alice: Any) -> None:
    account = h.open_account(alice, 10_000)
    order = place(h, alice, account, Kind.LIMIT, "1", "2950")
    h.advance(h.delay)
    h.set_price(ETH, 2940)  # would fill the old order ...
    h.p.order_book.updateOrder(order, wad(1), wad(2945), 0, sender=alice)
    with ape.reverts(h.p.order_book.NothingToSettle):  # ... but the price predates the update + delay
        h.trigger([order], [ETH])
    [settled], _ = execute(h, order, 2940)
    assert int(settled.fillPriceWad) <= wad(2945)


def test_the_owner_cancels_a_waiting_conditional_order_and_keeps_the_fee(h: Harness, alice: Any, bob: Any) -> None:
    account = h.open_account(alice, 10_000)
    order = place(h, alice, account, Kind.LIMIT, "1", "2000")
    assert h.margin(account) == usdc(9_999)
    with ape.reverts(h.p.order_book.NotAccountOwner):
        h.p.order_book.cancelOrder(order, sender=bob)
    h.p.order_book.cancelOrder(order, sender=alice)
    assert h.margin(account) == usdc(10_000)


def test_a_limit_whose_fill_would_breach_it_waits_instead_of_cancelling(h: Harness, alice: Any, bob: Any) -> None:
    account = h.open_account(alice, 10_000)
    order = place(h, alice, account, Kind.LIMIT, "1", "3000")
    whale = h.open_account(bob, 1_000_000)
    h.trade(bob, whale, ETH, "150")  # a long skew: buys now fill above the oracle price
    settled, cancelled = execute(h, order, 3000)  # the oracle price meets the limit, the fill does not
    assert settled == [] and cancelled == []
    assert int(h.p.order_book.order(order).updatedAt) != 0 and not h.p.order_book.order(order).triggered
    h.close(bob, whale, ETH)
    [settled], _ = execute(h, order, 2999)
    assert int(settled.fillPriceWad) <= wad(3000)
    assert Decimal(int(settled.fillPriceWad)) > 0
