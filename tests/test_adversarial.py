"""Attacks on the protocol's edges; each test fails if the attack works, asserts the exact custom
error, and that no value moved (or exactly the value the design moves).

Reentrancy through a token hook (ERC-777 style), odd tokens (fee-on-transfer, no return value,
`false` instead of a revert), every privileged function of every module called by everyone who
lacks its role, and the scope of the pause: it stops new risk (an increase is cancelled at
settlement, its executor fee to the settler) and nothing that reduces risk or returns money.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import ape
import pytest
from eth_utils.crypto import keccak
from harness import Harness, usdc, wad

from lever.deploy import Protocol, create_account, deploy_protocol
from lever.math.orders import Kind

ETH = "ETH-USD"
MAX = 2**256 - 1
REENTRANT = keccak(text="ReentrancyGuardReentrantCall()")[:4]


def books(p: Protocol, *people: Any) -> dict[str, Any]:
    """Every ledger of the vault, its token balance, and the tokens and lvLP of `people`."""
    v = p.vault
    return {
        "ledgers": (
            int(v.totalMargin()),
            int(v.poolAssets()),
            int(v.insuranceFund()),
            int(v.protocolFees()),
            int(v.orderEscrow()),
            int(v.lpEscrow()),
        ),
        "vault": int(p.token.balanceOf(v)),
        "tokens": [int(p.token.balanceOf(x)) for x in people],
        "shares": [int(v.balanceOf(x)) for x in people],
    }


def assert_solvent_exactly(p: Protocol) -> None:
    """The vault holds exactly what its ledgers owe: no surplus, no shortfall."""
    balance, liabilities, solvent = p.vault.solvency()
    assert solvent and int(balance) == int(liabilities) == int(p.token.balanceOf(p.vault))


def protocol_on(project: Any, deployer: Any, config: Any, chain: Any, keeper: Any, lp: Any, token: Any) -> Harness:
    """The protocol deployed on `token`, with a $1M pool through the asynchronous flow."""
    h = Harness(deploy_protocol(project, deployer, config, token=token), chain, keeper, config)
    h.publish_all()
    h.lp_deposit(lp, usdc(1_000_000))
    return h


@pytest.fixture
def own_book() -> Iterator[Callable[[Harness], None]]:
    """Restores a module harness's price book after the test (ape restores the chain)."""
    saved: list[tuple[Harness, Any]] = []

    def keep(h: Harness) -> None:
        saved.append((h, h.snapshot()))

    yield keep
    for h, snapshot in saved:
        h.restore(snapshot)


# --------------------------------------------------------------------------- reentrancy


def call_as(attacker: Any, owner: Any, contract: Any, method: str, *args: Any, value: int = 0) -> Any:
    """`attacker` (a ReentrancyAttacker driven by `owner`) calls `contract.method(*args)`."""
    return attacker.execute(contract, getattr(contract, method).encode_input(*args), sender=owner, value=value)


