"""Funding: accrues from skew through cumulative indices; zero-sum up to rounding kept by the pool."""

from helpers import WAD, params_of, position_of, state_of, usdc, wad
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
    engine.modifyPosition(open_account(bob, 100_000), eth, -wad(5), 0, sender=bob)
    _advance_and_refresh(chain, protocol, deployer, DAY)
    entry = position_of(engine, longs, eth).funding_index
    receipt = engine.closePosition(longs, eth, 0, sender=alice)
    [event] = receipt.events.filter(engine.PositionChanged)
    assert event.fundingWad == m.funding_owed(wad(20), state_of(engine, eth).long_index, entry) > 0


def test_pending_funding_lowers_payer_equity(protocol, engine, vault, eth, alice, deployer, open_account, chain):
    account = open_account(alice, 100_000)
    engine.modifyPosition(account, eth, wad(100), 0, sender=alice)
    equity_before = engine.accountState(account).equityWad
    _advance_and_refresh(chain, protocol, deployer, 10 * DAY)
    chain.mine()
    state = engine.accountState(account)
    params = params_of(engine, eth)
    accrued = m.accrued(state_of(engine, eth), params, wad(3000), chain.blocks.head.timestamp)
    owed = m.funding_owed(wad(100), accrued.long_index, position_of(engine, account, eth).funding_index)
    assert owed > 0
    assert state.equityWad == equity_before - owed
    assert engine.currentMarketState(eth).longFundingIndexWad == accrued.long_index


def test_funding_settles_into_margin_on_increase(protocol, engine, vault, eth, alice, deployer, open_account, chain):
    account = open_account(alice, 100_000)
    engine.modifyPosition(account, eth, wad(100), 0, sender=alice)
    _advance_and_refresh(chain, protocol, deployer, DAY)
    margin = int(vault.marginOf(account))
    receipt = engine.modifyPosition(account, eth, wad(1), 0, sender=alice)
    [event] = receipt.events.filter(engine.PositionChanged)
    assert event.fundingWad > 0
    assert vault.marginOf(account) == margin + m.to_token_floor(-event.fundingWad, 10**12) - m.div_up(event.feeWad, 10**12)
    assert position_of(engine, account, eth).funding_index == state_of(engine, eth).long_index
