"""Reads a deployed protocol's state into plain data, and renders it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Any

from rich.console import Console
from rich.table import Table

from lever import math as m
from lever.units import from_scaled, from_wad


@dataclass(frozen=True)
class MarketStatus:
    name: str
    market_id: int
    price: Decimal
    long_oi: Decimal
    short_oi: Decimal
    funding_rate_per_day: Decimal


@dataclass(frozen=True)
class ProtocolStatus:
    markets: list[MarketStatus]
    pool_assets: Decimal
    pool_value: Decimal
    pool_free: Decimal
    insurance: Decimal
    protocol_fees: Decimal
    total_margin: Decimal
    vault_balance: Decimal
    solvent: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_status(protocol: Any) -> ProtocolStatus:
    vault, engine, oracle = protocol.vault, protocol.engine, protocol.oracle
    decimals = int(protocol.token.decimals())
    markets = []
    for name, market_id in protocol.markets.items():
        params = m.MarketParams.from_chain(engine.marketParams(market_id))
        state = m.MarketState.from_chain(engine.marketState(market_id))
        price = int(oracle.priceWad(protocol.feeds[name]))
        rate = m.funding_rate_per_day(
            state.long_oi - state.short_oi, params.skew_scale, params.max_funding_rate_per_day
        )
        markets.append(
            MarketStatus(name, market_id, from_wad(price), from_wad(state.long_oi), from_wad(state.short_oi), from_wad(rate))
        )
    balance, _, solvent = vault.solvency()

    def tokens(amount: int) -> Decimal:
        return from_scaled(int(amount), decimals)

    return ProtocolStatus(
        markets=markets,
        pool_assets=tokens(vault.poolAssets()),
        pool_value=tokens(vault.totalAssets()),
        pool_free=tokens(vault.freeAssets()),
        insurance=tokens(vault.insuranceFund()),
        protocol_fees=tokens(vault.protocolFees()),
        total_margin=tokens(vault.totalMargin()),
        vault_balance=tokens(balance),
        solvent=bool(solvent),
    )


def render_status(status: ProtocolStatus, console: Console | None = None) -> None:
    console = console or Console()
    markets = Table(title="Markets")
    for column in ("market", "price", "long OI", "short OI", "funding / day"):
        markets.add_column(column, justify="right" if column != "market" else "left")
    for mk in status.markets:
        markets.add_row(
            mk.name, f"{mk.price:,.2f}", f"{mk.long_oi:,.4f}", f"{mk.short_oi:,.4f}", f"{mk.funding_rate_per_day:.6%}"
        )
    console.print(markets)
    ledgers = Table(title="Vault ledgers (collateral token)")
    ledgers.add_column("ledger")
    ledgers.add_column("amount", justify="right")
    for label, value in (
        ("trader margin", status.total_margin),
        ("pool assets", status.pool_assets),
        ("pool value (net of trader PnL)", status.pool_value),
        ("pool free to redeem", status.pool_free),
        ("insurance fund", status.insurance),
        ("protocol fees", status.protocol_fees),
        ("vault token balance", status.vault_balance),
    ):
        ledgers.add_row(label, f"{value:,.6f}")
    ledgers.add_row("solvency identity", "holds" if status.solvent else "[bold red]BROKEN[/]")
    console.print(ledgers)
