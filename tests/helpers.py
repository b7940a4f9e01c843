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


def market_view(protocol: Any, market: int, now: int) -> m.MarketView:
    """The market as the engine sees it at `now`: funding accrued by the mirror, oracle data and
    the effective maintenance ratio read from the chain."""
    engine = protocol.engine
    raw = engine.marketParams(market)
    params = m.MarketParams.from_chain(raw)
    data = protocol.oracle.read(raw.feed)
    state = m.accrued(state_of(engine, market), params, int(data.priceWad), now)
    return m.MarketView(
        params, state, int(data.priceWad), int(data.imFactorWad), int(data.mmFactorWad),
        int(engine.effectiveMaintenanceRatio(market)),
    )


def mirror_account(protocol: Any, account: int, now: int) -> m.AccountState:
    """The mirror's account state from the chain's raw positions and ledgers."""
    engine = protocol.engine
    legs = [(position_of(engine, account, mk), market_view(protocol, mk, now)) for mk in engine.accountMarkets(account)]
    return m.account_state(int(protocol.vault.marginOf(account)), int(protocol.vault.tokenScale()), legs)