@pytest.fixture(scope="module")
def hooked(project: Any, deployer: Any, config: Any, chain: Any, accounts: Any) -> dict[str, Any]:
    """A protocol whose collateral calls registered senders and recipients (HookToken), and an
    attacker contract with a Lever account, lvLP shares and a settled redemption to claim. Bob
    owns a victim (6 ETH long on $1,000, liquidatable at $2,860) and a triggered limit order
    whose executor fee goes to whoever executes it."""
    keeper, lp, bob = accounts[8], accounts[3], accounts[2]
    h = protocol_on(project, deployer, config, chain, keeper, lp, project.HookToken.deploy(sender=deployer))
    p = h.p
    attacker = project.ReentrancyAttacker.deploy(sender=bob)
    p.token.mint(attacker, usdc(20_000), sender=bob)
    call_as(attacker, bob, p.token, "approve", p.vault, MAX)
    receipt = call_as(attacker, bob, p.engine, "createAccount")
    account = int(receipt.events.filter(p.engine.AccountCreated)[0].accountId)
    call_as(attacker, bob, p.vault, "depositMargin", account, usdc(2_000))
    fee = int(p.vault.lpParams().executorFee)
    receipt = call_as(attacker, bob, p.vault, "requestDeposit", usdc(5_000), attacker, attacker)
    h._settle_lp(p.vault.settleDeposit, attacker, int(receipt.timestamp))
    call_as(attacker, bob, p.vault, "deposit", usdc(5_000), attacker)
    receipt = call_as(
        attacker, bob, p.vault, "requestRedeem", int(p.vault.balanceOf(attacker)) // 2, attacker, attacker
    )
    h._settle_lp(p.vault.settleRedeem, attacker, int(receipt.timestamp))
    assert int(p.vault.maxRedeem(attacker)) > 0 and fee > 0

    victim = h.open_account(bob, 1_000)
    h.trade(bob, victim, ETH, "6")
    limit_account = h.open_account(bob, 10_000)
    placed = p.order_book.placeOrder(
        limit_account, p.markets[ETH], int(Kind.LIMIT), wad(1), wad(3_100), 0, usdc(1), sender=bob
    )
    limit = int(placed.events.filter(p.order_book.OrderPlaced)[0].orderId)
    h.advance(h.delay)
    h.set_price(ETH, 2_860)
    due = int(h.trigger([limit], [ETH]).timestamp) + h.delay
    h.book.publish(ETH, h.prices[ETH], due)  # the price the triggered limit fills at
    fill = h.book.feeds[ETH].update_at_or_after(due)
    call_as(attacker, bob, p.token, "setHooked", True)
    return {
        "h": h,
        "attacker": attacker,
        "account": account,
        "victim": victim,
        "limit": limit,
        "fill": fill,
        "bob": bob,
    }


# The attacker's own operation during which its hook fires: (contract, method, args) and what
# it must move to the attacker (read from the receipt).
OUTER: dict[str, Callable[[dict[str, Any]], tuple[Any, str, tuple[Any, ...]]]] = {
    "margin deposit": lambda w: (w["h"].p.vault, "depositMargin", (w["account"], usdc(100))),
    "margin withdrawal": lambda w: (w["h"].p.vault, "withdrawMargin", (w["account"], usdc(100), w["attacker"])),
    "LP claim": lambda w: (w["h"].p.vault, "redeem", (10**9, w["attacker"], w["attacker"])),
    "executor fee": lambda w: (w["h"].p.order_book, "settleOrders", ([w["limit"]], [w["fill"]], [])),
    "keeper reward": lambda w: (w["h"].p.liquidator, "liquidate", (w["victim"], [])),
}
# What the hook tries: (contract, method, args).
REENTRY: dict[str, Callable[[dict[str, Any]], tuple[Any, str, tuple[Any, ...]]]] = {
    "withdraw margin": lambda w: (w["h"].p.vault, "withdrawMargin", (w["account"], usdc(1_500), w["attacker"])),
    "commit an order": lambda w: (w["h"].p.order_book, "commitOrder", (w["account"], 0, wad(1), 0, usdc(1))),
    "liquidate the victim": lambda w: (w["h"].p.liquidator, "liquidate", (w["victim"], [])),
    "claim LP assets": lambda w: (w["h"].p.vault, "redeem", (10**9, w["attacker"], w["attacker"])),
    "request a redemption": lambda w: (w["h"].p.vault, "requestRedeem", (10**6, w["attacker"], w["attacker"])),
}


def _moved(p: Protocol, outer: str, receipt: Any) -> int:
    """What the outer operation must move to the attacker, from its own events."""
    if outer == "margin deposit":
        return -usdc(100)
    if outer == "margin withdrawal":
        return usdc(100)
    if outer == "LP claim":
        [withdraw] = receipt.events.filter(p.vault.Withdraw)
        assert int(withdraw.assets) > 0
        return int(withdraw.assets)
    if outer == "executor fee":
        [settled] = receipt.events.filter(p.order_book.OrderSettled)
        return int(settled.executorFee)
    [liquidation] = receipt.events.filter(p.liquidator.Liquidation)
    assert int(liquidation.rewardToken) > 0
    return int(liquidation.rewardToken)


