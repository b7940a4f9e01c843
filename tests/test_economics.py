"""The economics under attack: every attack that moved value from LPs (or other traders) to an
attacker in the previous design, and the ones the new mechanisms invite, each measured in money.

Each test plays the attack on the chain, measures the attacker's net (tokens, margin and shares,
everything closed at the end) and the honest parties' loss in USDC, records both (`make
bench-attacks` writes them to build/bench/attacks.json), and fails if the attack pays.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import ape
import pytest
from harness import Harness, usdc, wad

from lever import governance as g
from lever import math as m
from lever.pyth import Publication, encode_update

ETH, BTC = "ETH-USD", "BTC-USD"
DAY = 86_400
CENT = usdc("0.01")


@dataclass
class Party:
    """Someone whose worth we follow: wallets, Lever accounts, and LP shares."""

    h: Harness
    wallets: list[Any]
    accounts: list[int] = field(default_factory=list)

    def worth(self) -> int:
        """Token units: wallet balances + margins + LP shares at the pool's price + pending claims."""
        v, t = self.h.p.vault, self.h.p.token
        total = sum(int(t.balanceOf(w)) for w in self.wallets)
        total += sum(int(v.marginOf(a)) for a in self.accounts)
        supply, value = int(v.totalSupply()), int(v.totalAssets())
        for w in self.wallets:
            shares = int(v.balanceOf(w)) + int(v.pendingRedeemRequest(0, w)) + int(v.maxMint(w))
            total += m.pool.to_assets_down(shares, value, supply) + int(v.maxWithdraw(w))
            total += int(v.pendingDepositRequest(0, w))
        return total


def beyond_pro_rata(attacker_change: int, attacker_shares: int, honest_change: int, honest_shares: int) -> int:
    """What an LP gained beyond its pro-rata share of the honest LP's change (token units)."""
    return attacker_change - honest_change * attacker_shares // honest_shares


def result(attack_log: Any, name: str, attacker_net: int, honest_loss: int, **params: Any) -> None:
    attack_log(name, attacker_net, honest_loss, params)


def funded(h: Harness, who: Any, amount: int) -> None:
    h.p.token.mint(who, amount, sender=who)
    h.p.token.approve(h.p.vault, 2**256 - 1, sender=who)


# --------------------------------------------------------------------------- prices known in advance


@pytest.mark.parametrize("move", ["1.04", "0.96"])
def test_latency_arbitrage_around_a_known_round_does_not_pay(
    h: Harness, lp: Any, accounts: Any, attack_log: Any, move: str
) -> None:
    """The attacker knows the next price (+/-4%) before it lands and commits just before it; the
    fill is the first price published after the commit plus the delay, so it already includes the
    move. Twelve such rounds."""
    attacker = Party(h, [accounts[5]])
    honest = Party(h, [lp])
    funded(h, accounts[5], usdc(50_000))
    account = h.open_account(accounts[5], 0)
    attacker.accounts.append(account)
    h.p.vault.depositMargin(account, usdc(50_000), sender=accounts[5])
    a0, h0 = attacker.worth(), honest.worth()
    price = Decimal(3000)
    for _ in range(12):
        size = "300" if move == "1.04" else "-300"  # 18x the margin, on the side the round favours
        order, t = h.commit(accounts[5], account, ETH, size)
        price *= Decimal(move)  # the round lands right after the commit ...
        h.set_price(ETH, price.quantize(Decimal("0.01")))
        h.p.oracle.confirmShock(0, sender=h.p.deployer)
        h.settle([order], [ETH], t)  # ... and the order fills after it
        h.close(accounts[5], account, ETH)
    h.refresh()
    net, loss = attacker.worth() - a0, h0 - honest.worth()
    result(attack_log, f"latency_arbitrage_{'up' if move > '1' else 'down'}", net, loss, rounds=12, move=move)
    assert net <= 0 and loss <= 0


