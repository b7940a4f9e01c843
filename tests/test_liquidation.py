"""Liquidation: condition, partial vs full, reward bounds, penalty, bad debt, batch, views."""

import ape
import pytest
from helpers import (
    WAD,
    account_legs,
    assert_solvent_exactly,
    ledgers,
    mirror_account,
    position_of,
    usdc,
    wad,
)

from lever import math as m

SCALE = 10**12


@pytest.fixture
def lp_params(liquidator):
    return m.LiquidationParams.from_chain(liquidator.params())


@pytest.fixture
def levered_long(engine, eth, alice, open_account):
    """Alice: $1,000 of margin, 6 ETH long at $3,000 (18x). Liquidation starts near $2,895."""
    account = open_account(alice, 1_000)
    engine.modifyPosition(account, eth, wad(6), 0, sender=alice)
    return account


def liquidate_and_predict(protocol, account, keeper, lp_params, batch=None):
    """Sends a liquidation and returns (receipt, the mirror's prediction at that block)."""
    vault = protocol.vault
    legs = account_legs(protocol, account)
    margin = int(vault.marginOf(account))
    before = ledgers(vault)
    if batch is None:
        receipt = protocol.liquidator.liquidate(account, sender=keeper)
    else:
        receipt = protocol.liquidator.liquidateBatch(batch, sender=keeper)
    predicted = m.predict_liquidation(
        margin, SCALE, [(pos, raw.view(receipt.timestamp)) for pos, raw in legs], lp_params,
        before["pool"], before["insurance"], before["fees"], int(vault.protocolFeeShareWad()),
    )
    return receipt, predicted


def test_healthy_account_cannot_be_liquidated(liquidator, levered_long, bob):
    with ape.reverts(liquidator.AccountNotLiquidatable, accountId=levered_long):
        liquidator.liquidate(levered_long, sender=bob)


def test_account_without_positions_cannot_be_liquidated(liquidator, alice, bob, open_account):
    account = open_account(alice, 100)
    with ape.reverts(liquidator.AccountNotLiquidatable, accountId=account, equityWad=0, maintenanceMarginWad=0):
        liquidator.liquidate(account, sender=bob)


def test_account_is_liquidatable_exactly_when_equity_below_maintenance(protocol, liquidator, levered_long, set_price, chain):
    for price in ("2896", "2895"):
        set_price("ETH-USD", price)
        chain.mine()
        mirror = mirror_account(protocol, levered_long, chain.blocks.head.timestamp)
        [health] = liquidator.healthOf([levered_long])
        assert health.liquidatable == mirror.liquidatable == (mirror.equity < mirror.maintenance_margin)
        assert (health.equityWad, health.maintenanceMarginWad) == (mirror.equity, mirror.maintenance_margin)
    assert health.liquidatable  # at $2,895 it is


def test_partial_liquidation_restores_target_health(protocol, engine, levered_long, bob, set_price, lp_params, chain):
    set_price("ETH-USD", 2890)  # health ~0.92: not deeply underwater
    receipt, predicted = liquidate_and_predict(protocol, levered_long, bob, lp_params)
    [event] = receipt.events.filter(protocol.liquidator.Liquidation)
    assert not event.full and 0 < event.closeShareWad < lp_params.max_partial_share
    assert (event.closeShareWad, event.closedNotionalWad) == (predicted.share, predicted.closed_notional)
    assert (event.rewardToken, event.penaltyToken, event.badDebtToken) == (
        predicted.reward_token, predicted.penalty_token, 0)
    assert position_of(engine, levered_long, 0).size == wad(6) - predicted.close_sizes[0]
    after = engine.accountState(levered_long)
    # Health after >= target, and far from liquidatable.
    assert after.equityWad * WAD >= lp_params.target_health * after.maintenanceMarginWad
    assert after.notionalWad >= lp_params.min_leftover_notional


