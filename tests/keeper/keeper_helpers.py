"""Helpers for the keeper's tests on a chain: what a keeper sent, what the order book said, waiting."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


def keeper_receipts(h: Any, sender: str, after_block: int) -> list[Any]:
    """Receipts of every transaction `sender` got mined after `after_block`, in order."""
    w3 = h.chain.provider.web3
    found = []
    for number in range(after_block + 1, int(w3.eth.block_number) + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if tx["from"].lower() == sender.lower():
                found.append(w3.eth.get_transaction_receipt(tx["hash"]))
    return found


def reverted(h: Any, sender: str, after_block: int) -> int:
    """How many of `sender`'s transactions mined after `after_block` reverted."""
    return sum(1 for r in keeper_receipts(h, sender, after_block) if r["status"] != 1)


def order_events(h: Any, after_block: int) -> tuple[list[Any], list[Any]]:
    """(OrderSettled, OrderCancelled) events after `after_block`."""
    book, head = h.p.order_book, int(h.chain.blocks.head.number)
    return (
        list(book.OrderSettled.range(after_block + 1, head + 1)),
        list(book.OrderCancelled.range(after_block + 1, head + 1)),
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def eventually(
    predicate: Callable[[], Any],
    timeout: float = 30.0,
    pause: float = 0.1,
    ignore: tuple[type[BaseException], ...] = (),
) -> bool:
    """Polls `predicate` until it holds (an error in `ignore` counts as not yet) or `timeout` passes.
    A wait for another process or thread, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except ignore:
            pass
        time.sleep(pause)
    return False


def predicted_liquidation(h: Any, account: int, block: int) -> tuple[Any, Any]:
    """The mirror's liquidation of `account` in `block`: the state before it, accrued to its
    timestamp, at the pull price stored in it (the one the keeper brought). Returns the
    prediction and the vault's settlement (`lever.math`)."""
    from lever import math as m

    before = block - 1
    now = int(h.chain.provider.web3.eth.get_block(block)["timestamp"])
    scale = h.reader.token_scale()
    r = h.reader.account(account, before)
    ledgers = h.reader.ledgers(before)
    cov = ledgers.coverage(scale)
    legs = []
    for mk in sorted(r.positions):
        stored = h.reader.market(mk, block).oracle_state
        view = h.reader.market(mk, before).view(now, cov.pool, stored.latest_price, stored.latest_publish_time)
        legs.append((r.positions[mk], view))
    params = h.reader.liquidation_params(before)
    p = m.predict_liquidation(r.margin_token, scale, legs, params, cov)
    s = m.vault.settle_liquidation(
        r.margin_token,
        m.vault.Ledgers(ledgers.pool, ledgers.insurance, ledgers.protocol_fees, ledgers.protocol_fee_share),
        p.pnl_token,
        p.fee_token,
        p.reward_request,
        p.penalty_request,
        params.min_reward // scale,
    )
    return p, s


@contextmanager
def stepping(keeper: Any, pause: float = 0.05) -> Iterator[threading.Thread]:
    """Runs `keeper.step()` over and over in a thread, as the service does, until the block
    ends; then waits for the step under way to finish."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            keeper.step()
            stop.wait(pause)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield thread
    finally:
        stop.set()
        thread.join(timeout=60)


def step_and_land(keeper: Any) -> int:
    """One keeper step, then its order batches waited for until mined and their receipts read:
    the step's whole outcome, on the chain and in the keeper's state. Returns the liquidations."""
    liquidated = int(keeper.step())
    keeper.land()
    return liquidated


def step_into_one_block(h: Any, keeper: Any, count: int) -> tuple[bool, bool, Any]:
    """Runs one `keeper.step()` in a thread with the node mining only when told; once `count` of
    the keeper's transactions wait in its pool together (at most 8 s), mines one block, then
    waits for the step. Returns (all `count` were pooled, the step finished, what it returned)."""
    w3 = h.chain.provider.web3

    def pooled() -> int:
        return int(w3.eth.get_transaction_count(keeper.address, "pending")) - int(
            w3.eth.get_transaction_count(keeper.address, "latest")
        )

    returned: list[Any] = []
    w3.provider.make_request("evm_setAutomine", [False])
    step = threading.Thread(target=lambda: returned.append(keeper.step()), daemon=True)
    try:
        step.start()
        all_pooled = eventually(lambda: pooled() == count, timeout=8.0)
        w3.provider.make_request("evm_mine", [])
    finally:
        w3.provider.make_request("evm_setAutomine", [True])
        step.join(timeout=60)
    return all_pooled, not step.is_alive(), returned[0] if returned else None
