"""The liquidity pool: ERC-4626 shares, fees to LPs, valuation net of trader PnL, redemption reserve."""

import ape
from helpers import WAD, usdc, wad

from lever.deploy import deploy_core

POOL = usdc(1_000_000)


def test_lp_deposit_mints_shares_with_virtual_offset(vault, lp):
    # 10^6 virtual shares per asset unit: shares carry 12 decimals.
    assert vault.balanceOf(lp) == POOL * 10**6
    assert vault.decimals() == 12
    assert vault.totalAssets() == POOL


def test_lp_redeem_returns_assets(vault, token, lp):
    shares = vault.balanceOf(lp) // 4
    vault.redeem(shares, lp, lp, sender=lp)
    assert token.balanceOf(lp) == POOL // 4
    assert vault.poolAssets() == POOL - POOL // 4


def test_trading_fees_accrue_to_lps_and_protocol(vault, engine, eth, alice, lp, open_account):
    account = open_account(alice, 100_000)
    engine.modifyPosition(account, eth, -wad(100), 0, sender=alice)  # $150 fee
    assert vault.protocolFees() == usdc(15)
    # Trader PnL is zero at the entry price, so the pool's value rose by the LPs' $135.
    assert vault.totalAssets() == POOL + usdc(135)
    assert vault.convertToAssets(vault.balanceOf(lp)) == POOL + usdc(135) - 1  # OZ rounds down


def test_pool_value_nets_out_trader_unrealised_pnl(vault, engine, eth, alice, open_account, set_price):
    account = open_account(alice, 100_000)
    engine.modifyPosition(account, eth, wad(100), 0, sender=alice)
    pool = vault.poolAssets()
    set_price("ETH-USD", 3100)  # traders up $10,000 (less a few seconds of funding owed to the pool)
    assert 0 <= vault.totalAssets() - (pool - usdc(10_000)) < usdc("0.01")
    set_price("ETH-USD", 2900)  # traders down $10,000
    assert 0 <= vault.totalAssets() - (pool + usdc(10_000)) < usdc("0.01")


def test_lp_redemption_capped_by_reserve_on_skew(vault, engine, eth, alice, lp, open_account):
    account = open_account(alice, 200_000)
    engine.modifyPosition(account, eth, wad(300), 0, sender=alice)  # $900k long skew
    reserved = usdc(450_000)  # 50% of the skew's notional
    free = vault.poolAssets() - reserved
    assert vault.freeAssets() == free
    assert vault.maxWithdraw(lp) == free
    with ape.reverts(vault.ERC4626ExceededMaxWithdraw):
        vault.withdraw(free + 1, lp, lp, sender=lp)
    vault.withdraw(free, lp, lp, sender=lp)
    assert vault.poolAssets() == reserved


def test_lp_redemption_capped_by_unrealised_trader_profit(vault, engine, eth, alice, bob, lp, open_account, set_price):
    engine.modifyPosition(open_account(alice, 200_000), eth, wad(100), 0, sender=alice)
    engine.modifyPosition(open_account(bob, 200_000), eth, -wad(100), 0, sender=bob)  # no skew, no reserve
    set_price("ETH-USD", 3300)  # longs up $30k, shorts down $30k: net zero
    assert vault.freeAssets() == vault.poolAssets()


def test_first_depositor_inflation_attack_gains_nothing(project, deployer, alice, bob, config):
    token = project.MockToken.deploy("USD", "USD", 6, sender=deployer)
    oracle = project.OracleAdapter.deploy(deployer, sender=deployer)
    vault, _, _ = deploy_core(project, deployer, token, oracle, 0, config.liquidation.params())
    for who in (alice, bob):
        token.mint(who, usdc(20_000), sender=who)
        token.approve(vault, usdc(20_000), sender=who)
    vault.deposit(1, alice, sender=alice)  # attacker: 1 unit
    token.transfer(vault, usdc(10_000), sender=alice)  # donation: not counted by the ledger
    vault.deposit(usdc(10_000), bob, sender=bob)  # victim
    assert vault.convertToAssets(vault.balanceOf(bob)) >= usdc(10_000) - 1
    assert vault.convertToAssets(vault.balanceOf(alice)) <= 1


def test_deposit_too_small_for_a_share_reverts(vault, alice, token):
    token.mint(alice, 1, sender=alice)
    token.approve(vault, 1, sender=alice)
    with ape.reverts(vault.ZeroAmount):
        vault.deposit(0, alice, sender=alice)


def test_share_price_unchanged_by_donation(vault, token, stranger, lp):
    value = vault.convertToAssets(WAD)
    token.mint(stranger, usdc(50_000), sender=stranger)
    token.transfer(vault, usdc(50_000), sender=stranger)
    assert vault.convertToAssets(WAD) == value
