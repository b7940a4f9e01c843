"""Funding: accrues from skew through cumulative indices; zero-sum up to rounding kept by the pool."""

from helpers import WAD, market_view, params_of, position_of, state_of, wad

from lever import math as m

DAY = 86_400


def _advance_and_refresh(chain, protocol, deployer, seconds):
    """Moves time forward and republishes both prices so they stay fresh."""
    chain.pending_timestamp = chain.blocks.head.timestamp + seconds
    for feed in protocol.feeds.values():
        feed.setPrice(feed.latestRoundData()[1], sender=deployer)


def test_long_heavy_market_longs_pay_and_shorts_receive(protocol, engine, eth, alice, bob, deployer, open_account, chain):
    longs = open_account(alice, 100_000)
    shorts = open_account(bob, 100_000)
    engine.modifyPosition(longs, eth, wad(100), 0, sender=alice)
    engine.modifyPosition(shorts, eth, -wad(40), 0, sender=bob)
    before = state_of(engine, eth)
    _advance_and_refresh(chain, protocol, deployer, DAY)
    receipt = engine.accrueFunding(eth, sender=deployer)
    after = state_of(engine, eth)
    expected = m.accrued(before, params_of(engine, eth), wad(3000), receipt.timestamp)
    assert after == expected
    assert after.long_index > before.long_index and after.short_index < before.short_index
    # 0.1%/day * 60/10000 of skew scale = 0.0006%/day on $3,000 = $0.018 per ETH per day.
    elapsed = receipt.timestamp - before.last_funding_time
    assert after.long_index - before.long_index == m.mul_div_up(wad(3000) * wad("0.000006"), elapsed, WAD * DAY)


def test_short_heavy_market_shorts_pay(protocol, engine, eth, alice, deployer, open_account, chain):
    shorts = open_account(alice, 100_000)
    engine.modifyPosition(shorts, eth, -wad(50), 0, sender=alice)
    before = state_of(engine, eth)
    _advance_and_refresh(chain, protocol, deployer, DAY)
    engine.accrueFunding(eth, sender=deployer)
    after = state_of(engine, eth)
    assert after.short_index > before.short_index
    assert after.long_index == before.long_index  # no longs to receive: the pool receives


def test_balanced_market_accrues_no_funding(protocol, engine, eth, alice, bob, deployer, open_account, chain):
    engine.modifyPosition(open_account(alice, 100_000), eth, wad(10), 0, sender=alice)
    engine.modifyPosition(open_account(bob, 100_000), eth, -wad(10), 0, sender=bob)
    before = state_of(engine, eth)
    _advance_and_refresh(chain, protocol, deployer, DAY)
    engine.accrueFunding(eth, sender=deployer)
    after = state_of(engine, eth)
    assert (after.long_index, after.short_index) == (before.long_index, before.short_index)


def test_funding_is_zero_sum_with_rounding_kept_by_pool(protocol, engine, eth, alice, bob, deployer, open_account, chain):
    longs = open_account(alice, 100_000)
    shorts = open_account(bob, 100_000)
    engine.modifyPosition(longs, eth, wad(77), 0, sender=alice)
    engine.modifyPosition(shorts, eth, -wad(33), 0, sender=bob)
    start = state_of(engine, eth)  # both sides open from here on
    _advance_and_refresh(chain, protocol, deployer, 3 * DAY + 17)
    engine.accrueFunding(eth, sender=deployer)
    end = state_of(engine, eth)
    paid = m.funding_owed(wad(77), end.long_index, start.long_index)
    received = m.funding_owed(-wad(33), end.short_index, start.short_index)
    assert paid > wad(1) and received < 0  # a real amount moves from longs to shorts
    # The payer index rounds up by under 1 wei per unit of size per accrual, and each position's
    # settlement by under 1 wei: the dust is non-negative (kept by the pool) and that small.
    assert 0 <= paid + received <= 77 + 33 + 2


def test_funding_settled_at_close_matches_the_index(protocol, engine, eth, alice, bob, deployer, open_account, chain):
    longs = open_account(alice, 100_000)
    engine.modifyPosition(longs, eth, wad(20), 0, sender=alice)
    entry = state_of(engine, eth).long_index
    engine.modifyPosition(open_account(bob, 100_000), eth, -wad(5), 0, sender=bob)
    _advance_and_refresh(chain, protocol, deployer, DAY)
    receipt = engine.closePosition(longs, eth, 0, sender=alice)
    [event] = receipt.events.filter(engine.PositionChanged)
    owed = m.funding_owed(wad(20), state_of(engine, eth).long_index, entry)
    assert owed > wad("0.05")  # 20 ETH, skew 15/10,000 of 0.1%/day, for a day
    # The price never moved: what is realised is exactly minus the funding owed (to the wei).
    assert -owed - 1 <= event.realisedWad <= -owed


def test_pending_funding_lowers_payer_equity(protocol, engine, eth, alice, deployer, open_account, chain):
    account = open_account(alice, 100_000)
    engine.modifyPosition(account, eth, wad(100), 0, sender=alice)
    equity_before = engine.accountState(account).equityWad
    index_before = state_of(engine, eth).long_index
    _advance_and_refresh(chain, protocol, deployer, 10 * DAY)
    chain.mine()
    state = engine.accountState(account)
    accrued = m.accrued(state_of(engine, eth), params_of(engine, eth), wad(3000), chain.blocks.head.timestamp)
    owed = m.funding_owed(wad(100), accrued.long_index, index_before)
    assert owed > wad(1)
    assert abs(state.equityWad - (equity_before - owed)) <= 1
    assert engine.currentMarketState(eth).longFundingIndexWad == accrued.long_index


def test_increase_keeps_accrued_funding_in_the_cost_basis(protocol, engine, vault, eth, alice, deployer, open_account, chain):
    account = open_account(alice, 100_000)
    engine.modifyPosition(account, eth, wad(100), 0, sender=alice)
    _advance_and_refresh(chain, protocol, deployer, DAY)
    chain.mine()
    value_before = _mirror_value(protocol, account, eth, chain)
    margin = int(vault.marginOf(account))
    receipt = engine.modifyPosition(account, eth, wad(1), 0, sender=alice)
    [event] = receipt.events.filter(engine.PositionChanged)
    assert event.realisedWad == 0  # nothing is settled on an increase ...
    assert vault.marginOf(account) == margin - m.div_up(event.feeWad, 10**12)
    # ... and the new unit starts at zero value, so the position's value carries the old funding.
    assert value_before < -wad("0.1")
    assert abs(_mirror_value(protocol, account, eth, chain) - value_before) < wad("0.01")


def _mirror_value(protocol, account, market, chain):
    view = market_view(protocol, market, chain.blocks.head.timestamp)
    pos = position_of(protocol.engine, account, market)
    return m.value(pos.size, pos.cost, m.mark(pos.size > 0, view.price, view.state.long_index, view.state.short_index))
