"""Protocol history for the indexer and dashboard tests, made through the test harness, and the
check that an index holds what the chain holds."""

from __future__ import annotations

from typing import Any

from harness import Harness, usdc, wad
from sqlalchemy import Engine, select

from lever import math as m
from lever.indexer import schema as s
from lever.math.orders import Kind

ETH, BTC = "ETH-USD", "BTC-USD"


def fund_insurance(h: Harness, who: Any, amount: int) -> None:
    h.p.token.mint(who, usdc(amount), sender=who)
    h.p.token.approve(h.p.vault, usdc(amount), sender=who)
    h.p.vault.fundInsurance(usdc(amount), sender=who)


def place_limit(h: Harness, owner: Any, account: int, size: str, trigger: str) -> int:
    receipt = h.p.order_book.placeOrder(account, 0, int(Kind.LIMIT), wad(size), wad(trigger), 0, usdc(1), sender=owner)
    return int(receipt.events.filter(h.p.order_book.OrderPlaced)[0].orderId)


def make_history(h: Harness, alice: Any, bob: Any, lp: Any) -> dict[str, int]:
    """Trades on both markets, a reduction, a margin withdrawal, orders placed, updated,
    cancelled and triggered, insurance funding, a partial and a full liquidation with bad debt,
    and an LP redemption: every ledger of the vault moves."""
    fund_insurance(h, bob, 50)
    steady = h.open_account(alice, 10_000)
    h.trade(alice, steady, ETH, "2")
    h.trade(alice, steady, BTC, "-0.1")
    h.trade(alice, steady, ETH, "-0.5")
    h.p.vault.withdrawMargin(steady, usdc(100), alice, sender=alice)
    limit = place_limit(h, alice, steady, "0.3", "2500")
    h.p.order_book.updateOrder(limit, wad("0.4"), wad("2400"), 0, sender=alice)
    cancelled = place_limit(h, alice, steady, "0.2", "2000")
    h.p.order_book.cancelOrder(cancelled, sender=alice)
    receipt = h.p.order_book.placeOrder(
        steady, 0, int(Kind.STOP_LOSS), -wad("0.5"), wad(2_900), 0, usdc(1), sender=alice
    )
    stop = int(receipt.events.filter(h.p.order_book.OrderPlaced)[0].orderId)
    partial = h.open_account(bob, 2_000)
    h.trade(bob, partial, ETH, "12")  # $36,000: 18x
    underwater = h.open_account(bob, 1_000)
    h.trade(bob, underwater, ETH, "8")
    h.advance(h.delay)
    h.set_price(ETH, 2_890)
    h.trigger([stop], [ETH])  # triggered; nobody fills it
    h.liquidate([partial])
    h.set_price(ETH, 2_800)
    h.liquidate([underwater])  # bad debt beyond the $50 insurance fund
    shares = int(h.p.vault.balanceOf(lp))
    h.lp_redeem(lp, shares // 100)
    return {"steady": steady, "partial": partial, "underwater": underwater, "limit": limit, "stop": stop}


def assert_index_equals_chain(engine: Engine, h: Harness) -> None:
    """Every account's margin and positions, and every ledger, as the chain's views say."""
    r = h.reader
    v = r.vault.functions
    with engine.connect() as conn:
        margins = {int(a.account_id): a.margin for a in conn.execute(select(s.accounts))}
        positions = {
            (int(p.account_id), int(p.market_id)): m.Position(p.size, p.cost, p.entry_charge, int(p.last_increase_time))
            for p in conn.execute(select(s.positions))
        }
        ledgers = conn.execute(select(s.ledgers)).mappings().one()
    count = r.account_count()
    assert sorted(margins) == list(range(1, count + 1))
    chain_positions = {}
    for account in range(1, count + 1):
        record = r.account(account)
        assert margins[account] == record.margin_token, f"margin of account {account}"
        chain_positions.update({(account, mk): pos for mk, pos in record.positions.items()})
    assert positions == chain_positions
    assert {
        k: ledgers[k]
        for k in ("pool", "insurance", "protocol_fees", "order_escrow", "lp_escrow", "total_margin", "share_supply")
    } == {
        "pool": int(v.poolAssets().call()),
        "insurance": int(v.insuranceFund().call()),
        "protocol_fees": int(v.protocolFees().call()),
        "order_escrow": int(v.orderEscrow().call()),
        "lp_escrow": int(v.lpEscrow().call()),
        "total_margin": int(v.totalMargin().call()),
        "share_supply": int(v.totalSupply().call()),
    }
