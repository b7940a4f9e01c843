"""Market orders in two steps: the price is the first one published at or after commit + delay,
within a window; a pending order is never a free option."""

from __future__ import annotations

from typing import Any

import ape
import pytest
from harness import Harness, usdc, wad

from lever import math as m
from lever.pyth import encode_update

ETH = "ETH-USD"


def _fill_events(h: Harness, receipt: Any) -> tuple[list[Any], list[Any]]:
    book = h.p.order_book
    return list(receipt.events.filter(book.OrderSettled)), list(receipt.events.filter(book.OrderCancelled))


def _reason(h: Harness, cancelled: Any) -> str:
    return h.reader.arts.error_name(bytes(cancelled.reason))


def test_a_market_order_fills_at_the_first_price_published_after_commit_plus_delay(h: Harness, alice: Any) -> None:
    account = h.open_account(alice, 10_000)
    order, t = h.commit(alice, account, ETH, "2")
    due = t + h.delay
    for offset, usd in ((-1, 2990), (0, 3010), (1, 3050)):
        h.book.publish(ETH, usd, due + offset)
    h.chain.mine(timestamp=due + 2)
    feed = h.book.feeds[ETH]
    later = feed.at_or_after(due + 1)
    earlier = feed.at_or_after(due - 1)
    assert later is not None and earlier is not None
    for wrong in (later, earlier):
        blob = encode_update(feed.price_id, wrong[0], wrong[1])
        with ape.reverts(h.p.order_book.NothingToSettle):
            h.p.order_book.settleOrders([order], [blob], [], sender=h.keeper, value=h.fee(1))
    receipt = h.p.order_book.settleOrders([order], [feed.update_at_or_after(due)], [], sender=h.keeper, value=h.fee(1))
    [settled], _ = _fill_events(h, receipt)
    assert int(settled.fillPriceWad) == m.perp.fill_price(wad(3010), 0, wad(2), h.config.markets[ETH].params()[10])
    assert int(settled.publishTime) == due


def test_an_order_cannot_settle_before_its_delay(h: Harness, alice: Any) -> None:
    account = h.open_account(alice, 10_000)
    order, t = h.commit(alice, account, ETH, "1")
    h.book.publish(ETH, 3000, t)  # published before commit + delay: not eligible
    blob = h.book.feeds[ETH].update_at_or_after(t)
    with ape.reverts(h.p.order_book.NothingToSettle):
        h.p.order_book.settleOrders([order], [blob], [], sender=h.keeper, value=h.fee(1))


def test_an_expired_order_can_be_cancelled_by_anyone_and_its_fee_goes_to_the_insurance_fund(
    h: Harness, alice: Any, stranger: Any
) -> None:
    """Letting an order lapse must cost its trader: otherwise a pending order (or a long and a
    short committed together) would be a free option on the price published after the delay."""
    account = h.open_account(alice, 10_000)
    order, t = h.commit(alice, account, ETH, "1", executor_fee="2")
    assert h.margin(account) == usdc(9_998)
    with ape.reverts(h.p.order_book.OrderNotCancellable):
        h.p.order_book.cancelOrder(order, sender=alice)
    h.chain.mine(timestamp=t + h.delay + h.window + 1)
    before, insurance = int(h.p.token.balanceOf(stranger)), int(h.p.vault.insuranceFund())
    receipt = h.p.order_book.cancelOrder(order, sender=stranger)
    assert int(h.p.token.balanceOf(stranger)) == before
    assert int(h.p.vault.insuranceFund()) - insurance == usdc(2)
    assert (
        h.reader.arts.error_name(bytes(receipt.events.filter(h.p.order_book.OrderCancelled)[0].reason))
        == "OrderNotCancellable"
    )
    assert h.margin(account) == usdc(9_998)  # the fee is gone, nothing else


def test_a_keeper_settling_an_expired_order_cancels_it(h: Harness, alice: Any) -> None:
    account = h.open_account(alice, 10_000)
    order, t = h.commit(alice, account, ETH, "1")
    h.chain.mine(timestamp=t + h.delay + h.window + 1)
    receipt = h.p.order_book.settleOrders([order], [b""], [], sender=h.keeper)
    settled, [cancelled] = _fill_events(h, receipt)
    assert not settled and int(cancelled.orderId) == order
    assert int(h.p.engine.position(account, 0).sizeWad) == 0


