"""Positions: skew-priced fills and maker/taker fees, funding, borrowing, the profit cap, the
account's debt, withdrawals, and the pool's caps."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ape
from harness import Harness, usdc, wad

from lever import math as m

ETH = "ETH-USD"
DAY = 86_400


def params(h: Harness) -> m.MarketParams:
    return m.MarketParams.from_chain(h.p.engine.marketParams(0))


def settled(h: Harness, receipt: Any) -> Any:
    [event] = receipt.events.filter(h.p.order_book.OrderSettled)
    return event


def test_a_fill_pays_the_skew_premium_and_the_taker_fee(h: Harness, alice: Any, bob: Any) -> None:
    p = params(h)
    whale = h.open_account(bob, 500_000)
    h.trade(bob, whale, ETH, "100")
    account = h.open_account(alice, 10_000)
    before = h.margin(account)
    fill = int(settled(h, h.trade(alice, account, ETH, "10")).fillPriceWad)
    assert fill == m.perp.fill_price(wad(3000), wad(100), wad(10), p.skew_scale) > wad(3000)
    fee = m.perp.trade_fee(wad(100), wad(10), fill, p.maker_fee, p.taker_fee)
    assert before - h.margin(account) == m.fixed.to_token_up(fee, 10**12) + usdc(1)  # and the executor fee


def test_the_part_of_a_trade_that_reduces_skew_pays_the_maker_fee(h: Harness, alice: Any, bob: Any) -> None:
    p = params(h)
    whale = h.open_account(bob, 500_000)
    h.trade(bob, whale, ETH, "100")
    account = h.open_account(alice, 100_000)
    before = h.margin(account)
    fill = int(settled(h, h.trade(alice, account, ETH, "-150")).fillPriceWad)
    assert fill > wad(3000)  # a sell into a long skew fills above the price
    fee = m.perp.trade_fee(wad(100), -wad(150), fill, p.maker_fee, p.taker_fee)
    maker_part = m.fixed.mul_div_up(m.fixed.mul_div_up(wad(100), fill, 10**18), p.maker_fee, 10**18)
    assert fee == maker_part + m.fixed.mul_div_up(m.fixed.mul_div_up(wad(50), fill, 10**18), p.taker_fee, 10**18)
    assert before - h.margin(account) == m.fixed.to_token_up(fee, 10**12) + usdc(1)


def test_a_round_trip_at_an_unchanged_price_costs_exactly_its_fees(h: Harness, alice: Any) -> None:
    p = params(h)
    account = h.open_account(alice, 50_000)
    before = h.margin(account)
    opened = settled(h, h.trade(alice, account, ETH, "20"))
    receipt = h.close(alice, account, ETH)
    closed = settled(h, receipt)
    open_fill, close_fill = int(opened.fillPriceWad), int(closed.fillPriceWad)
    assert open_fill == close_fill  # the premium paid on the way in is earned back on the way out
    fees = m.fixed.to_token_up(m.perp.trade_fee(0, wad(20), open_fill, p.maker_fee, p.taker_fee), 10**12)
    fees += m.fixed.to_token_up(m.perp.trade_fee(wad(20), -wad(20), close_fill, p.maker_fee, p.taker_fee), 10**12)
    [changed] = receipt.events.filter(h.p.engine.PositionChanged)
    charges = -int(changed.realisedWad)  # the seconds of borrowing fee the position held
    assert 0 <= charges < wad("0.01")
    assert before - h.margin(account) == fees + 2 * usdc(1) + m.fixed.to_token_up(charges, 10**12)


def test_a_dust_receiver_earns_at_most_the_payers_rate(h: Harness, alice: Any, bob: Any) -> None:
    """$300k of longs pay funding; a 0.01 ETH short receives the payers' rate on its own size,
    not the whole payment (the rest stays with the pool)."""
    longs = h.open_account(bob, 100_000)
    h.trade(bob, longs, ETH, "100")
    dust = h.open_account(alice, 1_000)
    h.trade(alice, dust, ETH, "-0.01")
    h.advance(DAY)
    h.refresh()
    state = m.MarketState.from_chain(h.p.engine.currentMarketState(0))
    before = m.MarketState.from_chain(h.p.engine.marketState(0))
    paid_per_unit = state.long_index - before.long_index
    received_per_unit = before.short_index - state.short_index
    assert 0 < received_per_unit <= paid_per_unit
    short = h.position(dust, ETH)
    received = m.perp.charge_owed(abs(short.size), before.short_index, short.entry_charge) - m.perp.charge_owed(
        abs(short.size), state.short_index, short.entry_charge
    )
    assert received <= m.fixed.mul_div_up(paid_per_unit, abs(short.size), 10**18) + 1


def test_open_interest_pays_a_borrowing_fee_on_both_sides(h: Harness, alice: Any, bob: Any) -> None:
    a = h.open_account(alice, 100_000)
    b = h.open_account(bob, 100_000)
    h.trade(alice, a, ETH, "50")
    h.trade(bob, b, ETH, "-50")  # a balanced book: no funding
    before = m.MarketState.from_chain(h.p.engine.marketState(0))
    h.advance(DAY)
    h.refresh()
    after = m.MarketState.from_chain(h.p.engine.currentMarketState(0))
    p = params(h)
    pool = int(h.p.vault.poolAssets()) * 10**12
    for cost, index_delta in (
        (before.long_cost, after.long_index - before.long_index),
        (before.short_cost, after.short_index - before.short_index),
    ):
        rate = m.perp.borrow_rate_per_day(p.borrow_rate_per_day, m.perp.reserve(cost, p.max_profit_ratio), pool)
        assert rate > 0 and index_delta > 0
        assert (
            abs(index_delta - m.perp.charge_index_delta(rate, wad(3000), DAY))
            <= m.perp.charge_index_delta(rate, wad(3000), DAY) // 1000
        )


def test_a_positions_profit_is_capped_at_its_share_of_entry_notional(h: Harness, alice: Any) -> None:
    account = h.open_account(alice, 10_000)
    opened = settled(h, h.trade(alice, account, ETH, "10"))
    cost = h.position(account, ETH).cost
    price = Decimal(3000)
    for _ in range(14):  # +60%, in steps the reference accepts
        price *= Decimal("1.034")
        h.set_price(ETH, price.quantize(Decimal("0.01")))
        h.p.oracle.confirmShock(0, sender=h.p.deployer)
    before = h.margin(account)
    receipt = h.close(alice, account, ETH)
    [changed] = receipt.events.filter(h.p.engine.PositionChanged)
    cap = m.perp.profit_cap(cost, params(h).max_profit_ratio)
    assert int(changed.realisedWad) == cap  # 50% of entry notional, not 60%
    assert int(changed.fillPriceWad) > int(opened.fillPriceWad) * 159 // 100  # the price rose ~60%
    assert h.margin(account) > before


def test_closing_a_losing_leg_leaves_a_debt_not_bad_debt(h: Harness, alice: Any) -> None:
    """Cross margin: a loss beyond the margin, while another position remains, is the account's
    debt to the pool; closing the winning leg pays it back. No bad debt is booked."""
    account = h.open_account(alice, 4_000)
    h.trade(alice, account, ETH, "10")
    h.trade(alice, account, "BTC-USD", "-0.5")
    h.set_price(ETH, 2_580)  # ETH long: -$4,200
    h.set_price("BTC-USD", 51_600)  # BTC short: +$4,200
    h.p.oracle.confirmShock(0, sender=h.p.deployer)
    h.p.oracle.confirmShock(1, sender=h.p.deployer)
    h.close(alice, account, ETH)
    assert h.margin(account) < 0
    assert int(h.p.vault.badDebtTotal()) == 0
    h.close(alice, account, "BTC-USD")
    assert 0 < h.margin(account) < usdc(4_000)
    assert int(h.p.vault.badDebtTotal()) == 0


def test_closing_the_last_position_while_owing_is_refused(h: Harness, alice: Any) -> None:
    account = h.open_account(alice, 1_000)
    h.trade(alice, account, ETH, "8")  # $24,000 on $1,000
    h.set_price(ETH, 2_860)  # -$1,120: more than the margin
    receipt = h.close(alice, account, ETH)
    [cancelled] = receipt.events.filter(h.p.order_book.OrderCancelled)
    assert h.reader.arts.error_name(bytes(cancelled.reason)) == "AccountUnderwater"
    assert h.position(account, ETH).size == wad(8)  # left for a liquidation


def test_a_withdrawal_keeps_equity_above_initial_margin(h: Harness, alice: Any, bob: Any) -> None:
    account = h.open_account(alice, 2_000)
    h.trade(alice, account, ETH, "10")
    h.refresh()
    with ape.reverts(h.p.engine.InsufficientMargin):
        h.p.vault.withdrawMargin(account, usdc(1_500), alice, sender=alice)
    with ape.reverts(h.p.vault.WithdrawExceedsMargin):
        h.p.vault.withdrawMargin(account, usdc(5_000), alice, sender=alice)
    with ape.reverts(h.p.engine.NotAccountOwner):
        h.p.vault.withdrawMargin(account, usdc(1), bob, sender=bob)
    h.p.vault.withdrawMargin(account, usdc(100), alice, sender=alice)


def test_a_withdrawal_needs_fresh_prices(h: Harness, alice: Any) -> None:
    account = h.open_account(alice, 10_000)
    h.trade(alice, account, ETH, "1")
    h.advance(3_601)
    with ape.reverts(h.p.oracle.OracleStalePrice):
        h.p.vault.withdrawMargin(account, usdc(100), alice, sender=alice)
    h.refresh()
    h.p.vault.withdrawMargin(account, usdc(100), alice, sender=alice)


def test_an_increase_beyond_the_pools_reserve_is_refused(h: Harness, alice: Any, bob: Any) -> None:
    """Both sides' capped profits must stay covered: 50% of each side's entry notional."""
    a = h.open_account(alice, 2_000_000)
    b = h.open_account(bob, 2_000_000)
    h.trade(alice, a, ETH, "330")  # $990k long: $495k reserve
    h.trade(bob, b, "BTC-USD", "-16")  # $960k short: $480k reserve (the pool holds ~$1M)
    [cancelled] = h.trade(alice, a, "BTC-USD", "1").events.filter(h.p.order_book.OrderCancelled)
    assert h.reader.arts.error_name(bytes(cancelled.reason)) == "ReserveExceeded"
