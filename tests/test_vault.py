"""Margin accounts and ledgers: deposits, withdrawals, insurance, protocol fees, solvency."""

import ape
import pytest
from helpers import assert_solvent_exactly, ledgers, usdc, wad

from lever.deploy import create_account, deploy_core


def test_create_account_ids_increase_and_one_owner_holds_many(engine, alice):
    first = create_account(engine, alice)
    second = create_account(engine, alice)
    assert second == first + 1
    assert engine.accountOwner(first) == engine.accountOwner(second) == alice.address
    assert engine.accountCount() == second


def test_deposit_credits_margin_and_ledger(vault, token, engine, alice, open_account):
    account = open_account(alice, 0)
    token.mint(alice, usdc(250), sender=alice)
    token.approve(vault, usdc(250), sender=alice)
    before = ledgers(vault)
    receipt = vault.depositMargin(account, usdc(250), sender=alice)
    assert vault.marginOf(account) == usdc(250)
    assert ledgers(vault)["margin"] == before["margin"] + usdc(250)
    [event] = receipt.events.filter(vault.MarginDeposited)
    assert (event.accountId, event.amount) == (account, usdc(250))
    assert_solvent_exactly(vault, token)


def test_deposit_zero_reverts(vault, alice, open_account):
    account = open_account(alice)
    with ape.reverts(vault.ZeroAmount):
        vault.depositMargin(account, 0, sender=alice)


def test_deposit_to_unknown_account_reverts(vault, alice):
    with ape.reverts(vault.UnknownAccount, accountId=42):
        vault.depositMargin(42, 1, sender=alice)


def test_anyone_may_top_up_an_account(vault, token, alice, bob, open_account):
    account = open_account(alice, 100)
    token.mint(bob, usdc(5), sender=bob)
    token.approve(vault, usdc(5), sender=bob)
    vault.depositMargin(account, usdc(5), sender=bob)
    assert vault.marginOf(account) == usdc(105)


def test_withdraw_sends_tokens_and_debits_margin(vault, token, alice, bob, open_account):
    account = open_account(alice, 100)
    vault.withdrawMargin(account, usdc(40), bob, sender=alice)
    assert token.balanceOf(bob) == usdc(40)
    assert vault.marginOf(account) == usdc(60)
    assert_solvent_exactly(vault, token)


def test_withdraw_by_non_owner_reverts(vault, engine, alice, bob, open_account):
    account = open_account(alice, 100)
    with ape.reverts(engine.NotAccountOwner, accountId=account, caller=bob.address):
        vault.withdrawMargin(account, 1, bob, sender=bob)


def test_withdraw_above_margin_reverts(vault, alice, open_account):
    account = open_account(alice, 100)
    with ape.reverts(vault.WithdrawExceedsMargin, accountId=account, amount=usdc(101), marginToken=usdc(100)):
        vault.withdrawMargin(account, usdc(101), alice, sender=alice)


def test_withdraw_zero_reverts(vault, alice, open_account):
    account = open_account(alice, 100)
    with ape.reverts(vault.ZeroAmount):
        vault.withdrawMargin(account, 0, alice, sender=alice)


def test_withdraw_to_zero_address_reverts(vault, alice, open_account):
    account = open_account(alice, 100)
    with ape.reverts(vault.ZeroAddress):
        vault.withdrawMargin(account, 1, "0x0000000000000000000000000000000000000000", sender=alice)


def test_withdraw_leaving_equity_below_initial_margin_reverts(vault, engine, eth, alice, open_account):
    account = open_account(alice, 1_000)
    engine.modifyPosition(account, eth, wad(5), 0, sender=alice)  # IM = 4% * 1.0005 * 15,000 + 5 = $605.30
    with ape.reverts(engine.InsufficientMargin, accountId=account):
        vault.withdrawMargin(account, usdc(400), alice, sender=alice)


def test_withdraw_free_margin_with_open_position_succeeds(vault, engine, eth, alice, open_account):
    account = open_account(alice, 1_000)
    engine.modifyPosition(account, eth, wad(5), 0, sender=alice)
    vault.withdrawMargin(account, usdc(300), alice, sender=alice)
    state = engine.accountState(account)
    assert state.equityWad >= state.initialMarginWad


