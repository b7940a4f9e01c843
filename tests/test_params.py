"""Markets and their bounded parameters: only the risk role, only within bounds."""

import ape
import pytest
from helpers import wad

FIELDS = [
    "feed", "maxLeverage", "minMarginWad", "tradingFeeWad", "initialMarginRatioWad", "maintenanceMarginRatioWad",
    "maxFundingRatePerDayWad", "skewScaleWad", "minPositionSizeWad", "reserveRatioWad", "oiCapRatioWad",
]


def _params(config, feed, **changes):
    values = dict(zip(FIELDS, config.markets["ETH-USD"].params(feed)))
    values.update(changes)
    return tuple(values[f] for f in FIELDS)


def test_create_market_by_risk_role_emits_and_stores(engine, protocol, config, deployer, eth_feed):
    receipt = engine.createMarket(b"ETH2".ljust(32, b"\0"), _params(config, eth_feed.address), sender=deployer)
    market = receipt.events.filter(engine.MarketCreated)[0].marketId
    assert engine.marketCount() == market + 1
    assert engine.marketParams(market).maxLeverage == 25
    assert engine.marketName(market) == b"ETH2".ljust(32, b"\0")
    assert receipt.events.filter(engine.MarketCreated)[0].marketId == market


def test_create_market_by_stranger_reverts(engine, config, stranger, eth_feed):
    with ape.reverts(engine.AccessControlUnauthorizedAccount):
        engine.createMarket(b"X".ljust(32, b"\0"), _params(config, eth_feed.address), sender=stranger)


def test_create_market_with_unconfigured_feed_reverts(engine, config, deployer, stranger):
    with ape.reverts(engine.OracleFeedUnknown, feed=stranger.address):
        engine.createMarket(b"X".ljust(32, b"\0"), _params(config, stranger.address), sender=deployer)


@pytest.mark.parametrize(
    "field, value, name",
    [
        ("maxLeverage", 0, "maxLeverage"),
        ("maxLeverage", 101, "maxLeverage"),
        ("tradingFeeWad", wad("0.0101"), "tradingFee"),
        ("maintenanceMarginRatioWad", wad("0.0009"), "maintenanceMarginRatio"),
        ("initialMarginRatioWad", wad("0.02"), "initialMarginRatio"),  # not above maintenance
        ("initialMarginRatioWad", wad("1.01"), "initialMarginRatio"),
        ("maxFundingRatePerDayWad", wad("0.11"), "maxFundingRatePerDay"),
        ("reserveRatioWad", wad("1.01"), "reserveRatio"),
        ("skewScaleWad", 0, "skewScale"),
        ("minPositionSizeWad", 0, "minPositionSize"),
        ("minMarginWad", wad(1001), "minMargin"),
        ("oiCapRatioWad", 0, "oiCapRatio"),
        ("oiCapRatioWad", wad(11), "oiCapRatio"),
    ],
)
def test_parameter_out_of_bounds_reverts(engine, config, deployer, eth_feed, eth, field, value, name):
    params = _params(config, eth_feed.address, **{field: value})
    key = name.encode().ljust(32, b"\0")
    with ape.reverts(engine.ParameterOutOfBounds, parameter=key, value=value):
        engine.createMarket(b"X".ljust(32, b"\0"), params, sender=deployer)
    with ape.reverts(engine.ParameterOutOfBounds, parameter=key, value=value):
        engine.setMarketParams(eth, params, sender=deployer)


def test_set_market_params_by_risk_role_updates(engine, config, deployer, eth_feed, eth):
    engine.setMarketParams(eth, _params(config, eth_feed.address, tradingFeeWad=wad("0.001")), sender=deployer)
    assert engine.marketParams(eth).tradingFeeWad == wad("0.001")


def test_set_market_params_by_stranger_reverts(engine, config, stranger, eth_feed, eth):
    with ape.reverts(engine.AccessControlUnauthorizedAccount):
        engine.setMarketParams(eth, _params(config, eth_feed.address), sender=stranger)


def test_set_params_of_unknown_market_reverts(engine, config, deployer, eth_feed):
    with ape.reverts(engine.UnknownMarket, marketId=5):
        engine.setMarketParams(5, _params(config, eth_feed.address), sender=deployer)
