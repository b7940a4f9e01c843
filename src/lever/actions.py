"""The library of actions behind the `lever` command line, the demo and the scripts: each takes a
`Session`, does one thing, and returns a typed result. Errors are `LeverError`s (one line each).

Transactions go through `lever.app.send` (ape, with reverts decoded into words); reads through
`lever.chain.ProtocolReader`; every formula through `lever.math`. The keeper is the only other
sender (its own runner, for bots).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from lever import app
from lever import math as m
from lever.chain import Addresses, ProtocolReader
from lever.deploy import Protocol, create_account
from lever.deployments import Deployment
from lever.errors import ConfigError, LeverError
from lever.hermes import HermesClient, PriceServiceError
from lever.keeper.settings import DEFAULT_PRICE_SERVICE
from lever.math.orders import Kind, Order
from lever.units import from_scaled, from_wad, to_scaled, to_wad

WAD = m.WAD


@dataclass
class Session:
    """A connected client: the chain, the recorded deployment, the signer, the price service."""

    provider: Any
    protocol: Protocol
    deployment: Deployment
    signer: Any
    decimals: int
    reader: ProtocolReader
    prices_url: str

    @property
    def prices(self) -> HermesClient:
        return HermesClient(self.prices_url)

    def send(self, action: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return app.send(action, fn, *args, sender=self.signer, decimals=self.decimals, **kwargs)

    def tokens(self, amount: int) -> Decimal:
        return from_scaled(amount, self.decimals)


@contextlib.contextmanager
def session(network: str, account: str | None, price_service: str | None = None) -> Iterator[Session]:
    """Connected, with the recorded deployment and the signer: what every signing command needs."""
    with app.connected(network) as provider:
        protocol, deployment = app.protocol_from_record(provider)
        signer = app.signer(account, provider)
        reader = ProtocolReader(provider.web3, Addresses.from_deployment(deployment))
        yield Session(provider, protocol, deployment, signer, int(protocol.token.decimals()), reader,
                      price_service or DEFAULT_PRICE_SERVICE)


def scaled(value: Decimal, decimals: int, what: str) -> int:
    """A human amount in integer units, or one clear error."""
    try:
        return to_scaled(value, decimals)
    except ValueError as exc:
        raise ConfigError(f"bad {what}: {exc}") from None


# --------------------------------------------------------------------------- token and prices


def mint(s: Session, amount: Decimal, to: str | None = None) -> str:
    """Mints the mock collateral (local chains); returns the recipient."""
    if not app.is_local(s.provider):
        raise ConfigError("minting is for the mock token on local chains")
    recipient = to or s.signer.address
    s.send("minting", s.protocol.token.mint, recipient, scaled(amount, s.decimals, "amount"))
    return str(recipient)


@dataclass(frozen=True)
class PriceSet:
    market: str
    usd: Decimal
    reference_answer: int
    publish_time: int | None  # on the price service; None if it was not reachable


def set_price(s: Session, market: str, usd: Decimal) -> PriceSet:
    """Moves a local market's price: a new round on its reference feed (Chainlink's shape) and a
    publication on the price service (`lever price serve`), which keepers read like Hermes."""
    app.market_id(s.protocol, market)
    if usd <= 0:
        raise ConfigError("the price must be above zero")
    feed = s.protocol.feeds[market]
    answer = scaled(usd, int(feed.decimals()), "price")
    s.send(f"setting {market}", feed.setPrice, answer)
    try:
        response = httpx.post(f"{s.prices_url}/lever/prices", json={"market": market, "price": str(usd)}, timeout=5)
        publish_time = int(response.json()["publish_time"]) if response.status_code == 200 else None
    except httpx.HTTPError:
        publish_time = None
    return PriceSet(market, usd, answer, publish_time)


# --------------------------------------------------------------------------- accounts and margin


def accounts_of(s: Session, owner: str) -> list[int]:
    return app.accounts_of(s.protocol, owner)


def account_for(s: Session, account_id: int | None, create: bool = True) -> tuple[int, bool]:
    """The signer's account: the one given (checked), else its first; created if it has none and
    `create`. Returns (id, created)."""
    engine = s.protocol.engine
    if account_id is not None:
        if account_id < 1 or account_id > int(engine.accountCount()):
            raise ConfigError(f"account {account_id} does not exist")
        owner = str(engine.accountOwner(account_id))
        if owner.lower() != s.signer.address.lower():
            raise ConfigError(f"account {account_id} belongs to {owner}, not to {s.signer.address}")
        return account_id, False
    owned = accounts_of(s, s.signer.address)
    if owned:
        return owned[0], False
    if not create:
        raise ConfigError(f"{s.signer.address} has no Lever account")
    return int(app.send("creating an account", create_account, engine, s.signer)), True


def _check_balance(s: Session, amount: int) -> None:
    balance = int(s.protocol.token.balanceOf(s.signer.address))
    if balance < amount:
        raise ConfigError(
            f"{s.signer.address} holds {s.tokens(balance):,f} {s.protocol.token.symbol()}, needs "
            f"{s.tokens(amount):,f} (on a local chain: `lever token mint`)"
        )


def _approve(s: Session, amount: int) -> None:
    _check_balance(s, amount)
    if int(s.protocol.token.allowance(s.signer.address, s.protocol.vault.address)) < amount:
        s.send("approving the vault", s.protocol.token.approve, s.protocol.vault, amount)


def deposit_margin(s: Session, account_id: int, amount: int) -> None:
    _approve(s, amount)
    s.send("depositing margin", s.protocol.vault.depositMargin, account_id, amount)


def withdraw_margin(s: Session, account_id: int, amount: int, to: str | None = None) -> None:
    s.send("withdrawing", s.protocol.vault.withdrawMargin, account_id, amount, to or s.signer.address)


# --------------------------------------------------------------------------- positions


@dataclass(frozen=True)
class PositionSummary:
    account_id: int
    market: str
    size: Decimal  # base units; negative: short
    entry_price: Decimal
    value: Decimal  # what closing is worth now: PnL - charges (USD)
    equity: Decimal  # the account's
    health: Decimal | None  # equity / maintenance margin; < 1 is liquidatable
    liquidation_price: Decimal | None


def position_summary(s: Session, account_id: int, market: str) -> PositionSummary | None:
    """The position's figures at the stored latest prices, from the mirror."""
    r = s.reader
    mk = app.market_id(s.protocol, market)
    record = r.account(account_id)
    if mk not in record.positions:
        return None
    _, now = r.head()
    cov = r.ledgers().coverage(r.token_scale())
    views = {i: r.market(i).view(now, cov.pool) for i in record.positions}
    legs = [(record.positions[i], views[i]) for i in sorted(record.positions)]
    state = m.account_state(record.margin_token, r.token_scale(), legs, cov)
    pos = record.positions[mk]
    f = m.figures(pos, views[mk], cov)
    liq = m.liquidation_price(record.margin_token, r.token_scale(), legs, mk, cov)
    return PositionSummary(
        account_id, market, from_wad(pos.size), Decimal(abs(pos.cost)) / Decimal(abs(pos.size)),
        from_wad(f.value), from_wad(state.equity),
        (Decimal(state.equity) / Decimal(state.maintenance_margin)) if state.maintenance_margin else None,
        from_wad(liq) if liq else None,
    )


