"""Pyth pull-oracle updates: the blobs `MockPyth` accepts, and a feed's publication history.

A blob is `abi.encode(PriceFeed(id, price, emaPrice), prevPublishTime)`, the format of Pyth's
`MockPyth` (npm `@pythnetwork/pyth-sdk-solidity` 4.3.1). `prevPublishTime` is what lets the
contract prove a price is the *earliest* at or after a time: the price service (and the real
Pyth network) fill it with the previous publication's time. Pure: no I/O here.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from decimal import Decimal

from eth_abi.abi import decode as abi_decode

PRICE_FEED = "(bytes32,(int64,uint64,int32,uint256),(int64,uint64,int32,uint256))"
DEFAULT_EXPO = -8


@dataclass(frozen=True, order=True)
class Publication:
    """One published price: `price * 10^expo` USD, confidence `conf` in the same units."""

    publish_time: int
    price: int
    conf: int = 0
    expo: int = DEFAULT_EXPO


def encode_update(price_id: bytes, pub: Publication, prev_publish_time: int) -> bytes:
    """The update blob `MockPyth` parses (the EMA price is the price itself): `abi.encode` of
    `(PRICE_FEED, uint64)`, every field static, so ten 32-byte words written directly (a test
    holds it equal to eth-abi's encoding)."""
    if len(price_id) != 32:
        raise ValueError("a price id is 32 bytes")
    price = b"".join(_word(v) for v in (pub.price, pub.conf, pub.expo, pub.publish_time))
    return price_id + price + price + _word(prev_publish_time)


def _word(value: int) -> bytes:
    return (value % 2**256).to_bytes(32, "big")


def decode_update(blob: bytes) -> tuple[bytes, Publication, int]:
    """(price id, publication, previous publish time) of a blob."""
    (feed_id, price, _ema), prev = abi_decode([PRICE_FEED, "uint64"], blob)
    return bytes(feed_id), Publication(int(price[3]), int(price[0]), int(price[1]), int(price[2])), int(prev)


def to_pyth_price(usd: Decimal | str | int, expo: int = DEFAULT_EXPO) -> int:
    """A human USD price as Pyth's integer at `expo` (exact, or ValueError)."""
    scaled = Decimal(str(usd)).scaleb(-expo)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{usd} has more than {-expo} decimal places")
    return int(scaled)


def price_id_from_hex(text: str) -> bytes:
    raw = bytes.fromhex(text.removeprefix("0x"))
    if len(raw) != 32:
        raise ValueError(f"a price id is 32 bytes, not {len(raw)}: {text}")
    return raw


@dataclass
class FeedHistory:
    """The publications of one feed, in time order (one per second at most)."""

    price_id: bytes
    publications: list[Publication] = field(default_factory=list)

    def publish(self, pub: Publication) -> None:
        """Adds a publication; a second one at the same time replaces the first."""
        i = bisect.bisect_left(self.publications, (pub.publish_time,), key=lambda p: (p.publish_time,))
        if i < len(self.publications) and self.publications[i].publish_time == pub.publish_time:
            self.publications[i] = pub
        else:
            self.publications.insert(i, pub)

    def latest(self) -> Publication | None:
        return self.publications[-1] if self.publications else None

    def at_or_after(self, t: int) -> tuple[Publication, int] | None:
        """The earliest publication at or after `t`, with the previous one's publish time (0 if none)."""
        i = bisect.bisect_left(self.publications, (t,), key=lambda p: (p.publish_time,))
        if i == len(self.publications):
            return None
        prev = self.publications[i - 1].publish_time if i > 0 else 0
        return self.publications[i], prev

    def update_at_or_after(self, t: int) -> bytes | None:
        """The blob of the earliest publication at or after `t` (what a settlement needs)."""
        found = self.at_or_after(t)
        return None if found is None else encode_update(self.price_id, found[0], found[1])

    def latest_update(self) -> bytes | None:
        """The blob of the latest publication (what a liquidation needs)."""
        if not self.publications:
            return None
        prev = self.publications[-2].publish_time if len(self.publications) > 1 else 0
        return encode_update(self.price_id, self.publications[-1], prev)


@dataclass
class PriceBook:
    """The publication history of every market's feed: what a Hermes-like price service holds."""

    feeds: dict[str, FeedHistory] = field(default_factory=dict)  # market name -> history

    @classmethod
    def for_markets(cls, price_ids: dict[str, bytes]) -> PriceBook:
        return cls({name: FeedHistory(pid) for name, pid in price_ids.items()})

    def publish(
        self, market: str, usd: Decimal | str | int, publish_time: int, conf_share: Decimal = Decimal(0)
    ) -> Publication:
        """Publishes `usd` for `market` at `publish_time` (confidence as a share of the price)."""
        price = to_pyth_price(usd)
        pub = Publication(publish_time, price, int(price * conf_share))
        self.feeds[market].publish(pub)
        return pub

    def by_id(self, price_id: bytes) -> FeedHistory | None:
        return next((h for h in self.feeds.values() if h.price_id == price_id), None)
