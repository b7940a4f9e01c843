"""Opening, increasing, decreasing and closing positions: exact figures from the mirror."""

import ape
import pytest
from helpers import (
    WAD,
    assert_solvent_exactly,
    ledgers,
    market_view,
    mirror_account,
    params_of,
    position_of,
    state_of,
    usdc,
    wad,
)

from lever import math as m

SCALE = 10**12  # 6-decimal token to WAD


def trade_and_predict(engine, vault, account, market, size_delta, price, sender, chain):
    """Sends a trade and returns (receipt, mirror prediction, margin before)."""
    params = params_of(engine, market)
    state = state_of(engine, market)
    pos = position_of(engine, account, market)
    margin = int(vault.marginOf(account))
    receipt = engine.modifyPosition(account, market, size_delta, 0, sender=sender)
    accrued = m.accrued(state, params, price, receipt.timestamp)
    return receipt, m.trade(pos, accrued, params, size_delta, price, SCALE), margin


def test_open_long_charges_fee_and_records_position(engine, vault, eth, alice, open_account, chain):
    account = open_account(alice, 10_000)
    receipt, predicted, margin = trade_and_predict(engine, vault, account, eth, wad(2), wad(3000), alice, chain)
    assert position_of(engine, account, eth) == predicted.position == m.Position(wad(2), wad(6000))
    assert predicted.fee == wad(3)  # 5 bp of $6,000
    assert vault.marginOf(account) == margin - predicted.fee_token == usdc(9_997)
    assert state_of(engine, eth).long_oi == wad(2)
    [event] = receipt.events.filter(engine.PositionChanged)
    assert (event.sizeDeltaWad, event.sizeAfterWad, event.priceWad, event.feeWad) == (wad(2), wad(2), wad(3000), wad(3))


def test_open_short_records_negative_size_and_short_oi(engine, eth, alice, open_account):
    account = open_account(alice, 10_000)
    engine.modifyPosition(account, eth, -wad(2), 0, sender=alice)
    assert position_of(engine, account, eth) == m.Position(-wad(2), -wad(6000))  # no funding yet
    state = state_of(engine, eth)
    assert (state.long_oi, state.short_oi, state.net_cost) == (0, wad(2), -wad(6000))


def test_increase_adds_size_at_new_price(engine, vault, eth, alice, open_account, set_price, chain):
    account = open_account(alice, 10_000)
    engine.modifyPosition(account, eth, wad(1), 0, sender=alice)
    set_price("ETH-USD", 3100)
    _, predicted, _ = trade_and_predict(engine, vault, account, eth, wad(1), wad(3100), alice, chain)
    assert position_of(engine, account, eth) == predicted.position
    # $3,000 + $3,100, with the first unit's few seconds of funding folded into the cost basis
    assert abs(predicted.position.cost - wad(6100)) < wad("0.01")


def test_decrease_realises_pro_rata_pnl_against_pool(engine, vault, eth, alice, open_account, set_price, chain):
    account = open_account(alice, 10_000)
    engine.modifyPosition(account, eth, wad(2), 0, sender=alice)
    set_price("ETH-USD", 3300)
    before = ledgers(vault)
    _, predicted, margin = trade_and_predict(engine, vault, account, eth, -wad(1), wad(3300), alice, chain)
    assert wad("299.99") < predicted.realised <= wad(300)  # $300 of PnL less seconds of funding
    assert position_of(engine, account, eth) == predicted.position
    assert predicted.position.size == wad(1) and wad("2999.99") < predicted.position.cost <= wad(3000)
    assert vault.marginOf(account) == margin + predicted.pnl_token - predicted.fee_token
    fee_to_pool = predicted.fee_token - predicted.fee_token // 10
    assert vault.poolAssets() == before["pool"] - predicted.pnl_token + fee_to_pool


def test_close_profitable_long_pays_profit_from_pool(engine, vault, token, eth, alice, open_account, set_price, chain):
    account = open_account(alice, 10_000)
    engine.modifyPosition(account, eth, wad(1), 0, sender=alice)
    set_price("ETH-USD", 3600)
    pool_before = vault.poolAssets()
    receipt, predicted, margin = trade_and_predict(engine, vault, account, eth, -wad(1), wad(3600), alice, chain)
    [event] = receipt.events.filter(engine.PositionChanged)
    assert (event.realisedWad, event.feeWad) == (predicted.realised, wad("1.8"))
    assert wad("599.99") < predicted.realised <= wad(600)
    assert predicted.pnl_token in (usdc(600), usdc(600) - 1)  # funding for a few seconds rounds up
    assert position_of(engine, account, eth) == m.Position()
    assert vault.marginOf(account) == margin + predicted.pnl_token - usdc("1.8")
    assert vault.poolAssets() == pool_before - predicted.pnl_token + usdc("1.8") - usdc("0.18")
    assert engine.accountMarkets(account) == []
    assert_solvent_exactly(vault, token)