# --------------------------------------------------------------------------- orders


@dataclass(frozen=True)
class Committed:
    order_id: int
    account_id: int
    market: str
    size: Decimal
    due_time: int  # the earliest publish time of its price
    expiry: int
    deposited: int  # margin deposited first (token units)


@dataclass(frozen=True)
class Fill:
    order_id: int
    status: str  # filled, cancelled, pending
    fill_price: Decimal | None = None
    fee: Decimal | None = None
    reason: str | None = None


def margin_for_leverage(s: Session, market: str, size_wad: int, leverage: Decimal, executor_fee: int) -> int:
    """Margin (token units, rounded up) for `size` at `leverage`: notional / leverage, plus the
    opening fee at the taker rate and the executor fee. Priced at the latest pull price."""
    mk = app.market_id(s.protocol, market)
    snap = s.reader.market(mk)
    price = latest_price(s, market) or snap.oracle_state.latest_price
    if not price:
        raise LeverError(f"no price for {market} yet: is the price service running?")
    notional = m.perp.notional(size_wad, price)
    need = m.fixed.mul_div_up(notional, WAD, to_wad(leverage)) + m.perp.fee(notional, snap.params.taker_fee)
    return m.fixed.to_token_up(need, s.reader.token_scale()) + executor_fee


def latest_price(s: Session, market: str) -> int | None:
    """The price service's latest price for `market` (WAD), or None if it cannot be reached."""
    pid = s.protocol.price_ids[market]
    try:
        u = s.prices.latest([pid]).get(pid)
    except PriceServiceError:
        return None
    return None if u is None else u.price * 10 ** (18 + u.expo)


