"""Liquidations: immediate, with prices newer than the account's last trade; partial or full;
a bounded reward; bad debt to the insurance fund, then the pool; the mirror predicts each."""

from __future__ import annotations

from typing import Any

import ape
from harness import Harness, usdc, wad

from lever import math as m
from lever.math.orders import Kind

ETH = "ETH-USD"


def predict(h: Harness, account: int) -> tuple[m.LiquidationPrediction, m.vault.LiquidationSettlement]:
    """The mirror's liquidation at the next block (the harness liquidates one second later)."""
    now = h.now() + 1
    record = h.reader.account(account)
    cov = h.coverage()
    views = {
        mk: h.reader.market(mk).view(now, cov.pool, int(h.prices[name] * 10**18), now)
        for name, mk in h.p.markets.items()
    }
    legs = [(record.positions[mk], views[mk]) for mk in sorted(record.positions)]
    params = m.LiquidationParams.from_chain(h.p.liquidator.params())
    p = m.predict_liquidation(record.margin_token, 10**12, legs, params, cov)
    ledgers = h.reader.ledgers()
    floor = params.min_reward // 10**12
    s = m.vault.settle_liquidation(
        record.margin_token,
        m.vault.Ledgers(ledgers.pool, ledgers.insurance, ledgers.protocol_fees, ledgers.protocol_fee_share),
        p.pnl_token,
        p.fee_token,
        p.reward_request,
        p.penalty_request,
        floor,
    )
    return p, s


def test_a_healthy_account_cannot_be_liquidated(h: Harness, alice: Any) -> None:
    account = h.open_account(alice, 10_000)
    h.trade(alice, account, ETH, "1")
    with ape.reverts(h.p.liquidator.NothingToLiquidate):
        h.liquidate([account])


def test_a_liquidation_needs_a_price_newer_than_the_accounts_last_trade(h: Harness, alice: Any) -> None:
    account = h.open_account(alice, 1_000)
    h.trade(alice, account, ETH, "7")
    h.prices[ETH] = 2_860  # a lower price, but published before the trade settled
    h.book.publish(ETH, 2_860, h.now() - 1)
    updates = [(0, h.book.feeds[ETH].update_at_or_after(h.now() - 1))]
    with ape.reverts(h.p.liquidator.NothingToLiquidate):
        h.p.liquidator.liquidateBatch([account], updates, sender=h.keeper, value=h.fee(1))
    h.set_price(ETH, 2_860)
    receipt = h.liquidate([account])
    assert len(list(receipt.events.filter(h.p.liquidator.Liquidation))) == 1


def test_a_partial_liquidation_restores_the_target_health_as_the_mirror_predicts(h: Harness, alice: Any) -> None:
    account = h.open_account(alice, 2_000)
    h.trade(alice, account, ETH, "12")  # $36,000: 18x
    h.set_price(ETH, 2_890)
    predicted, settlement = predict(h, account)
    assert predicted.liquidated and not predicted.full
    keeper_before = int(h.p.token.balanceOf(h.keeper))
    receipt = h.liquidate([account])
    [event] = receipt.events.filter(h.p.liquidator.Liquidation)
    assert int(event.closeShareWad) == predicted.share
    assert (int(event.rewardToken), int(event.penaltyToken)) == (settlement.reward_paid, settlement.penalty_paid)
    assert int(h.p.token.balanceOf(h.keeper)) - keeper_before == settlement.reward_paid
    assert h.margin(account) == settlement.margin
    after = h.account_state(account)
    assert after.equity >= after.maintenance_margin * 11 // 10 - wad(1)


def test_bad_debt_is_covered_by_the_insurance_fund_first_then_the_pool(h: Harness, alice: Any, bob: Any) -> None:
    h.p.token.mint(bob, usdc(50), sender=bob)
    h.p.token.approve(h.p.vault, usdc(50), sender=bob)
    h.p.vault.fundInsurance(usdc(50), sender=bob)
    account = h.open_account(alice, 1_000)
    h.trade(alice, account, ETH, "8")
    h.set_price(ETH, 2_800)  # -$1,600 on $1,000
    predicted, settlement = predict(h, account)
    assert predicted.full and settlement.bad_debt > usdc(50)
    pool = int(h.p.vault.poolAssets())
    receipt = h.liquidate([account])
    [event] = receipt.events.filter(h.p.liquidator.Liquidation)
    assert int(event.badDebtToken) == settlement.bad_debt
    assert int(h.p.vault.badDebtCoveredByInsurance()) == settlement.bad_debt_by_insurance
    assert int(h.p.vault.badDebtCoveredByPool()) == settlement.bad_debt - settlement.bad_debt_by_insurance
    # The pool collected the margin and the insurance fund's cover, nothing more.
    assert int(h.p.vault.poolAssets()) == settlement.ledgers.pool
    assert settlement.ledgers.pool - pool < usdc(1_050)
    assert h.margin(account) == 0 and h.p.engine.accountMarketMask(account) == 0


