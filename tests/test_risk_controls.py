"""Volatility-aware margin, bounded ramps, and oracle shocks."""

import ape
from helpers import mirror_account, raw_market, wad

from lever import math as m

DAY = 86_400


def _record(protocol, market_name, price, set_price, keeper):
    set_price(market_name, price)
    protocol.oracle.update(protocol.feeds[market_name], sender=keeper)


def test_recorded_rounds_follow_the_mirror(protocol, eth_feed, deployer, set_price, chain):
    oracle = protocol.oracle
    params = m.FeedParams.from_chain(oracle.feedParams(eth_feed))
    state = m.FeedState.from_chain(*oracle.feedState(eth_feed))
    for price in ("3000", "3090", "2990", "3050", "2900"):
        set_price("ETH-USD", price)
        receipt = oracle.update(eth_feed, sender=deployer)
        state = m.record_round(params, state, int(eth_feed.latestRound()), wad(price), receipt.timestamp)
        assert m.FeedState.from_chain(*oracle.feedState(eth_feed)) == state
    assert state.variance > 0


def test_initial_factor_reacts_at_once_and_maintenance_factor_ramps(protocol, eth_feed, deployer, set_price, chain):
    for price in ("3100", "3000", "3100", "3000"):
        _record(protocol, "ETH-USD", price, set_price, deployer)
    data = protocol.oracle.read(eth_feed)
    assert data.imFactorWad > wad("1.3")  # ~3.3% per-round moves against a 1% reference
    assert data.mmFactorWad < wad("1.01")  # has only had seconds to rise
    chain.pending_timestamp = chain.blocks.head.timestamp + DAY // 4
    _record(protocol, "ETH-USD", "3000", set_price, deployer)  # a fresh round, no move
    later = protocol.oracle.read(eth_feed)
    assert wad("1.24") < later.mmFactorWad <= wad("1.26")  # +1.0 a day, for a quarter day
    assert later.mmFactorWad < later.imFactorWad < data.imFactorWad  # a calm round decays the estimate


def _healthy_long_at_2920(engine, eth, alice, open_account, set_price):
    account = open_account(alice, 1_000)
    engine.modifyPosition(account, eth, wad(6), 0, sender=alice)
    set_price("ETH-USD", 2920)  # equity ~$502, maintenance ~$356: health ~1.41
    return account


def test_volatility_spike_does_not_liquidate_a_healthy_account(protocol, engine, liquidator, eth, alice, bob, deployer, open_account, set_price, chain):
    account = _healthy_long_at_2920(engine, eth, alice, open_account, set_price)
    assert not liquidator.healthOf([account])[0].liquidatable
    for price in ("3050", "2920", "3050", "2920"):  # 4.5% swings: volatile, but no shock
        _record(protocol, "ETH-USD", price, set_price, deployer)
    chain.mine()
    now = chain.blocks.head.timestamp
    state = mirror_account(protocol, account, now)
    assert not state.liquidatable
    with ape.reverts(liquidator.AccountNotLiquidatable):
        liquidator.liquidate(account, sender=bob)
    # Had maintenance margin jumped with the initial factor, the account would be liquidatable.
    legs = []
    for market in engine.accountMarkets(account):
        view = raw_market(protocol, market).view(now)
        legs.append((m.Position.from_chain(engine.position(account, market)),
                     m.MarketView(view.params, view.state, view.price, view.im_factor, view.im_factor, view.mmr)))
    assert m.account_state(int(protocol.vault.marginOf(account)), 10**12, legs).liquidatable
    # A day later the ramp has reached the target and the account is liquidatable.
    chain.pending_timestamp = now + DAY
    _record(protocol, "ETH-USD", "2920", set_price, deployer)
    liquidator.liquidate(account, sender=bob)