def test_fund_insurance_credits_insurance_ledger(vault, token, alice):
    token.mint(alice, usdc(1_000), sender=alice)
    token.approve(vault, usdc(1_000), sender=alice)
    vault.fundInsurance(usdc(1_000), sender=alice)
    assert vault.insuranceFund() == usdc(1_000)
    assert_solvent_exactly(vault, token)


def test_protocol_fees_claimable_by_admin_only(vault, token, engine, eth, deployer, alice, stranger, open_account):
    account = open_account(alice, 10_000)
    engine.modifyPosition(account, eth, wad(10), 0, sender=alice)  # $15 fee, 10% to the protocol
    assert vault.protocolFees() == usdc("1.5")
    with ape.reverts(vault.AccessControlUnauthorizedAccount):
        vault.claimProtocolFees(stranger, 1, sender=stranger)
    with ape.reverts(vault.ParameterOutOfBounds):
        vault.claimProtocolFees(deployer, usdc("1.5") + 1, sender=deployer)
    vault.claimProtocolFees(stranger, usdc("1.5"), sender=deployer)
    assert token.balanceOf(stranger) == usdc("1.5")
    assert_solvent_exactly(vault, token)


def test_protocol_fee_share_above_bound_reverts(vault, deployer):
    with ape.reverts(vault.ParameterOutOfBounds, value=wad("0.51")):
        vault.setProtocolFeeShare(wad("0.51"), sender=deployer)


def test_vault_and_engine_are_wired_to_each_other(vault, engine, liquidator):
    assert vault.engine() == engine.address
    assert engine.vault() == vault.address
    assert engine.liquidator() == liquidator.address
    assert liquidator.engine() == engine.address


def test_settle_by_anyone_but_the_engine_reverts(vault, alice, stranger, open_account):
    account = open_account(alice, 100)
    with ape.reverts(vault.Unauthorized, caller=stranger.address):
        vault.settle(account, usdc(100), 0, sender=stranger)
    with ape.reverts(vault.Unauthorized, caller=stranger.address):
        vault.settleLiquidation(account, 0, 0, 0, 0, stranger, sender=stranger)


def test_engine_liquidate_by_anyone_but_the_liquidator_reverts(engine, alice, stranger, open_account, config):
    account = open_account(alice, 100)
    with ape.reverts(engine.Unauthorized, caller=stranger.address):
        engine.liquidate(account, stranger, config.liquidation.params(), sender=stranger)


def test_donation_shows_as_surplus_not_as_any_ledger(vault, token, stranger):
    before = ledgers(vault)
    token.mint(stranger, 777, sender=stranger)
    token.transfer(vault, 777, sender=stranger)
    balance, liabilities, solvent = vault.solvency()
    assert solvent and balance - liabilities == 777
    assert ledgers(vault) == before


@pytest.fixture
def fee_token_protocol(project, deployer, config):
    token = project.FeeOnTransferToken.deploy(sender=deployer)
    oracle = project.OracleAdapter.deploy(deployer, sender=deployer)
    vault, engine, _ = deploy_core(project, deployer, token, oracle, 0, config.liquidation.params())
    return token, vault, engine


def test_fee_on_transfer_token_margin_deposit_rejected(fee_token_protocol, alice):
    token, vault, engine = fee_token_protocol
    account = create_account(engine, alice)
    token.mint(alice, 1_000, sender=alice)
    token.approve(vault, 1_000, sender=alice)
    with ape.reverts(vault.TransferAmountMismatch, expected=1_000, received=990):
        vault.depositMargin(account, 1_000, sender=alice)


def test_fee_on_transfer_token_lp_deposit_rejected(fee_token_protocol, alice):
    token, vault, _ = fee_token_protocol
    token.mint(alice, 1_000, sender=alice)
    token.approve(vault, 1_000, sender=alice)
    with ape.reverts(vault.TransferAmountMismatch, expected=1_000, received=990):
        vault.deposit(1_000, alice, sender=alice)


def test_token_with_more_than_18_decimals_rejected(project, deployer):
    token = project.MockToken.deploy("Big", "BIG", 24, sender=deployer)
    with ape.reverts(project.LeverVault.UnsupportedTokenDecimals, decimals=24):
        project.LeverVault.deploy(token, deployer, 0, deployer, sender=deployer)
