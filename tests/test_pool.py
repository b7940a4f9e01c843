"""The liquidity pool, an asynchronous ERC-7540 vault: request, settle at prices published after
the request, claim. Its limits (`max*`) always match what the claim functions accept."""

from __future__ import annotations

from typing import Any

import ape
import pytest
from harness import Harness, usdc

from lever import math as m

ETH = "ETH-USD"
SHARES = 10**12  # lvLP has the token's 6 decimals + 6 (virtual shares)


def request_deposit(h: Harness, who: Any, assets: int) -> int:
    fee = int(h.p.vault.lpParams().executorFee)
    h.p.token.mint(who, assets + fee, sender=who)
    h.p.token.approve(h.p.vault, assets + fee, sender=who)
    return int(h.p.vault.requestDeposit(assets, who, who, sender=who).timestamp)


def request_redeem(h: Harness, who: Any, shares: int) -> int:
    fee = int(h.p.vault.lpParams().executorFee)
    h.p.token.mint(who, fee, sender=who)
    h.p.token.approve(h.p.vault, fee, sender=who)
    return int(h.p.vault.requestRedeem(shares, who, who, sender=who).timestamp)


def test_previews_revert_and_the_limits_are_what_is_claimable(h: Harness, bob: Any) -> None:
    v = h.p.vault
    for preview in (v.previewDeposit, v.previewMint, v.previewWithdraw, v.previewRedeem):
        with ape.reverts(v.AsyncFlow):
            preview(1)
    t = request_deposit(h, bob, usdc(1_000))
    assert (int(v.pendingDepositRequest(0, bob)), int(v.maxDeposit(bob))) == (usdc(1_000), 0)
    h._settle_lp(v.settleDeposit, bob, t)
    assert (int(v.pendingDepositRequest(0, bob)), int(v.claimableDepositRequest(0, bob))) == (0, usdc(1_000))
    assert int(v.maxDeposit(bob)) == usdc(1_000)
    shares = int(v.maxMint(bob))
    assert shares == usdc(1_000) * SHARES // 10**6  # the pool's price is still 1 asset per 10^6 shares
    with ape.reverts(v.ClaimExceedsClaimable):
        v.deposit(usdc(1_000) + 1, bob, sender=bob)
    v.deposit(usdc(400), bob, sender=bob)  # a partial claim: its shares pro rata
    assert int(v.balanceOf(bob)) == shares * 400 // 1_000
    v.mint(int(v.maxMint(bob)), bob, sender=bob)  # the rest, by shares
    assert int(v.balanceOf(bob)) == shares
    assert int(v.maxDeposit(bob)) == 0 == int(v.maxMint(bob))
    assert v.deposit(0, bob, sender=bob)  # a zero claim, what max* returns now, is accepted


def test_a_redemption_pays_the_pool_price_at_its_settlement(h: Harness, lp: Any) -> None:
    v = h.p.vault
    shares = int(v.balanceOf(lp)) // 10
    before = int(h.p.token.balanceOf(lp))
    got = h.lp_redeem(lp, shares)
    value, supply = int(v.totalAssets()), int(v.totalSupply())
    assert got == m.pool.to_assets_down(shares, value + got, supply + shares)  # the price before the burn
    assert int(h.p.token.balanceOf(lp)) - before == got


def test_a_request_cannot_settle_early_and_expires_after_its_window(h: Harness, bob: Any, stranger: Any) -> None:
    v = h.p.vault
    t = request_deposit(h, bob, usdc(1_000))
    with ape.reverts(v.RequestNotDue):
        v.settleDeposit(bob, [], sender=h.keeper)
    with ape.reverts(v.RequestNotExpired):
        v.cancelExpiredRequest(bob, True, sender=stranger)
    lp = h.config.lp
    h.chain.mine(timestamp=t + lp.settlement_delay + lp.settlement_window + lp.liquidation_grace + 1)
    with ape.reverts(v.RequestExpired):
        v.settleDeposit(bob, [], sender=h.keeper)
    before, insurance = int(h.p.token.balanceOf(bob)), int(v.insuranceFund())
    v.cancelExpiredRequest(bob, True, sender=stranger)
    assert int(h.p.token.balanceOf(bob)) - before == usdc(1_000)
    assert int(v.insuranceFund()) - insurance == int(v.lpParams().executorFee)  # lapsing is not free


def test_adding_to_a_pending_request_restarts_its_delay_and_only_its_controller_may(
    h: Harness, bob: Any, stranger: Any
) -> None:
    v = h.p.vault
    request_deposit(h, bob, usdc(1_000))
    h.advance(60)
    t = request_deposit(h, bob, usdc(500))  # no second fee: the request is one
    assert int(v.pendingRequest(bob, True).time) == t
    assert int(v.pendingRequest(bob, True).amount) == usdc(1_500)
    h.p.token.mint(stranger, 1, sender=stranger)
    h.p.token.approve(v, 1, sender=stranger)
    with ape.reverts(v.NotOperator):  # a stranger cannot keep restarting someone else's request
        v.requestDeposit(1, bob, stranger, sender=stranger)


def test_operators_act_for_a_controller_and_nobody_else_can(h: Harness, bob: Any, stranger: Any, alice: Any) -> None:
    v = h.p.vault
    with ape.reverts(v.NotOperator):
        v.requestDeposit(usdc(1), bob, bob, sender=stranger)
    v.setOperator(alice, True, sender=bob)
    assert v.isOperator(bob, alice)
    fee = int(v.lpParams().executorFee)
    h.p.token.mint(bob, usdc(100) + fee, sender=bob)
    h.p.token.approve(v, usdc(100) + fee, sender=bob)
    t = int(v.requestDeposit(usdc(100), bob, bob, sender=alice).timestamp)
    h._settle_lp(v.settleDeposit, bob, t)
    with ape.reverts(v.NotOperator):
        v.deposit(usdc(100), stranger, bob, sender=stranger)
    v.deposit(usdc(100), alice, bob, sender=alice)  # the operator claims, to itself
    assert int(v.balanceOf(alice)) > 0


