"""`OracleAdapter`'s arithmetic: pull prices to WAD, reference rounds, margin factors."""

from __future__ import annotations

from dataclasses import dataclass, replace

from lever.math.constants import MAX_PRICE_WAD, WAD
from lever.math.fixed import mul_div_down
from lever.math.refusal import Refused
from lever.math.volatility import next_variance, ramped_factor, return_wad, target_factor

U64_MAX = 2**64 - 1


@dataclass(frozen=True)
class OracleConfig:
    """`IOracleAdapter.Config`, in struct order."""

    reference_feed: str
    reference_max_age: int
    max_deviation: int
    ewma_lambda: int
    ref_volatility: int
    max_vol_factor: int
    factor_rise_per_day: int
    price_id: bytes
    max_price_age: int
    max_conf_ratio: int
    max_reference_deviation: int
    max_execution_age: int

    @classmethod
    def from_chain(cls, raw: object) -> OracleConfig:
        v = list(raw)  # type: ignore[call-overload]
        a, b, c, d, e, f, g, h, i, j = (int(x) for x in v[1:7] + v[8:])
        return cls(str(v[0]), a, b, c, d, e, f, bytes(v[7]), g, h, i, j)


@dataclass(frozen=True)
class OracleState:
    """`OracleAdapter.ReferenceState`: the recorded reference round and the latest pull price."""

    last_reference: int = 0
    last_round_id: int = 0
    variance: int = 0
    mm_checkpoint: int = 0
    checkpoint_time: int = 0
    shocked: bool = False
    latest_price: int = 0
    latest_publish_time: int = 0

    @classmethod
    def from_chain(cls, raw: object) -> OracleState:
        v = list(raw)  # type: ignore[call-overload]
        return cls(int(v[0]), int(v[1]), int(v[2]), int(v[3]), int(v[4]), bool(v[5]), int(v[6]), int(v[7]))


@dataclass(frozen=True)
class PriceData:
    """`IOracleAdapter.PriceData`."""

    price: int
    publish_time: int
    im_factor: int = WAD
    mm_factor: int = WAD
    shocked: bool = False
    reference: int = 0  # the reference feed's price now (0 if unusable)


@dataclass(frozen=True)
class ReferenceRound:
    """A reference feed's latest round as `latestRoundData` returns it, with the feed's decimals."""

    round_id: int
    answer: int
    updated_at: int
    answered_in_round: int
    decimals: int


def reference_price(market_id: int, r: ReferenceRound, max_age: int, now: int, strict: bool) -> int:
    """Mirrors `OracleAdapter._reference`: the round's price as WAD. An unusable round (not
    positive, too high, incomplete, stale) is refused if `strict`, else priced 0. A timestamp in
    the future counts as fresh."""
    scale = 10 ** (18 - r.decimals)
    if r.answer <= 0:
        refusal = Refused("OracleNonPositivePrice", marketId=market_id, answer=r.answer)
    elif r.answer > MAX_PRICE_WAD // scale:
        refusal = Refused("OraclePriceTooHigh", marketId=market_id, priceWad=r.answer * scale)
    elif r.updated_at == 0 or r.answered_in_round < r.round_id:
        refusal = Refused("OracleIncompleteRound", marketId=market_id, roundId=r.round_id)
    elif r.updated_at < now and now - r.updated_at > max_age:
        refusal = Refused("OracleStalePrice", marketId=market_id, publishTime=r.updated_at, maxAge=max_age)
    else:
        return int(r.answer * scale)
    if strict:
        raise refusal
    return 0


def pull_price_wad(market_id: int, price: int, conf: int, expo: int, max_conf_ratio: int) -> int:
    """Mirrors `OracleAdapter._toWad`: a Pyth (price, conf, expo) as a validated WAD price."""
    if price <= 0:
        raise Refused("OracleNonPositivePrice", marketId=market_id, answer=price)
    if expo > 0 or expo < -18:
        raise Refused("OracleExponentInvalid", marketId=market_id, expo=expo)
    scale = int(10 ** (18 + expo))
    price_wad = price * scale
    if price_wad > MAX_PRICE_WAD:
        raise Refused("OraclePriceTooHigh", marketId=market_id, priceWad=price_wad)
    conf_wad = conf * scale
    if conf_wad > mul_div_down(price_wad, max_conf_ratio, WAD):
        raise Refused("OracleConfidenceTooWide", marketId=market_id, confWad=conf_wad, priceWad=price_wad)
    return price_wad


