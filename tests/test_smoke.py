"""The two-step flows end to end: an LP funds the pool, a trader opens and closes."""

from __future__ import annotations

from typing import Any

from harness import Harness, usdc, wad


def test_lp_deposit_then_trade_round_trip(h: Harness, alice: Any) -> None:
    p = h.p
    assert int(p.vault.poolAssets()) == 1_000_000 * 10**6
    account = h.open_account(alice, 10_000)
    receipt = h.trade(alice, account, "ETH-USD", "1")
    settled = receipt.events.filter(p.order_book.OrderSettled)
    assert len(settled) == 1, receipt.events
    pos = p.engine.position(account, 0)
    assert int(pos.sizeWad) == wad(1)
    h.close(alice, account, "ETH-USD")
    assert int(p.engine.position(account, 0).sizeWad) == 0
    margin = int(p.vault.marginOf(account))
    assert usdc(9_990) < margin < usdc(10_000)
    bal, liab, ok = p.vault.solvency()
    assert ok and int(bal) == int(liab)