def test_partial_liquidation_closes_a_leg_that_would_become_dust(protocol, engine, eth, btc, alice, bob, open_account, set_price, lp_params):
    account = open_account(alice, 1_000)
    engine.modifyPosition(account, eth, wad(6), 0, sender=alice)
    engine.modifyPosition(account, btc, wad("0.00012"), 0, sender=alice)  # min size 0.0001 BTC
    set_price("ETH-USD", 2890)
    _, predicted = liquidate_and_predict(protocol, account, bob, lp_params)
    assert not predicted.full
    assert position_of(engine, account, btc).size == 0  # 0.00012 * (1 - share) < 0.0001: closed
    assert 0 < position_of(engine, account, eth).size < wad(6)
    assert predicted.close_sizes[1] == wad("0.00012")


def test_deeply_underwater_account_is_closed_in_full(protocol, engine, levered_long, bob, set_price, lp_params):
    set_price("ETH-USD", 2850)  # equity ~$82 against ~$347 of maintenance margin
    receipt, predicted = liquidate_and_predict(protocol, levered_long, bob, lp_params)
    [event] = receipt.events.filter(protocol.liquidator.Liquidation)
    assert event.full and event.closeShareWad == WAD and predicted.full
    assert engine.accountMarkets(levered_long) == []
    assert protocol.vault.marginOf(levered_long) == predicted.settlement.margin


def test_keeper_reward_paid_to_caller_and_penalty_to_insurance(protocol, token, vault, levered_long, bob, set_price, lp_params):
    set_price("ETH-USD", 2890)
    insurance = vault.insuranceFund()
    receipt, predicted = liquidate_and_predict(protocol, levered_long, bob, lp_params)
    assert token.balanceOf(bob) == predicted.reward_token > 0
    assert vault.insuranceFund() == insurance + predicted.penalty_token > insurance
    # reward = 0.25% of the closed notional (within [$1, $250]); penalty = 0.5% of it.
    assert predicted.reward_token == m.mul_div_down(predicted.closed_notional, wad("0.0025"), WAD) // SCALE
    assert predicted.penalty_token == m.div_up(m.mul_div_up(predicted.closed_notional, wad("0.005"), WAD), SCALE)
    [event] = receipt.events.filter(protocol.liquidator.Liquidation)
    assert (event.keeper, event.rewardToken, event.penaltyToken) == (bob.address, predicted.reward_token, predicted.penalty_token)
    assert_solvent_exactly(vault, token)


def test_keeper_reward_floor_applies_to_small_liquidations(protocol, engine, eth, alice, bob, open_account, set_price, lp_params):
    account = open_account(alice, 20)
    engine.modifyPosition(account, eth, wad("0.1"), 0, sender=alice)  # $300 notional
    set_price("ETH-USD", 2900)
    _, predicted = liquidate_and_predict(protocol, account, bob, lp_params)
    assert m.mul_div_down(predicted.closed_notional, lp_params.reward_ratio, WAD) < lp_params.min_reward
    assert predicted.reward_token == usdc(1)  # the floor, which the margin left can pay


def test_keeper_reward_hard_cap_applies_to_large_liquidations(protocol, engine, eth, alice, bob, open_account, set_price, lp_params):
    account = open_account(alice, 30_000)
    engine.modifyPosition(account, eth, wad(150), 0, sender=alice)  # $450k notional at 15x
    set_price("ETH-USD", 2820)  # full liquidation: 0.25% of ~$423k would be ~$1,057
    _, predicted = liquidate_and_predict(protocol, account, bob, lp_params)
    assert predicted.full
    assert predicted.reward_token == usdc(250)


def test_keeper_reward_never_exceeds_margin_left(protocol, token, vault, levered_long, bob, set_price, lp_params):
    set_price("ETH-USD", 2800)  # equity < 0: nothing is left for the keeper
    _, predicted = liquidate_and_predict(protocol, levered_long, bob, lp_params)
    assert predicted.bad_debt > 0
    assert predicted.reward_token == 0 == token.balanceOf(bob)
    assert vault.marginOf(levered_long) == 0


