"""MockPyth update blobs: the direct encoding is eth-abi's, and a feed finds the earliest price."""

from __future__ import annotations

from eth_abi import encode

from lever.pyth import PRICE_FEED, FeedHistory, Publication, decode_update, encode_update

PRICE_ID = bytes(range(32))


def test_blobs_are_abi_encoded_exactly_as_mockpyth_decodes_them() -> None:
    for pub, prev in (
        (Publication(1_700_000_000, 3_000 * 10**8, 12, -8), 1_699_999_999),
        (Publication(5, -1, 0, -18), 0),
        (Publication(2**63, 2**63 - 1, 2**64 - 1, 0), 2**64 - 1),
    ):
        price = (pub.price, pub.conf, pub.expo, pub.publish_time)
        assert encode_update(PRICE_ID, pub, prev) == encode([PRICE_FEED, "uint64"], [(PRICE_ID, price, price), prev])
        assert decode_update(encode_update(PRICE_ID, pub, prev)) == (PRICE_ID, pub, prev)


def test_a_feed_proves_the_earliest_price_at_or_after_a_time_with_its_predecessor() -> None:
    feed = FeedHistory(PRICE_ID)
    for t in (10, 12, 15):
        feed.publish(Publication(t, t * 100))
    assert feed.at_or_after(11) == (Publication(12, 1_200), 10)
    assert feed.at_or_after(12) == (Publication(12, 1_200), 10)
    assert feed.at_or_after(16) is None
    assert feed.at_or_after(0) == (Publication(10, 1_000), 0)