def test_an_order_past_its_acceptable_price_is_cancelled_and_pays_the_settler(h: Harness, alice: Any) -> None:
    account = h.open_account(alice, 10_000)
    order, t = h.commit(alice, account, ETH, "1", acceptable=wad(3005))
    h.prices[ETH] = 3010  # the market moved up before the price the order gets
    before = int(h.p.token.balanceOf(h.keeper))
    settled, [cancelled] = _fill_events(h, h.settle([order], [ETH], t))
    assert not settled and _reason(h, cancelled) == "AcceptablePriceExceeded"
    assert int(h.p.token.balanceOf(h.keeper)) - before == usdc(1)
    assert h.margin(account) == usdc(9_999)


def test_an_order_the_margin_cannot_carry_is_cancelled(h: Harness, alice: Any) -> None:
    account = h.open_account(alice, 100)
    order, t = h.commit(alice, account, ETH, "10")  # $30,000 on $100
    _, [cancelled] = _fill_events(h, h.settle([order], [ETH], t))
    assert _reason(h, cancelled) in ("LeverageTooHigh", "InsufficientMargin")


@pytest.mark.parametrize("fee, error", [("0.01", "ExecutorFeeOutOfBounds"), ("21", "ExecutorFeeOutOfBounds")])
def test_the_executor_fee_is_bounded(h: Harness, alice: Any, fee: str, error: str) -> None:
    account = h.open_account(alice, 1_000)
    with ape.reverts(getattr(h.p.order_book, error)):
        h.p.order_book.commitOrder(account, 0, wad(1), 0, usdc(fee), sender=alice)


def test_an_account_holds_at_most_eight_pending_orders(h: Harness, alice: Any) -> None:
    account = h.open_account(alice, 1_000)
    for _ in range(8):
        h.p.order_book.commitOrder(account, 0, wad("0.01"), 0, usdc("0.1"), sender=alice)
    with ape.reverts(h.p.order_book.OrderSlotsFull):
        h.p.order_book.commitOrder(account, 0, wad("0.01"), 0, usdc("0.1"), sender=alice)


def test_only_the_owner_commits_and_a_fee_the_margin_cannot_cover_comes_from_the_wallet(
    h: Harness, alice: Any, bob: Any
) -> None:
    account = h.open_account(alice, 0)
    with ape.reverts(h.p.order_book.NotAccountOwner):
        h.p.order_book.commitOrder(account, 0, wad(1), 0, usdc(1), sender=bob)
    with ape.reverts(h.p.token.ERC20InsufficientAllowance):  # no margin, no approval
        h.p.order_book.commitOrder(account, 0, wad(1), 0, usdc(1), sender=alice)
    h.p.token.mint(alice, usdc(1), sender=alice)
    h.p.token.approve(h.p.vault, usdc(1), sender=alice)
    h.p.order_book.commitOrder(account, 0, wad(1), 0, usdc(1), sender=alice)
    assert int(h.p.token.balanceOf(alice)) == 0 and h.margin(account) == 0
    assert int(h.p.vault.orderEscrow()) == usdc(1)


def test_settling_returns_the_unspent_update_fee(h: Harness, alice: Any) -> None:
    account = h.open_account(alice, 10_000)
    order, t = h.commit(alice, account, ETH, "1")
    due = t + h.delay
    h.book.publish(ETH, 3000, due)
    h.chain.mine(timestamp=due)
    blob = h.book.feeds[ETH].update_at_or_after(due)
    keeper = h.keeper
    before = keeper.balance
    receipt = h.p.order_book.settleOrders([order], [blob], [], sender=keeper, value=10**15)
    spent = before - keeper.balance
    assert spent == receipt.total_fees_paid + h.fee(1)


def test_a_settler_starving_the_trade_of_gas_cannot_get_the_order_cancelled(h: Harness, alice: Any) -> None:
    """An out-of-gas inside the trade reverts the whole settlement instead of cancelling."""
    account = h.open_account(alice, 10_000)
    order, t = h.commit(alice, account, ETH, "1")
    due = t + h.delay
    h.book.publish(ETH, 3000, due)
    h.chain.mine(timestamp=due)
    blob = h.book.feeds[ETH].update_at_or_after(due)
    outcomes = set()
    for i, gas in enumerate(range(250_000, 850_001, 100_000)):  # a few tries, well inside the window
        h.chain.pending_timestamp = due + 1 + i  # however slow the machine, not past the window
        try:
            receipt = h.p.order_book.settleOrders([order], [blob], [], sender=h.keeper, value=h.fee(1), gas=gas)
        except Exception:  # noqa: BLE001 - the transaction failed: nothing cancelled
            outcomes.add("reverted")
            continue
        _, cancelled = _fill_events(h, receipt)
        assert not cancelled, f"cancelled at {gas} gas"
        outcomes.add("filled")
        break
    assert outcomes == {"reverted", "filled"}
    assert int(h.p.engine.position(account, 0).sizeWad) == wad(1)