def test_a_redemption_into_the_reserve_is_cancelled_and_the_shares_returned(h: Harness, lp: Any, alice: Any) -> None:
    v = h.p.vault
    account = h.open_account(alice, 200_000)
    h.trade(alice, account, ETH, "300")  # $900k of longs: a $450k reserve
    assert int(v.freeAssets()) <= int(v.poolAssets()) - usdc(450_000)  # 50% of $900k held back
    shares = int(v.balanceOf(lp)) - SHARES  # all but a dollar's worth: not the pool's last shares
    t = request_redeem(h, lp, shares)
    receipt = h._settle_lp(v.settleRedeem, lp, t)
    [cancelled] = receipt.events.filter(v.LpRequestCancelled)
    assert h.reader.arts.error_name(bytes(cancelled.reason)) == "ReserveExceeded"
    assert int(v.balanceOf(lp)) == shares + SHARES and int(v.maxRedeem(lp)) == 0


def test_the_last_lp_stays_until_the_open_positions_close_and_then_takes_their_losses(
    h: Harness, lp: Any, bob: Any, alice: Any
) -> None:
    """Were every share redeemed while positions are open, what those positions later lose (or
    pay in fees) would belong to no LP: the last shares wait for the book to close."""
    v = h.p.vault
    bob_shares = h.lp_deposit(bob, usdc(100_000))
    account = h.open_account(alice, 5_000)
    h.trade(alice, account, ETH, "10")  # $30k long
    lp_shares = int(v.balanceOf(lp))
    assert h.lp_redeem(lp, lp_shares) > 0  # not the last shares: paid
    with ape.reverts(v.LastSharesBackOpenPositions):  # bob's are the last
        request_redeem(h, bob, bob_shares)
    assert int(v.balanceOf(bob)) == bob_shares
    # (Asked while other shares are out, the same redemption is refused at its settlement if they
    # left meanwhile; the fuzz machine checks that path against its ghost.)
    # The trader loses $1,500; once the book is flat bob redeems everything, the loss included.
    h.set_price(ETH, 2_850)
    h.close(alice, account, ETH)
    assert int(v.totalSupply()) == bob_shares
    pool = int(v.poolAssets())
    assert h.lp_redeem(bob, bob_shares) >= pool - 1  # the virtual shares keep at most a unit
    assert int(v.totalSupply()) == 0 and int(v.poolAssets()) <= 1


def test_a_deposit_needs_a_price_for_every_market_with_open_interest(h: Harness, bob: Any, alice: Any) -> None:
    v = h.p.vault
    account = h.open_account(alice, 10_000)
    h.trade(alice, account, ETH, "1")
    t = request_deposit(h, bob, usdc(1_000))
    h.chain.mine(timestamp=t + h.lp_delay + h.lp_grace)
    with ape.reverts(v.LpPriceMissing):
        v.settleDeposit(bob, [], sender=h.keeper)


def test_a_redemption_values_a_market_without_a_price_at_its_worst_case_if_its_lp_accepts(
    h: Harness, lp: Any, alice: Any, stranger: Any
) -> None:
    """One stale feed does not freeze redemptions: the LP may settle its own redemption with a market
    that has had no price on chain for its maximum age counted at both sides' reserves, the worst
    case for the redeemer. Nobody else can impose that on it."""
    v = h.p.vault
    account = h.open_account(alice, 10_000)
    h.trade(alice, account, ETH, "10")
    shares = int(v.balanceOf(lp)) // 100
    t = request_redeem(h, lp, shares)
    h.chain.mine(timestamp=t + h.lp_delay + h.lp_grace)
    with ape.reverts(v.LpPriceMissing):  # the market's stored price is fresh: it must be priced
        v.settleRedeem(lp, [], sender=h.keeper)
    h.chain.mine(timestamp=t + 3_601)  # now nothing was published for longer than the maximum age
    h.p.vault.cancelExpiredRequest(lp, False, sender=lp)
    t = request_redeem(h, lp, shares)
    h.chain.mine(timestamp=t + h.lp_delay + h.lp_grace)
    pool, supply = int(v.poolAssets()), int(v.totalSupply())
    reserve = int(h.p.engine.totalReserveWad())
    with ape.reverts(v.LpPriceMissing):
        v.settleRedeem(lp, [], sender=stranger)
    v.settleRedeem(lp, [], sender=lp)
    worst = m.pool.pool_value(pool, reserve, 10**12)
    assert int(v.maxWithdraw(lp)) == m.pool.to_assets_down(shares, worst, supply)


def test_total_assets_never_reverts_even_with_a_stale_market(h: Harness, alice: Any) -> None:
    account = h.open_account(alice, 10_000)
    h.trade(alice, account, ETH, "10")
    fresh = int(h.p.vault.totalAssets())
    h.advance(3_601)
    stale = int(h.p.vault.totalAssets())
    assert stale < fresh  # the stale market counts at its worst case
    assert int(h.p.vault.convertToAssets(10**12)) >= 0


@pytest.mark.parametrize("interface", ["0xe3bc4e65", "0x2f0a18c5", "0xce3bbe50", "0x620ee8e4"])
def test_the_vault_declares_erc7540(h: Harness, interface: str) -> None:
    assert h.p.vault.supportsInterface(interface)
    assert h.p.vault.share() == h.p.vault.address