def commit(
    s: Session,
    market: str,
    size_delta: Decimal,
    account_id: int | None = None,
    acceptable: Decimal | None = None,
    executor_fee: Decimal = Decimal("0.5"),
    deposit: int = 0,
) -> Committed:
    """Commits a market order (depositing `deposit` margin first); the price is the first one
    published `settlementDelay` after the commit."""
    mk = app.market_id(s.protocol, market)
    size = scaled(size_delta, 18, "size")
    if size == 0:
        raise ConfigError("the size must not be zero")
    fee = scaled(executor_fee, s.decimals, "executor fee")
    if deposit:
        _check_balance(s, deposit)
    account, _ = account_for(s, account_id)
    if deposit:
        deposit_margin(s, account, deposit)
    limit = scaled(acceptable, 18, "acceptable price") if acceptable is not None else 0
    try:
        receipt = s.send(f"committing {market}", s.protocol.order_book.commitOrder, account, mk, size, limit, fee)
    except LeverError as exc:
        kept = f" (the margin deposited stays in account {account}: `lever margin withdraw`)" if deposit else ""
        raise LeverError(f"{exc}{kept}") from None
    placed = receipt.events.filter(s.protocol.order_book.OrderPlaced)[0]
    delay, window, _, _ = s.reader.order_settings()
    t = int(receipt.timestamp)
    return Committed(int(placed.orderId), account, market, size_delta, t + delay, t + delay + window, deposit)


def close(s: Session, market: str, account_id: int | None = None, acceptable: Decimal | None = None,
          executor_fee: Decimal = Decimal("0.5")) -> Committed:
    """Commits a market order that closes the whole position."""
    account, _ = account_for(s, account_id, create=False)
    pos = s.reader.account(account).positions.get(app.market_id(s.protocol, market))
    if pos is None:
        raise ConfigError(f"account {account} has no position in {market}")
    return commit(s, market, -from_wad(pos.size), account, acceptable, executor_fee)


def settle_order(s: Session, order_id: int, timeout: float = 60.0) -> Fill:
    """Settles a market order oneself: waits until its price is published and on the chain's
    clock, fetches it from the price service, and sends the settlement."""
    order = _order(s, order_id)
    delay = s.reader.order_settings()[0]
    due = m.orders.earliest_publish_time(order, delay)
    pid = s.protocol.price_ids[_market_name(s, order.market_id)]
    deadline = time.monotonic() + timeout
    while True:
        _, now = s.reader.head()
        update = s.prices.at_or_after(due, [pid]).get(pid)
        if update is not None and update.publish_time <= now:
            break
        if time.monotonic() > deadline:
            raise LeverError(f"order {order_id}: no price published at or after {due} on the chain's clock yet")
        time.sleep(0.5)
        if app.is_local(s.provider):
            s.provider.web3.provider.make_request("evm_mine", [])  # let the local chain's clock move
    fee = s.reader.update_fee()
    receipt = s.send(f"settling order {order_id}", s.protocol.order_book.settleOrders, [order_id], [update.blob], [],
                     value=fee)
    return _fill_from(s, order_id, receipt)