def reference_deviation_ok(price: int, reference: int, max_reference_deviation: int) -> bool:
    """Mirrors `OracleAdapter._checkReferenceDeviation`: |pull - reference| <= bound * reference."""
    return abs(price - reference) <= mul_div_down(reference, max_reference_deviation, WAD)


def mm_factor(c: OracleConfig, s: OracleState, now: int) -> int:
    """Mirrors `OracleAdapter._mmFactor`."""
    target = target_factor(s.variance, c.ref_volatility, c.max_vol_factor)
    return ramped_factor(target, s.mm_checkpoint, s.checkpoint_time, c.factor_rise_per_day, now)


def record_reference(c: OracleConfig, s: OracleState, round_id: int, price: int, now: int) -> OracleState:
    """Mirrors `OracleAdapter._record` (a round already recorded changes nothing)."""
    if round_id == s.last_round_id:
        return s
    if s.last_round_id == 0:
        return replace(s, mm_checkpoint=WAD, checkpoint_time=now, last_reference=price, last_round_id=round_id)
    checkpoint = mm_factor(c, s, now)
    r = return_wad(s.last_reference, price)
    variance = min(next_variance(s.variance, r, c.ewma_lambda), U64_MAX)
    return replace(
        s,
        mm_checkpoint=checkpoint,
        variance=variance,
        shocked=r > c.max_deviation,
        checkpoint_time=now,
        last_reference=price,
        last_round_id=round_id,
    )


def record_round(
    c: OracleConfig, s: OracleState, market_id: int, r: ReferenceRound, now: int, strict: bool
) -> tuple[OracleState, int]:
    """Mirrors `OracleAdapter._recordReference`: the state with the round recorded (if usable and
    new), and the reference price (0 if unusable and not `strict`)."""
    price = reference_price(market_id, r, c.reference_max_age, now, strict)
    if price == 0:
        return s, 0
    return record_reference(c, s, r.round_id, price, now), price


def latest(c: OracleConfig, s: OracleState, r: ReferenceRound, now: int) -> PriceData:
    """Mirrors `OracleAdapter.latest`: the stored pull price with the margin factors and shock
    flag of the state as if the reference's latest round were recorded (`_viewReference`)."""
    viewed, reference = record_round(c, s, 0, r, now, strict=False)
    return price_data(c, viewed, viewed.latest_price, viewed.latest_publish_time, now, reference)


def store_if_newer(s: OracleState, price: int, publish_time: int) -> OracleState:
    """Mirrors `OracleAdapter._storeIfNewer`."""
    if publish_time <= s.latest_publish_time:
        return s
    return replace(s, latest_price=price, latest_publish_time=publish_time)


def price_data(
    c: OracleConfig, s: OracleState, price: int, publish_time: int, now: int, reference: int = 0
) -> PriceData:
    """Mirrors `OracleAdapter._data`: a price with the margin factors and shock flag of `s`."""
    return PriceData(
        price,
        publish_time,
        target_factor(s.variance, c.ref_volatility, c.max_vol_factor),
        mm_factor(c, s, now),
        s.shocked,
        reference,
    )


def worst_for(size: int, d: PriceData) -> PriceData:
    """Mirrors `PerpEngine._worstFor`: the lower of pull and reference prices for a long, the
    higher for a short (margin checks that let value out)."""
    from dataclasses import replace as _replace

    if d.reference != 0 and (d.reference < d.price if size > 0 else d.reference > d.price):
        return _replace(d, price=d.reference)
    return d


def is_fresh(publish_time: int, max_price_age: int, now: int) -> bool:
    """`latestFresh`'s test: published within the market's maximum age."""
    return publish_time + max_price_age >= now