def test_close_losing_short_pays_loss_to_pool(engine, vault, eth, alice, open_account, set_price, chain):
    account = open_account(alice, 10_000)
    engine.modifyPosition(account, eth, -wad(1), 0, sender=alice)
    set_price("ETH-USD", 3200)
    pool_before = vault.poolAssets()
    _, predicted, margin = trade_and_predict(engine, vault, account, eth, wad(1), wad(3200), alice, chain)
    assert -wad("200.01") < predicted.realised <= -wad(200)
    assert predicted.pnl_token in (-usdc(200), -usdc(200) - 1)  # plus seconds of funding, rounded up
    assert vault.marginOf(account) == margin + predicted.pnl_token - usdc("1.6")
    assert vault.poolAssets() == pool_before - predicted.pnl_token + usdc("1.6") - usdc("0.16")


def test_close_with_loss_above_margin_realises_bad_debt(engine, vault, token, eth, alice, open_account, set_price, chain):
    account = open_account(alice, 500)
    engine.modifyPosition(account, eth, wad(3), 0, sender=alice)  # $9,000 at ~18x
    set_price("ETH-USD", 2700)  # -$900 on $495.50 of margin (the $4.50 opening fee is paid)
    receipt, predicted, margin = trade_and_predict(engine, vault, account, eth, -wad(3), wad(2700), alice, chain)
    assert margin == usdc("495.5")
    [bad] = receipt.events.filter(vault.BadDebt)
    assert bad.shortfallToken == -predicted.pnl_token - margin
    assert bad.shortfallToken in (usdc("404.5"), usdc("404.5") + 1)
    assert bad.coveredByInsurance == 0 and bad.coveredByPool == bad.shortfallToken
    assert vault.marginOf(account) == 0
    assert vault.badDebtTotal() == bad.shortfallToken
    assert_solvent_exactly(vault, token)


def test_close_without_position_reverts(engine, eth, alice, open_account):
    account = open_account(alice)
    with ape.reverts(engine.NoPosition, accountId=account, marketId=eth):
        engine.closePosition(account, eth, 0, sender=alice)


def test_trade_that_flips_side_reverts(engine, eth, alice, open_account):
    account = open_account(alice)
    engine.modifyPosition(account, eth, wad(1), 0, sender=alice)
    with ape.reverts(engine.PositionFlip, marketId=eth, sizeWad=wad(1), sizeDeltaWad=-wad(2)):
        engine.modifyPosition(account, eth, -wad(2), 0, sender=alice)


def test_zero_size_delta_reverts(engine, eth, alice, open_account):
    account = open_account(alice)
    with ape.reverts(engine.ZeroSize):
        engine.modifyPosition(account, eth, 0, 0, sender=alice)


def test_position_below_min_size_reverts(engine, eth, alice, open_account):
    account = open_account(alice)
    with ape.reverts(engine.PositionTooSmall, marketId=eth, sizeWad=wad("0.0009"), minSizeWad=wad("0.001")):
        engine.modifyPosition(account, eth, wad("0.0009"), 0, sender=alice)


def test_decrease_leaving_dust_reverts(engine, eth, alice, open_account):
    account = open_account(alice)
    engine.modifyPosition(account, eth, wad(1), 0, sender=alice)
    with ape.reverts(engine.PositionTooSmall):
        engine.modifyPosition(account, eth, -(wad(1) - wad("0.0005")), 0, sender=alice)


def test_unknown_market_reverts(engine, alice, open_account):
    account = open_account(alice)
    with ape.reverts(engine.UnknownMarket, marketId=7):
        engine.modifyPosition(account, 7, wad(1), 0, sender=alice)


def test_unknown_account_reverts(engine, eth, alice):
    with ape.reverts(engine.UnknownAccount, accountId=999):
        engine.modifyPosition(999, eth, wad(1), 0, sender=alice)


def test_trade_by_non_owner_reverts(engine, eth, alice, bob, open_account):
    account = open_account(alice)
    with ape.reverts(engine.NotAccountOwner, accountId=account, caller=bob.address):
        engine.modifyPosition(account, eth, wad(1), 0, sender=bob)


def test_open_above_max_leverage_reverts(engine, eth, alice, open_account):
    account = open_account(alice, 1_000)
    # $30,000 of notional on ~$985 of equity is ~30x > 25x.
    with ape.reverts(engine.LeverageTooHigh, accountId=account, marketId=eth, maxLeverageWad=25 * WAD):
        engine.modifyPosition(account, eth, wad(10), 0, sender=alice)