def wait_for_order(s: Session, order_id: int, timeout: float = 60.0) -> Fill:
    """Waits for a keeper to settle (or cancel) an order."""
    deadline = time.monotonic() + timeout
    start = int(s.provider.chain_manager.blocks.head.number) if hasattr(s.provider, "chain_manager") else 0
    while time.monotonic() < deadline:
        found = _order_outcome(s, order_id, start)
        if found is not None:
            return found
        time.sleep(0.5)
    return Fill(order_id, "pending")


def _order_outcome(s: Session, order_id: int, from_block: int) -> Fill | None:
    book = s.reader.order_book
    head = int(s.reader.w3.eth.block_number)
    for log in book.events.OrderSettled().get_logs(from_block=from_block, to_block=head,
                                                   argument_filters={"orderId": order_id}):
        a = log["args"]
        return Fill(order_id, "filled", from_wad(int(a["fillPriceWad"])), None)
    for log in book.events.OrderCancelled().get_logs(from_block=from_block, to_block=head,
                                                     argument_filters={"orderId": order_id}):
        from lever.revert import artifacts

        reason = artifacts().errors.get(bytes(log["args"]["reason"]))
        return Fill(order_id, "cancelled", reason=reason.name if reason else "unknown")
    return None


def _fill_from(s: Session, order_id: int, receipt: Any) -> Fill:
    book = s.protocol.order_book
    for ev in receipt.events.filter(book.OrderSettled):
        if int(ev.orderId) == order_id:
            return Fill(order_id, "filled", from_wad(int(ev.fillPriceWad)))
    for ev in receipt.events.filter(book.OrderCancelled):
        if int(ev.orderId) == order_id:
            from lever.artifacts import artifacts

            shape = artifacts().errors.get(bytes(ev.reason))
            return Fill(order_id, "cancelled", reason=shape.name if shape else "unknown")
    return Fill(order_id, "pending")


def _order(s: Session, order_id: int) -> Order:
    account, _ = m.orders.split(order_id)
    order = s.reader.orders_of(account).get(order_id)
    if order is None:
        raise ConfigError(f"no pending order {order_id}")
    return order


def _market_name(s: Session, market_id: int) -> str:
    return {v: k for k, v in s.protocol.markets.items()}[market_id]


KINDS = {"limit": Kind.LIMIT, "stop": Kind.STOP_LOSS, "take-profit": Kind.TAKE_PROFIT}


def place_conditional(
    s: Session,
    kind: str,
    market: str,
    size_delta: Decimal | None,
    trigger: Decimal,
    account_id: int | None = None,
    acceptable: Decimal | None = None,
    executor_fee: Decimal = Decimal("0.5"),
) -> int:
    """Places a limit, stop-loss or take-profit order; a stop or take-profit without a size
    closes the whole position. Returns the order id."""
    mk = app.market_id(s.protocol, market)
    account, _ = account_for(s, account_id, create=kind == "limit")
    if size_delta is None:
        pos = s.reader.account(account).positions.get(mk)
        if pos is None:
            raise ConfigError(f"account {account} has no position in {market} to protect")
        size = -pos.size
    else:
        size = scaled(size_delta, 18, "size")
    receipt = s.send(
        f"placing a {kind} order", s.protocol.order_book.placeOrder, account, mk, int(KINDS[kind]), size,
        scaled(trigger, 18, "trigger price"), scaled(acceptable, 18, "acceptable price") if acceptable else 0,
        scaled(executor_fee, s.decimals, "executor fee"),
    )
    return int(receipt.events.filter(s.protocol.order_book.OrderPlaced)[0].orderId)


def cancel_order(s: Session, order_id: int) -> None:
    s.send(f"cancelling order {order_id}", s.protocol.order_book.cancelOrder, order_id)


