"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "accounts",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("owner", sa.String(length=42), nullable=False),
        sa.Column("created_block", sa.BigInteger(), nullable=False),
        sa.Column("margin", sa.String(length=80), nullable=False),
        sa.Column("positions", sa.Integer(), nullable=False),
        sa.Column("equity_f", sa.Float(), nullable=True),
        sa.Column("maintenance_f", sa.Float(), nullable=True),
        sa.Column("notional_f", sa.Float(), nullable=True),
        sa.Column("health_f", sa.Float(), nullable=True),
        sa.Column("risk_block", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("account_id"),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_index("ix_accounts_health", ["health_f"], unique=False)
        batch_op.create_index("ix_accounts_owner", ["owner"], unique=False)

    op.create_table(
        "blocks",
        sa.Column("number", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=66), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("number"),
    )
    op.create_table(
        "cursor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("engine", sa.String(length=42), nullable=False),
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=66), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "events",
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("topics", sa.Text(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("block", "log_index"),
    )
    op.create_table(
        "funding",
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("market_id", sa.Integer(), nullable=False),
        sa.Column("long_index", sa.String(length=80), nullable=False),
        sa.Column("short_index", sa.String(length=80), nullable=False),
        sa.Column("price", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("block", "log_index"),
    )
    op.create_table(
        "ledgers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("pool", sa.String(length=80), nullable=False),
        sa.Column("insurance", sa.String(length=80), nullable=False),
        sa.Column("protocol_fees", sa.String(length=80), nullable=False),
        sa.Column("order_escrow", sa.String(length=80), nullable=False),
        sa.Column("lp_escrow", sa.String(length=80), nullable=False),
        sa.Column("total_margin", sa.String(length=80), nullable=False),
        sa.Column("share_supply", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "liquidations",
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("keeper", sa.String(length=42), nullable=False),
        sa.Column("full", sa.Boolean(), nullable=False),
        sa.Column("close_share", sa.String(length=80), nullable=False),
        sa.Column("closed_notional", sa.String(length=80), nullable=False),
        sa.Column("reward", sa.String(length=80), nullable=False),
        sa.Column("penalty", sa.String(length=80), nullable=False),
        sa.Column("bad_debt", sa.String(length=80), nullable=False),
        sa.Column("equity", sa.String(length=80), nullable=False),
        sa.Column("maintenance", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("block", "log_index"),
    )
    op.create_table(
        "lp_flows",
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("controller", sa.String(length=42), nullable=False),
        sa.Column("assets", sa.String(length=80), nullable=False),
        sa.Column("shares", sa.String(length=80), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("block", "log_index"),
    )
    op.create_table(
        "lp_holders",
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("shares", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("address"),
    )
    op.create_table(
        "margin_flows",
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("address", sa.String(length=42), nullable=False),
        sa.Column("amount", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("block", "log_index"),
    )
    op.create_table(
        "market_snapshots",
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("market_id", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("price", sa.String(length=80), nullable=False),
        sa.Column("long_oi", sa.String(length=80), nullable=False),
        sa.Column("short_oi", sa.String(length=80), nullable=False),
        sa.Column("funding_rate_day", sa.String(length=80), nullable=False),
        sa.Column("long_borrow_day", sa.String(length=80), nullable=False),
        sa.Column("short_borrow_day", sa.String(length=80), nullable=False),
        sa.Column("reserve", sa.String(length=80), nullable=False),
        sa.Column("price_f", sa.Float(), nullable=False),
        sa.Column("long_oi_f", sa.Float(), nullable=False),
        sa.Column("short_oi_f", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("block", "market_id"),
    )
    op.create_table(
        "markets",
        sa.Column("market_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_block", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("market_id"),
    )
    op.create_table(
        "orders",
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("order_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("market_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Integer(), nullable=False),
        sa.Column("size_delta", sa.String(length=80), nullable=False),
        sa.Column("trigger_price", sa.String(length=80), nullable=False),
        sa.Column("acceptable_price", sa.String(length=80), nullable=False),
        sa.Column("executor_fee", sa.String(length=80), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("closed_block", sa.BigInteger(), nullable=True),
        sa.Column("fill_price", sa.String(length=80), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("block", "log_index"),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.create_index("ix_orders_status", ["status", "order_id"], unique=False)

    op.create_table(
        "pool_snapshots",
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("pool_assets", sa.String(length=80), nullable=False),
        sa.Column("pool_value", sa.String(length=80), nullable=False),
        sa.Column("share_supply", sa.String(length=80), nullable=False),
        sa.Column("reserve_wad", sa.String(length=80), nullable=False),
        sa.Column("free_assets", sa.String(length=80), nullable=False),
        sa.Column("insurance", sa.String(length=80), nullable=False),
        sa.Column("protocol_fees", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("block"),
    )
    op.create_table(
        "positions",
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("market_id", sa.Integer(), nullable=False),
        sa.Column("size", sa.String(length=80), nullable=False),
        sa.Column("cost", sa.String(length=80), nullable=False),
        sa.Column("entry_charge", sa.String(length=80), nullable=False),
        sa.Column("last_increase_time", sa.BigInteger(), nullable=False),
        sa.Column("size_f", sa.Float(), nullable=False),
        sa.Column("entry_price_f", sa.Float(), nullable=False),
        sa.Column("liquidation_price_f", sa.Float(), nullable=True),
        sa.Column("value_f", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("account_id", "market_id"),
    )
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.create_index("ix_positions_market_liq", ["market_id", "liquidation_price_f"], unique=False)

    op.create_table(
        "prices",
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("market_id", sa.Integer(), nullable=False),
        sa.Column("price", sa.String(length=80), nullable=False),
        sa.Column("publish_time", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("block", "log_index"),
    )
    op.create_table(
        "trades",
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("timestamp", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("market_id", sa.Integer(), nullable=False),
        sa.Column("size_delta", sa.String(length=80), nullable=False),
        sa.Column("size_after", sa.String(length=80), nullable=False),
        sa.Column("fill_price", sa.String(length=80), nullable=False),
        sa.Column("oracle_price", sa.String(length=80), nullable=False),
        sa.Column("realised", sa.String(length=80), nullable=False),
        sa.Column("fee", sa.String(length=80), nullable=False),
        sa.Column("liquidation", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("block", "log_index"),
    )
    with op.batch_alter_table("trades", schema=None) as batch_op:
        batch_op.create_index("ix_trades_account", ["account_id"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("trades", schema=None) as batch_op:
        batch_op.drop_index("ix_trades_account")

    op.drop_table("trades")
    op.drop_table("prices")
    with op.batch_alter_table("positions", schema=None) as batch_op:
        batch_op.drop_index("ix_positions_market_liq")

    op.drop_table("positions")
    op.drop_table("pool_snapshots")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_status")

    op.drop_table("orders")
    op.drop_table("markets")
    op.drop_table("market_snapshots")
    op.drop_table("margin_flows")
    op.drop_table("lp_holders")
    op.drop_table("lp_flows")
    op.drop_table("liquidations")
    op.drop_table("ledgers")
    op.drop_table("funding")
    op.drop_table("events")
    op.drop_table("cursor")
    op.drop_table("blocks")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index("ix_accounts_owner")
        batch_op.drop_index("ix_accounts_health")

    op.drop_table("accounts")