@pytest.mark.parametrize("reentry", REENTRY)
@pytest.mark.parametrize("outer", OUTER)
def test_a_token_hook_cannot_reenter_the_protocol(
    hooked: dict[str, Any], own_book: Any, outer: str, reentry: str
) -> None:
    h, attacker, bob = hooked["h"], hooked["attacker"], hooked["bob"]
    own_book(h)
    p = h.p
    h.advance(3)  # past the triggered limit order's settlement delay
    h.refresh()  # liquidations and conditional orders need a price at most 30 s old
    target, method, args = REENTRY[reentry](hooked)
    attacker.arm(target, getattr(target, method).encode_input(*args), sender=bob)
    contract, outer_method, outer_args = OUTER[outer](hooked)
    before = int(p.token.balanceOf(attacker))
    others = books(p, bob, h.keeper)

    value = h.fee(1) if outer == "executor fee" else 0  # the fill's pull-price fee
    receipt = call_as(attacker, bob, contract, outer_method, *outer_args, value=value)

    assert attacker.attempted(), "the hook did not fire"
    assert not attacker.succeeded(), f"re-entering to {reentry} during a {outer} succeeded"
    refusal = h.reader.arts.error_name(bytes(attacker.result()))
    assert bytes(attacker.result())[:4] == REENTRANT, refusal  # the guard, not another refusal
    assert int(p.token.balanceOf(attacker)) - before == _moved(p, outer, receipt)
    assert books(p, bob, h.keeper)["tokens"] == others["tokens"]
    assert_solvent_exactly(p)


# --------------------------------------------------------------------------- odd tokens


