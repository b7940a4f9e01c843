"""The tests' driver: prices on both oracles, time, and the two-step flows (commit, then settle at
the price published after the delay), through ape on whichever chain the suite runs."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from lever import math as m
from lever.chain import Addresses, ProtocolReader
from lever.config import NetworkConfig
from lever.deploy import Protocol, create_account
from lever.pyth import PriceBook
from lever.units import to_scaled, to_wad

USDC = 10**6


def usdc(amount: str | int | Decimal) -> int:
    return to_scaled(str(amount), 6)


def wad(amount: str | int | Decimal) -> int:
    return to_wad(str(amount))


@dataclass
class Harness:
    p: Protocol
    chain: Any
    keeper: Any
    config: NetworkConfig
    book: PriceBook = field(init=False)
    prices: dict[str, Decimal] = field(init=False)

    def __post_init__(self) -> None:
        self.book = PriceBook.for_markets(self.p.price_ids)
        self.prices = {name: m.initial_price for name, m in self.config.markets.items()}
        self.delay = self.config.orders.settlement_delay
        self.lp_delay = self.config.lp.settlement_delay
        self.lp_grace = self.config.lp.liquidation_grace
        self.window = self.config.orders.settlement_window
        p = self.p
        self.reader = ProtocolReader(
            self.chain.provider.web3,
            Addresses(
                token=p.token.address,
                oracle=p.oracle.address,
                vault=p.vault.address,
                engine=p.engine.address,
                order_book=p.order_book.address,
                liquidator=p.liquidator.address,
                timelock=p.timelock.address,
                pyth=p.pyth.address,
                markets=dict(p.markets),
                feeds={mk: p.feeds[name].address for name, mk in p.markets.items()},
                price_ids={mk: p.price_ids[name] for name, mk in p.markets.items()},
            ),
        )

    def snapshot(self) -> tuple[PriceBook, dict[str, Decimal]]:
        return copy.deepcopy(self.book), dict(self.prices)

    def restore(self, saved: tuple[PriceBook, dict[str, Decimal]]) -> None:
        self.book, self.prices = copy.deepcopy(saved[0]), dict(saved[1])

    # ------------------------------------------------------------------ the mirror's view of the chain

    def coverage(self) -> m.Coverage:
        return self.reader.ledgers().coverage(self.reader.token_scale())

    def views(self, now: int | None = None) -> dict[int, m.MarketView]:
        """Every market at its stored latest price, as a transaction at `now` (default: the next
        block at the head's time) would see it."""
        t = self.now() if now is None else now
        pool = self.coverage().pool
        return {mk: self.reader.market(mk).view(t, pool) for mk in self.p.markets.values()}

    def account_state(self, account: int, now: int | None = None) -> m.AccountState:
        record = self.reader.account(account)
        views = self.views(now)
        legs = [(record.positions[mk], views[mk]) for mk in sorted(record.positions)]
        return m.account_state(record.margin_token, self.reader.token_scale(), legs, self.coverage())

    def position(self, account: int, market: str) -> m.Position:
        return m.Position.from_chain(self.p.engine.position(account, self.p.markets[market]))

    def margin(self, account: int) -> int:
        return int(self.p.vault.marginOf(account))

    # ------------------------------------------------------------------ time and prices

    def now(self) -> int:
        return int(self.chain.blocks.head.timestamp)

    def advance(self, seconds: int) -> int:
        """Mines a block `seconds` after the head; returns its timestamp. After a long wait the
        reference feeds post a heartbeat round (as Chainlink's do), at their current prices."""
        target = self.now() + seconds
        self.chain.mine(timestamp=target)
        if seconds >= 600:
            self.heartbeat()
        return self.now()

    def heartbeat(self) -> None:
        """A new reference round at each market's current price."""
        for market, usd in self.prices.items():
            feed = self.p.feeds[market]
            feed.setPrice(to_scaled(str(usd), int(feed.decimals())), sender=self.p.deployer)

    def fresh_time(self) -> int:
        """Now, or, if a price was already published this second, the next second (the chain moves
        to it): two different prices of a market never share a publish time."""
        t = self.now()
        last = max((f.latest().publish_time for f in self.book.feeds.values() if f.latest()), default=0)
        if last >= t:
            t = last + 1
            self.chain.mine(timestamp=t)
        return t

    def publish_all(self, at: int | None = None) -> None:
        """Publishes every market's current price on the pull oracle at `at` (default: a fresh second)."""
        t = self.fresh_time() if at is None else at
        for name, usd in self.prices.items():
            self.book.publish(name, usd, t)

    def set_price(self, market: str, usd: str | int | Decimal, reference: bool = True) -> None:
        """Moves a market's price: a new reference round (unless `reference` is False) and a pull
        price published at the same moment."""
        self.prices[market] = Decimal(str(usd))
        if reference:
            feed = self.p.feeds[market]
            feed.setPrice(to_scaled(str(usd), int(feed.decimals())), sender=self.p.deployer)
        self.book.publish(market, usd, self.fresh_time())

    def fee(self, blobs: int) -> int:
        return int(self.p.oracle.updateFee()) * blobs

    def latest_updates(self, markets: list[str] | None = None) -> list[tuple[int, bytes]]:
        """Every market's latest publication, as `PriceUpdate` tuples."""
        names = markets or list(self.p.markets)
        out = []
        for name in names:
            blob = self.book.feeds[name].latest_update()
            if blob is not None:
                out.append((self.p.markets[name], blob))
        return out

    def refresh(self, markets: list[str] | None = None) -> Any:
        """Publishes current prices now and stores them on chain (`updatePrices`)."""
        self.publish_all()
        updates = self.latest_updates(markets)
        return self.p.oracle.updatePrices(updates, sender=self.keeper, value=self.fee(len(updates)))

    # ------------------------------------------------------------------ accounts and orders

    def open_account(self, owner: Any, margin: str | int = 10_000) -> int:
        account = create_account(self.p.engine, owner)
        amount = usdc(margin)
        if amount:
            self.p.token.mint(owner, amount, sender=owner)
            self._allow(owner, amount)
            self.p.vault.depositMargin(account, amount, sender=owner)
        return account

    def commit(
        self,
        owner: Any,
        account: int,
        market: str,
        size: str | int | Decimal,
        acceptable: int = 0,
        executor_fee: str = "1",
    ) -> tuple[int, int]:
        """Commits a market order; returns (order id, commit time). A fee the margin cannot cover
        comes from the owner's wallet (minted here)."""
        fee = usdc(executor_fee)
        if self.margin(account) < fee:
            self.p.token.mint(owner, fee, sender=owner)
            self._allow(owner, fee)
        receipt = self.p.order_book.commitOrder(
            account, self.p.markets[market], wad(size), acceptable, usdc(executor_fee), sender=owner
        )
        placed = receipt.events.filter(self.p.order_book.OrderPlaced)[0]
        return int(placed.orderId), int(receipt.timestamp)

    def settle(self, order_ids: list[int], markets: list[str], commit_time: int, sender: Any = None) -> Any:
        """Publishes each market's current price exactly at commit + delay (the earliest eligible
        price), moves the chain past it, and settles."""
        due = commit_time + self.delay
        for name in set(markets):
            self.book.publish(name, self.prices[name], due)
        if self.now() < due:
            self.chain.mine(timestamp=due)
        blobs = [self.book.feeds[name].update_at_or_after(due) for name in markets]
        return self.p.order_book.settleOrders(
            order_ids, blobs, [], sender=sender or self.keeper, value=self.fee(len(blobs))
        )

    def trigger(self, order_ids: list[int], markets: list[str] | None = None, sender: Any = None) -> Any:
        """Stores the markets' latest publications and settles conditional orders: those whose
        trigger the stored price meets are triggered (`OrderTriggered`; they fill later, as market
        orders committed at this receipt's timestamp)."""
        updates = self.latest_updates(markets)
        return self.p.order_book.settleOrders(
            order_ids, [b""] * len(order_ids), updates, sender=sender or self.keeper, value=self.fee(len(updates))
        )

    def trade(self, owner: Any, account: int, market: str, size: str | int | Decimal, acceptable: int = 0) -> Any:
        """Commit and settle one market order; returns the settlement receipt."""
        order_id, t = self.commit(owner, account, market, size, acceptable)
        return self.settle([order_id], [market], t)

    def close(self, owner: Any, account: int, market: str) -> Any:
        """Closes the position (if any) with a market order; returns the settlement receipt."""
        size = int(self.p.engine.position(account, self.p.markets[market]).sizeWad)
        if size == 0:
            return None
        return self.trade(owner, account, market, Decimal(-size) / Decimal(10**18))

    # ------------------------------------------------------------------ liquidity providers

    def _allow(self, who: Any, amount: int) -> None:
        if int(self.p.token.allowance(who, self.p.vault)) < amount:
            self.p.token.approve(self.p.vault, 2**256 - 1, sender=who)

    def open_market_updates(self, due: int) -> list[tuple[int, bytes]]:
        """For each market with open interest: its price published at `due`."""
        mask = int(self.p.engine.openMarketsMask())
        out = []
        for name, market in self.p.markets.items():
            if mask & (1 << market):
                self.book.publish(name, self.prices[name], due)
                out.append((market, self.book.feeds[name].update_at_or_after(due)))
        return out

    def _settle_lp(self, fn: Any, controller: Any, request_time: int) -> Any:
        due = request_time + self.lp_delay
        updates = self.open_market_updates(due)
        ready = due + self.lp_grace
        if self.now() < ready:
            self.chain.mine(timestamp=ready)
        return fn(controller, updates, sender=self.keeper, value=self.fee(len(updates)))

    def lp_deposit(self, who: Any, assets: int) -> int:
        """requestDeposit, settle, claim: returns the shares received."""
        fee = int(self.p.vault.lpParams().executorFee)
        self.p.token.mint(who, assets + fee, sender=who)
        self._allow(who, assets + fee)
        receipt = self.p.vault.requestDeposit(assets, who, who, sender=who)
        self._settle_lp(self.p.vault.settleDeposit, who, int(receipt.timestamp))
        before = int(self.p.vault.balanceOf(who))
        self.p.vault.deposit(assets, who, sender=who)
        return int(self.p.vault.balanceOf(who)) - before

    def lp_redeem(self, who: Any, shares: int) -> int:
        """requestRedeem, settle, claim: returns the assets received (0 if cancelled)."""
        fee = int(self.p.vault.lpParams().executorFee)
        self.p.token.mint(who, fee, sender=who)
        self._allow(who, fee)
        receipt = self.p.vault.requestRedeem(shares, who, who, sender=who)
        self._settle_lp(self.p.vault.settleRedeem, who, int(receipt.timestamp))
        claimable = int(self.p.vault.maxRedeem(who))
        if claimable == 0:
            return 0
        before = int(self.p.token.balanceOf(who))
        self.p.vault.redeem(claimable, who, who, sender=who)
        return int(self.p.token.balanceOf(who)) - before

    # ------------------------------------------------------------------ liquidation

    def liquidate(self, accounts: list[int], sender: Any = None) -> Any:
        """Publishes current prices a second after the head, then liquidates with them."""
        t = self.now() + 1
        self.chain.mine(timestamp=t)
        self.publish_all(at=t)
        updates = self.latest_updates()
        self.chain.pending_timestamp = t  # the same second however slow the machine: predictions hold
        return self.p.liquidator.liquidateBatch(
            accounts, updates, sender=sender or self.keeper, value=self.fee(len(updates))
        )