def test_self_liquidation_is_not_profitable(protocol, engine, token, vault, eth, alice, levered_long, set_price, chain):
    set_price("ETH-USD", 2890)
    snapshot = chain.snapshot()
    engine.closePosition(levered_long, eth, 0, sender=alice)
    wealth_if_closed = vault.marginOf(levered_long) + token.balanceOf(alice)
    chain.restore(snapshot)
    protocol.liquidator.liquidate(levered_long, sender=alice)  # alice keeps the keeper reward
    engine.closePosition(levered_long, eth, 0, sender=alice)
    wealth_if_self_liquidated = vault.marginOf(levered_long) + token.balanceOf(alice)
    assert wealth_if_self_liquidated < wealth_if_closed


def test_bad_debt_is_covered_by_insurance_first_then_pool(protocol, token, vault, levered_long, bob, set_price, lp_params):
    token.mint(bob, usdc(100), sender=bob)
    token.approve(vault, usdc(100), sender=bob)
    vault.fundInsurance(usdc(100), sender=bob)
    set_price("ETH-USD", 2800)
    receipt, predicted = liquidate_and_predict(protocol, levered_long, bob, lp_params)
    [bad] = receipt.events.filter(vault.BadDebt)
    assert bad.shortfallToken == predicted.bad_debt > usdc(100)
    assert bad.coveredByInsurance == usdc(100)
    assert bad.coveredByPool == bad.shortfallToken - usdc(100)
    assert vault.insuranceFund() == 0
    assert (vault.badDebtTotal(), vault.badDebtCoveredByInsurance(), vault.badDebtCoveredByPool()) == (
        bad.shortfallToken, usdc(100), bad.coveredByPool)
    [event] = receipt.events.filter(protocol.liquidator.Liquidation)
    assert event.badDebtToken == bad.shortfallToken
    assert_solvent_exactly(vault, token)


def test_bad_debt_within_insurance_costs_the_pool_nothing(protocol, token, vault, levered_long, bob, set_price, lp_params):
    token.mint(bob, usdc(10_000), sender=bob)
    token.approve(vault, usdc(10_000), sender=bob)
    vault.fundInsurance(usdc(10_000), sender=bob)
    set_price("ETH-USD", 2800)
    receipt, predicted = liquidate_and_predict(protocol, levered_long, bob, lp_params)
    [bad] = receipt.events.filter(vault.BadDebt)
    assert bad.coveredByPool == 0 and bad.coveredByInsurance == predicted.bad_debt
    assert vault.insuranceFund() == usdc(10_000) - predicted.bad_debt


def test_batch_liquidates_unhealthy_and_skips_the_rest(protocol, liquidator, engine, eth, alice, bob, open_account, set_price, lp_params):
    healthy = open_account(alice, 10_000)
    engine.modifyPosition(healthy, eth, wad(1), 0, sender=alice)
    first = open_account(alice, 1_000)
    engine.modifyPosition(first, eth, wad(6), 0, sender=alice)
    second = open_account(alice, 1_000)
    engine.modifyPosition(second, eth, wad(6), 0, sender=alice)
    empty = open_account(alice, 100)
    set_price("ETH-USD", 2890)
    receipt = liquidator.liquidateBatch([healthy, first, first, empty, 999, second], sender=bob)
    events = receipt.events.filter(liquidator.Liquidation)
    assert [e.accountId for e in events] == [first, second]
    assert all(e.keeper == bob.address for e in events)


def test_batch_with_nothing_to_liquidate_reverts(liquidator, levered_long, bob):
    with ape.reverts(liquidator.NothingToLiquidate):
        liquidator.liquidateBatch([levered_long, 0, 12345], sender=bob)


