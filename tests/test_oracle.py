"""The oracle adapter: pull prices validated (confidence, exponent, bounds, distance from the
reference feed), the L2 sequencer, the stored latest price, the shock guard and volatility."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ape
import pytest
from harness import Harness, wad

from lever import governance
from lever.pyth import Publication, encode_update

ETH = "ETH-USD"


def blob(h: Harness, price: int, t: int, conf: int = 0, expo: int = -8, prev: int = 0) -> bytes:
    return encode_update(h.p.price_ids[ETH], Publication(t, price, conf, expo), prev)


def settle_price(h: Harness, update: bytes, t: int) -> Any:
    return h.p.oracle.settlementPrice(0, update, t, t + 10, sender=h.keeper, value=h.fee(1))


def test_a_price_with_a_wide_confidence_interval_is_refused(h: Harness) -> None:
    t = h.advance(1)
    with ape.reverts(h.p.oracle.OracleConfidenceTooWide):
        settle_price(h, blob(h, 3000 * 10**8, t, conf=61 * 10**8), t)  # 2.03% > 2%
    settle_price(h, blob(h, 3000 * 10**8, t, conf=60 * 10**8), t)  # 2%: accepted


def test_a_price_too_far_from_the_reference_is_refused(h: Harness) -> None:
    t = h.advance(1)
    with ape.reverts(h.p.oracle.OracleReferenceDeviation):
        settle_price(h, blob(h, 3151 * 10**8, t), t)  # 5.03% above the $3,000 reference
    settle_price(h, blob(h, 3150 * 10**8, t), t)


@pytest.mark.parametrize(
    "price, expo, error",
    [
        (0, -8, "OracleNonPositivePrice"),
        (-5, -8, "OracleNonPositivePrice"),
        (3, 3, "OracleExponentInvalid"),
        (3000, -19, "OracleExponentInvalid"),
        (2**63 - 1, 0, "OraclePriceTooHigh"),
    ],
)
def test_malformed_pull_prices_are_refused(h: Harness, price: int, expo: int, error: str) -> None:
    t = h.advance(1)
    with ape.reverts(getattr(h.p.oracle, error)):
        settle_price(h, blob(h, price, t, expo=expo), t)


def test_a_stale_reference_stops_settlements_but_not_price_updates(h: Harness) -> None:
    t = h.now() + 3_601
    h.chain.mine(timestamp=t)  # the reference round is older than its 3,600 s maximum age
    with ape.reverts(h.p.oracle.OracleStalePrice):
        settle_price(h, blob(h, 3000 * 10**8, t), t)
    h.p.oracle.updatePrices([(0, blob(h, 3000 * 10**8, t))], sender=h.keeper, value=h.fee(1))
    assert int(h.p.oracle.latest(0).publishTime) == t


def test_the_stored_price_only_moves_forward_and_older_updates_cost_nothing(h: Harness) -> None:
    t = h.advance(10)
    h.p.oracle.updatePrices([(0, blob(h, 3001 * 10**8, t))], sender=h.keeper, value=h.fee(1))
    before = h.keeper.balance
    receipt = h.p.oracle.updatePrices([(0, blob(h, 2000 * 10**8, t - 5))], sender=h.keeper, value=h.fee(1))
    assert before - h.keeper.balance == receipt.total_fees_paid  # the unspent fee came back
    latest = h.p.oracle.latest(0)
    assert (int(latest.priceWad), int(latest.publishTime)) == (wad(3001), t)


def test_no_fills_while_the_sequencer_is_down_and_for_its_grace_period(h: Harness, project: Any) -> None:
    p = h.p
    sequencer = project.MockPriceFeed.deploy(0, "sequencer", 0, p.deployer, sender=p.deployer)
    governance.apply(p, p.deployer, governance.call_change(p.oracle, "setSequencerFeed", sequencer.address, 600))
    t = h.advance(601)
    settle_price(h, blob(h, 3000 * 10**8, t), t)  # up for longer than the grace period
    sequencer.setPrice(1, sender=p.deployer)  # down
    t = h.advance(1)
    with ape.reverts(p.oracle.SequencerDown):
        settle_price(h, blob(h, 3000 * 10**8, t), t)
    with ape.reverts(p.oracle.SequencerDown):
        p.oracle.updatePrices([(0, blob(h, 3000 * 10**8, t))], sender=h.keeper, value=h.fee(1))
    sequencer.setPrice(0, sender=p.deployer)  # back up: the grace period starts
    t = h.advance(1)
    with ape.reverts(p.oracle.SequencerGracePeriod):
        settle_price(h, blob(h, 3000 * 10**8, t), t)
    t = h.advance(600)
    settle_price(h, blob(h, 3000 * 10**8, t), t)


def test_nothing_executes_at_a_stored_price_while_the_sequencer_is_down(h: Harness, project: Any, alice: Any) -> None:
    """Stored prices stop pricing liquidations and withdrawals too: they may be from before the
    sequencer went down, and no newer one can enter."""
    p = h.p
    account = h.open_account(alice, 1_000)
    h.trade(alice, account, ETH, "6")
    sequencer = project.MockPriceFeed.deploy(0, "sequencer", 0, p.deployer, sender=p.deployer)
    governance.apply(p, p.deployer, governance.call_change(p.oracle, "setSequencerFeed", sequencer.address, 600))
    h.advance(601)
    h.set_price(ETH, 2_850)
    h.refresh()  # an unhealthy account at a fresh stored price
    sequencer.setPrice(1, sender=p.deployer)  # down
    with ape.reverts(p.oracle.SequencerDown):
        p.liquidator.liquidate(account, [], sender=h.keeper)
    with ape.reverts(p.oracle.SequencerDown):
        p.vault.withdrawMargin(account, 1, alice, sender=alice)
    sequencer.setPrice(0, sender=p.deployer)  # back up, in its grace period
    with ape.reverts(p.oracle.SequencerGracePeriod):
        p.liquidator.liquidate(account, [], sender=h.keeper)


def test_a_shocked_reference_round_stops_increases_until_confirmed(h: Harness, alice: Any) -> None:
    account = h.open_account(alice, 10_000)
    h.trade(alice, account, ETH, "1")
    h.set_price(ETH, 2_820)  # -6%: more than the 5% shock threshold
    assert h.p.oracle.latest(0).shocked
    order, t = h.commit(alice, account, ETH, "1")
    cancelled = h.settle([order], [ETH], t).events.filter(h.p.order_book.OrderCancelled)
    assert h.reader.arts.error_name(bytes(cancelled[0].reason)) == "OracleShockUnconfirmed"
    h.trade(alice, account, ETH, "-0.5")  # reducing goes on
    assert h.position(account, ETH).size == wad("0.5")
    with ape.reverts():
        h.p.oracle.confirmShock(0, sender=alice)
    h.p.oracle.confirmShock(0, sender=h.p.deployer)
    h.trade(alice, account, ETH, "1")
    assert h.position(account, ETH).size == wad("1.5")


def test_volatile_reference_rounds_raise_the_margin_factors(h: Harness) -> None:
    calm = h.p.oracle.latest(0)
    assert int(calm.imFactorWad) == wad(1)
    price = Decimal(3000)
    for i in range(6):
        price *= Decimal("1.04") if i % 2 else Decimal("0.96")
        h.set_price(ETH, price.quantize(Decimal("0.01")))
        h.p.oracle.recordReference(0, sender=h.keeper)  # each recorded round is one sample
    stormy, then = h.p.oracle.latest(0), h.now()
    assert int(stormy.imFactorWad) > wad("1.5")  # initial margin reacts at once
    assert wad(1) <= int(stormy.mmFactorWad) < wad("1.001")  # maintenance has barely moved
    h.advance(3_600)  # the heartbeat rounds after it may land a second later on a slow machine
    later, elapsed = h.p.oracle.latest(0), h.now() - then
    assert elapsed >= 3_600
    rise = int(later.mmFactorWad) - int(stormy.mmFactorWad)  # ... and rises 1.0 a day at most
    assert rise in (wad(1) * elapsed // 86_400, -(-wad(1) * elapsed // 86_400))  # rounding of the two readings