def list_orders(s: Session, account_id: int | None = None) -> list[Order]:
    accounts = [account_id] if account_id is not None else accounts_of(s, s.signer.address)
    out: list[Order] = []
    for account in accounts:
        out += list(s.reader.orders_of(account).values())
    return out


# --------------------------------------------------------------------------- liquidity pool


@dataclass(frozen=True)
class LpRequest:
    controller: str
    deposit: bool
    amount: int  # assets (deposit) or shares (redeem)
    due_time: int


def lp_request(s: Session, deposit: bool, amount: int) -> LpRequest:
    """Requests a deposit of `amount` assets, or a redemption of `amount` shares (ERC-7540);
    the executor fee is paid in tokens with it."""
    v = s.protocol.vault
    if amount == 0:
        raise ConfigError("the amount is zero")
    fee = int(v.lpParams().executorFee)
    _approve(s, amount + fee if deposit else fee)
    me = s.signer.address
    if deposit:
        receipt = s.send("requesting a deposit", v.requestDeposit, amount, me, me)
    else:
        held = int(v.balanceOf(me))
        if held < amount:
            raise ConfigError(f"{me} holds {from_scaled(held, s.decimals + 6):,f} lvLP, fewer than requested")
        receipt = s.send("requesting a redemption", v.requestRedeem, amount, me, me)
    delay, _, grace, _ = s.reader.lp_params()
    return LpRequest(me, deposit, amount, int(receipt.timestamp) + delay + grace)


def lp_settle(s: Session, deposit: bool, timeout: float = 60.0) -> None:
    """Settles one's own pending LP request (what a keeper would do): waits for its prices and
    the liquidation grace, then sends them."""
    me = s.signer.address
    amount, t, _ = s.reader.pending_lp(me, deposit)
    if amount == 0:
        raise ConfigError(f"{me} has no pending {'deposit' if deposit else 'redemption'}")
    delay, _, grace, _ = s.reader.lp_params()
    markets = s.reader.open_markets()
    ids = s.reader.addresses.price_ids
    deadline = time.monotonic() + timeout
    while True:
        _, now = s.reader.head()
        found = s.prices.at_or_after(t + delay, [ids[mk] for mk in markets]) if markets else {}
        ready = now >= t + delay + grace and all(
            ids[mk] in found and found[ids[mk]].publish_time + grace <= now for mk in markets
        )
        if ready:
            break
        if time.monotonic() > deadline:
            raise LeverError("the request's prices and grace have not passed yet")
        time.sleep(0.5)
        if app.is_local(s.provider):
            s.provider.web3.provider.make_request("evm_mine", [])
    updates = [(mk, found[ids[mk]].blob) for mk in markets]
    fn = s.protocol.vault.settleDeposit if deposit else s.protocol.vault.settleRedeem
    s.send("settling the request", fn, me, updates, value=s.reader.update_fee() * len(updates))


def lp_wait(s: Session, deposit: bool, timeout: float = 60.0) -> bool:
    """Waits until a keeper settled one's pending request; True once nothing is pending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if s.reader.pending_lp(s.signer.address, deposit)[0] == 0:
            return True
        time.sleep(0.5)
    return False


@dataclass(frozen=True)
class LpClaim:
    assets: int
    shares: int


def lp_claim(s: Session, deposit: bool) -> LpClaim:
    """Claims everything claimable: shares of a settled deposit, or assets of a redemption."""
    v, me = s.protocol.vault, s.signer.address
    if deposit:
        assets = int(v.maxDeposit(me))
        if assets == 0:
            raise ConfigError("nothing to claim: no settled deposit")
        shares = int(v.maxMint(me))
        s.send("claiming shares", v.deposit, assets, me)
        return LpClaim(assets, shares)
    shares = int(v.maxRedeem(me))
    if shares == 0:
        raise ConfigError("nothing to claim: no settled redemption (was it cancelled by the reserve?)")
    assets = int(v.maxWithdraw(me))
    s.send("claiming assets", v.redeem, shares, me, me)
    return LpClaim(assets, shares)
