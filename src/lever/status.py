"""Reads a deployed protocol's state into plain data (through the reader and the mirror), and
renders it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from lever import math as m
from lever.chain import ProtocolReader
from lever.units import from_scaled, from_wad


@dataclass(frozen=True)
class MarketStatus:
    name: str
    market_id: int
    price: Decimal
    price_time: int
    long_oi: Decimal
    short_oi: Decimal
    funding_rate_per_day: Decimal
    reserve: Decimal  # USD the pool holds for this market's capped profits


@dataclass(frozen=True)
class PositionStatus:
    market: str
    size: Decimal  # base units; negative = short
    value: Decimal  # what closing is worth: PnL - charges (USD)
    liquidation_price: Decimal | None


@dataclass(frozen=True)
class AccountStatus:
    account_id: int
    margin: Decimal  # USD; negative: the account owes the pool
    equity: Decimal
    maintenance_margin: Decimal
    health: Decimal | None  # equity / maintenance margin; < 1 is liquidatable
    positions: list[PositionStatus]


@dataclass(frozen=True)
class ProtocolStatus:
    chain_id: int
    block: int
    markets: list[MarketStatus]
    pool_assets: Decimal
    pool_value: Decimal
    pool_free: Decimal
    insurance: Decimal
    protocol_fees: Decimal
    total_margin: Decimal
    vault_balance: Decimal
    solvent: bool
    accounts: list[AccountStatus]
    pending_orders: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def plain(number: Decimal) -> Decimal:
    """Without trailing zeros, and never in exponent form (`2`, not `2.000000000000000000`; `1000`,
    not `1E+3`)."""
    return number.normalize() + 0


def health(state: m.AccountState) -> Decimal | None:
    """Equity over maintenance margin (below 1: liquidatable); None without a position."""
    return Decimal(state.equity) / Decimal(state.maintenance_margin) if state.maintenance_margin else None


def read_status(reader: ProtocolReader, page: int = 200) -> ProtocolStatus:
    block, now = reader.head()
    scale = reader.token_scale()
    decimals = 18 - len(str(scale)) + 1
    ledgers = reader.ledgers(block)
    cov = ledgers.coverage(scale)
    names = reader.addresses.names
    snapshots = {mk: reader.market(mk, block) for mk in range(reader.market_count(block))}
    views = {mk: snap.view(now, cov.pool) for mk, snap in snapshots.items()}
    markets = []
    for mk, view in views.items():
        s, p = view.state, view.params
        markets.append(
            MarketStatus(
                names.get(mk, str(mk)),
                mk,
                from_wad(view.price.price),
                view.price.publish_time,
                from_wad(s.long_oi),
                from_wad(s.short_oi),
                from_wad(m.perp.funding_rate_per_day(s.skew, p.funding_scale, p.max_funding_rate_per_day)),
                from_wad(m.market_reserve(s, p)),
            )
        )
    accounts = []
    ids: list[int] = []
    total = reader.account_count(block)
    for start in range(1, total + 1, page):
        ids += reader.accounts_with_positions(start, page, block)
    for account in ids:
        record = reader.account(account, block)
        legs = [(record.positions[mk], views[mk]) for mk in sorted(record.positions)]
        state = m.account_state(record.margin_token, scale, legs, cov)
        positions = []
        for mk, pos in sorted(record.positions.items()):
            liq = m.liquidation_price(record.margin_token, scale, legs, mk, cov)
            positions.append(
                PositionStatus(
                    names.get(mk, str(mk)),
                    from_wad(pos.size),
                    from_wad(m.figures(pos, views[mk], cov).value),
                    from_wad(liq) if liq else None,
                )
            )
        accounts.append(
            AccountStatus(
                account,
                from_scaled(record.margin_token, decimals),
                from_wad(state.equity),
                from_wad(state.maintenance_margin),
                health(state),
                positions,
            )
        )
    v = reader.vault.functions
    balance, _, solvent = reader.call(v.solvency(), block)
    book = reader.order_book.functions
    pending = sum(len(reader.call(book.ordersOf(a), block)[0]) for a in range(1, total + 1)) if total <= 2_000 else -1
    return ProtocolStatus(
        chain_id=int(reader.w3.eth.chain_id),
        block=block,
        markets=markets,
        pool_assets=from_scaled(ledgers.pool, decimals),
        pool_value=from_scaled(int(reader.call(v.totalAssets(), block)), decimals),
        pool_free=from_scaled(int(reader.call(v.freeAssets(), block)), decimals),
        insurance=from_scaled(ledgers.insurance, decimals),
        protocol_fees=from_scaled(ledgers.protocol_fees, decimals),
        total_margin=from_scaled(int(reader.call(v.totalMargin(), block)), decimals),
        vault_balance=from_scaled(int(balance), decimals),
        solvent=bool(solvent),
        accounts=accounts,
        pending_orders=pending,
    )


def _usd(value: Decimal) -> str:
    return f"${value:,.2f}"


def render_status(status: ProtocolStatus, console: Console | None = None) -> None:
    console = console or Console()
    markets = Table(title=f"Markets (chain {status.chain_id}, block {status.block})")
    for col in ("market", "price", "long OI", "short OI", "funding/day", "reserve"):
        markets.add_column(col, justify="right" if col != "market" else "left")
    for mk in status.markets:
        markets.add_row(
            mk.name,
            _usd(mk.price),
            f"{plain(mk.long_oi):,f}",
            f"{plain(mk.short_oi):,f}",
            f"{mk.funding_rate_per_day * 100:.4f}%",
            _usd(mk.reserve),
        )
    console.print(markets)
    pool = Table(title="Pool and ledgers")
    pool.add_column("")
    pool.add_column("", justify="right")
    for label, value in (
        ("pool assets", _usd(status.pool_assets)),
        ("pool value (LP share price basis)", _usd(status.pool_value)),
        ("free for redemptions", _usd(status.pool_free)),
        ("insurance fund", _usd(status.insurance)),
        ("protocol fees", _usd(status.protocol_fees)),
        ("traders' margin", _usd(status.total_margin)),
        ("vault balance", _usd(status.vault_balance)),
        ("solvent", "yes" if status.solvent else "[bold red]NO[/]"),
        ("pending orders", str(status.pending_orders) if status.pending_orders >= 0 else "many"),
    ):
        pool.add_row(label, value)
    console.print(pool)
    if not status.accounts:
        console.print("no open positions")
        return
    accounts = Table(title="Accounts with positions")
    for col in ("account", "margin", "equity", "health", "positions"):
        accounts.add_column(col, justify="right" if col != "positions" else "left")
    for a in status.accounts:
        legs = "; ".join(
            f"{p.market} {plain(p.size):+,f} (value {_usd(p.value)},"
            f" liq {_usd(p.liquidation_price) if p.liquidation_price else '-'})"
            for p in a.positions
        )
        shown = f"{a.health:.3f}" if a.health is not None else "-"
        accounts.add_row(str(a.account_id), _usd(a.margin), _usd(a.equity), shown, legs)
    console.print(accounts)
