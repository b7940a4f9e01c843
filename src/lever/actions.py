"""The library of actions behind the `lever` command line and the demo: each takes a `Session`,
does one thing, and returns a typed result. Errors are `LeverError`s (one line each).

Transactions go through `Session.send` (`lever.app.send`: ape, reverts decoded into the custom
error's name and meaning); reads through `lever.chain.ProtocolReader`; every figure through
`lever.math`. The keeper's runner is the only other sender (it signs for bots).

Orders are two-step: `open_trade` / `close_trade` / `commit` commit a market order (after the
mirror predicted that it would fill at the latest price: a refusal is an error before anything is
sent), then `await_fill` waits for a keeper or settles it oneself. LP requests likewise:
`lp_request`, then `lp_complete` (settle or wait, then claim).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx
from eth_utils.address import is_address, to_checksum_address

from lever import app
from lever import math as m
from lever.chain import Addresses, ProtocolReader
from lever.deploy import Protocol
from lever.deployments import Deployment
from lever.errors import ConfigError, InsufficientFunds, LeverError, Refusal
from lever.hermes import HermesClient, PriceServiceError
from lever.keeper.settings import DEFAULT_PRICE_SERVICE
from lever.math.orders import Kind, Order
from lever.revert import reason, sentence
from lever.status import health, plain
from lever.units import from_scaled, from_wad, to_scaled, to_wad

WAD = m.WAD
DEFAULT_EXECUTOR_FEE = Decimal("0.5")  # USD (token units) to whoever settles an order


@dataclass(frozen=True)
class Session:
    """A connected client: the chain, the recorded deployment, the signer, the price service."""

    provider: Any
    protocol: Protocol
    deployment: Deployment
    signer: Any  # an ape account (`lever.app.resolve_signer`)
    reader: ProtocolReader
    prices_url: str
    decimals: int

    @cached_property
    def prices(self) -> HermesClient:
        return HermesClient(self.prices_url)

    @property
    def local(self) -> bool:
        return app.is_local(self.provider)

    @property
    def me(self) -> str:
        return str(self.signer.address)

    def send(self, action: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return app.send(action, fn, *args, sender=self.signer, decimals=self.decimals, **kwargs)

    def tokens(self, amount: int) -> Decimal:
        """Token units as a human amount."""
        return from_scaled(amount, self.decimals)

    def units(self, amount: Decimal, what: str = "amount") -> int:
        """A human amount in token units, or one clear error."""
        return scaled(amount, self.decimals, what)

    def shares(self, amount: int) -> Decimal:
        """lvLP share units as a human amount (the vault's decimals: the token's + 6)."""
        return from_scaled(amount, self.decimals + 6)

    def as_signer(self, signer: Any) -> Session:
        """The same session, signing as `signer`."""
        return replace(self, signer=signer)


def attach(provider: Any, signer: Any, prices_url: str | None = None, record: Path | None = None) -> Session:
    """A session on a connected provider with the deployment recorded for its chain (or `record`)."""
    protocol, deployment = app.protocol_from_record(provider, record)
    reader = ProtocolReader(provider.web3, Addresses.from_deployment(deployment))
    return Session(
        provider,
        protocol,
        deployment,
        signer,
        reader,
        prices_url or DEFAULT_PRICE_SERVICE,
        int(protocol.token.decimals()),
    )


@contextlib.contextmanager
def session(network: str, account: str | None, price_service: str | None = None) -> Iterator[Session]:
    """Connected, with the recorded deployment and the signer: what every signing command needs."""
    with app.connected(network) as provider:
        yield attach(provider, app.signer(account, provider), price_service)


def scaled(value: Decimal, decimals: int, what: str) -> int:
    """A human amount in integer units, or one clear error."""
    try:
        return to_scaled(value, decimals)
    except ValueError as exc:
        raise ConfigError(f"bad {what}: {exc}") from None


def _human(wad: int) -> Decimal:
    """A WAD amount as a human number without trailing zeros (`2`, not `2.000000000000000000`)."""
    return plain(from_wad(wad))


def checked_address(value: str, what: str = "address") -> str:
    """A checksummed address, or one clear error."""
    if not is_address(value):
        raise ConfigError(f"bad {what} {value!r}: not an address (0x and 40 hex digits)")
    return str(to_checksum_address(value))


# --------------------------------------------------------------------------- token and prices


@dataclass(frozen=True)
class Minted:
    recipient: str
    amount: Decimal
    symbol: str


def mint(s: Session, amount: Decimal, to: str | None = None) -> Minted:
    """Mints the mock collateral (local chains only)."""
    if not s.local:
        raise ConfigError("minting is for the mock token on local chains")
    recipient = checked_address(to, "recipient") if to else s.me
    s.send("minting", s.protocol.token.mint, recipient, s.units(amount))
    return Minted(recipient, amount, str(s.protocol.token.symbol()))


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


def latest_price(s: Session, market_id: int) -> int:
    """The market's latest price (WAD): the price service's, else the one stored on chain (0: none)."""
    pid = s.reader.addresses.price_ids[market_id]
    try:
        u = s.prices.latest([pid]).get(pid)
    except PriceServiceError:
        u = None
    if u is not None:
        return m.oracle.pull_price_wad(market_id, u.price, u.conf, u.expo, WAD)
    return s.reader.market(market_id).oracle_state.latest_price


# --------------------------------------------------------------------------- accounts and margin


def create_account(s: Session) -> int:
    """A new Lever account for the signer; returns its id."""
    engine = s.protocol.engine
    receipt = s.send("creating an account", engine.createAccount)
    return int(receipt.events.filter(engine.AccountCreated)[0].accountId)


def account_for(s: Session, account_id: int | None, create: bool = True) -> tuple[int, bool]:
    """The signer's account: the one given (checked), else its first; created if it has none and
    `create`. Returns (id, created)."""
    engine = s.protocol.engine
    if account_id is not None:
        if account_id < 1 or account_id > int(engine.accountCount()):
            raise ConfigError(f"account {account_id} does not exist")
        owner = str(engine.accountOwner(account_id))
        if owner.lower() != s.me.lower():
            raise ConfigError(f"account {account_id} belongs to {owner}, not to {s.me}")
        return account_id, False
    owned = app.accounts_of(s.protocol, s.me)
    if owned:
        return owned[0], False
    if not create:
        raise ConfigError(f"{s.me} has no Lever account")
    return create_account(s), True


def _check_balance(s: Session, amount: int) -> None:
    balance = int(s.protocol.token.balanceOf(s.me))
    if balance < amount:
        hint = " (on a local chain: `lever token mint`)" if s.local else ""
        raise InsufficientFunds(
            f"{s.me} holds {s.tokens(balance):,f} {s.protocol.token.symbol()}, needs {s.tokens(amount):,f}{hint}"
        )


def _approve(s: Session, amount: int) -> None:
    """Checks the wallet holds `amount` and lets the vault take it (the vault pulls every payment)."""
    _check_balance(s, amount)
    if int(s.protocol.token.allowance(s.me, s.protocol.vault.address)) < amount:
        s.send("approving the vault", s.protocol.token.approve, s.protocol.vault, amount)


@dataclass(frozen=True)
class MarginMove:
    account_id: int
    amount: Decimal
    created: bool = False  # the account was created for this deposit


def deposit_margin(s: Session, amount: Decimal, account_id: int | None = None) -> MarginMove:
    """Deposits collateral into a Lever account (the signer's first, created if none)."""
    units = s.units(amount)
    if units == 0:
        raise ConfigError("the amount must be above zero")
    _check_balance(s, units)
    account, created = account_for(s, account_id)
    _deposit(s, account, units)
    return MarginMove(account, amount, created)


def _deposit(s: Session, account: int, units: int) -> None:
    _approve(s, units)
    s.send("depositing margin", s.protocol.vault.depositMargin, account, units)


def withdraw_margin(s: Session, amount: Decimal, account_id: int | None = None, to: str | None = None) -> MarginMove:
    """Withdraws collateral from a Lever account to the signer (or `to`)."""
    units = s.units(amount)
    if units == 0:
        raise ConfigError("the amount must be above zero")
    recipient = checked_address(to, "recipient") if to else s.me
    account, _ = account_for(s, account_id, create=False)
    s.send("withdrawing margin", s.protocol.vault.withdrawMargin, account, units, recipient)
    return MarginMove(account, amount)


# --------------------------------------------------------------------------- positions


@dataclass(frozen=True)
class PositionSummary:
    account_id: int
    market: str
    size: Decimal  # base units; negative: short
    entry_price: Decimal
    value: Decimal  # what closing is worth now: PnL - charges (USD)
    equity: Decimal  # the account's
    margin: Decimal  # the account's collateral (token units, human)
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
    liq = m.liquidation_price(record.margin_token, r.token_scale(), legs, mk, cov)
    return PositionSummary(
        account_id,
        market,
        _human(pos.size),
        Decimal(abs(pos.cost)) / Decimal(abs(pos.size)),
        from_wad(m.figures(pos, views[mk], cov).value),
        from_wad(state.equity),
        s.tokens(record.margin_token),
        health(state),
        from_wad(liq) if liq else None,
    )


# --------------------------------------------------------------------------- market orders


@dataclass(frozen=True)
class Committed:
    order_id: int
    account_id: int
    market: str
    size: Decimal
    executor_fee: Decimal
    fee_from_wallet: bool  # the margin could not cover the executor fee: the wallet paid it
    due_time: int  # the earliest publish time of its price
    expiry: int  # after it, the order can only be cancelled (its fee to the insurance fund)
    block: int
    deposited: Decimal = Decimal(0)  # margin deposited first
    created: bool = False  # the account was created for this order


def margin_for_leverage(
    size_wad: int, price_wad: int, skew_wad: int, params: m.MarketParams, leverage: Decimal, token_scale: int
) -> int:
    """Margin (token units, rounded up) that leaves `size` at `leverage` once open: notional /
    leverage, plus the opening fee at the fill and the fee of closing it again (equity counts it)."""
    if leverage <= 0:
        raise ConfigError("the leverage must be above zero")
    notional = m.perp.notional(size_wad, price_wad)
    fill = m.perp.fill_price(price_wad, skew_wad, size_wad, params.skew_scale)
    opening = m.perp.trade_fee(skew_wad, size_wad, fill, params.maker_fee, params.taker_fee)
    need = m.fixed.mul_div_up(notional, WAD, to_wad(leverage)) + opening + m.perp.fee(notional, params.taker_fee)
    return m.fixed.to_token_up(need, token_scale)


def open_trade(
    s: Session,
    market: str,
    side: str,
    size: Decimal,
    *,
    margin: Decimal | None = None,
    leverage: Decimal | None = None,
    account_id: int | None = None,
    acceptable: Decimal | None = None,
    executor_fee: Decimal = DEFAULT_EXECUTOR_FEE,
) -> Committed:
    """Commits a market order opening or increasing a `side` position of `size`, after depositing
    `margin`, or the margin for `leverage` (see `margin_for_leverage`), if given."""
    if margin is not None and leverage is not None:
        raise ConfigError("pass --margin or --leverage, not both")
    if side not in ("long", "short"):
        raise ConfigError(f"the side is long or short, not {side!r}")
    mk = app.market_id(s.protocol, market)
    size_wad = scaled(size, 18, "size")
    if size_wad <= 0:
        raise ConfigError("the size must be above zero")
    deposit = s.units(margin, "margin") if margin is not None else 0
    if leverage is not None:
        snap = s.reader.market(mk)
        price = latest_price(s, mk)
        if not price:
            raise LeverError(f"no price for {market} yet: is the price service running?")
        deposit = margin_for_leverage(size_wad, price, snap.state.skew, snap.params, leverage, s.reader.token_scale())
        deposit += s.units(executor_fee, "executor fee")  # escrowed from the margin at the commit
    signed = size if side == "long" else -size
    return commit(s, market, signed, account_id, acceptable, executor_fee, deposit)


def close_trade(
    s: Session,
    market: str,
    account_id: int | None = None,
    acceptable: Decimal | None = None,
    executor_fee: Decimal = DEFAULT_EXECUTOR_FEE,
) -> Committed:
    """Commits a market order that closes the whole position in `market`."""
    account, _ = account_for(s, account_id, create=False)
    pos = s.reader.account(account).positions.get(app.market_id(s.protocol, market))
    if pos is None:
        raise ConfigError(f"account {account} has no position in {market}")
    return commit(s, market, -_human(pos.size), account, acceptable, executor_fee)


def commit(
    s: Session,
    market: str,
    size_delta: Decimal,
    account_id: int | None = None,
    acceptable: Decimal | None = None,
    executor_fee: Decimal = DEFAULT_EXECUTOR_FEE,
    deposit: int = 0,
) -> Committed:
    """Commits a market order, depositing `deposit` (token units) first. Before anything is sent:
    the wallet must hold the deposit (and the executor fee if the margin cannot cover it), and the
    mirror must predict a fill at the latest price. The price is the first one published
    `settlementDelay` after the commit."""
    mk = app.market_id(s.protocol, market)
    size = scaled(size_delta, 18, "size")
    if size == 0:
        raise ConfigError("the size must not be zero")
    fee = _executor_fee(s, f"committing {market}", executor_fee)
    acceptable_wad = scaled(acceptable, 18, "acceptable price") if acceptable is not None else 0
    owned = account_id is not None or bool(app.accounts_of(s.protocol, s.me))
    account, created = account_for(s, account_id, create=False) if owned else (0, True)
    margin = int(s.protocol.vault.marginOf(account)) + deposit if account else deposit
    from_wallet = margin < fee
    _check_balance(s, deposit + (fee if from_wallet else 0))
    _preflight(s, market, account, mk, size, acceptable_wad, margin - (0 if from_wallet else fee))
    if created:
        account = create_account(s)
    if deposit:
        _deposit(s, account, deposit)
    if from_wallet:
        _approve(s, fee)  # the order book escrows the fee from the wallet when the margin cannot
    try:
        receipt = s.send(
            f"committing {market}", s.protocol.order_book.commitOrder, account, mk, size, acceptable_wad, fee
        )
    except LeverError as exc:
        kept = f" (the margin deposited stays in account {account}: `lever margin withdraw`)" if deposit else ""
        raise LeverError(f"{exc}{kept}") from None
    placed = receipt.events.filter(s.protocol.order_book.OrderPlaced)[0]
    delay, window, _, _ = s.reader.order_settings()
    t = int(receipt.timestamp)
    return Committed(
        int(placed.orderId),
        account,
        market,
        size_delta,
        executor_fee,
        from_wallet,
        t + delay,
        t + delay + window,
        int(receipt.block_number),
        s.tokens(deposit),
        created,
    )


def _executor_fee(s: Session, what: str, fee: Decimal) -> int:
    """The fee in token units, within the order book's bounds (checked before anything is sent:
    a deposit made first would otherwise stay behind)."""
    units = s.units(fee, "executor fee")
    _, _, low, high = s.reader.order_settings()
    if not low <= units <= high:
        args = {"fee": units, "minFee": low, "maxFee": high}
        raise Refusal(what, "ExecutorFeeOutOfBounds", sentence("ExecutorFeeOutOfBounds", args, s.decimals))
    return units


def _preflight(
    s: Session, market: str, account: int, mk: int, size: int, acceptable: int, margin: int
) -> m.TradeOutcome:
    """The engine's checks, run by the mirror at the latest price: `Refusal` if the order would
    be cancelled at settlement (its executor fee lost) rather than filled."""
    r = s.reader
    _, now = r.head()
    cov = r.ledgers().coverage(r.token_scale())
    record = r.account(account) if account else None
    positions = record.positions if record else {}
    snap = r.market(mk)
    price = latest_price(s, mk)
    if not price:
        raise LeverError(f"no price for {market} yet: is the price service running?")
    others = []
    for i, pos in sorted(positions.items()):
        if i != mk:
            o = r.market(i)
            others.append(
                (
                    pos,
                    m.market_view(
                        i,
                        o.params,
                        o.state,
                        m.oracle.worst_for(pos.size, o.price_data(now)),
                        cov.pool,
                        now,
                        prev=o.prev,
                    ),
                )
            )
    try:
        return m.execute_trade(
            account_id=account,
            view=snap.view(now, cov.pool, price, now),
            pos=positions.get(mk, m.Position()),
            delta=size,
            acceptable=acceptable,
            reduce_only=False,
            mask=sum(1 << i for i in positions),
            margin_token=margin,
            other_legs=others,
            cov=cov,
            total_reserve=r.ledgers().total_reserve_wad,
            paused=bool(r.call(r.engine.functions.paused())),
            token_scale=r.token_scale(),
            now=now,
        )
    except m.Refused as exc:
        what = f"{market} {_human(size):+f} would not fill at the latest price (nothing was sent)"
        raise Refusal(what, exc.error, sentence(exc.error, exc.args_, s.decimals)) from None


@dataclass(frozen=True)
class Fill:
    order_id: int
    status: str  # filled, pending
    market: str | None = None
    size: Decimal | None = None  # signed, base units
    fill_price: Decimal | None = None
    trade_fee: Decimal | None = None  # taken from the margin (token units, human)
    realised: Decimal | None = None  # PnL credited to the margin (token units, human)
    executor_fee: Decimal | None = None
    settled_by: str | None = None
    position: PositionSummary | None = None  # after the fill


def await_fill(s: Session, order_id: int, settle: bool, timeout: float, committed_at: int) -> Fill:
    """Settles the order oneself (`settle`), or waits for a keeper to; the fill, or status
    `pending` when the wait ran out. A cancellation is a `Refusal` naming the reason.
    `committed_at` is the commit's block (an order id names a slot, which later orders reuse)."""
    return (
        settle_order(s, order_id, timeout, committed_at)
        if settle
        else wait_for_order(s, order_id, timeout, committed_at)
    )


def settle_order(s: Session, order_id: int, timeout: float = 60.0, committed_at: int | None = None) -> Fill:
    """Settles a pending market order (or a triggered conditional one) oneself: waits until its
    price is published and on the chain's clock, fetches it from the price service, and sends the
    settlement. If a keeper was first, its outcome (for an order committed in block
    `committed_at`, when given)."""
    order = s.reader.orders_of(m.orders.split(order_id)[0]).get(order_id)
    if order is None:
        done = None if committed_at is None else _outcome(s, order_id, committed_at)
        if done is None:
            raise ConfigError(f"no pending order {order_id}")
        return done
    if not order.as_market:
        raise ConfigError(
            f"order {order_id} is a conditional order waiting for its trigger: a keeper triggers it when the"
            " price meets it, and it can be settled a delay later"
        )
    start = int(s.reader.w3.eth.block_number) if committed_at is None else committed_at
    delay = s.reader.order_settings()[0]
    due = m.orders.earliest_publish_time(order, delay)
    pid = s.reader.addresses.price_ids[order.market_id]
    deadline = time.monotonic() + timeout
    while True:
        _, now = s.reader.head()
        update = s.prices.at_or_after(due, [pid]).get(pid)
        if update is not None and update.publish_time <= now:
            break
        if time.monotonic() > deadline:
            raise LeverError(f"order {order_id}: no price published at or after {due} on the chain's clock yet")
        if (done := _outcome(s, order_id, start)) is not None:
            return done  # a keeper was first
        _tick(s)
    try:
        receipt = s.send(
            f"settling order {order_id}",
            s.protocol.order_book.settleOrders,
            [order_id],
            [update.blob],
            [],
            value=s.reader.update_fee(),
        )
    except LeverError:
        if (done := _outcome(s, order_id, start)) is None:
            raise
        return done  # a keeper was first
    return _outcome_of(s, order_id, receipt.txn_hash) or Fill(order_id, "pending")


def wait_for_order(s: Session, order_id: int, timeout: float, committed_at: int) -> Fill:
    """Waits for a keeper to settle (or cancel) the order committed in block `committed_at`."""
    deadline = time.monotonic() + timeout
    while True:
        found = _outcome(s, order_id, committed_at)
        if found is not None:
            return found
        if time.monotonic() > deadline:
            return Fill(order_id, "pending")
        _tick(s)


def _tick(s: Session) -> None:
    """Waits a moment; on a local chain, mines a block so that the chain's clock moves with wall
    time (a development node without a block time makes blocks only for transactions: no price
    would ever be due for a keeper)."""
    time.sleep(0.5)
    if s.local:
        s.provider.web3.provider.make_request("evm_mine", [])


def _outcome(s: Session, order_id: int, from_block: int) -> Fill | None:
    """The order's fill (or a `Refusal` for its cancellation): the first settlement or
    cancellation of `order_id` from block `from_block` on."""
    book = s.reader.order_book
    head = int(s.reader.w3.eth.block_number)
    logs = [
        log
        for event in (book.events.OrderSettled, book.events.OrderCancelled)
        for log in event().get_logs(from_block=from_block, to_block=head, argument_filters={"orderId": order_id})
    ]
    if not logs:
        return None
    first = min(logs, key=lambda log: (log["blockNumber"], log["logIndex"]))
    return _outcome_of(s, order_id, first["transactionHash"])


def _outcome_of(s: Session, order_id: int, tx_hash: Any) -> Fill | None:
    """What the transaction `tx_hash` did to the order: its fill, or a `Refusal` for its cancellation."""
    from web3.logs import DISCARD

    receipt = s.reader.w3.eth.get_transaction_receipt(tx_hash)
    book, engine = s.reader.order_book, s.reader.engine
    for ev in book.events.OrderCancelled().process_receipt(receipt, errors=DISCARD):
        if int(ev["args"]["orderId"]) == order_id:
            name, meaning = reason(bytes(ev["args"]["reason"]))
            raise Refusal(f"order {order_id} was cancelled", name, meaning)
    for ev in book.events.OrderSettled().process_receipt(receipt, errors=DISCARD):
        a = ev["args"]
        if int(a["orderId"]) != order_id:
            continue
        market = s.reader.addresses.names[int(a["marketId"])]
        changed = [
            c["args"]
            for c in engine.events.PositionChanged().process_receipt(receipt, errors=DISCARD)
            if int(c["args"]["accountId"]) == int(a["accountId"]) and int(c["args"]["marketId"]) == int(a["marketId"])
        ]
        scale = s.reader.token_scale()
        fee = s.tokens(m.fixed.to_token_up(int(changed[0]["feeWad"]), scale)) if changed else None
        pnl = s.tokens(m.fixed.to_token_floor(int(changed[0]["realisedWad"]), scale)) if changed else None
        return Fill(
            order_id,
            "filled",
            market,
            _human(int(a["sizeDeltaWad"])),
            from_wad(int(a["fillPriceWad"])),
            fee,
            pnl,
            s.tokens(int(a["executorFee"])),
            str(a["keeper"]),
            position_summary(s, int(a["accountId"]), market),
        )
    return None


# --------------------------------------------------------------------------- conditional orders


KINDS = {"limit": Kind.LIMIT, "stop": Kind.STOP_LOSS, "take-profit": Kind.TAKE_PROFIT}


@dataclass(frozen=True)
class Placed:
    order_id: int
    kind: str
    market: str
    size: Decimal
    trigger: Decimal
    executor_fee: Decimal
    fee_from_wallet: bool


def place_conditional(
    s: Session,
    kind: str,
    market: str,
    trigger: Decimal,
    size: Decimal | None = None,
    account_id: int | None = None,
    acceptable: Decimal | None = None,
    executor_fee: Decimal = DEFAULT_EXECUTOR_FEE,
) -> Placed:
    """Places a limit, stop-loss or take-profit order. A limit needs a signed size (positive
    buys); a stop or take-profit without one closes the whole position."""
    if kind not in KINDS:
        raise ConfigError(f"the order kind is one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "limit" and size is None:
        raise ConfigError("a limit order needs --size (positive buys, negative sells)")
    mk = app.market_id(s.protocol, market)
    fee = _executor_fee(s, f"placing a {kind} order", executor_fee)
    account, _ = account_for(s, account_id, create=False)
    if size is None:
        pos = s.reader.account(account).positions.get(mk)
        if pos is None:
            raise ConfigError(f"account {account} has no position in {market} to protect")
        size_wad = -pos.size
    else:
        size_wad = scaled(size, 18, "size")
    from_wallet = int(s.protocol.vault.marginOf(account)) < fee
    if from_wallet:
        _approve(s, fee)  # the order book escrows the fee from the wallet when the margin cannot
    receipt = s.send(
        f"placing a {kind} order",
        s.protocol.order_book.placeOrder,
        account,
        mk,
        int(KINDS[kind]),
        size_wad,
        scaled(trigger, 18, "trigger price"),
        scaled(acceptable, 18, "acceptable price") if acceptable else 0,
        fee,
    )
    order_id = int(receipt.events.filter(s.protocol.order_book.OrderPlaced)[0].orderId)
    return Placed(order_id, kind, market, _human(size_wad), trigger, executor_fee, from_wallet)


@dataclass(frozen=True)
class OrderRow:
    order_id: int
    account_id: int
    kind: str  # market, limit, stop, take-profit
    market: str
    size: Decimal
    trigger: Decimal | None
    acceptable: Decimal | None
    executor_fee: Decimal
    placed_at: int  # its placing, last update or, triggered, its trigger
    expiry: int | None  # market and triggered orders only
    triggered: bool = False  # a conditional order that now fills as a market order


def list_orders(s: Session, account_id: int | None = None) -> list[OrderRow]:
    """The pending orders of one account, or of every account of the signer."""
    accounts = (
        [account_for(s, account_id, create=False)[0]] if account_id is not None else app.accounts_of(s.protocol, s.me)
    )
    delay, window, _, _ = s.reader.order_settings()
    names = {v: k for k, v in KINDS.items()} | {Kind.MARKET: "market"}
    rows = []
    for account in accounts:
        for o in s.reader.orders_of(account).values():
            rows.append(
                OrderRow(
                    o.order_id,
                    account,
                    names[o.kind],
                    s.reader.addresses.names[o.market_id],
                    _human(o.size_delta),
                    _human(o.trigger_price) if o.trigger_price else None,
                    _human(o.acceptable_price) if o.acceptable_price else None,
                    s.tokens(o.executor_fee),
                    o.updated_at,
                    m.orders.expiry(o, delay, window) if o.as_market else None,
                    o.triggered,
                )
            )
    return rows


@dataclass(frozen=True)
class Cancelled:
    order_id: int
    executor_fee: Decimal
    fee_to: str  # "margin" (back to the account) or "insurance fund" (an expired market order)


def cancel_order(s: Session, order_id: int) -> Cancelled:
    """Cancels a conditional order not yet triggered (its fee back to the margin), or an expired
    market or triggered order (its fee to the insurance fund)."""
    order = _order(s, order_id)
    s.send(f"cancelling order {order_id}", s.protocol.order_book.cancelOrder, order_id)
    to = "insurance fund" if order.as_market else "margin"
    return Cancelled(order_id, s.tokens(order.executor_fee), to)


def _order(s: Session, order_id: int) -> Order:
    order = s.reader.orders_of(m.orders.split(order_id)[0]).get(order_id)
    if order is None:
        raise ConfigError(f"no pending order {order_id}")
    return order


# --------------------------------------------------------------------------- liquidity pool


@dataclass(frozen=True)
class LpRequest:
    controller: str
    deposit: bool
    amount: Decimal  # assets (deposit) or lvLP shares (redeem)
    executor_fee: Decimal  # paid from the wallet with a new request, to whoever settles it
    price_from: int  # settles at prices published from this time ...
    due_time: int  # ... once this time (the liquidation grace after them) has passed
    expiry: int


def lp_request(s: Session, deposit: bool, amount: str) -> LpRequest:
    """Requests a deposit of `amount` collateral, or a redemption of `amount` lvLP shares (a
    number, or `all`), ERC-7540; the executor fee is paid in tokens with a new request."""
    v, me = s.protocol.vault, s.me
    if amount == "all" and not deposit:
        units = int(v.balanceOf(me))
        if units == 0:
            raise InsufficientFunds(f"{me} holds no lvLP shares")
    else:
        try:
            number = Decimal(amount)
        except ArithmeticError:
            raise ConfigError(f"not a number: {amount!r}") from None
        units = scaled(number, s.decimals if deposit else s.decimals + 6, "amount" if deposit else "shares")
    if units <= 0:
        raise ConfigError("the amount must be above zero")
    if not deposit and int(v.balanceOf(me)) < units:
        raise InsufficientFunds(f"{me} holds {s.shares(int(v.balanceOf(me))):,f} lvLP, fewer than requested")
    pending, _, _ = s.reader.pending_lp(me, deposit)
    fee = 0 if pending else int(v.lpParams().executorFee)
    _approve(s, units + fee if deposit else fee)
    if deposit:
        receipt = s.send("requesting a deposit", v.requestDeposit, units, me, me)
    else:
        receipt = s.send("requesting a redemption", v.requestRedeem, units, me, me)
    delay, window, grace, _ = s.reader.lp_params()
    t = int(receipt.timestamp)
    human = s.tokens(units) if deposit else plain(s.shares(units))
    return LpRequest(me, deposit, human, s.tokens(fee), t + delay, t + delay + grace, t + delay + window + grace)


def lp_settle(s: Session, deposit: bool, timeout: float = 60.0) -> None:
    """Settles one's own pending LP request (what a keeper would do): waits for its prices and
    the liquidation grace, then sends them."""
    me = s.me
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
        if s.reader.pending_lp(me, deposit)[0] == 0:
            return  # a keeper was first
        _tick(s)
    updates = [(mk, found[ids[mk]].blob) for mk in markets]
    fn = s.protocol.vault.settleDeposit if deposit else s.protocol.vault.settleRedeem
    try:
        s.send("settling the request", fn, me, updates, value=s.reader.update_fee() * len(updates))
    except LeverError:
        if s.reader.pending_lp(me, deposit)[0] != 0:
            raise  # else a keeper was first


def lp_wait(s: Session, deposit: bool, timeout: float = 60.0) -> bool:
    """Waits until a keeper settled one's pending request; True once nothing is pending."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if s.reader.pending_lp(s.me, deposit)[0] == 0:
            return True
        _tick(s)
    return False


@dataclass(frozen=True)
class LpClaim:
    deposit: bool
    assets: Decimal  # collateral paid in (deposit) or out (redemption)
    shares: Decimal  # lvLP received (deposit) or burnt (redemption)


def lp_complete(s: Session, request: LpRequest, settle: bool, timeout: float = 60.0) -> LpClaim | None:
    """Settles the request oneself (`settle`) or waits for a keeper, then claims it; None if it is
    still pending when the wait runs out. A request the vault cancelled is a `Refusal`."""
    if settle:
        lp_settle(s, request.deposit, timeout)
    elif not lp_wait(s, request.deposit, timeout):
        return None
    claim = _claim(s, request.deposit)
    if claim is None:
        _raise_cancelled(s, request.deposit)
    assert claim is not None
    return claim


def lp_claim(s: Session) -> list[LpClaim]:
    """Claims everything claimable: shares of settled deposits, assets of settled redemptions."""
    claims = [c for c in (_claim(s, True), _claim(s, False)) if c is not None]
    if not claims:
        raise ConfigError(f"{s.me} has nothing to claim (a request settles first: `lever lp deposit|redeem`)")
    return claims


def _claim(s: Session, deposit: bool) -> LpClaim | None:
    v, me = s.protocol.vault, s.me
    if deposit:
        assets, shares = int(v.maxDeposit(me)), int(v.maxMint(me))
        if assets == 0:
            return None
        s.send("claiming shares", v.deposit, assets, me)
    else:
        assets, shares = int(v.maxWithdraw(me)), int(v.maxRedeem(me))
        if shares == 0:
            return None
        s.send("claiming assets", v.redeem, shares, me, me)
    return LpClaim(deposit, s.tokens(assets), plain(s.shares(shares)))


def _raise_cancelled(s: Session, deposit: bool) -> None:
    vault = s.reader.vault
    head = int(s.reader.w3.eth.block_number)
    logs = vault.events.LpRequestCancelled().get_logs(
        from_block=s.protocol.deploy_block, to_block=head, argument_filters={"controller": s.me}
    )
    mine = [log["args"] for log in logs if bool(log["args"]["deposit"]) == deposit]
    if not mine:
        raise LeverError("nothing to claim: the request was neither settled nor cancelled")
    name, meaning = reason(bytes(mine[-1]["reason"]))
    raise Refusal(f"the {'deposit' if deposit else 'redemption'} request was cancelled", name, meaning)
