"""The index's tables (SQLAlchemy 2 Core metadata; Alembic migrates it).

Three kinds of table:
- `events`: every log of the protocol's contracts as the node gave it, the source the projection
  is replayed from after a reorg;
- typed history (`trades`, `orders`, `funding`, `prices`, `liquidations`, `lp_flows`,
  `margin_flows`), keyed by (block, log index), each a view of one kind of event;
- current state (`accounts`, `positions`, `lp_holders`, `ledgers`, `cursor`) derived from the
  events by `lever.indexer.project`, and snapshots read from the chain at a block
  (`market_snapshots`, `pool_snapshots`).

On-chain integers (WADs, token units) exceed 64 bits: they are stored exactly as decimal text
(`Int256`); columns ending in `_f` are float copies for sorting and display only.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.types import TypeDecorator


class Int256(TypeDecorator[int]):
    """An exact (u)int256 as decimal text, on every backend."""

    impl = String(80)
    cache_ok = True

    def process_bind_param(self, value: int | None, dialect: Dialect) -> str | None:
        return None if value is None else str(int(value))

    def process_result_value(self, value: Any, dialect: Dialect) -> int | None:
        return None if value is None else int(value)


metadata = MetaData()

cursor = Table(
    "cursor",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("chain_id", BigInteger, nullable=False),
    Column("engine", String(42), nullable=False),  # the deployment this index follows
    Column("block", BigInteger, nullable=False),  # last block indexed
    Column("hash", String(66), nullable=False),
    Column("state", Text, nullable=False),  # the projection's small state, JSON
)

blocks = Table(
    "blocks",
    metadata,
    Column("number", BigInteger, primary_key=True),
    Column("hash", String(66), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("block", BigInteger, primary_key=True),
    Column("log_index", Integer, primary_key=True),
    Column("tx_hash", String(66), nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("address", String(42), nullable=False),
    Column("name", String(64), nullable=False),  # Contract.Event
    Column("topics", Text, nullable=False),  # hex, comma-separated
    Column("data", Text, nullable=False),  # hex
)

markets = Table(
    "markets",
    metadata,
    Column("market_id", Integer, primary_key=True),
    Column("name", String(64), nullable=False),
    Column("created_block", BigInteger, nullable=False),
)

market_snapshots = Table(
    "market_snapshots",
    metadata,
    Column("block", BigInteger, primary_key=True),
    Column("market_id", Integer, primary_key=True),
    Column("timestamp", BigInteger, nullable=False),
    Column("price", Int256, nullable=False),
    Column("long_oi", Int256, nullable=False),
    Column("short_oi", Int256, nullable=False),
    Column("funding_rate_day", Int256, nullable=False),  # signed WAD; > 0: longs pay
    Column("long_borrow_day", Int256, nullable=False),
    Column("short_borrow_day", Int256, nullable=False),
    Column("reserve", Int256, nullable=False),
    Column("price_f", Float, nullable=False),
    Column("long_oi_f", Float, nullable=False),
    Column("short_oi_f", Float, nullable=False),
)

pool_snapshots = Table(
    "pool_snapshots",
    metadata,
    Column("block", BigInteger, primary_key=True),
    Column("timestamp", BigInteger, nullable=False),
    Column("pool_assets", Int256, nullable=False),  # token units
    Column("pool_value", Int256, nullable=False),  # totalAssets: assets less what the pool owes traders
    Column("share_supply", Int256, nullable=False),
    Column("reserve_wad", Int256, nullable=False),
    Column("free_assets", Int256, nullable=False),
    Column("insurance", Int256, nullable=False),
    Column("protocol_fees", Int256, nullable=False),
)

ledgers = Table(
    "ledgers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("block", BigInteger, nullable=False),
    Column("pool", Int256, nullable=False),
    Column("insurance", Int256, nullable=False),
    Column("protocol_fees", Int256, nullable=False),
    Column("order_escrow", Int256, nullable=False),
    Column("lp_escrow", Int256, nullable=False),
    Column("total_margin", Int256, nullable=False),
    Column("share_supply", Int256, nullable=False),
)

accounts = Table(
    "accounts",
    metadata,
    Column("account_id", BigInteger, primary_key=True),
    Column("owner", String(42), nullable=False),
    Column("created_block", BigInteger, nullable=False),
    Column("margin", Int256, nullable=False),  # token units, signed
    Column("positions", Integer, nullable=False),
    # Risk at `risk_block`'s prices (the mirror), for accounts with positions.
    Column("equity_f", Float),
    Column("maintenance_f", Float),
    Column("notional_f", Float),
    Column("health_f", Float),  # equity / maintenance margin; < 1: liquidatable
    Column("risk_block", BigInteger),
)
Index("ix_accounts_health", accounts.c.health_f)
Index("ix_accounts_owner", accounts.c.owner)

positions = Table(
    "positions",
    metadata,
    Column("account_id", BigInteger, primary_key=True),
    Column("market_id", Integer, primary_key=True),
    Column("size", Int256, nullable=False),
    Column("cost", Int256, nullable=False),
    Column("entry_charge", Int256, nullable=False),
    Column("last_increase_time", BigInteger, nullable=False),
    Column("size_f", Float, nullable=False),
    Column("entry_price_f", Float, nullable=False),
    Column("liquidation_price_f", Float),
    Column("value_f", Float),
)
Index("ix_positions_market_liq", positions.c.market_id, positions.c.liquidation_price_f)

lp_holders = Table(
    "lp_holders",
    metadata,
    Column("address", String(42), primary_key=True),
    Column("shares", Int256, nullable=False),
)


def _history(name: str, *columns: Column[Any]) -> Table:
    return Table(
        name,
        metadata,
        Column("block", BigInteger, primary_key=True),
        Column("log_index", Integer, primary_key=True),
        Column("tx_hash", String(66), nullable=False),
        Column("timestamp", BigInteger, nullable=False),
        *columns,
    )


trades = _history(
    "trades",
    Column("account_id", BigInteger, nullable=False),
    Column("market_id", Integer, nullable=False),
    Column("size_delta", Int256, nullable=False),
    Column("size_after", Int256, nullable=False),
    Column("fill_price", Int256, nullable=False),
    Column("oracle_price", Int256, nullable=False),
    Column("realised", Int256, nullable=False),
    Column("fee", Int256, nullable=False),
    Column("liquidation", Boolean, nullable=False),
)
Index("ix_trades_account", trades.c.account_id)

orders = _history(
    "orders",  # keyed by the OrderPlaced log: an order id (account * 8 + slot) is reused
    Column("order_id", BigInteger, nullable=False),
    Column("account_id", BigInteger, nullable=False),
    Column("market_id", Integer, nullable=False),
    Column("kind", Integer, nullable=False),
    Column("size_delta", Int256, nullable=False),
    Column("trigger_price", Int256, nullable=False),
    Column("acceptable_price", Int256, nullable=False),
    Column("executor_fee", Int256, nullable=False),
    Column("status", String(16), nullable=False),  # pending, triggered, settled, cancelled
    Column("closed_block", BigInteger),
    Column("fill_price", Int256),
    Column("reason", String(64)),
)
Index("ix_orders_status", orders.c.status, orders.c.order_id)
OPEN_ORDER_STATUSES = ("pending", "triggered")  # still on the book (triggered: a conditional order to fill)

funding = _history(
    "funding",
    Column("market_id", Integer, nullable=False),
    Column("long_index", Int256, nullable=False),
    Column("short_index", Int256, nullable=False),
    Column("price", Int256, nullable=False),
)

prices = _history(
    "prices",
    Column("market_id", Integer, nullable=False),
    Column("price", Int256, nullable=False),
    Column("publish_time", BigInteger, nullable=False),
)

liquidations = _history(
    "liquidations",
    Column("account_id", BigInteger, nullable=False),
    Column("keeper", String(42), nullable=False),
    Column("full", Boolean, nullable=False),
    Column("close_share", Int256, nullable=False),
    Column("closed_notional", Int256, nullable=False),
    Column("reward", Int256, nullable=False),
    Column("penalty", Int256, nullable=False),
    Column("bad_debt", Int256, nullable=False),
    Column("equity", Int256, nullable=False),
    Column("maintenance", Int256, nullable=False),
)

lp_flows = _history(
    "lp_flows",
    Column("kind", String(24), nullable=False),
    Column("controller", String(42), nullable=False),
    Column("assets", Int256, nullable=False),
    Column("shares", Int256, nullable=False),
    Column("reason", String(64)),
)

margin_flows = _history(
    "margin_flows",
    Column("account_id", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),  # deposit, withdrawal
    Column("address", String(42), nullable=False),
    Column("amount", Int256, nullable=False),
)

HISTORY = (trades, orders, funding, prices, liquidations, lp_flows, margin_flows)
STATE = (accounts, positions, lp_holders, ledgers, markets)
SNAPSHOTS = (market_snapshots, pool_snapshots)