def test_open_within_leverage_but_below_initial_margin_reverts(engine, eth, alice, open_account):
    account = open_account(alice, 987)
    # 8 ETH = $24,000: equity = 987 - 12 (open fee) - 12 (close fee) = $963, leverage 24.9x <= 25x,
    # but IM = 4% * (1 + 8/10000) * 24,000 + $5 = $965.77.
    with ape.reverts(engine.InsufficientMargin, accountId=account):
        engine.modifyPosition(account, eth, wad(8), 0, sender=alice)


def test_open_interest_cap_reverts(engine, eth, alice, open_account):
    account = open_account(alice, 100_000)
    # The pool holds $1,000,000 and the cap is 100% of it per side: 400 ETH = $1.2M.
    with ape.reverts(engine.OpenInterestCapExceeded, marketId=eth, openInterestWad=wad(1_200_000), capWad=wad(1_000_000)):
        engine.modifyPosition(account, eth, wad(400), 0, sender=alice)


def test_buy_above_limit_price_reverts(engine, eth, alice, open_account):
    account = open_account(alice)
    with ape.reverts(engine.PriceLimitExceeded, priceWad=wad(3000), limitPriceWad=wad(2999)):
        engine.modifyPosition(account, eth, wad(1), wad(2999), sender=alice)


def test_sell_below_limit_price_reverts(engine, eth, alice, open_account):
    account = open_account(alice)
    with ape.reverts(engine.PriceLimitExceeded, priceWad=wad(3000), limitPriceWad=wad(3001)):
        engine.modifyPosition(account, eth, -wad(1), wad(3001), sender=alice)


def test_open_with_stale_price_reverts(protocol, engine, eth, eth_feed, alice, open_account, chain):
    account = open_account(alice)
    chain.pending_timestamp = eth_feed.latestRoundData()[3] + 3601
    with ape.reverts(protocol.oracle.OracleStalePrice):
        engine.modifyPosition(account, eth, wad(1), 0, sender=alice)


def test_open_with_zero_price_reverts(protocol, engine, eth, eth_feed, deployer, alice, open_account):
    account = open_account(alice)
    eth_feed.setPrice(0, sender=deployer)
    with ape.reverts(protocol.oracle.OracleNonPositivePrice):
        engine.modifyPosition(account, eth, wad(1), 0, sender=alice)


def test_too_many_positions_reverts(project, protocol, engine, deployer, alice, open_account, config, feed_params):
    account = open_account(alice, 100_000)
    market = config.markets["ETH-USD"]
    for i in range(8):
        if i >= 2:
            feed = project.MockPriceFeed.deploy(8, f"M{i}", 100 * 10**8, deployer, sender=deployer)
            protocol.oracle.setFeed(feed, feed_params(), sender=deployer)
            engine.createMarket(f"M{i}".encode().ljust(32, b"\0"), market.params(feed.address), sender=deployer)
        engine.modifyPosition(account, i, wad(1), 0, sender=alice)
    feed = project.MockPriceFeed.deploy(8, "M8", 100 * 10**8, deployer, sender=deployer)
    protocol.oracle.setFeed(feed, feed_params(), sender=deployer)
    engine.createMarket(b"M8".ljust(32, b"\0"), market.params(feed.address), sender=deployer)
    with ape.reverts(engine.TooManyPositions, accountId=account):
        engine.modifyPosition(account, 8, wad(1), 0, sender=alice)
    assert list(engine.accountMarkets(account)) == list(range(8))


