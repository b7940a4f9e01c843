"""Risk parameters: changed only through the timelock, within bounds, and phased in so that no
change liquidates an account in the block it lands."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import ape
import pytest
from harness import Harness, wad

from lever import governance as g
from lever import math as m
from lever.errors import LeverError

ETH = "ETH-USD"
DAY = 86_400


def params(h: Harness) -> m.MarketParams:
    return m.MarketParams.from_chain(h.p.engine.marketParams(0))


def change(h: Harness, **fields: int) -> Any:
    new = replace(params(h), **fields)
    return g.apply(h.p, h.p.deployer, g.call_change(h.p.engine, "setMarketParams", 0, tuple(new.__dict__.values())))


def near_maintenance(h: Harness, owner: Any) -> int:
    """An account at about 1.15x its maintenance margin."""
    account = h.open_account(owner, 2_000)
    h.trade(owner, account, ETH, "12")
    h.set_price(ETH, 2_900)
    h.refresh()
    state = h.account_state(account)
    assert state.maintenance_margin < state.equity < state.maintenance_margin * 13 // 10
    return account


def test_only_the_timelock_changes_parameters(h: Harness, alice: Any) -> None:
    new = tuple(params(h).__dict__.values())
    with ape.reverts(h.p.engine.AccessControlUnauthorizedAccount):
        h.p.engine.setMarketParams(0, new, sender=h.p.deployer)
    with pytest.raises(LeverError, match="lacks the role"):
        g.schedule(h.p, alice, g.call_change(h.p.engine, "setMarketParams", 0, new))
    op = g.apply(h.p, h.p.deployer, g.call_change(h.p.engine, "setMarketParams", 0, new))
    assert op.state == "done"


def test_a_scheduled_change_waits_for_its_delay(h: Harness) -> None:
    new = replace(params(h), taker_fee=wad("0.0006"))
    op = g.schedule(
        h.p, h.p.deployer, g.call_change(h.p.engine, "setMarketParams", 0, tuple(new.__dict__.values())), delay=3_600
    )
    assert op.state == "waiting"
    with pytest.raises(Exception, match="waiting"):
        g.execute(h.p, h.p.deployer, op.id)
    h.advance(3_600)
    assert g.execute(h.p, h.p.deployer, op.id).state == "done"
    assert params(h).taker_fee == wad("0.0006")


@pytest.mark.parametrize(
    "fields",
    [
        {"taker_fee": wad("0.005")},  # 5 bp -> 50 bp: the closing fee counted in equity
        {"min_margin": wad(200)},  # $5 -> $200 added to maintenance margin
        {"skew_scale": wad(500)},  # a tenth of... the margin ratio scales with size / skew scale
        {"maintenance_margin_ratio": wad("0.035")},
    ],
)
def test_a_tightening_change_phases_in_instead_of_liquidating_at_once(
    h: Harness, alice: Any, fields: dict[str, int]
) -> None:
    account = near_maintenance(h, alice)
    before = h.account_state(account)
    change(h, **fields)
    h.refresh()
    now = h.account_state(account)
    assert not now.liquidatable
    assert now.equity - now.maintenance_margin >= (before.equity - before.maintenance_margin) - wad(5)
    with ape.reverts(h.p.liquidator.NothingToLiquidate):
        h.liquidate([account])
    h.advance(DAY)
    h.refresh()
    phased = h.account_state(account)
    assert phased.equity - phased.maintenance_margin < now.equity - now.maintenance_margin


def test_the_profit_cap_is_lowered_only_on_a_market_without_open_interest(h: Harness, alice: Any) -> None:
    """A lower cap would cut open positions' profits and the pool's reserve at once (an LP could
    redeem against the smaller reserve before traders' values follow)."""
    account = h.open_account(alice, 10_000)
    h.trade(alice, account, ETH, "1")
    with pytest.raises(LeverError, match="maxProfitRatio"):
        change(h, max_profit_ratio=wad("0.3"))
    change(h, max_profit_ratio=wad("0.6"))  # raising it is fine while the pool covers the reserve
    h.close(alice, account, ETH)
    h.advance(DAY)
    change(h, max_profit_ratio=wad("0.3"))
    assert params(h).max_profit_ratio == wad("0.3")


def test_a_second_change_waits_for_the_first_to_phase_in(h: Harness) -> None:
    change(h, taker_fee=wad("0.0006"))
    new = replace(params(h), taker_fee=wad("0.0007"))
    with pytest.raises(LeverError, match="still phasing in"):
        g.apply(h.p, h.p.deployer, g.call_change(h.p.engine, "setMarketParams", 0, tuple(new.__dict__.values())))
    h.advance(DAY)
    change(h, taker_fee=wad("0.0007"))


def test_a_relaxation_applies_at_once(h: Harness, alice: Any) -> None:
    account = near_maintenance(h, alice)
    before = h.account_state(account)
    change(h, maintenance_margin_ratio=wad("0.01"))
    h.refresh()
    assert h.account_state(account).maintenance_margin < before.maintenance_margin * 6 // 10


@pytest.mark.parametrize(
    "fields",
    [
        {"max_leverage": 0},
        {"taker_fee": wad("0.02")},
        {"maker_fee": wad("0.001")},  # above the taker fee
        {"initial_margin_ratio": wad("0.02")},  # not above maintenance
        {"max_profit_ratio": 0},
        {"skew_scale": 0},
        {"oi_cap_ratio": 0},
    ],
)
def test_out_of_bounds_parameters_are_refused(h: Harness, fields: dict[str, int]) -> None:
    new = replace(params(h), **fields)
    with pytest.raises(LeverError, match="out of bounds"):
        g.apply(h.p, h.p.deployer, g.call_change(h.p.engine, "setMarketParams", 0, tuple(new.__dict__.values())))