def test_a_fee_on_transfer_token_is_refused_and_nothing_is_credited(
    project: Any, deployer: Any, config: Any, alice: Any
) -> None:
    """The vault measures what arrived: 1% short is `TransferAmountMismatch(expected, received)`
    for a margin deposit, an LP request and insurance funding alike."""
    token = project.FeeOnTransferToken.deploy(sender=deployer)
    p = deploy_protocol(project, deployer, config, token=token)
    account = create_account(p.engine, alice)
    token.mint(alice, usdc(1_000), sender=alice)
    token.approve(p.vault, MAX, sender=alice)
    before = books(p, alice)
    fee = int(p.vault.lpParams().executorFee)
    for pull, amount in (
        (lambda: p.vault.depositMargin(account, usdc(100), sender=alice), usdc(100)),
        (lambda: p.vault.requestDeposit(usdc(100), alice, alice, sender=alice), usdc(100) + fee),
        (lambda: p.vault.fundInsurance(usdc(10), sender=alice), usdc(10)),
    ):
        with ape.reverts(p.vault.TransferAmountMismatch, expected=amount, received=amount - amount // 100):
            pull()
    assert books(p, alice) == before and int(p.vault.marginOf(account)) == 0


def test_a_token_without_return_values_is_accounted_exactly(
    project: Any, deployer: Any, config: Any, chain: Any, keeper: Any, lp: Any, alice: Any
) -> None:
    """USDT-style (transfer, transferFrom and approve return nothing): SafeERC20 accepts it, and an
    LP deposit, a trade round trip, a withdrawal and a redemption move exactly their amounts."""
    h = protocol_on(project, deployer, config, chain, keeper, lp, project.NoReturnToken.deploy(sender=deployer))
    p = h.p
    assert int(p.vault.poolAssets()) == usdc(1_000_000) and int(p.vault.balanceOf(lp)) > 0
    account = h.open_account(alice, 1_000)
    assert int(p.vault.marginOf(account)) == usdc(1_000) and int(p.token.balanceOf(alice)) == 0
    receipts = [h.trade(alice, account, ETH, "1"), h.close(alice, account, ETH)]
    expected = usdc(1_000)
    for receipt in receipts:
        [settled] = receipt.events.filter(p.vault.Settled)
        expected += int(settled.pnlToken) - int(settled.feeToken)
        [paid] = receipt.events.filter(p.order_book.OrderSettled)
        expected -= int(paid.executorFee)
    assert int(p.vault.marginOf(account)) == expected
    wallet = int(p.token.balanceOf(alice))
    p.vault.withdrawMargin(account, expected, alice, sender=alice)
    assert int(p.token.balanceOf(alice)) == wallet + expected and int(p.vault.marginOf(account)) == 0
    assert h.lp_redeem(lp, int(p.vault.balanceOf(lp)) // 2) > 0
    assert_solvent_exactly(p)


def test_a_token_returning_false_is_refused_and_nothing_is_credited(
    project: Any, deployer: Any, config: Any, alice: Any
) -> None:
    """A token that returns false instead of reverting (no allowance here): the vault must not
    credit a transfer that did not happen."""
    token = project.FalseReturnToken.deploy(sender=deployer)
    p = deploy_protocol(project, deployer, config, token=token)
    account = create_account(p.engine, alice)
    token.mint(alice, usdc(1_000), sender=alice)
    before = books(p, alice)
    with ape.reverts(p.vault.SafeERC20FailedOperation, token=token.address):
        p.vault.depositMargin(account, usdc(1_000), sender=alice)
    with ape.reverts(p.vault.SafeERC20FailedOperation, token=token.address):
        p.vault.requestDeposit(usdc(1_000), alice, alice, sender=alice)
    with ape.reverts(p.vault.SafeERC20FailedOperation, token=token.address):
        p.vault.fundInsurance(usdc(1_000), sender=alice)
    assert books(p, alice) == before and int(p.vault.marginOf(account)) == 0


def test_an_lvlp_allowance_cannot_spend_the_owners_collateral(h: Harness, lp: Any, stranger: Any) -> None:
    """A spender allowed some lvLP may request their redemption (ERC-7540 lets it); the request's
    executor fee is the spender's to pay, not a pull on the owner's own token approval: else many
    one-wei requests to fresh controllers, settled by the spender, would drain the owner's wallet."""
    p = h.p
    fee = int(p.vault.lpParams().executorFee)
    p.token.mint(lp, usdc(100), sender=lp)
    p.token.approve(p.vault, MAX, sender=lp)  # the LP's standing approval, for its own requests
    p.vault.approve(stranger, 10, sender=lp)
    p.token.mint(stranger, fee, sender=stranger)
    p.token.approve(p.vault, MAX, sender=stranger)
    wallet = int(p.token.balanceOf(lp))
    p.vault.requestRedeem(1, stranger, lp, sender=stranger)
    assert int(p.token.balanceOf(lp)) == wallet
    assert int(p.token.balanceOf(stranger)) == 0
    before = books(p, lp, stranger)
    # The next one (a fresh controller): the spender's own wallet is empty, so it stops there.
    with ape.reverts(p.vault.ERC20InsufficientBalance, sender=stranger.address, balance=0, needed=fee):
        p.vault.requestRedeem(1, p.deployer, lp, sender=stranger)
    assert books(p, lp, stranger) == before


# --------------------------------------------------------------------------- roles


def _trade(p: Protocol, account: int) -> tuple[Any, ...]:
    """An `IPerpEngine.Trade` for `account` (a plausible one: the caller is what is refused)."""
    return (account, 0, wad(1), 0, False, (wad(3_000), 1, wad(1), wad(1), False, wad(3_000)))


def gated(p: Protocol, config: Any) -> list[tuple[str, Any, str, tuple[Any, ...]]]:
    """(role, contract, method, args) for every role-gated function of every module."""
    market = tuple(p.engine.marketParams(0))
    oracle_config = tuple(p.oracle.config(0))
    tl = p.timelock
    zero = b"\x00" * 32
    admin = "DEFAULT_ADMIN_ROLE"
    return [
        ("RISK_ROLE", p.oracle, "configure", (0, oracle_config)),
        ("RISK_ROLE", p.oracle, "setSequencerFeed", (p.feeds[ETH], 60)),
        ("ORACLE_ROLE", p.oracle, "confirmShock", (0,)),
        ("RISK_ROLE", p.vault, "setProtocolFeeShare", (0,)),
        ("RISK_ROLE", p.vault, "setLpParams", (config.lp.params(6),)),
        (admin, p.vault, "claimProtocolFees", (p.deployer, 1)),
        ("RISK_ROLE", p.engine, "createMarket", (b"\x01" * 32, market)),
        ("RISK_ROLE", p.engine, "setMarketParams", (0, market)),
        ("PAUSER_ROLE", p.engine, "pause", ()),
        ("PAUSER_ROLE", p.engine, "unpause", ()),
        ("RISK_ROLE", p.order_book, "setSettings", (config.orders.settings(6),)),
        ("RISK_ROLE", p.liquidator, "setParams", (config.liquidation.params(),)),
        *[
            (admin, module, method, (zero, p.deployer))
            for module in (p.oracle, p.vault, p.engine, p.order_book, p.liquidator)
            for method in ("grantRole", "revokeRole")
        ],
        ("PROPOSER_ROLE", tl, "schedule", (p.engine, 0, b"", zero, zero, 0)),
        ("EXECUTOR_ROLE", tl, "execute", (p.engine, 0, b"", zero, zero)),
        ("CANCELLER_ROLE", tl, "cancel", (zero,)),
    ]


def test_every_role_gated_function_refuses_everyone_without_its_role(
    h: Harness, config: Any, alice: Any, stranger: Any, keeper: Any
) -> None:
    """Every gated function of every module, called by each of a stranger, a trader, the keeper and
    the deployer (who keeps only the pauser and oracle roles; the timelock holds risk and admin):
    `AccessControlUnauthorizedAccount(caller, role)` for each that lacks the role, nothing moved."""
    p = h.p
    callers = [stranger, alice, keeper, p.deployer]
    before = books(p, *callers)
    held = set()
    for role, contract, method, args in gated(p, config):
        needed = bytes(getattr(contract, role)())
        for caller in callers:
            if contract.hasRole(needed, caller):
                held.add((method, caller.address))
                continue
            with ape.reverts(contract.AccessControlUnauthorizedAccount, account=caller.address, neededRole=needed):
                getattr(contract, method)(*args, sender=caller)
    # The operational roles the deployer keeps; every other call above was refused.
    assert held == {
        (m, p.deployer.address) for m in ("pause", "unpause", "confirmShock", "schedule", "execute", "cancel")
    }
    assert books(p, *callers) == before


def test_module_only_entry_points_refuse_every_other_caller(h: Harness, config: Any, alice: Any, stranger: Any) -> None:
    """What only a wired module may call answers `Unauthorized(caller)` to everyone else, the
    deployer included: the vault's settlement and escrows (the engine, the order book), the
    engine's trade and liquidation (the order book, the liquidator), the order book's liquidation
    hook (the liquidator), the timelock's own delay (itself), and ETH sent to the order book or the
    liquidator (only the oracle refunds there)."""
    p = h.p
    account = h.open_account(alice, 1_000)
    p.token.mint(alice, usdc(100), sender=alice)
    p.token.approve(p.vault, MAX, sender=alice)  # a standing approval the escrow must not reach
    calls = [
        (p.vault, "settle", (account, usdc(1_000), 0)),
        (p.vault, "settleLiquidation", (account, usdc(1_000), 0, 0, 0, 0, stranger)),
        (p.vault, "escrowExecutorFee", (account, usdc(100), alice)),
        (p.vault, "forfeitExecutorFee", (account, 0)),
        (p.vault, "releaseExecutorFee", (account, 0, stranger)),
        (p.engine, "executeTrade", (_trade(p, account),)),
        (p.engine, "liquidate", (account, stranger, config.liquidation.params())),
        (p.order_book, "onLiquidation", (account,)),
    ]
    before = books(p, alice, stranger)
    for caller in (stranger, alice, p.deployer, h.keeper):
        for contract, method, args in calls:
            with ape.reverts(contract.Unauthorized, caller=caller.address):
                getattr(contract, method)(*args, sender=caller)
        for contract in (p.order_book, p.liquidator):
            with ape.reverts(contract.Unauthorized, caller=caller.address):
                caller.transfer(contract, 1)
        with ape.reverts(p.timelock.TimelockUnauthorizedCaller, caller=caller.address):
            p.timelock.updateDelay(0, sender=caller)
    assert books(p, alice, stranger) == before


# --------------------------------------------------------------------------- pause


def _settle_due(h: Harness, order: int, commit_time: int) -> Any:
    return h.settle([order], [ETH], commit_time)


def test_the_pause_cancels_increases_at_settlement_for_the_settlers_fee(h: Harness, alice: Any) -> None:
    """Paused, a committed increase (market or limit) is cancelled when settled: `EnforcedPause`,
    the position and the pool untouched, the executor fee (and nothing else) to the settler."""
    p = h.p
    account = h.open_account(alice, 10_000)
    h.trade(alice, account, ETH, "1")
    p.engine.pause(sender=p.deployer)
    order, t = h.commit(alice, account, ETH, "1", executor_fee="2")
    placed = p.order_book.placeOrder(account, 0, int(Kind.LIMIT), wad(1), wad(3_100), 0, usdc(2), sender=alice)
    limit = int(placed.events.filter(p.order_book.OrderPlaced)[0].orderId)
    position, pool, margin = h.position(account, ETH), int(p.vault.poolAssets()), h.margin(account)
    keeper = int(p.token.balanceOf(h.keeper))
    receipt = _settle_due(h, order, t)
    [cancelled] = receipt.events.filter(p.order_book.OrderCancelled)
    assert h.reader.arts.error_name(bytes(cancelled.reason)) == "EnforcedPause" and cancelled.feeTo == h.keeper.address
    h.advance(h.delay)
    h.refresh()
    receipt = h.settle([limit], [ETH], int(h.trigger([limit], [ETH]).timestamp))
    [cancelled] = receipt.events.filter(p.order_book.OrderCancelled)
    assert h.reader.arts.error_name(bytes(cancelled.reason)) == "EnforcedPause"
    assert h.position(account, ETH) == position and int(p.vault.poolAssets()) == pool
    assert h.margin(account) == margin and int(p.token.balanceOf(h.keeper)) - keeper == usdc(4)
    assert_solvent_exactly(p)


def test_the_pause_leaves_open_everything_that_reduces_risk_or_returns_money(
    h: Harness, alice: Any, bob: Any, lp: Any, stranger: Any
) -> None:
    """Paused: margin deposits and withdrawals, a decrease and a close (market orders), a stop-loss,
    cancelling a conditional order, a liquidation, LP deposits, redemptions and claims, insurance
    funding and accrual all still work; unpaused, increases fill again."""
    p = h.p
    trader = h.open_account(alice, 10_000)
    h.trade(alice, trader, ETH, "3")
    stop = p.order_book.placeOrder(trader, 0, int(Kind.STOP_LOSS), -wad(1), wad(2_990), 0, usdc(1), sender=alice)
    stop_id = int(stop.events.filter(p.order_book.OrderPlaced)[0].orderId)
    take = p.order_book.placeOrder(trader, 0, int(Kind.TAKE_PROFIT), -wad(1), wad(3_500), 0, usdc(1), sender=alice)
    take_id = int(take.events.filter(p.order_book.OrderPlaced)[0].orderId)
    victim = h.open_account(bob, 1_000)
    h.trade(bob, victim, ETH, "6")
    p.engine.pause(sender=p.deployer)
    with ape.reverts(p.engine.EnforcedPause):
        p.engine.pause(sender=p.deployer)

    p.token.mint(alice, usdc(100), sender=alice)
    p.vault.depositMargin(trader, usdc(100), sender=alice)
    p.vault.withdrawMargin(trader, usdc(50), alice, sender=alice)
    assert h.margin(trader) > 0
    p.order_book.cancelOrder(take_id, sender=alice)
    order, t = h.commit(alice, trader, ETH, "-1")
    assert len(_settle_due(h, order, t).events.filter(p.order_book.OrderSettled)) == 1
    h.advance(3)
    h.set_price(ETH, 2_980)
    triggered = h.trigger([stop_id], [ETH])
    executed = h.settle([stop_id], [ETH], int(triggered.timestamp))
    assert len(executed.events.filter(p.order_book.OrderSettled)) == 1
    assert int(h.position(trader, ETH).size) == wad(1)
    h.close(alice, trader, ETH)
    assert int(h.position(trader, ETH).size) == 0
    h.set_price(ETH, 2_860)
    assert len(h.liquidate([victim], sender=stranger).events.filter(p.liquidator.Liquidation)) == 1
    p.engine.accrue(0, sender=stranger)
    assert h.lp_deposit(stranger, usdc(1_000)) > 0
    assert h.lp_redeem(lp, 10**12) > 0
    p.token.mint(stranger, usdc(10), sender=stranger)
    p.token.approve(p.vault, usdc(10), sender=stranger)
    p.vault.fundInsurance(usdc(10), sender=stranger)
    p.vault.withdrawMargin(trader, h.margin(trader), alice, sender=alice)

    p.engine.unpause(sender=p.deployer)
    with ape.reverts(p.engine.ExpectedPause):
        p.engine.unpause(sender=p.deployer)
    again = h.open_account(alice, 1_000)
    h.trade(alice, again, ETH, "0.1")
    assert int(h.position(again, ETH).size) == wad("0.1")
    assert_solvent_exactly(p)
