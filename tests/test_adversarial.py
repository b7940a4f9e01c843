"""Attacks that have hit protocols like this one; each test fails if the attack works.

Reentrancy through a token hook, odd tokens, bad oracle rounds, 1-wei rounding games, liquidation
games, an LP run, every role against every gated function, and the scope of the pause. The README's
Security section maps each attack to its test (some live with their feature: the inflation attack
in test_pool.py, fee-on-transfer tokens in test_vault.py, oracle shocks in test_risk_controls.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import ape
import pytest
from eth_utils import keccak
from helpers import assert_solvent_exactly, ledgers, usdc, wad

from lever.deploy import create_account, deploy_protocol

REENTRANT = keccak(text="ReentrancyGuardReentrantCall()")[:4]
MAX = 2**256 - 1


def fund(token: Any, vault: Any, owner: Any, amount: int) -> None:
    token.mint(owner, amount, sender=owner)
    token.approve(vault, amount, sender=owner)


def contract_trader(project: Any, p: Any, owner: Any, tokens: int, margin: int) -> tuple[Any, int]:
    """A `ReentrancyAttacker` (sent to by `owner`) holding `tokens`, with a Lever account of its
    own funded with `margin`: a trader that can batch calls and react to token hooks."""
    attacker = project.ReentrancyAttacker.deploy(sender=owner)
    p.token.mint(attacker, tokens, sender=owner)
    attacker.execute(p.token, p.token.approve.encode_input(p.vault, MAX), sender=owner)
    receipt = attacker.execute(p.engine, p.engine.createAccount.encode_input(), sender=owner)
    account = int(receipt.events.filter(p.engine.AccountCreated)[0].accountId)
    attacker.execute(p.vault, p.vault.depositMargin.encode_input(account, margin), sender=owner)
    return attacker, account


# --------------------------------------------------------------------------- reentrancy


@pytest.fixture(scope="module")
def hooked(project, deployer, config, accounts):
    """A protocol whose collateral calls registered senders and recipients (ERC-777 style), an
    attacker contract with an account, an open position and LP shares, and a victim (bob)
    who is liquidatable once ETH is at $2,860."""
    lp, bob = accounts[3], accounts[2]
    token = project.HookToken.deploy(sender=deployer)
    p = deploy_protocol(project, deployer, config, token=token)
    eth = p.markets["ETH-USD"]
    fund(token, p.vault, lp, usdc(1_000_000))
    p.vault.deposit(usdc(1_000_000), lp, sender=lp)

    attacker, account = contract_trader(project, p, bob, usdc(10_000), usdc(2_000))
    attacker.execute(p.engine, p.engine.modifyPosition.encode_input(account, eth, wad("0.5"), 0), sender=bob)
    attacker.execute(p.vault, p.vault.deposit.encode_input(usdc(1_000), attacker), sender=bob)

    victim = create_account(p.engine, bob)
    fund(token, p.vault, bob, usdc(1_000))
    p.vault.depositMargin(victim, usdc(1_000), sender=bob)
    p.engine.modifyPosition(victim, eth, wad(6), 0, sender=bob)
    p.feeds["ETH-USD"].setPrice(2_860 * 10**8, sender=deployer)
    attacker.execute(token, token.setHooked.encode_input(True), sender=bob)
    return p, attacker, account, victim, eth


OUTER = {
    # the attacker's own operation during which its hook fires: (contract, calldata)
    "margin deposit": lambda p, a, acct, victim, eth: (p.vault, p.vault.depositMargin.encode_input(acct, usdc(100))),
    "margin withdrawal": lambda p, a, acct, victim, eth: (
        p.vault, p.vault.withdrawMargin.encode_input(acct, usdc(100), a)),
    "LP redemption": lambda p, a, acct, victim, eth: (p.vault, p.vault.redeem.encode_input(10**9, a, a)),
    "keeper reward": lambda p, a, acct, victim, eth: (p.liquidator, p.liquidator.liquidate.encode_input(victim)),
}
REENTRY = {
    # what the hook tries: (contract, calldata)
    "withdraw margin": lambda p, a, acct, victim, eth: (
        p.vault, p.vault.withdrawMargin.encode_input(acct, usdc(1_500), a)),
    "close the position": lambda p, a, acct, victim, eth: (p.engine, p.engine.closePosition.encode_input(acct, eth, 0)),
    "liquidate the victim": lambda p, a, acct, victim, eth: (
        p.liquidator, p.liquidator.liquidate.encode_input(victim)),
    "redeem LP shares": lambda p, a, acct, victim, eth: (p.vault, p.vault.redeem.encode_input(10**9, a, a)),
}


@pytest.mark.parametrize("reentry", REENTRY)
@pytest.mark.parametrize("outer", OUTER)
def test_token_hook_cannot_reenter_the_protocol(hooked, outer, reentry, accounts):
    p, attacker, account, victim, eth = hooked
    bob = accounts[2]
    target, data = REENTRY[reentry](p, attacker, account, victim, eth)
    attacker.arm(target, data, sender=bob)
    to, call = OUTER[outer](p, attacker, account, victim, eth)
    balance = int(p.token.balanceOf(attacker))

    receipt = attacker.execute(to, call, sender=bob)

    assert attacker.attempted(), "the hook did not fire"
    assert not attacker.succeeded(), f"re-entering to {reentry} during a {outer} succeeded"
    assert bytes(attacker.result())[:4] == REENTRANT
    # The outer operation moved exactly what it should, and the books still balance.
    moved = int(p.token.balanceOf(attacker)) - balance
    if outer == "margin deposit":
        assert moved == -usdc(100)
    elif outer == "margin withdrawal":
        assert moved == usdc(100)
    elif outer == "LP redemption":
        [withdraw] = receipt.events.filter(p.vault.Withdraw)
        assert moved == withdraw.assets > 0
    else:
        [event] = receipt.events.filter(p.liquidator.Liquidation)
        assert moved == event.rewardToken > 0
    assert_solvent_exactly(p.vault, p.token)


# --------------------------------------------------------------------------- token oddities


def test_token_without_return_values_is_accounted_exactly(project, deployer, config, alice, lp):
    """USDT-style: transfer and transferFrom return nothing. SafeERC20 accepts it; every ledger
    and balance moves exactly."""
    token = project.NoReturnToken.deploy(sender=deployer)
    p = deploy_protocol(project, deployer, config, token=token)
    eth = p.markets["ETH-USD"]
    fund(token, p.vault, lp, usdc(100_000))
    p.vault.deposit(usdc(100_000), lp, sender=lp)
    account = create_account(p.engine, alice)
    fund(token, p.vault, alice, usdc(1_000))
    p.vault.depositMargin(account, usdc(1_000), sender=alice)
    assert int(p.vault.marginOf(account)) == usdc(1_000) and int(token.balanceOf(alice)) == 0
    opened = p.engine.modifyPosition(account, eth, wad(1), 0, sender=alice)
    closed = p.engine.closePosition(account, eth, 0, sender=alice)
    expected = usdc(1_000)
    for receipt in (opened, closed):
        [change] = receipt.events.filter(p.engine.PositionChanged)
        expected += change.realisedWad // 10**12 - (-(-change.feeWad // 10**12))  # credits down, debits up
    margin = int(p.vault.marginOf(account))
    assert margin == expected
    p.vault.withdrawMargin(account, margin, alice, sender=alice)
    assert int(token.balanceOf(alice)) == margin
    p.vault.redeem(p.vault.balanceOf(lp), lp, lp, sender=lp)
    assert_solvent_exactly(p.vault, token)


def test_token_returning_false_is_rejected_and_nothing_is_credited(project, deployer, config, alice):
    """A token that returns false instead of reverting: the vault must not credit a transfer
    that did not happen."""
    token = project.FalseReturnToken.deploy(sender=deployer)
    p = deploy_protocol(project, deployer, config, token=token)
    account = create_account(p.engine, alice)
    token.mint(alice, usdc(1_000), sender=alice)  # no approval: transferFrom returns false
    with ape.reverts(p.vault.SafeERC20FailedOperation, token=token.address):
        p.vault.depositMargin(account, usdc(1_000), sender=alice)
    with ape.reverts(p.vault.SafeERC20FailedOperation, token=token.address):
        p.vault.deposit(usdc(1_000), alice, sender=alice)
    assert int(p.vault.marginOf(account)) == 0 and int(p.vault.totalAssets()) == 0
    assert int(token.balanceOf(alice)) == usdc(1_000)


# --------------------------------------------------------------------------- oracle


@pytest.fixture
def underwater(engine, eth, alice, open_account, set_price):
    """Alice: $1,000 on 6 ETH long at $3,000; at $2,860 she is liquidatable."""
    account = open_account(alice, 1_000)
    engine.modifyPosition(account, eth, wad(6), 0, sender=alice)
    set_price("ETH-USD", 2_860)
    return account


def _bad_round(kind: str, feed: Any, deployer: Any, chain: Any) -> str:
    now = chain.pending_timestamp
    if kind == "zero":
        feed.setRoundData(0, now, now, 0, sender=deployer)
        return "OracleNonPositivePrice"
    if kind == "negative":
        feed.setRoundData(-1, now, now, 0, sender=deployer)
        return "OracleNonPositivePrice"
    if kind == "incomplete":
        feed.setRoundData(2_850 * 10**8, now, now, 1, sender=deployer)  # answered in an older round
        return "OracleIncompleteRound"
    chain.pending_timestamp += 3_601  # stale: no round for longer than max age
    return "OracleStalePrice"


@pytest.mark.parametrize("kind", ["zero", "negative", "incomplete", "stale"])
def test_bad_round_delays_liquidation_only_until_the_next_valid_round(
    protocol, liquidator, underwater, eth_feed, deployer, bob, chain, kind
):
    """GMX audit 2023-02 #156: a zero price must not make positions impossible to liquidate
    forever. A bad round is refused with a named error (never a panic, never a liquidation at
    a bad price); the next valid round liquidates."""
    expected = _bad_round(kind, eth_feed, deployer, chain)
    with ape.reverts(getattr(protocol.oracle, expected)):
        liquidator.liquidate(underwater, sender=bob)
    eth_feed.setPrice(2_855 * 10**8, sender=deployer)
    receipt = liquidator.liquidate(underwater, sender=bob)
    assert len(receipt.events.filter(liquidator.Liquidation)) == 1


# --------------------------------------------------------------------------- rounding


def test_one_wei_margin_deposits_and_withdrawals_move_exactly_one_wei(vault, token, alice, open_account):
    account = open_account(alice, 0)
    fund(token, vault, alice, 40)
    for _ in range(20):
        vault.depositMargin(account, 1, sender=alice)
        vault.withdrawMargin(account, 1, alice, sender=alice)
        vault.depositMargin(account, 1, sender=alice)
    assert int(vault.marginOf(account)) == 20 and int(token.balanceOf(alice)) == 20
    assert_solvent_exactly(vault, token)


def test_minimum_size_round_trips_never_gain_margin(engine, vault, token, eth, alice, open_account, set_price):
    """Credits round down, debits up: 15 round trips of the smallest position at prices that
    leave sub-wei remainders each cost at least the fees and can never gain."""
    account = open_account(alice, 100)
    size = wad("0.001")
    margin = int(vault.marginOf(account))
    for i in range(15):
        set_price("ETH-USD", f"3000.{i:02d}000001")
        engine.modifyPosition(account, eth, size if i % 2 else -size, 0, sender=alice)
        set_price("ETH-USD", f"3000.{i + 1:02d}000003")
        engine.closePosition(account, eth, 0, sender=alice)
        after = int(vault.marginOf(account))
        assert after < margin, f"round trip {i} gained or cost nothing: {margin} -> {after}"
        margin = after
    assert_solvent_exactly(vault, token)


def test_one_wei_lp_deposits_and_redemptions_never_gain(vault, token, stranger):
    fund(token, vault, stranger, 1_000)
    for _ in range(10):
        vault.deposit(1, stranger, sender=stranger)
        vault.redeem(vault.balanceOf(stranger), stranger, stranger, sender=stranger)
    assert int(token.balanceOf(stranger)) <= 1_000
    assert int(vault.balanceOf(stranger)) == 0


def test_dust_position_liquidation_is_paid_by_the_account_not_the_pool(
    protocol, engine, vault, token, liquidator, eth, alice, bob, open_account, set_price
):
    """Aave v4 PR #970: tiny liquidations were profitable through rounding. The smallest
    position pays the keeper at most the $1 floor, out of its own margin; the pool and the
    insurance fund do not pay for it."""
    account = open_account(alice, 6)  # $5 minimum margin + fee headroom
    engine.modifyPosition(account, eth, wad("0.001"), 0, sender=alice)
    set_price("ETH-USD", 1_500)
    before = ledgers(vault)
    margin = int(vault.marginOf(account))
    keeper = int(token.balanceOf(bob))
    receipt = liquidator.liquidate(account, sender=bob)
    [event] = receipt.events.filter(liquidator.Liquidation)
    reward = int(token.balanceOf(bob)) - keeper
    assert reward == event.rewardToken <= usdc(1)
    [change] = receipt.events.filter(engine.PositionChanged)
    # The loss, the fee, the keeper's reward and the penalty all come out of the account's own
    # margin (debits rounded up); nothing is left owing, and the insurance fund only gains.
    assert event.full and event.badDebtToken == 0
    loss, fee = -(change.realisedWad // 10**12), -(-change.feeWad // 10**12)
    assert margin - int(vault.marginOf(account)) == loss + fee + reward + event.penaltyToken
    assert ledgers(vault)["insurance"] - before["insurance"] == event.penaltyToken
    assert_solvent_exactly(vault, token)


# --------------------------------------------------------------------------- liquidation games


def test_opening_and_liquidating_in_one_transaction_is_refused(
    project, protocol, engine, liquidator, eth, bob, open_account
):
    """Open at maximum leverage and liquidate yourself in the same transaction (same block):
    the position opened meets the initial margin, so it is not liquidatable."""
    attacker, account = contract_trader(project, protocol, bob, usdc(1_000), usdc(1_000))
    calls = [engine.modifyPosition.encode_input(account, eth, wad(7), 0), liquidator.liquidate.encode_input(account)]
    with ape.reverts(liquidator.AccountNotLiquidatable):
        attacker.executeAll([engine, liquidator], calls, sender=bob)
    assert int(engine.accountMarketMask(account)) == 0


def test_sandwiching_the_price_update_gives_the_keeper_only_the_bounded_reward(
    protocol, liquidator, vault, token, underwater, deployer, bob, set_price
):
    """A keeper that brackets the crash round: before it the account is healthy again (refused),
    after it one liquidation pays the formula's reward and an immediate second is refused."""
    set_price("ETH-USD", 3_000)
    with ape.reverts(liquidator.AccountNotLiquidatable):
        liquidator.liquidate(underwater, sender=bob)
    set_price("ETH-USD", 2_860)
    keeper = int(token.balanceOf(bob))
    receipt = liquidator.liquidate(underwater, sender=bob)
    [event] = receipt.events.filter(liquidator.Liquidation)
    assert int(token.balanceOf(bob)) - keeper == event.rewardToken <= usdc(250)
    with ape.reverts(liquidator.AccountNotLiquidatable):
        liquidator.liquidate(underwater, sender=bob)
    assert_solvent_exactly(vault, token)


