"""Test helpers: units, and reading chain state into the Python mirror."""

from __future__ import annotations

from typing import Any

from lever import math as m
from lever.units import to_scaled, to_wad

WAD = m.WAD


def usdc(amount: str | int) -> int:
    return to_scaled(str(amount), 6)


def wad(amount: str | int) -> int:
    return to_wad(str(amount))


def params_of(engine: Any, market: int) -> m.MarketParams:
    return m.MarketParams.from_chain(engine.marketParams(market))


def state_of(engine: Any, market: int) -> m.MarketState:
    return m.MarketState.from_chain(engine.marketState(market))


def position_of(engine: Any, account: int, market: int) -> m.Position:
    return m.Position.from_chain(engine.position(account, market))


def price_of(protocol: Any, market_name: str) -> int:
    feed = protocol.feeds[market_name]
    return int(protocol.oracle.priceWad(feed))


def ledgers(vault: Any) -> dict[str, int]:
    return {
        "margin": int(vault.totalMargin()),
        "pool": int(vault.poolAssets()),
        "insurance": int(vault.insuranceFund()),
        "fees": int(vault.protocolFees()),
    }


def assert_solvent_exactly(vault: Any, token: Any) -> None:
    """The solvency identity with no surplus: balance == sum of ledgers."""
    balance, liabilities, solvent = vault.solvency()
    assert solvent
    assert balance == liabilities == int(token.balanceOf(vault))
    assert liabilities == sum(ledgers(vault).values())
