"""Test helpers: units, and reading chain state into the Python mirror."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from lever import math as m
from lever.keeper.chain import MarketRaw
from lever.units import to_scaled, to_wad

WAD = m.WAD


def usdc(amount: str | int) -> int:
    return to_scaled(str(amount), 6)


def wad(amount: str | int) -> int:
    return to_wad(str(amount))


def params_of(engine: Any, market: int) -> m.MarketParams:
    return m.MarketParams.from_chain(engine.marketParams(market))


def state_of(engine: Any, market: int) -> m.MarketState:
    return m.MarketState.from_chain(engine.marketState(market))


def position_of(engine: Any, account: int, market: int) -> m.Position:
    return m.Position.from_chain(engine.position(account, market))


def price_of(protocol: Any, market_name: str) -> int:
    feed = protocol.feeds[market_name]
    return int(protocol.oracle.priceWad(feed))


def ledgers(vault: Any) -> dict[str, int]:
    return {
        "margin": int(vault.totalMargin()),
        "pool": int(vault.poolAssets()),
        "insurance": int(vault.insuranceFund()),
        "fees": int(vault.protocolFees()),
    }


def assert_solvent_exactly(vault: Any, token: Any) -> None:
    """The solvency identity with no surplus: balance == sum of ledgers."""
    balance, liabilities, solvent = vault.solvency()
    assert solvent
    assert balance == liabilities == int(token.balanceOf(vault))
    assert liabilities == sum(ledgers(vault).values())


RawMarket = MarketRaw  # the keeper's raw market: everything a market's view is computed from


def raw_market(protocol: Any, market: int) -> RawMarket:
    engine, oracle = protocol.engine, protocol.oracle
    raw = engine.marketParams(market)
    feed_state, vol_state = oracle.feedState(raw.feed)
    round_id, _answer = _latest_round(protocol, raw.feed)
    return RawMarket(
        m.MarketParams.from_chain(raw),
        state_of(engine, market),
        m.FeedParams.from_chain(oracle.feedParams(raw.feed)),
        m.FeedState.from_chain(feed_state, vol_state),
        round_id,
        int(oracle.priceWad(raw.feed)),
    )


def _latest_round(protocol: Any, feed_address: str) -> tuple[int, int]:
    for feed in protocol.feeds.values():
        if feed.address == feed_address:
            round_id, answer, *_ = feed.latestRoundData()
            return int(round_id), int(answer)
    raise KeyError(feed_address)


def market_view(protocol: Any, market: int, now: int) -> m.MarketView:
    return raw_market(protocol, market).view(now)


def account_legs(protocol: Any, account: int) -> list[tuple[m.Position, RawMarket]]:
    engine = protocol.engine
    return [(position_of(engine, account, mk), raw_market(protocol, mk)) for mk in engine.accountMarkets(account)]


def mirror_account(protocol: Any, account: int, now: int) -> m.AccountState:
    """The mirror's account state from the chain's raw positions, markets, feeds and ledgers."""
    legs = [(pos, raw.view(now)) for pos, raw in account_legs(protocol, account)]
    return m.account_state(int(protocol.vault.marginOf(account)), int(protocol.vault.tokenScale()), legs)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def eventually(predicate: Any, timeout: float = 30.0, ignore: tuple[type[BaseException], ...] = ()) -> bool:
    """Polls `predicate` until it is true (errors in `ignore` count as not yet) or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except ignore:
            pass
        time.sleep(0.1)
    return False


def while_mining(predicate: Any) -> Any:
    """`predicate` for polls that race another thread's transactions on Anvil.

    Anvil 1.7.1 can run an `eth_call` at the newest block's state with the previous block's
    timestamp while a block is being mined: a view that subtracts a stored timestamp from
    `block.timestamp` then panics with an underflow (reproduced with a one-line contract: about
    one call in 2,000 under constant mining). That panic, and only that, counts as "not yet";
    a real underflow persists and the poll times out.
    """

    def polled() -> Any:
        try:
            return predicate()
        except Exception as exc:  # ape's and web3's ContractLogicError share no base class
            if "0x11" in str(exc) and "ContractLogicError" in {c.__name__ for c in type(exc).__mro__}:
                return False
            raise

    return polled


ANVIL = Path(__file__).resolve().parents[1] / "node_modules" / ".bin" / "anvil"


def start_anvil(port: int, *args: str) -> subprocess.Popen:
    """A standalone Anvil on loopback (ape's own is shared by the whole session), ready to serve."""
    from web3 import Web3

    process = subprocess.Popen([str(ANVIL), "--port", str(port), "--silent", *args])
    w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}"))
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not w3.is_connected():
        time.sleep(0.1)
    return process