def test_batch_griefing_with_healthy_duplicate_and_unknown_ids_liquidates_each_account_once(
    protocol, engine, liquidator, eth, alice, bob, open_account, underwater
):
    healthy = open_account(alice, 10_000)
    engine.modifyPosition(healthy, eth, wad(1), 0, sender=alice)
    ids = [healthy, underwater, underwater, 10**9, underwater, healthy]
    receipt = liquidator.liquidateBatch(ids, sender=bob)
    events = receipt.events.filter(liquidator.Liquidation)
    assert [e.accountId for e in events] == [underwater]
    with ape.reverts(liquidator.NothingToLiquidate):
        liquidator.liquidateBatch([healthy, underwater, 10**9], sender=bob)


# --------------------------------------------------------------------------- LP run


def test_lp_run_leaves_traders_profits_payable(protocol, engine, vault, token, eth, alice, lp, open_account, set_price):
    """Every LP redeems as much as it may while a trader sits on a large profit: the trader
    then closes and is paid in full (no unpaid profit), and the books still balance."""
    account = open_account(alice, 50_000)
    engine.modifyPosition(account, eth, wad(100), 0, sender=alice)
    set_price("ETH-USD", 3_300)  # +$30,000 unrealised
    vault.redeem(vault.maxRedeem(lp), lp, lp, sender=lp)
    assert int(vault.previewRedeem(vault.maxRedeem(lp))) < usdc(1)  # the LP took all it may
    margin = int(vault.marginOf(account))
    receipt = engine.closePosition(account, eth, 0, sender=alice)
    [change] = receipt.events.filter(engine.PositionChanged)
    fee = -(-change.feeWad // 10**12)  # debits round up, credits down
    assert change.realisedWad > 0
    assert int(vault.marginOf(account)) == margin + change.realisedWad // 10**12 - fee
    assert int(vault.unpaidProfitTotal()) == 0
    assert_solvent_exactly(vault, token)


# --------------------------------------------------------------------------- access control


ROLES = ["DEFAULT_ADMIN_ROLE", "RISK_ROLE", "PAUSER_ROLE", "ORACLE_ROLE"]


def _gated(p: Any, config: Any, someone: Any) -> list[tuple[str, str, Any, Any, tuple]]:
    """(name, role, contract, method, args) for every role-gated function."""
    eth = p.markets["ETH-USD"]
    feed = p.feeds["ETH-USD"]
    market = p.engine.marketParams(eth)
    oracle_params = p.oracle.feedParams(feed)
    return [
        ("vault.claimProtocolFees", "DEFAULT_ADMIN_ROLE", p.vault, p.vault.claimProtocolFees, (someone, 0)),
        ("vault.setProtocolFeeShare", "RISK_ROLE", p.vault, p.vault.setProtocolFeeShare, (0,)),
        ("engine.createMarket", "RISK_ROLE", p.engine, p.engine.createMarket, (b"\x01" * 32, market)),
        ("engine.setMarketParams", "RISK_ROLE", p.engine, p.engine.setMarketParams, (eth, market)),
        ("engine.pause", "PAUSER_ROLE", p.engine, p.engine.pause, ()),
        ("engine.unpause", "PAUSER_ROLE", p.engine, p.engine.unpause, ()),
        ("oracle.setFeed", "RISK_ROLE", p.oracle, p.oracle.setFeed, (feed, oracle_params)),
        ("oracle.confirmShock", "ORACLE_ROLE", p.oracle, p.oracle.confirmShock, (feed,)),
        ("liquidator.setParams", "RISK_ROLE", p.liquidator, p.liquidator.setParams, (config.liquidation.params(),)),
        ("vault.grantRole", "DEFAULT_ADMIN_ROLE", p.vault, p.vault.grantRole, (b"\x00" * 32, someone)),
        ("engine.grantRole", "DEFAULT_ADMIN_ROLE", p.engine, p.engine.grantRole, (b"\x00" * 32, someone)),
        ("oracle.revokeRole", "DEFAULT_ADMIN_ROLE", p.oracle, p.oracle.revokeRole, (b"\x00" * 32, someone)),
        ("liquidator.grantRole", "DEFAULT_ADMIN_ROLE", p.liquidator, p.liquidator.grantRole, (b"\x00" * 32, someone)),
    ]


def test_every_gated_function_refuses_every_other_role_and_strangers(protocol, config, deployer, accounts):
    """Four holders, one role each on every contract, plus a stranger: each gated function
    refuses everyone but the holder of its role, naming the caller and the role missing."""
    holders = dict(zip(ROLES, accounts[4:8], strict=True))
    contracts = [protocol.vault, protocol.engine, protocol.oracle, protocol.liquidator]
    for role, holder in holders.items():
        for c in contracts:
            if hasattr(c, role):
                c.grantRole(getattr(c, role)(), holder, sender=deployer)
    stranger = accounts[9]
    checked = 0
    for name, role, contract, method, args in _gated(protocol, config, stranger):
        needed = getattr(contract, role)()
        for caller in [*[h for r, h in holders.items() if r != role], stranger]:
            with ape.reverts(contract.AccessControlUnauthorizedAccount, account=caller.address, neededRole=needed):
                method(*args, sender=caller)
            checked += 1
    assert checked == 13 * 4


def test_engine_and_liquidator_entry_points_refuse_everyone_else(protocol, config, alice, stranger, open_account):
    """The vault's settlement functions answer only the engine; the engine's liquidate only the
    liquidation module."""
    account = open_account(alice, 100)
    for caller in (alice, stranger, protocol.deployer):
        with ape.reverts(protocol.vault.Unauthorized, caller=caller.address):
            protocol.vault.settle(account, 10**6, 0, sender=caller)
        with ape.reverts(protocol.vault.Unauthorized, caller=caller.address):
            protocol.vault.settleLiquidation(account, 0, 0, 0, 0, caller, sender=caller)
        with ape.reverts(protocol.engine.Unauthorized, caller=caller.address):
            protocol.engine.liquidate(account, caller, config.liquidation.params(), sender=caller)


# --------------------------------------------------------------------------- pause scope


def test_pause_stops_exactly_opening_and_increasing(
    protocol, engine, vault, liquidator, token, eth, deployer, alice, bob, lp, open_account, set_price
):
    """Documented scope: a pause stops new risk (open, increase) and nothing that reduces risk
    or returns money: deposits, withdrawals, decreases, closes, liquidations, LP deposits and
    redemptions, insurance funding and funding accrual all still work."""
    trader = open_account(alice, 10_000)
    engine.modifyPosition(trader, eth, wad(2), 0, sender=alice)
    victim = open_account(bob, 1_000)
    engine.modifyPosition(victim, eth, wad(6), 0, sender=bob)
    engine.pause(sender=deployer)

    with ape.reverts(engine.EnforcedPause):
        engine.modifyPosition(trader, eth, wad(1), 0, sender=alice)
    fresh = open_account(alice, 1_000)
    with ape.reverts(engine.EnforcedPause):
        engine.modifyPosition(fresh, eth, wad(1), 0, sender=alice)

    fund(token, vault, alice, usdc(100))
    vault.depositMargin(trader, usdc(100), sender=alice)
    vault.withdrawMargin(trader, usdc(50), alice, sender=alice)
    engine.modifyPosition(trader, eth, -wad(1), 0, sender=alice)
    engine.accrueFunding(eth, sender=alice)
    engine.closePosition(trader, eth, 0, sender=alice)
    set_price("ETH-USD", 2_860)
    liquidator.liquidate(victim, sender=alice)
    fund(token, vault, lp, usdc(150))
    vault.deposit(usdc(100), lp, sender=lp)
    vault.redeem(10**6, lp, lp, sender=lp)
    vault.fundInsurance(usdc(50), sender=lp)
    engine.unpause(sender=deployer)
    engine.modifyPosition(trader, eth, wad(1), 0, sender=alice)


# --------------------------------------------------------------------------- the README's error table

README = Path(__file__).resolve().parents[1] / "README.md"
ORACLE = ["OracleFeedUnknown", "OracleNonPositivePrice", "OraclePriceTooHigh", "OracleIncompleteRound", "OracleStalePrice"]
CORE = ["LeverVault", "PerpEngine", "Liquidator", "OracleAdapter"]


def test_every_error_named_below_exists(project):
    """README 'Errors for invalid input': every state-changing function of the four contracts has
    a row, and every error a row names is in the contracts' ABIs."""
    text = README.read_text().split("### Errors for invalid input", 1)[1].split("\n\n## ", 1)[0]
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    abis = {name: getattr(project, name).contract_type.abi for name in CORE}
    errors = {e.name for abi in abis.values() for e in abi if e.type == "error"}
    covered: set[tuple[str, str]] = set()
    for row in rows:
        functions, named = row.split(" | ", 1)
        for ref in re.findall(r"`([\w*]+)\.(\w+)`", functions):
            covered |= {(c, ref[1]) for c in CORE} if ref[0] == "*" else {ref}
        names = re.findall(r"`(\w+)`", named) + (ORACLE if re.search(r"\bOracle\b", named) else [])
        missing = [n for n in names if n not in errors]
        assert not missing, f"{functions}: {missing} are in no contract's ABI"
    mutating = {(c, f.name) for c, abi in abis.items() for f in abi
                if f.type == "function" and f.stateMutability not in ("view", "pure")}
    assert mutating <= covered, f"no row for {sorted(mutating - covered)}"
