"""`OrderBook`'s rules: order ids, when an order is due or expired, and when a conditional order
triggers. A triggered conditional order is a market order committed when it triggered: it is due,
expires and fills as one."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from lever.math.constants import MAX_ORDERS_PER_ACCOUNT


class Kind(IntEnum):
    """`IOrderBook.OrderKind`."""

    MARKET = 0
    LIMIT = 1
    STOP_LOSS = 2
    TAKE_PROFIT = 3


@dataclass(frozen=True)
class Order:
    """A pending order (`IOrderBook.Order`) with its id and account."""

    order_id: int
    account: int
    size_delta: int
    executor_fee: int
    updated_at: int
    market_id: int
    kind: Kind
    acceptable_price: int
    trigger_price: int
    triggered: bool = False  # a conditional order whose trigger was met at `updated_at`

    @classmethod
    def from_chain(cls, account: int, order_id: int, raw: object) -> Order:
        size, fee, updated, market, kind, trig, acceptable, trigger = (int(v) for v in raw)  # type: ignore[attr-defined]
        return cls(order_id, account, size, fee, updated, market, Kind(kind), acceptable, trigger, bool(trig))

    @property
    def reduce_only(self) -> bool:
        return self.kind in (Kind.STOP_LOSS, Kind.TAKE_PROFIT)

    @property
    def as_market(self) -> bool:
        """A market order, or a conditional one that triggered: due, expired and filled as a
        market order committed at `updated_at`."""
        return self.kind == Kind.MARKET or self.triggered

    @property
    def limit_price(self) -> int:
        """The acceptable price the engine gets: a limit order's limit when it names none."""
        return self.trigger_price if self.kind == Kind.LIMIT and self.acceptable_price == 0 else self.acceptable_price


def order_id(account: int, slot: int) -> int:
    """Mirrors the order book's ids: `accountId * 8 + slot`."""
    return account * MAX_ORDERS_PER_ACCOUNT + slot


def split(order_id_: int) -> tuple[int, int]:
    """Mirrors `OrderBook._split`: (account, slot)."""
    return divmod(order_id_, MAX_ORDERS_PER_ACCOUNT)


def earliest_publish_time(o: Order, delay: int) -> int:
    """A market order's price is the earliest published at or after this time."""
    return o.updated_at + delay


def expiry(o: Order, delay: int, window: int) -> int:
    """Mirrors `OrderBook._expiry`: after it, a market (or triggered) order can only be cancelled."""
    return o.updated_at + delay + window


def conditional_since(o: Order, last_increase_time: int) -> int:
    """A conditional order triggers at a stored price published at least the delay after this
    time: its last update, and for stop-loss and take-profit also the position's last increase."""
    if o.kind == Kind.LIMIT:
        return o.updated_at
    return max(o.updated_at, last_increase_time)


def triggered(o: Order, position_is_long: bool, price: int) -> bool:
    """Mirrors `OrderBook._triggered`: a limit at or better than its price; a stop-loss when the
    price moved against the position to the trigger; a take-profit when it moved in its favour."""
    if o.kind == Kind.LIMIT:
        return price <= o.trigger_price if o.size_delta > 0 else price >= o.trigger_price
    below, above = price <= o.trigger_price, price >= o.trigger_price
    return below if position_is_long == (o.kind == Kind.STOP_LOSS) else above