def test_second_liquidation_in_same_block_is_skipped(protocol, liquidator, levered_long, bob, stranger, set_price, chain):
    set_price("ETH-USD", 2890)
    liquidator.liquidate(levered_long, sender=bob)
    # Already restored to the target health: a competing keeper's batch has nothing to do.
    with ape.reverts(liquidator.NothingToLiquidate):
        liquidator.liquidateBatch([levered_long], sender=stranger)


def test_liquidation_works_while_paused(protocol, engine, liquidator, levered_long, deployer, bob, set_price):
    engine.pause(sender=deployer)
    set_price("ETH-USD", 2890)
    liquidator.liquidate(levered_long, sender=bob)


def test_liquidation_with_stale_price_reverts(protocol, liquidator, levered_long, eth_feed, bob, chain):
    chain.pending_timestamp = eth_feed.latestRoundData()[3] + 3601
    with ape.reverts(protocol.oracle.OracleStalePrice):
        liquidator.liquidate(levered_long, sender=bob)


def test_liquidation_emits_position_change_for_every_leg(protocol, engine, liquidator, eth, btc, alice, bob, open_account, set_price):
    account = open_account(alice, 1_000)
    engine.modifyPosition(account, eth, wad(6), 0, sender=alice)
    engine.modifyPosition(account, btc, -wad("0.01"), 0, sender=alice)
    set_price("ETH-USD", 2850)
    receipt = liquidator.liquidate(account, sender=bob)
    changes = receipt.events.filter(engine.PositionChanged)
    assert sorted(e.marketId for e in changes) == [eth, btc]
    assert all(e.sizeAfterWad == 0 for e in changes)


def test_accounts_with_positions_paginates_over_ids(liquidator, engine, eth, alice, open_account):
    ids = [open_account(alice, 1_000) for _ in range(5)]
    for account in ids[1::2]:
        engine.modifyPosition(account, eth, wad(1), 0, sender=alice)
    assert list(liquidator.accountsWithPositions(0, 100)) == ids[1::2]
    assert list(liquidator.accountsWithPositions(ids[0], 2)) == [ids[1]]
    assert list(liquidator.accountsWithPositions(ids[-1] + 1, 10)) == []


def test_health_of_many_accounts_in_one_call(protocol, liquidator, engine, eth, alice, open_account, set_price, chain):
    safe = open_account(alice, 10_000)
    engine.modifyPosition(safe, eth, wad(1), 0, sender=alice)
    risky = open_account(alice, 1_000)
    engine.modifyPosition(risky, eth, wad(6), 0, sender=alice)
    empty = open_account(alice, 10)
    set_price("ETH-USD", 2890)
    health = liquidator.healthOf([safe, risky, empty])
    assert [h.liquidatable for h in health] == [False, True, False]
    assert health[2].equityWad == 0 and health[2].maintenanceMarginWad == 0


def test_set_liquidation_params_requires_risk_role(liquidator, stranger, config):
    with ape.reverts(liquidator.AccessControlUnauthorizedAccount):
        liquidator.setParams(config.liquidation.params(), sender=stranger)


@pytest.mark.parametrize(
    "index, value, name",
    [
        (0, wad("0.99"), "targetHealth"),
        (0, wad("3.01"), "targetHealth"),
        (1, 0, "maxPartialShare"),
        (2, wad("0.051"), "penaltyRatio"),
        (3, wad("0.021"), "rewardRatio"),
        (4, wad(251), "minReward"),  # above the max reward
        (5, wad(10_001), "maxReward"),
    ],
)
def test_liquidation_params_out_of_bounds_revert(liquidator, deployer, config, index, value, name):
    params = list(config.liquidation.params())
    params[index] = value
    with ape.reverts(liquidator.ParameterOutOfBounds, parameter=name.encode().ljust(32, b"\0"), value=value):
        liquidator.setParams(params, sender=deployer)