def test_choosing_withholding_or_reordering_update_blobs_gets_no_other_price(
    h: Harness, accounts: Any, attack_log: Any
) -> None:
    """A settler who holds the prices around the eligible one may offer any of them: only the
    earliest at or after commit + delay is accepted; a later favourable one, an earlier one, or
    a forged 'previous publish time' on a later one are refused."""
    trader = accounts[5]
    funded(h, trader, usdc(20_000))
    account = h.open_account(trader, 0)
    h.p.vault.depositMargin(account, usdc(20_000), sender=trader)
    order, t = h.commit(trader, account, ETH, "50")
    due = t + h.delay
    feed = h.book.feeds[ETH]
    for offset, usd in ((-1, 2900), (0, 3000), (1, 2900), (2, 2800)):  # cheaper prices around the eligible one
        h.book.publish(ETH, usd, due + offset)
    h.chain.mine(timestamp=due + 3)
    # A later, cheaper publication and an earlier one. (The mock trusts a blob's own previous
    # publish time; Pyth signs it, so a forged 'I was the first' is not on the table on mainnet.)
    tries = [
        encode_update(feed.price_id, Publication(due + 2, 2800 * 10**8), due + 1),
        encode_update(feed.price_id, Publication(due + 1, 2900 * 10**8), due),
        encode_update(feed.price_id, Publication(due - 1, 2900 * 10**8), 0),
    ]
    refused = 0
    for blob in tries:
        try:
            h.p.order_book.settleOrders([order], [blob], [], sender=trader, value=h.fee(1))
        except Exception:  # noqa: BLE001 - NothingToSettle: the blob was not the eligible price
            refused += 1
    receipt = h.p.order_book.settleOrders([order], [feed.update_at_or_after(due)], [], sender=trader, value=h.fee(1))
    fill = int(receipt.events.filter(h.p.order_book.OrderSettled)[0].fillPriceWad)
    gain = max(0, (wad(3000) - wad(2800)) * 50 // 10**18 // 10**12) if fill < wad(2900) else 0
    result(attack_log, "choose_update_blob", gain, gain, tried=len(tries), refused=refused)
    assert refused == len(tries) and fill >= wad(3000)


def test_a_keeper_delaying_settlement_to_the_end_of_the_window_changes_nothing(
    h: Harness, accounts: Any, attack_log: Any
) -> None:
    """The fill is the price at commit + delay whenever the settlement lands: waiting to the end of
    the window gains the settler nothing on the fill, and the order cannot be made to expire by
    a settler who is not the trader without paying the fee to someone else."""
    trader = accounts[5]
    funded(h, trader, usdc(20_000))
    account = h.open_account(trader, 0)
    h.p.vault.depositMargin(account, usdc(20_000), sender=trader)
    order, t = h.commit(trader, account, ETH, "10")
    due = t + h.delay
    h.book.publish(ETH, 3000, due)
    h.chain.mine(timestamp=due + 1)
    h.set_price(ETH, 3300)  # after the eligible price, the market runs away ...
    h.chain.mine(timestamp=due + h.window - 1)  # ... and the settler waits to the window's end
    blob = h.book.feeds[ETH].update_at_or_after(due)
    receipt = h.p.order_book.settleOrders([order], [blob], [], sender=h.keeper, value=h.fee(1))
    fill = int(receipt.events.filter(h.p.order_book.OrderSettled)[0].fillPriceWad)
    expected = m.perp.fill_price(
        wad(3000), 0, wad(10), m.MarketParams.from_chain(h.p.engine.marketParams(0)).skew_scale
    )
    result(attack_log, "delayed_settlement", 0 if fill == expected else 1, 0, waited=h.window - 1)
    assert fill == expected


# --------------------------------------------------------------------------- LPs


def test_an_lp_redeeming_before_a_known_round_and_redepositing_moves_no_loss(
    h: Harness, lp: Any, accounts: Any, attack_log: Any
) -> None:
    """Traders hold $600k of longs; an LP knows a -10% round is coming, requests a redemption
    before it and a deposit after it. Both settle at prices published after the request plus the
    delay (the post-round price), so its share of the traders' gain... of the pool's loss stays."""
    sly, honest_lp = accounts[6], lp
    funded(h, sly, usdc(10))  # the request fees
    shares = h.lp_deposit(sly, usdc(500_000))
    honest_shares = int(h.p.vault.balanceOf(honest_lp))
    trader = accounts[5]
    funded(h, trader, usdc(200_000))
    account = h.open_account(trader, 0)
    h.p.vault.depositMargin(account, usdc(200_000), sender=trader)
    h.trade(trader, account, ETH, "-200")  # shorts: a -10% round is their gain, the pool's loss
    attacker, honest = Party(h, [sly]), Party(h, [honest_lp])
    h.refresh()
    a0, h0 = attacker.worth(), honest.worth()
    fee = int(h.p.vault.lpParams().executorFee)
    receipt = h.p.vault.requestRedeem(shares, sly, sly, sender=sly)
    t = int(receipt.timestamp)
    h.set_price(ETH, 2700)  # the round lands
    h.p.oracle.confirmShock(0, sender=h.p.deployer)
    h._settle_lp(h.p.vault.settleRedeem, sly, t)
    h.p.vault.redeem(int(h.p.vault.maxRedeem(sly)), sly, sly, sender=sly)
    back = int(h.p.token.balanceOf(sly)) - fee  # everything back in, from its own wallet
    t = int(h.p.vault.requestDeposit(back, sly, sly, sender=sly).timestamp)
    h._settle_lp(h.p.vault.settleDeposit, sly, t)
    h.p.vault.deposit(back, sly, sender=sly)
    h.close(trader, account, ETH)
    h.refresh()
    # Both LPs took the same change per share; the attacker also paid the request fees.
    net = beyond_pro_rata(attacker.worth() - a0, shares, honest.worth() - h0, honest_shares)
    result(attack_log, "lp_redeem_around_round", net, net, move="-10%", fees=2 * fee)
    assert net <= usdc(1)  # rounding: the two LPs' changes agree to within a dollar on $500k


def test_a_just_in_time_deposit_cannot_lift_the_cap_for_one_trade_and_leave(
    h: Harness, lp: Any, accounts: Any, attack_log: Any
) -> None:
    """The attacker deposits to lift the caps, opens a position the old pool could not carry,
    and redeems before a round: the reserve that position needs holds the deposit in."""
    sly = accounts[6]
    funded(h, sly, usdc(3_000_000))
    shares = h.lp_deposit(sly, usdc(1_000_000))
    account = h.open_account(sly, 0)
    h.p.vault.depositMargin(account, usdc(200_000), sender=sly)
    h.trade(sly, account, ETH, "600")  # $1.8M: beyond what a $1M pool allows
    got = h.lp_redeem(sly, shares)
    cancelled = got == 0
    h.close(sly, account, ETH)
    result(attack_log, "jit_lp_lifts_cap", 0, 0, redeemed_while_open=not cancelled)
    assert cancelled  # the redemption into the reserve was cancelled: the LP stays for the risk


def test_an_lp_redeeming_ahead_of_a_known_liquidation_shares_its_bad_debt(
    h: Harness, lp: Any, accounts: Any, attack_log: Any
) -> None:
    """A price gap leaves an account underwater; an LP who sees it requests a redemption at once.
    The redemption settles after its delay and the liquidation grace: the keeper liquidates
    first, so the bad debt is in the price the LP gets."""
    sly = accounts[6]
    funded(h, sly, usdc(1_000_000))
    h.lp_deposit(sly, usdc(1_000_000))
    victim = accounts[5]
    funded(h, victim, usdc(20_000))
    account = h.open_account(victim, 0)
    h.p.vault.depositMargin(account, usdc(20_000), sender=victim)
    h.trade(victim, account, ETH, "160")  # 24x
    h.set_price(ETH, 2700)  # -10%: $48k loss on $20k of margin
    h.refresh()
    attacker, honest = Party(h, [sly]), Party(h, [lp])
    a0, h0 = attacker.worth(), honest.worth()
    shares = int(h.p.vault.balanceOf(sly))
    t = int(h.p.vault.requestRedeem(shares, sly, sly, sender=sly).timestamp)
    h.liquidate([account])  # the keeper acts within the grace
    h._settle_lp(h.p.vault.settleRedeem, sly, t)
    h.p.vault.redeem(int(h.p.vault.maxRedeem(sly)), sly, sly, sender=sly)
    h.refresh()
    net = beyond_pro_rata(attacker.worth() - a0, shares, honest.worth() - h0, int(h.p.vault.balanceOf(lp)))
    result(attack_log, "lp_redeem_before_liquidation", net, max(0, net), bad_debt=int(h.p.vault.badDebtTotal()))
    assert int(h.p.vault.badDebtTotal()) > usdc(10_000)
    assert net <= usdc(1)


def test_a_deposit_made_before_a_pending_liquidation_loses_nothing_to_it(
    h: Harness, lp: Any, accounts: Any, attack_log: Any
) -> None:
    newcomer = accounts[6]
    funded(h, newcomer, usdc(100_001))
    victim = accounts[5]
    funded(h, victim, usdc(20_000))
    account = h.open_account(victim, 0)
    h.p.vault.depositMargin(account, usdc(20_000), sender=victim)
    h.trade(victim, account, ETH, "160")
    h.set_price(ETH, 2700)
    fee = int(h.p.vault.lpParams().executorFee)
    t = int(h.p.vault.requestDeposit(usdc(100_000), newcomer, newcomer, sender=newcomer).timestamp)
    h.liquidate([account])
    h._settle_lp(h.p.vault.settleDeposit, newcomer, t)
    h.p.vault.deposit(usdc(100_000), newcomer, sender=newcomer)
    h.refresh()
    worth = Party(h, [newcomer]).worth()
    loss = usdc(100_000) - fee - (worth - int(h.p.token.balanceOf(newcomer)))
    # No attacker here: the honest depositor must not pay for the liquidation it preceded.
    result(attack_log, "deposit_before_liquidation", 0, max(0, loss))
    assert loss <= usdc(1)


def test_a_balanced_book_keeps_the_reserve_and_pays_the_winners(
    h: Harness, lp: Any, accounts: Any, attack_log: Any
) -> None:
    """$450k long and $450k short: the LPs cannot leave with the reserve, and after a +10% round
    the longs' profit is paid in full."""
    longs, shorts = accounts[5], accounts[6]
    for who in (longs, shorts):
        funded(h, who, usdc(100_000))
    la, sa = h.open_account(longs, 0), h.open_account(shorts, 0)
    h.p.vault.depositMargin(la, usdc(100_000), sender=longs)
    h.p.vault.depositMargin(sa, usdc(100_000), sender=shorts)
    h.trade(longs, la, ETH, "150")
    h.trade(shorts, sa, ETH, "-150")
    shares = int(h.p.vault.balanceOf(lp))
    with ape.reverts(h.p.vault.LastSharesBackOpenPositions):  # every share: refused at once
        h.lp_redeem(lp, shares)
    got = h.lp_redeem(lp, shares - 10**12)  # all but a dollar's worth: refused for the reserve
    h.set_price(ETH, 3300)
    h.p.oracle.confirmShock(0, sender=h.p.deployer)
    h.liquidate([sa]) if h.account_state(sa).liquidatable else None
    before = h.margin(la)
    receipt = h.close(longs, la, ETH)
    [changed] = receipt.events.filter(h.p.engine.PositionChanged)
    paid = h.margin(la) - before
    unpaid = max(0, int(changed.realisedWad) // 10**12 - paid - usdc(300))  # fees and the executor fee aside
    result(attack_log, "balanced_book_lp_exit", got, unpaid, book="450k/450k", round="+10%")
    assert got == 0 or got < usdc(600_000)  # the LPs could not take the reserve
    assert unpaid == 0


def test_a_64_percent_round_never_zeroes_the_share_price(h: Harness, lp: Any, accounts: Any, attack_log: Any) -> None:
    trader = accounts[5]
    funded(h, trader, usdc(200_000))
    account = h.open_account(trader, 0)
    h.p.vault.depositMargin(account, usdc(200_000), sender=trader)
    h.trade(trader, account, ETH, "330")  # $990k long: the reserve holds $495k of the $1M pool
    honest = Party(h, [lp])
    h0 = honest.worth()
    price = Decimal(3000)
    for _ in range(16):  # +64% in steps the reference accepts
        price *= Decimal("1.0315")
        h.set_price(ETH, price.quantize(Decimal("0.01")))
    h.p.oracle.confirmShock(0, sender=h.p.deployer)
    h.refresh()
    assert int(h.p.vault.totalAssets()) > 0
    cap = m.perp.profit_cap(h.position(account, ETH).cost, wad("0.5")) // 10**12
    before = h.margin(account)
    h.close(trader, account, ETH)
    profit = h.margin(account) - before
    h.refresh()
    loss = h0 - honest.worth()
    # Paid beyond the published cap (must be <= 0); the LPs' loss beyond everything they had (likewise).
    result(attack_log, "round_of_64_percent", profit - cap, loss - h0 + 1, position="$990k long", capped_at="50%")
    assert int(h.p.vault.totalAssets()) > 0
    assert loss < h0  # the LP keeps a positive share value
    assert profit <= cap


# --------------------------------------------------------------------------- traders against the pool


def test_cross_margin_loss_dumping_books_no_bad_debt(h: Harness, lp: Any, accounts: Any, attack_log: Any) -> None:
    """A market-neutral pair of accounts (long ETH / short BTC and the mirror image); when both
    prices fall 15%, each closes its losing leg first. The loss stays the account's debt; nothing
    is written off, and the pair gains nothing but fees' worth of loss."""
    a, b = accounts[5], accounts[6]
    attacker, honest = Party(h, [a, b]), Party(h, [lp])
    for who in (a, b):
        funded(h, who, usdc(20_000))
    one, two = h.open_account(a, 0), h.open_account(b, 0)
    attacker.accounts += [one, two]
    for who, acc in ((a, one), (b, two)):
        h.p.vault.depositMargin(acc, usdc(9_500), sender=who)
    a0, h0 = attacker.worth(), honest.worth()
    h.trade(a, one, ETH, "33")
    h.trade(a, one, BTC, "-1.6")
    h.trade(b, two, ETH, "-33")
    h.trade(b, two, BTC, "1.6")
    for name, usd in ((ETH, "2550"), (BTC, "51000")):
        h.set_price(name, usd)
    for mk in (0, 1):
        h.p.oracle.confirmShock(mk, sender=h.p.deployer)
    h.close(a, one, ETH)  # each account's losing leg first
    h.close(b, two, BTC)
    bad_debt = int(h.p.vault.badDebtTotal())
    h.close(a, one, BTC)
    h.close(b, two, ETH)
    h.refresh()
    net, loss = attacker.worth() - a0, h0 - honest.worth()
    result(attack_log, "cross_margin_loss_dumping", net, loss, bad_debt=bad_debt)
    assert bad_debt == 0 and net <= 0


def test_funding_cannot_be_captured_by_dust(h: Harness, accounts: Any, attack_log: Any) -> None:
    """$300k of longs pay funding for a day; a $3 short collects the payers' rate on its $3,
    not the $300 the longs paid (that goes to the pool)."""
    whale, sniper = accounts[5], accounts[6]
    funded(h, whale, usdc(100_000))
    funded(h, sniper, usdc(100))
    wa, sa = h.open_account(whale, 0), h.open_account(sniper, 0)
    h.p.vault.depositMargin(wa, usdc(100_000), sender=whale)
    h.p.vault.depositMargin(sa, usdc(100), sender=sniper)
    h.trade(whale, wa, ETH, "100")
    h.trade(sniper, sa, ETH, "-0.001")
    before = m.MarketState.from_chain(h.p.engine.marketState(0))
    h.advance(DAY)
    h.refresh()
    after = m.MarketState.from_chain(h.p.engine.currentMarketState(0))
    short = h.position(sa, ETH)
    received = m.perp.charge_owed(abs(short.size), before.short_index, short.entry_charge) - m.perp.charge_owed(
        abs(short.size), after.short_index, short.entry_charge
    )
    paid_total = m.fixed.mul_div_up(after.long_index - before.long_index, before.long_oi, 10**18)
    fair = m.fixed.mul_div_up(after.long_index - before.long_index, abs(short.size), 10**18)
    # The sniper's take beyond the payers' rate on its own size (<= 0: nothing beyond it).
    result(
        attack_log,
        "funding_dust",
        (received - fair - 1) // 10**12,
        0,
        longs="$300k",
        short="0.001 ETH",
        paid_by_longs=paid_total // 10**12,
        received=received,
    )
    assert received <= fair + 1 and received * 1000 < paid_total


def test_holding_the_open_interest_cap_with_a_hedged_pair_costs_a_borrowing_fee(
    h: Harness, accounts: Any, attack_log: Any
) -> None:
    a, b = accounts[5], accounts[6]
    for who in (a, b):
        funded(h, who, usdc(200_000))
    la, sa = h.open_account(a, 0), h.open_account(b, 0)
    h.p.vault.depositMargin(la, usdc(200_000), sender=a)
    h.p.vault.depositMargin(sa, usdc(200_000), sender=b)
    attacker = Party(h, [a, b], [la, sa])
    a0 = attacker.worth()
    h.trade(a, la, ETH, "160")
    h.trade(b, sa, ETH, "-160")  # $480k a side, zero skew, zero funding
    h.advance(DAY)
    h.close(a, la, ETH)
    h.close(b, sa, ETH)
    cost = a0 - attacker.worth()
    result(attack_log, "oi_cap_blocker", -cost, 0, notional="$480k a side", held="1 day")
    assert cost > usdc(400)  # fees and a day of borrowing on both sides


def test_a_trade_that_builds_skew_pays_more_than_one_that_reduces_it(
    h: Harness, accounts: Any, attack_log: Any
) -> None:
    p = m.MarketParams.from_chain(h.p.engine.marketParams(0))
    builds = m.perp.trade_fee(wad(100), wad(10), wad(3000), p.maker_fee, p.taker_fee)
    reduces = m.perp.trade_fee(wad(100), -wad(10), wad(3000), p.maker_fee, p.taker_fee)
    whale = accounts[5]
    funded(h, whale, usdc(100_000))
    wa = h.open_account(whale, 0)
    h.p.vault.depositMargin(wa, usdc(100_000), sender=whale)
    h.trade(whale, wa, ETH, "100")
    trader = accounts[6]
    funded(h, trader, usdc(10_000))
    ta = h.open_account(trader, 0)
    h.p.vault.depositMargin(ta, usdc(10_000), sender=trader)
    m0 = h.margin(ta)
    r1 = h.trade(trader, ta, ETH, "-10")  # reduces the long skew: maker fee, fills above the price
    fill = int(r1.events.filter(h.p.order_book.OrderSettled)[0].fillPriceWad)
    result(attack_log, "flat_fees", 0, 0, skew_building_fee=builds, skew_reducing_fee=reduces)
    assert builds > reduces and fill > wad(3000)
    assert m0 - h.margin(ta) < m.fixed.to_token_up(builds, 10**12) + usdc(1)


def test_self_liquidation_pays_less_than_closing(h: Harness, accounts: Any, attack_log: Any) -> None:
    trader = accounts[5]
    funded(h, trader, usdc(2_000))
    account = h.open_account(trader, 0)
    h.p.vault.depositMargin(account, usdc(2_000), sender=trader)
    h.trade(trader, account, ETH, "12")
    h.set_price(ETH, 2_890)
    me = Party(h, [trader], [account])
    w0 = me.worth()
    h.liquidate([account], sender=trader)  # the trader liquidates itself for the reward
    net = me.worth() - w0
    # The alternative: the loss realised by a close at the same price, and its fee.
    result(attack_log, "self_liquidation", net, 0)
    assert net < 0


def test_opening_at_a_skew_discount_and_leaving_through_a_liquidation_pays_the_discount_back(
    h: Harness, accounts: Any, attack_log: Any
) -> None:
    """With a short skew, a long opens below the price; a liquidation closes it at the skew price
    too, so the discount is not kept by leaving through one."""
    whale, trader = accounts[5], accounts[6]
    funded(h, whale, usdc(300_000))
    funded(h, trader, usdc(3_000))
    wa, ta = h.open_account(whale, 0), h.open_account(trader, 0)
    h.p.vault.depositMargin(wa, usdc(300_000), sender=whale)
    h.trade(whale, wa, ETH, "-300")
    h.p.vault.depositMargin(ta, usdc(3_000), sender=trader)
    me = Party(h, [trader], [ta])
    w0 = me.worth()
    h.trade(trader, ta, ETH, "20")  # bought at a discount
    h.set_price(ETH, 2_890)
    h.liquidate([ta], sender=trader)
    if h.position(ta, ETH).size:
        h.close(trader, ta, ETH)
    net = me.worth() - w0
    loss = m.fixed.mul_div_down(wad(20), wad(110), 10**18) // 10**12  # the price move's loss alone
    result(attack_log, "skew_discount_via_liquidation", net + loss, 0)
    assert net < -loss


def test_a_parameter_change_never_liquidates_in_the_block_it_lands(h: Harness, accounts: Any, attack_log: Any) -> None:
    trader = accounts[5]
    funded(h, trader, usdc(2_000))
    account = h.open_account(trader, 0)
    h.p.vault.depositMargin(account, usdc(2_000), sender=trader)
    h.trade(trader, account, ETH, "12")
    h.set_price(ETH, 2_900)
    h.refresh()
    params = m.MarketParams.from_chain(h.p.engine.marketParams(0))
    from dataclasses import replace

    new = replace(params, taker_fee=wad("0.005"), min_margin=wad(200))
    g.apply(h.p, h.p.deployer, g.call_change(h.p.engine, "setMarketParams", 0, tuple(new.__dict__.values())))
    h.refresh()
    liquidatable = h.account_state(account).liquidatable
    result(attack_log, "parameter_change_liquidates", 0, int(liquidatable), change="fee 5->50bp, min margin $5->$200")
    assert not liquidatable


def test_one_stale_feed_does_not_freeze_redemptions(h: Harness, lp: Any, accounts: Any, attack_log: Any) -> None:
    trader = accounts[5]
    funded(h, trader, usdc(10_000))
    account = h.open_account(trader, 0)
    h.p.vault.depositMargin(account, usdc(10_000), sender=trader)
    h.trade(trader, account, BTC, "0.5")
    funded(h, lp, usdc(10))  # the request fees
    shares = int(h.p.vault.balanceOf(lp)) // 10
    t = int(h.p.vault.requestRedeem(shares, lp, lp, sender=lp).timestamp)
    h.chain.mine(timestamp=t + 3_601)  # BTC's feeds fall silent for an hour
    h.p.vault.cancelExpiredRequest(lp, False, sender=lp)
    t = int(h.p.vault.requestRedeem(shares, lp, lp, sender=lp).timestamp)
    h.chain.mine(timestamp=t + h.lp_delay + h.lp_grace)
    with ape.reverts(h.p.vault.LpPriceMissing):  # a keeper cannot impose the worst case ...
        h.p.vault.settleRedeem(lp, [], sender=h.keeper)
    h.p.vault.settleRedeem(lp, [], sender=lp)  # ... the LP itself may accept it
    got = int(h.p.vault.maxWithdraw(lp))
    result(attack_log, "stale_feed_freezes_lp", 0, 0, redeemed=got)
    assert got > 0


# --------------------------------------------------------------------------- found by an attack review


def store(h: Harness, market: str, usd: str, t: int) -> None:
    """Publishes `usd` at `t` on the pull oracle and stores that publication on chain."""
    h.book.publish(market, usd, t)
    blob = encode_update(
        h.p.price_ids[market], h.book.feeds[market].at_or_after(t)[0], h.book.feeds[market].at_or_after(t)[1]
    )
    h.p.oracle.updatePrices([(h.p.markets[market], blob)], sender=h.keeper, value=h.fee(1))


def test_nobody_can_keep_restarting_another_lps_request(h: Harness, lp: Any, accounts: Any, attack_log: Any) -> None:
    """Adding to a pending request restarts its delay; a stranger adding a unit to an LP's
    redemption every few seconds would lock it. Only the controller may add."""
    griefer = accounts[6]
    funded(h, griefer, usdc(10))
    funded(h, lp, usdc(100_010))
    t = int(h.p.vault.requestDeposit(usdc(100_000), lp, lp, sender=lp).timestamp)
    blocked = 0
    try:
        h.p.vault.requestDeposit(1, lp, griefer, sender=griefer)
    except Exception:  # noqa: BLE001 - NotOperator
        blocked += 1
    h._settle_lp(h.p.vault.settleDeposit, lp, t)
    settled = int(h.p.vault.maxDeposit(lp)) > 0
    result(attack_log, "restart_another_lps_request", 0, 0 if settled else 1, attempts=1, blocked=blocked)
    assert blocked == 1 and settled


def test_nobody_can_price_another_lps_redemption_at_the_worst_case(
    h: Harness, lp: Any, accounts: Any, attack_log: Any
) -> None:
    """With a market's price silent for an hour, a settler leaving it out would have the victim
    paid as if that market's traders won their whole reserve. Only the redeemer may accept that."""
    sly, trader = accounts[6], accounts[5]
    funded(h, sly, usdc(1_000_010))
    h.lp_deposit(sly, usdc(1_000_000))
    funded(h, trader, usdc(50_000))
    account = h.open_account(trader, 0)
    h.p.vault.depositMargin(account, usdc(50_000), sender=trader)
    h.trade(trader, account, BTC, "5")
    funded(h, lp, usdc(10))
    h.chain.mine(timestamp=h.now() + 3_601)
    t = int(h.p.vault.requestRedeem(int(h.p.vault.balanceOf(lp)), lp, lp, sender=lp).timestamp)
    h.chain.mine(timestamp=t + h.lp_delay + h.lp_grace)
    try:
        h.p.vault.settleRedeem(lp, [], sender=sly)
        imposed = True
    except Exception:  # noqa: BLE001 - LpPriceMissing
        imposed = False
    result(attack_log, "worst_case_imposed_on_another_lp", 0, int(imposed) * usdc(74_970))
    assert not imposed


def test_a_withdrawal_cannot_use_a_stale_favourable_price(h: Harness, accounts: Any, attack_log: Any) -> None:
    """The stored pull price is an hour old at most; the reference feed has moved on. A withdrawal
    is checked at the worse of the two, so margin cannot leave against a price that is gone."""
    trader = accounts[5]
    funded(h, trader, usdc(10_000))
    account = h.open_account(trader, 0)
    h.p.vault.depositMargin(account, usdc(10_000), sender=trader)
    h.trade(trader, account, ETH, "30")
    h.set_price(ETH, 2_800)  # the reference moves, no pull price is stored
    h.prices[ETH] = Decimal(3000)
    free_at_stale = h.margin(account) - usdc(3_700)  # what the stale $3,000 would let out
    try:
        h.p.vault.withdrawMargin(account, free_at_stale, trader, sender=trader)
        withdrew = free_at_stale
    except Exception:  # noqa: BLE001 - InsufficientMargin at the reference price
        withdrew = 0
    result(attack_log, "withdraw_at_stale_price", withdrew, withdrew)
    assert withdrew == 0


def test_a_conditional_order_cannot_execute_at_a_price_from_the_past(
    h: Harness, accounts: Any, attack_log: Any
) -> None:
    """A limit buy's owner stores a dip published a minute ago and executes at it while the
    market is higher: conditional orders need a price at most maxExecutionAge old."""
    trader = accounts[5]
    funded(h, trader, usdc(10_000))
    account = h.open_account(trader, 0)
    h.p.vault.depositMargin(account, usdc(10_000), sender=trader)
    receipt = h.p.order_book.placeOrder(account, 0, 1, wad(10), wad(2_980), 0, usdc(1), sender=trader)
    order = int(receipt.events.filter(h.p.order_book.OrderPlaced)[0].orderId)
    t = h.advance(h.delay + 1)
    h.book.publish(ETH, "2960", t)  # a short dip ...
    h.chain.mine(timestamp=t + 60)  # ... a minute ago; the market is back at $3,000
    h.set_price(ETH, 3_000, reference=False)
    store(h, ETH, "2960", t)
    try:
        h.p.order_book.settleOrders([order], [b""], [], sender=trader)
        filled = True
    except Exception:  # noqa: BLE001 - NothingToSettle: the stored price is too old to execute
        filled = False
    gain = int(filled) * usdc(400)
    result(attack_log, "conditional_lookback", gain, gain, dip="2960", age_s=60)
    assert not filled


def test_a_liquidation_cannot_use_a_dip_from_the_past(h: Harness, accounts: Any, attack_log: Any) -> None:
    trader = accounts[5]
    funded(h, trader, usdc(1_000))
    account = h.open_account(trader, 0)
    h.p.vault.depositMargin(account, usdc(1_000), sender=trader)
    h.trade(trader, account, ETH, "7")
    t = h.advance(5)
    h.book.publish(ETH, "2860", t)  # a dip that would liquidate ...
    h.chain.mine(timestamp=t + 60)  # ... a minute ago
    dip = encode_update(h.p.price_ids[ETH], h.book.feeds[ETH].at_or_after(t)[0], h.book.feeds[ETH].at_or_after(t)[1])
    try:
        h.p.liquidator.liquidateBatch([account], [(0, dip)], sender=h.keeper, value=h.fee(1))
        liquidated = True
    except Exception:  # noqa: BLE001 - OracleStalePrice
        liquidated = False
    result(attack_log, "liquidation_lookback", int(liquidated), int(liquidated))
    assert not liquidated


def test_escrowed_order_fees_do_not_hide_margin_from_a_liquidation(h: Harness, accounts: Any, attack_log: Any) -> None:
    """An account about to be liquidated parks its margin in far-away limit orders' fees; the
    liquidation returns them to the margin first, so the loss is covered (and a tiny account
    cannot farm the insurance fund's minimum reward this way)."""
    trader, other = accounts[5], accounts[6]
    funded(h, other, usdc(1_000))
    h.p.vault.fundInsurance(usdc(1_000), sender=other)
    funded(h, trader, usdc(200))
    account = h.open_account(trader, 0)
    h.p.vault.depositMargin(account, usdc(200), sender=trader)
    h.trade(trader, account, ETH, "1.5")
    h.set_price(ETH, 2_935)
    h.refresh()
    for _ in range(8):
        h.p.order_book.placeOrder(
            account,
            0,
            1,
            wad("0.001"),
            wad(1),
            0,
            usdc(20) if h.margin(account) >= usdc(20) else max(h.margin(account), usdc("0.05")),
            sender=trader,
        )
    insurance = int(h.p.vault.insuranceFund())
    with contextlib.suppress(Exception):  # NothingToLiquidate: with its fees back it is healthy
        h.liquidate([account], sender=other)
    bad_debt = int(h.p.vault.badDebtTotal())
    lost = insurance - int(h.p.vault.insuranceFund())
    result(attack_log, "escrow_hides_margin", 0, bad_debt + max(0, lost))
    assert bad_debt == 0 and lost <= 0


def test_a_straddle_of_pending_orders_pays_nothing_when_keepers_settle(
    h: Harness, accounts: Any, attack_log: Any
) -> None:
    """A long and a short committed together, hoping to settle only the winner late in the window
    and let the loser lapse. Keepers settle both as soon as their price is published (bringing
    every market's latest price, so a stale market cannot stall them), and a lapsed order's fee
    would go to the insurance fund anyway."""
    trader = accounts[5]
    funded(h, trader, usdc(40_000))
    long_acc, short_acc = h.open_account(trader, 0), h.open_account(trader, 0)
    for acc in (long_acc, short_acc):
        h.p.vault.depositMargin(acc, usdc(20_000), sender=trader)
    me = Party(h, [trader], [long_acc, short_acc])
    w0 = me.worth()
    h.trade(trader, long_acc, BTC, "0.0001")  # a foothold in a market left stale below
    h.trade(trader, short_acc, BTC, "0.0001")
    h.chain.mine(timestamp=h.now() + 3_601)  # no BTC price stored for an hour
    h.heartbeat()
    up, t = h.commit(trader, long_acc, ETH, "20")
    down, t2 = h.commit(trader, short_acc, ETH, "-20")
    for when in (t + h.delay, t2 + h.delay):
        h.book.publish(ETH, h.prices[ETH], when)
    h.chain.mine(timestamp=t2 + h.delay + 1)
    h.publish_all()
    blobs = [h.book.feeds[ETH].update_at_or_after(t + h.delay), h.book.feeds[ETH].update_at_or_after(t2 + h.delay)]
    latest = h.latest_updates()  # an honest keeper brings every market's latest price
    h.p.order_book.settleOrders([up, down], blobs, latest, sender=h.keeper, value=h.fee(len(blobs) + len(latest)))
    both = int(h.p.engine.position(long_acc, 0).sizeWad) != 0 and int(h.p.engine.position(short_acc, 0).sizeWad) != 0
    for acc in (long_acc, short_acc):
        h.close(trader, acc, ETH)
        h.close(trader, acc, BTC)
    net = me.worth() - w0
    result(attack_log, "pending_order_straddle", net, max(0, net), legs="20 ETH each way")
    assert both and net <= 0


def test_sandwiching_an_order_inside_a_batch_does_not_pay(h: Harness, accounts: Any, attack_log: Any) -> None:
    """A keeper who trades puts its own buy before a large pending buy and its sell after it, in
    one batch. The skew scale is large enough (>= order size / (2 x taker fee)) that the premium
    gained is smaller than the fees paid."""
    keeper, victim = accounts[6], accounts[5]
    funded(h, keeper, usdc(100_000))
    funded(h, victim, usdc(100_000))
    ka, va = h.open_account(keeper, 0), h.open_account(victim, 0)
    h.p.vault.depositMargin(ka, usdc(100_000), sender=keeper)
    h.p.vault.depositMargin(va, usdc(100_000), sender=victim)
    me = Party(h, [keeper], [ka])
    w0 = me.worth()
    buy, t = h.commit(keeper, ka, ETH, "120")
    target, _ = h.commit(victim, va, ETH, "150")
    sell, _ = h.commit(keeper, ka, ETH, "-120")
    due = h.now() + h.delay
    for offset in range(4):
        h.book.publish(ETH, h.prices[ETH], t + h.delay + offset)
    h.chain.mine(timestamp=max(due, t + h.delay + 3))
    ids = [buy, target, sell]
    blobs = []
    for oid in ids:
        placed = int(h.p.order_book.order(oid).updatedAt)
        blobs.append(h.book.feeds[ETH].update_at_or_after(placed + h.delay))
    h.p.order_book.settleOrders(ids, blobs, [], sender=keeper, value=h.fee(len(blobs)))
    h.close(keeper, ka, ETH)
    net = me.worth() - w0
    result(attack_log, "batch_sandwich", net, max(0, net), keeper_legs="120 ETH", victim="150 ETH")
    assert net <= 0


# --------------------------------------------------------------------------- found by a second attack review


def _trade_after_the_requests_price(h: Harness, who: Any, account: int, request_time: int, size: str) -> bytes:
    """The request's price is published at its due time ($3,000); the market then falls 0.5% and
    `who` trades `size` ETH at the lower price. Returns the update that prices the request."""
    due = request_time + h.lp_delay
    h.book.publish(ETH, h.prices[ETH], due)
    h.chain.mine(timestamp=due + 1)
    h.set_price(ETH, "2985")
    h.trade(who, account, ETH, size)
    return h.book.feeds[ETH].update_at_or_after(due)


def test_a_position_opened_after_a_redemptions_price_cannot_inflate_it(
    h: Harness, lp: Any, accounts: Any, attack_log: Any
) -> None:
    """An LP asks to redeem: the request is priced at the first price after its delay. The market
    then falls 0.5%; the LP shorts 250 ETH at the lower price and settles its own redemption.
    Marked at the request's price, that short shows a $3,750 loss it never had, and the pool
    looks that much richer. A request settles at the worse for the requester of the pool's value
    at its price and at the newest stored prices, so the short lends it nothing."""
    sly = accounts[6]
    funded(h, sly, usdc(150_000) + int(h.p.vault.lpParams().executorFee))
    shares = h.lp_deposit(sly, usdc(1_000_000))
    honest_shares = int(h.p.vault.balanceOf(lp))
    account = h.open_account(sly, 0)
    h.p.vault.depositMargin(account, usdc(150_000), sender=sly)
    attacker, honest = Party(h, [sly], [account]), Party(h, [lp])
    h.refresh()
    a0, h0 = attacker.worth(), honest.worth()
    t = int(h.p.vault.requestRedeem(shares, sly, sly, sender=sly).timestamp)
    update = _trade_after_the_requests_price(h, sly, account, t, "-250")
    receipt = h.p.vault.settleRedeem(sly, [(0, update)], sender=sly, value=h.fee(1))
    assert receipt.events.filter(h.p.vault.RedeemSettled)  # not refused: the attack was played
    h.p.vault.redeem(int(h.p.vault.maxRedeem(sly)), sly, sly, sender=sly)
    h.close(sly, account, ETH)
    h.refresh()
    net = beyond_pro_rata(attacker.worth() - a0, shares, honest.worth() - h0, honest_shares)
    loss = h0 - honest.worth()
    result(attack_log, "redeem_against_a_later_book", net, loss, move="-0.5%", short="250 ETH")
    assert net <= 0 and loss <= usdc(1)


def test_a_position_opened_after_a_deposits_price_cannot_cheapen_its_shares(
    h: Harness, lp: Any, accounts: Any, attack_log: Any
) -> None:
    """The same on the way in: after a new LP's deposit request is priced, the market falls 0.5%
    and the LP buys 250 ETH at the lower price. At the request's price those longs show a profit
    they never had, the pool looks poorer and the deposit would buy shares cheap; it settles at
    the higher of the two values instead."""
    sly = accounts[6]
    funded(h, sly, usdc(1_150_000) + int(h.p.vault.lpParams().executorFee))
    account = h.open_account(sly, 0)
    h.p.vault.depositMargin(account, usdc(150_000), sender=sly)
    attacker, honest = Party(h, [sly], [account]), Party(h, [lp])
    h.refresh()
    a0, h0 = attacker.worth(), honest.worth()
    t = int(h.p.vault.requestDeposit(usdc(1_000_000), sly, sly, sender=sly).timestamp)
    update = _trade_after_the_requests_price(h, sly, account, t, "250")
    h.p.vault.settleDeposit(sly, [(0, update)], sender=sly, value=h.fee(1))
    h.p.vault.deposit(usdc(1_000_000), sly, sender=sly)
    h.close(sly, account, ETH)
    h.refresh()
    net, loss = attacker.worth() - a0, h0 - honest.worth()
    result(attack_log, "deposit_against_a_later_book", net, loss, move="-0.5%", long="250 ETH")
    assert net <= 0 and loss <= usdc(1)


def test_conditional_orders_cannot_fill_at_a_price_chosen_from_the_last_seconds(
    h: Harness, lp: Any, accounts: Any, attack_log: Any
) -> None:
    """A trader places two limit orders that always trigger (buy at or below $10^15, sell at or
    above a wei). For 30 s the price wobbles by 0.25% either way and nobody stores it. Then, in
    two transactions, the trader stores the dip and settles the buy, stores the later peak and
    settles the sell: both prices were published after the orders and are under 30 s old. They
    only trigger the orders; each fills at the first price published a delay after its trigger
    (the market stays at $3,003), which the trader settles itself."""
    sly = accounts[6]
    funded(h, sly, usdc(80_000))
    account = h.open_account(sly, 0)
    h.p.vault.depositMargin(account, usdc(80_000), sender=sly)
    attacker, honest = Party(h, [sly], [account]), Party(h, [lp])
    h.refresh()
    a0, h0 = attacker.worth(), honest.worth()
    buy = h.p.order_book.placeOrder(account, 0, 1, wad(300), wad(10**15), 0, usdc(1), sender=sly)
    sell = h.p.order_book.placeOrder(account, 0, 1, wad(-300), 1, 0, usdc(1), sender=sly)
    buy_id, sell_id = (int(r.events.filter(h.p.order_book.OrderPlaced)[0].orderId) for r in (buy, sell))
    base = h.now() + h.delay + 1
    path = {0: "3000", 5: "2996", 10: "2992.5", 15: "2998", 20: "3004", 25: "3007.5", 28: "3003"}
    last = "3000"
    for dt in range(31):
        last = path.get(dt, last)
        h.book.publish(ETH, last, base + dt)
    h.chain.mine(timestamp=base + 30)
    triggered = []
    for order, at in ((buy_id, base + 10), (sell_id, base + 25)):
        pub, prev = h.book.feeds[ETH].at_or_after(at)
        blob = encode_update(h.p.price_ids[ETH], pub, prev)
        receipt = h.p.order_book.settleOrders([order], [b""], [(0, blob)], sender=sly, value=h.fee(1))
        triggered.append((order, int(receipt.timestamp)))
    h.prices[ETH] = Decimal(3003)
    for order, at in triggered:
        h.settle([order], [ETH], at, sender=sly)
    flat = int(h.p.engine.position(account, 0).sizeWad) == 0
    h.refresh()
    net, loss = attacker.worth() - a0, h0 - honest.worth()
    result(attack_log, "conditional_choose_recent_price", net, loss, wobble="0.25%", size="300 ETH", age_s=20)
    assert flat and net <= 0 and loss <= usdc(1)