def test_an_underwater_account_still_pays_the_keeper_the_minimum_reward(h: Harness, alice: Any, bob: Any) -> None:
    h.p.token.mint(bob, usdc(100), sender=bob)
    h.p.token.approve(h.p.vault, usdc(100), sender=bob)
    h.p.vault.fundInsurance(usdc(100), sender=bob)
    account = h.open_account(alice, 500)
    h.trade(alice, account, ETH, "4")
    h.set_price(ETH, 2_700)
    before = int(h.p.token.balanceOf(h.keeper))
    h.liquidate([account])
    assert int(h.p.token.balanceOf(h.keeper)) - before == usdc(1)  # the $1 floor, from the insurance fund


def test_self_liquidation_gets_no_reward_from_the_insurance_fund(h: Harness, alice: Any, bob: Any) -> None:
    h.p.token.mint(bob, usdc(100), sender=bob)
    h.p.token.approve(h.p.vault, usdc(100), sender=bob)
    h.p.vault.fundInsurance(usdc(100), sender=bob)
    account = h.open_account(alice, 500)
    h.trade(alice, account, ETH, "4")
    h.set_price(ETH, 2_700)
    before = int(h.p.token.balanceOf(alice))
    h.liquidate([account], sender=alice)
    assert int(h.p.token.balanceOf(alice)) == before


def test_a_liquidation_that_closes_a_position_cancels_its_stop_and_take_profit(h: Harness, alice: Any) -> None:
    account = h.open_account(alice, 1_000)
    h.trade(alice, account, ETH, "8")
    receipt = h.p.order_book.placeOrder(account, 0, int(Kind.STOP_LOSS), -wad(8), wad(2_500), 0, usdc(1), sender=alice)
    stop = int(receipt.events.filter(h.p.order_book.OrderPlaced)[0].orderId)
    h.set_price(ETH, 2_850)
    receipt = h.liquidate([account])
    assert stop in {int(e.orderId) for e in receipt.events.filter(h.p.order_book.OrderCancelled)}
    assert int(h.p.order_book.order(stop).updatedAt) == 0


def test_a_batch_skips_healthy_accounts_and_liquidates_the_rest(h: Harness, alice: Any, bob: Any) -> None:
    risky = h.open_account(alice, 1_000)
    h.trade(alice, risky, ETH, "8")
    safe = h.open_account(bob, 10_000)
    h.trade(bob, safe, ETH, "1")
    h.set_price(ETH, 2_850)
    receipt = h.liquidate([safe, risky, risky, 999])
    assert [int(e.accountId) for e in receipt.events.filter(h.p.liquidator.Liquidation)] == [risky]


def test_a_batch_liquidation_leaves_a_healthy_accounts_orders_alone(h: Harness, alice: Any, bob: Any) -> None:
    """Naming a healthy account in a batch beside an unhealthy one must not cancel its orders: a
    stop-loss that anyone could cancel that way would be no protection."""
    weak = h.open_account(alice, 1_000)
    h.trade(alice, weak, ETH, "6")
    healthy = h.open_account(bob, 10_000)
    h.trade(bob, healthy, ETH, "1")
    fee = usdc("0.5")
    h.p.order_book.placeOrder(healthy, 0, int(Kind.STOP_LOSS), -wad(1), wad(2_500), 0, fee, sender=bob)
    h.set_price(ETH, 2_850)
    margin = h.margin(healthy)
    h.liquidate([weak, healthy])
    assert int(h.p.engine.accountMarketMask(weak)) == 0
    ids, orders = h.p.order_book.ordersOf(healthy)
    assert [m.orders.Order.from_chain(healthy, int(i), o).kind for i, o in zip(ids, orders, strict=True)] == [
        Kind.STOP_LOSS
    ]
    assert h.margin(healthy) == margin  # its escrowed fee stayed in escrow
