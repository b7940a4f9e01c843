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
class PositionStatus:
    market: str
    size: Decimal  # base units; negative = short
    value: Decimal  # unrealised PnL - pending funding (USD)
    liquidation_price: Decimal | None


@dataclass(frozen=True)
class AccountStatus:
    account_id: int
    owner: str
    margin: Decimal  # USD
    equity: Decimal  # USD
    maintenance_margin: Decimal  # USD
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_accounts(protocol: Any, page: int = 200) -> list[AccountStatus]:
    """Every account with a position: equity, health, and each position's liquidation price."""
    engine = protocol.engine
    names = {market_id: name for name, market_id in protocol.markets.items()}
    ids: list[int] = []
    total = int(engine.accountCount())
    for start in range(1, total + 1, page):
        ids += [int(i) for i in protocol.liquidator.accountsWithPositions(start, page)]
    found = []
    for account_id in ids:
        state = engine.accountState(account_id)
        positions = []
        for market_id in engine.accountMarkets(account_id):
            details = engine.positionDetails(account_id, market_id)
            liq = int(details.liquidationPriceWad)
            positions.append(PositionStatus(
                names.get(int(market_id), str(market_id)), from_wad(int(details.sizeWad)),
                from_wad(int(details.valueWad)), from_wad(liq) if liq else None,
            ))
        maintenance = int(state.maintenanceMarginWad)
        found.append(AccountStatus(
            account_id, str(engine.accountOwner(account_id)), from_wad(int(state.marginWad)),
            from_wad(int(state.equityWad)), from_wad(maintenance),
            from_wad(int(state.equityWad) * 10**18 // maintenance) if maintenance else None, positions,
        ))
    return found


def read_status(protocol: Any) -> ProtocolStatus:
    from ape import chain

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
        chain_id=int(chain.chain_id),
        block=int(chain.blocks.head.number),
        markets=markets,
        pool_assets=tokens(vault.poolAssets()),
        pool_value=tokens(vault.totalAssets()),
        pool_free=tokens(vault.freeAssets()),
        insurance=tokens(vault.insuranceFund()),
        protocol_fees=tokens(vault.protocolFees()),
        total_margin=tokens(vault.totalMargin()),
        vault_balance=tokens(balance),
        solvent=bool(solvent),
        accounts=read_accounts(protocol),
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
    accounts = Table(title=f"Accounts with positions ({len(status.accounts)})")
    for column in ("account", "owner", "equity", "maintenance", "health", "positions (size @ liquidation price)"):
        accounts.add_column(column, justify="left" if column in ("owner", "positions (size @ liquidation price)") else "right")
    for a in status.accounts:
        health = "-" if a.health is None else f"{a.health:.3f}"
        if a.health is not None and a.health < 1:
            health = f"[bold red]{health}[/]"
        legs = ", ".join(
            f"{p.market} {p.size:+,.4f} @ {'-' if p.liquidation_price is None else f'{p.liquidation_price:,.2f}'}"
            for p in a.positions
        )
        accounts.add_row(
            str(a.account_id), a.owner[:10] + "…", f"{a.equity:,.2f}", f"{a.maintenance_margin:,.2f}", health, legs
        )
    console.print(accounts)
