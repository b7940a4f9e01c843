"""Oracle adapter and mock feed: WAD conversion and every rejection, each with its own error."""

import ape
import pytest
from helpers import wad


def test_price_wad_converts_feed_decimals_to_wad(protocol, eth_feed):
    assert protocol.oracle.priceWad(eth_feed) == wad(3000)


def test_price_wad_converts_18_decimal_feed(project, protocol, deployer, feed_params):
    feed = project.MockPriceFeed.deploy(18, "X", wad("1.5"), deployer, sender=deployer)
    protocol.oracle.setFeed(feed, feed_params(maxAge=60), sender=deployer)
    assert protocol.oracle.priceWad(feed) == wad("1.5")


@pytest.mark.parametrize("answer", [0, -1])
def test_price_wad_non_positive_answer_reverts(protocol, eth_feed, deployer, answer):
    eth_feed.setPrice(answer, sender=deployer)
    with ape.reverts(protocol.oracle.OracleNonPositivePrice, feed=eth_feed.address, answer=answer):
        protocol.oracle.priceWad(eth_feed)


def test_price_wad_answer_above_the_price_bound_reverts_and_the_bound_itself_is_accepted(protocol, eth_feed, deployer):
    """A price is stored in 128 bits; an answer beyond $10^18 a unit is refused, never truncated."""
    bound = 10**36 // 10**10  # MAX_PRICE_WAD in the feed's 8 decimals
    eth_feed.setPrice(bound, sender=deployer)
    assert protocol.oracle.priceWad(eth_feed) == 10**36
    eth_feed.setPrice(bound + 1, sender=deployer)
    with ape.reverts(protocol.oracle.OraclePriceTooHigh, feed=eth_feed.address, answer=bound + 1):
        protocol.oracle.priceWad(eth_feed)
    eth_feed.setPrice(2**200, sender=deployer)  # would overflow the WAD conversion
    with ape.reverts(protocol.oracle.OraclePriceTooHigh, feed=eth_feed.address, answer=2**200):
        protocol.oracle.priceWad(eth_feed)


def test_price_wad_stale_answer_reverts(protocol, eth_feed, chain):
    updated_at = eth_feed.latestRoundData()[3]
    chain.pending_timestamp = updated_at + 3601
    chain.mine()
    with ape.reverts(protocol.oracle.OracleStalePrice, feed=eth_feed.address, updatedAt=updated_at, maxAge=3600):
        protocol.oracle.priceWad(eth_feed)


def test_price_wad_answer_exactly_max_age_old_is_fresh(protocol, eth_feed, chain):
    updated_at = eth_feed.latestRoundData()[3]
    chain.pending_timestamp = updated_at + 3600
    chain.mine()
    assert protocol.oracle.priceWad(eth_feed) == wad(3000)


def test_price_wad_incomplete_round_reverts(protocol, eth_feed, deployer, chain):
    now = chain.pending_timestamp
    eth_feed.setRoundData(3000 * 10**8, now, now, 1, sender=deployer)  # answered in an older round
    round_id = eth_feed.latestRound()
    with ape.reverts(protocol.oracle.OracleIncompleteRound, feed=eth_feed.address, roundId=round_id, answeredInRound=1):
        protocol.oracle.priceWad(eth_feed)


def test_price_wad_round_without_timestamp_reverts(protocol, eth_feed, deployer):
    eth_feed.setRoundData(3000 * 10**8, 0, 0, 0, sender=deployer)
    with ape.reverts(protocol.oracle.OracleIncompleteRound):
        protocol.oracle.priceWad(eth_feed)


def test_price_wad_unknown_feed_reverts(protocol, stranger):
    with ape.reverts(protocol.oracle.OracleFeedUnknown, feed=stranger.address):
        protocol.oracle.priceWad(stranger)


def test_set_feed_by_stranger_reverts(protocol, eth_feed, stranger, feed_params):
    with ape.reverts(protocol.oracle.AccessControlUnauthorizedAccount):
        protocol.oracle.setFeed(eth_feed, feed_params(), sender=stranger)


@pytest.mark.parametrize("max_age", [0, 86_401])
def test_set_feed_max_age_out_of_bounds_reverts(protocol, eth_feed, deployer, feed_params, max_age):
    with ape.reverts(protocol.oracle.ParameterOutOfBounds, value=max_age):
        protocol.oracle.setFeed(eth_feed, feed_params(maxAge=max_age), sender=deployer)


def test_mock_feed_set_price_by_stranger_reverts(eth_feed, stranger):
    with ape.reverts(eth_feed.AccessControlUnauthorizedAccount):
        eth_feed.setPrice(1, sender=stranger)


def test_mock_feed_set_price_starts_complete_round_with_events(eth_feed, deployer):
    before = eth_feed.latestRound()
    receipt = eth_feed.setPrice(2_900 * 10**8, sender=deployer)
    round_id, answer, started_at, updated_at, answered_in = eth_feed.latestRoundData()
    assert round_id == before + 1 == answered_in
    assert answer == 2_900 * 10**8
    assert started_at == updated_at == receipt.timestamp
    [event] = receipt.events.filter(eth_feed.AnswerUpdated)
    assert event.current == 2_900 * 10**8 and event.roundId == round_id
    assert eth_feed.getRoundData(before)[1] == 3_000 * 10**8  # history is kept
    assert eth_feed.decimals() == 8


def test_mock_feed_unknown_round_reverts(eth_feed):
    with ape.reverts(eth_feed.NoDataPresent, roundId=99):
        eth_feed.getRoundData(99)