@pytest.mark.parametrize("size", ["1", "100", "300"])
def test_margin_requirement_scales_with_size(engine, eth, alice, open_account, size):
    account = open_account(alice, 10_000_000)
    engine.modifyPosition(account, eth, wad(size), 0, sender=alice)
    params = params_of(engine, eth)
    expected_ratio = min(WAD, params.initial_margin_ratio * (WAD + wad(size) * WAD // params.skew_scale) // WAD)
    notional = wad(size) * 3000
    state = engine.accountState(account)
    assert state.initialMarginWad == m.mul_div_up(notional, expected_ratio, WAD) + params.min_margin
    assert state.initialMarginWad == m.margin_requirement(wad(size), wad(3000), params.initial_margin_ratio, params.skew_scale, params.min_margin)
    assert state.initialMarginWad > state.maintenanceMarginWad


def test_cross_margin_positions_share_the_account_margin(protocol, engine, vault, eth, btc, alice, open_account, set_price, chain):
    account = open_account(alice, 5_000)
    engine.modifyPosition(account, eth, wad(10), 0, sender=alice)  # $30k long
    engine.modifyPosition(account, btc, -wad("0.5"), 0, sender=alice)  # $30k short
    set_price("ETH-USD", 3100)  # +$1,000 on ETH
    set_price("BTC-USD", 61_000)  # -$500 on BTC
    chain.mine()
    state = engine.accountState(account)
    mirror = mirror_account(protocol, account, chain.blocks.head.timestamp)
    assert (state.equityWad, state.maintenanceMarginWad, state.positionCount) == (mirror.equity, mirror.maintenance_margin, 2)
    fees_paid = wad(15) + wad(15)
    close_fees = wad("15.5") + wad("15.25")
    by_hand = wad(5_000) - fees_paid + wad(1_000) - wad(500) - close_fees
    assert abs(state.equityWad - by_hand) < wad("0.01")  # the rest is a few seconds of funding


def test_isolated_accounts_do_not_share_margin(engine, eth, alice, open_account, set_price):
    losing = open_account(alice, 1_000)
    safe = open_account(alice, 1_000)
    engine.modifyPosition(losing, eth, wad(5), 0, sender=alice)
    set_price("ETH-USD", 2_900)
    assert engine.accountState(safe).equityWad == wad(1_000)
    assert engine.accountState(losing).equityWad < wad(1_000) - wad(500)


def test_account_state_matches_mirror(protocol, engine, vault, eth, alice, open_account, set_price, chain):
    account = open_account(alice, 3_000)
    engine.modifyPosition(account, eth, wad("7.3"), 0, sender=alice)
    set_price("ETH-USD", "2987.65")
    chain.mine()
    on_chain = engine.accountState(account)
    mirror = mirror_account(protocol, account, chain.blocks.head.timestamp)
    assert (on_chain.equityWad, on_chain.initialMarginWad, on_chain.maintenanceMarginWad, on_chain.notionalWad) == (
        mirror.equity, mirror.initial_margin, mirror.maintenance_margin, mirror.notional)


@pytest.mark.parametrize("side", [1, -1])
def test_liquidation_price_is_where_equity_meets_maintenance(protocol, engine, eth, alice, open_account, chain, side):
    account = open_account(alice, 2_000)
    engine.modifyPosition(account, eth, side * wad(5), 0, sender=alice)
    chain.mine()
    liq = int(engine.liquidationPrice(account, eth))
    assert liq > 0
    view = market_view(protocol, eth, chain.blocks.head.timestamp)
    at_liq = m.MarketView(view.params, view.state, liq, view.im_factor, view.mm_factor, view.mmr)
    state = m.account_state(int(protocol.vault.marginOf(account)), SCALE, [(position_of(engine, account, eth), at_liq)])
    # At the liquidation price equity and maintenance margin agree to within rounding.
    assert abs(state.equity - state.maintenance_margin) <= 10 * 5


def test_position_details_match_the_mirror(protocol, engine, eth, alice, open_account, set_price, chain):
    account = open_account(alice, 5_000)
    engine.modifyPosition(account, eth, -wad(7), 0, sender=alice)
    set_price("ETH-USD", "3050.5")
    chain.mine()
    details = engine.positionDetails(account, eth)
    view = market_view(protocol, eth, chain.blocks.head.timestamp)
    figures = m.position_figures(position_of(engine, account, eth), view)
    assert (details.sizeWad, details.priceWad, details.valueWad, details.notionalWad, details.closeFeeWad,
            details.initialMarginWad, details.maintenanceMarginWad) == (
        -wad(7), wad("3050.5"), figures.value, figures.notional, figures.close_fee, figures.initial, figures.maintenance)
    assert details.liquidationPriceWad == engine.liquidationPrice(account, eth) > wad("3050.5")


def test_position_details_without_position_reverts(engine, eth, alice, open_account):
    account = open_account(alice)
    with ape.reverts(engine.NoPosition, accountId=account, marketId=eth):
        engine.positionDetails(account, eth)


def test_pause_blocks_open_and_increase(engine, eth, deployer, alice, open_account):
    account = open_account(alice)
    engine.modifyPosition(account, eth, wad(1), 0, sender=alice)
    engine.pause(sender=deployer)
    with ape.reverts(engine.EnforcedPause):
        engine.modifyPosition(account, eth, wad(1), 0, sender=alice)
    other = open_account(alice)
    with ape.reverts(engine.EnforcedPause):
        engine.modifyPosition(other, eth, -wad(1), 0, sender=alice)


def test_pause_allows_decrease_and_close(engine, eth, deployer, alice, open_account):
    account = open_account(alice)
    engine.modifyPosition(account, eth, wad(2), 0, sender=alice)
    engine.pause(sender=deployer)
    engine.modifyPosition(account, eth, -wad(1), 0, sender=alice)
    engine.closePosition(account, eth, 0, sender=alice)
    assert position_of(engine, account, eth).size == 0


def test_pause_by_stranger_reverts(engine, stranger):
    with ape.reverts(engine.AccessControlUnauthorizedAccount):
        engine.pause(sender=stranger)