def test_raising_maintenance_ratio_phases_in_over_a_day(protocol, engine, liquidator, eth, eth_feed, alice, bob, deployer, open_account, set_price, chain, config):
    account = _healthy_long_at_2920(engine, eth, alice, open_account, set_price)
    params = list(config.markets["ETH-USD"].params(eth_feed.address))
    params[5] = wad("0.039")  # maintenanceMarginRatioWad  # maintenance 2% -> 3.9%: at once it would liquidate the account
    receipt = engine.setMarketParams(eth, params, sender=deployer)
    assert engine.marketState(eth).mmrRampStart == receipt.timestamp
    assert engine.effectiveMaintenanceRatio(eth) < wad("0.0201")
    with ape.reverts(liquidator.AccountNotLiquidatable):
        liquidator.liquidate(account, sender=bob)
    chain.pending_timestamp = receipt.timestamp + DAY // 2
    chain.mine()
    assert engine.effectiveMaintenanceRatio(eth) == m.effective_mmr(wad("0.039"), wad("0.02"), receipt.timestamp, receipt.timestamp + DAY // 2)
    chain.pending_timestamp = receipt.timestamp + DAY
    set_price("ETH-USD", 2920)
    assert engine.effectiveMaintenanceRatio(eth) == wad("0.039")
    liquidator.liquidate(account, sender=bob)


def test_lowering_maintenance_ratio_applies_at_once(engine, eth, eth_feed, deployer, config):
    params = list(config.markets["ETH-USD"].params(eth_feed.address))
    params[5] = wad("0.015")  # maintenanceMarginRatioWad
    engine.setMarketParams(eth, params, sender=deployer)
    assert engine.effectiveMaintenanceRatio(eth) == wad("0.015")
    assert engine.marketState(eth).mmrRampStart == 0


def test_oracle_shock_blocks_opening_and_increasing(protocol, engine, eth, eth_feed, alice, open_account, set_price):
    existing = open_account(alice, 10_000)
    engine.modifyPosition(existing, eth, wad(1), 0, sender=alice)
    fresh = open_account(alice, 10_000)
    set_price("ETH-USD", 2700)  # -10% in one round, above the 5% max deviation
    with ape.reverts(engine.OracleShockUnconfirmed, feed=eth_feed.address):
        engine.modifyPosition(fresh, eth, -wad(1), 0, sender=alice)
    with ape.reverts(engine.OracleShockUnconfirmed, feed=eth_feed.address):
        engine.modifyPosition(existing, eth, wad(1), 0, sender=alice)


def test_oracle_shock_does_not_block_closing_or_liquidating(protocol, engine, liquidator, eth, alice, bob, open_account, set_price):
    closer = open_account(alice, 10_000)
    engine.modifyPosition(closer, eth, wad(1), 0, sender=alice)
    victim = open_account(alice, 1_000)
    engine.modifyPosition(victim, eth, wad(6), 0, sender=alice)
    set_price("ETH-USD", 2700)
    engine.modifyPosition(closer, eth, -wad("0.5"), 0, sender=alice)
    engine.closePosition(closer, eth, 0, sender=alice)
    liquidator.liquidate(victim, sender=bob)
    assert engine.accountMarkets(victim) == []


def test_oracle_shock_confirmed_by_a_following_round_within_deviation(protocol, engine, eth, alice, open_account, set_price, deployer):
    account = open_account(alice, 10_000)
    set_price("ETH-USD", 2700)
    protocol.oracle.update(protocol.feeds["ETH-USD"], sender=deployer)  # the shock is recorded
    set_price("ETH-USD", 2690)  # the next round agrees with it
    engine.modifyPosition(account, eth, wad(1), 0, sender=alice)


def test_oracle_shock_persists_while_rounds_keep_jumping(protocol, engine, eth, alice, open_account, set_price, deployer):
    account = open_account(alice, 10_000)
    _record(protocol, "ETH-USD", "2700", set_price, deployer)
    set_price("ETH-USD", "2400")
    with ape.reverts(engine.OracleShockUnconfirmed):
        engine.modifyPosition(account, eth, wad(1), 0, sender=alice)


def test_oracle_shock_confirmed_by_oracle_role(protocol, engine, eth, eth_feed, alice, deployer, stranger, open_account, set_price):
    account = open_account(alice, 10_000)
    set_price("ETH-USD", 2700)
    with ape.reverts(protocol.oracle.AccessControlUnauthorizedAccount):
        protocol.oracle.confirmShock(eth_feed, sender=stranger)
    receipt = protocol.oracle.confirmShock(eth_feed, sender=deployer)
    assert receipt.events.filter(protocol.oracle.ShockConfirmed)[0].feed == eth_feed.address
    engine.modifyPosition(account, eth, wad(1), 0, sender=alice)


def test_small_move_is_not_a_shock(engine, eth, alice, open_account, set_price):
    account = open_account(alice, 10_000)
    set_price("ETH-USD", 2900)  # -3.3%
    engine.modifyPosition(account, eth, wad(1), 0, sender=alice)


def test_feed_params_out_of_bounds_revert(protocol, eth_feed, deployer, feed_params):
    for field, value in (("maxDeviationWad", 0), ("ewmaLambdaWad", wad("0.4")), ("refVolatilityWad", 0),
                         ("maxVolFactorWad", wad("0.9")), ("maxVolFactorWad", wad(11)), ("factorRisePerDayWad", 0)):
        with ape.reverts(protocol.oracle.ParameterOutOfBounds, value=value):
            protocol.oracle.setFeed(eth_feed, feed_params(**{field: value}), sender=deployer)
