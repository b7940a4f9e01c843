"""The ghost: the whole protocol's state in Python, moved by the same actions as the chain.

Every action either changes the ghost (the transaction must succeed) or raises `Refused` with
the custom error the transaction must revert with. The arithmetic is `lever.math`'s (the one
home of every formula); what lives here is the contracts' control flow: which check comes first,
which refusal is caught (an order that cannot fill yet waits, one that never can is cancelled),
where each token goes. An action works on a clone of the state and swaps it in on success, so a
refusal leaves the ghost as the chain's revert leaves the chain.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from lever import math as m
from lever.math import constants as k
from lever.math.fixed import to_token_floor
from lever.math.oracle import OracleConfig, OracleState, PriceData, ReferenceRound
from lever.math.orders import Kind, Order
from lever.math.refusal import Refused

WAIT, READY, ORPHAN = 0, 1, 2
ZERO = "0x" + "00" * 20


@dataclass(frozen=True)
class Blob:
    """A Pyth update blob as the machine knows it: which feed, the publication, the previous
    publication's time (what proves a price is the earliest at or after a time)."""

    market: int
    publish_time: int
    price: int
    conf: int
    expo: int
    prev_publish_time: int
    data: bytes


@dataclass(frozen=True)
class Account:
    owner: str
    mask: int = 0
    last_trade_time: int = 0


@dataclass(frozen=True)
class Request:
    amount: int
    time: int
    fee: int


@dataclass(frozen=True)
class Claim:
    assets: int = 0
    shares: int = 0


@dataclass(frozen=True)
class Fill:
    """A settled order, for the economic checks: the price it used and when that was published."""

    order_id: int
    account: int
    market: int
    kind: Kind
    size_delta: int
    fill_price: int
    price: int
    publish_time: int


@dataclass
class State:
    """Everything the contracts store that the machine compares (containers hold immutable values)."""

    balances: dict[str, int]
    margin: dict[int, int]
    accounts: dict[int, Account]
    positions: dict[tuple[int, int], m.Position]
    orders: dict[tuple[int, int], Order]
    params: list[m.MarketParams]
    prev: list[m.MarketParams | None]
    markets: list[m.MarketState]
    oracle: list[OracleState]
    rounds: list[ReferenceRound]
    pending_deposit: dict[str, Request]
    pending_redeem: dict[str, Request]
    claim_deposit: dict[str, Claim]
    claim_redeem: dict[str, Claim]
    shares: dict[str, int]
    liquidation: m.LiquidationParams
    total_margin: int = 0
    pool: int = 0
    insurance: int = 0
    fees: int = 0
    order_escrow: int = 0
    lp_escrow: int = 0
    supply: int = 0
    total_reserve: int = 0
    open_mask: int = 0
    paused: bool = False
    account_count: int = 0
    bad_debt: int = 0
    bad_by_insurance: int = 0
    bad_by_pool: int = 0

    @property
    def margin_and_escrow(self) -> int:
        """The vault's stored margin ledger: every margin plus the order escrow."""
        return self.total_margin + self.order_escrow

    def pending_orders(self, account: int) -> int:
        """The vault's count of the account's orders holding an escrowed fee: all of them."""
        return sum(1 for acc, _ in self.orders if acc == account)

    def clone(self) -> State:
        return State(
            dict(self.balances),
            dict(self.margin),
            dict(self.accounts),
            dict(self.positions),
            dict(self.orders),
            list(self.params),
            list(self.prev),
            list(self.markets),
            list(self.oracle),
            list(self.rounds),
            dict(self.pending_deposit),
            dict(self.pending_redeem),
            dict(self.claim_deposit),
            dict(self.claim_redeem),
            dict(self.shares),
            self.liquidation,
            self.total_margin,
            self.pool,
            self.insurance,
            self.fees,
            self.order_escrow,
            self.lp_escrow,
            self.supply,
            self.total_reserve,
            self.open_mask,
            self.paused,
            self.account_count,
            self.bad_debt,
            self.bad_by_insurance,
            self.bad_by_pool,
        )


@dataclass
class Settings:
    """What the ghost is configured with (immutable during a run)."""

    vault: str
    token_scale: int
    fee_share: int
    oracle: list[OracleConfig]
    lp_delay: int
    lp_window: int
    lp_grace: int
    lp_fee: int
    order_delay: int
    order_window: int
    min_executor_fee: int
    max_executor_fee: int
    pyth_fee: int


@dataclass
class Ghost:
    cfg: Settings
    s: State
    now: int
    fills: list[Fill] = field(default_factory=list)  # settled orders of the last action
    redeem_refusal: str = ""  # why the last redemption settled was refused ("": it was not)
    # The last `latest` and `view` of each market, with their inputs: both are pure functions of
    # immutable values (the market's oracle state, round, parameters and state, compared by
    # identity; the price, pool and time), asked for again and again between two changes.
    _latest: dict[int, tuple[Any, ...]] = field(default_factory=dict, repr=False, compare=False)
    _views: dict[int, tuple[Any, ...]] = field(default_factory=dict, repr=False, compare=False)

    # ------------------------------------------------------------------ plumbing

    def act(self, fn: Any, *args: Any) -> Any:
        """Runs `fn(state, *args)` on a clone; swaps it in unless it raises `Refused`."""
        self.fills, self.redeem_refusal = [], ""
        s = self.s.clone()
        result = fn(s, *args)
        self.s = s
        return result

    def _move(self, s: State, frm: str, to: str, amount: int) -> None:
        """A token transfer (OpenZeppelin's ERC20: a short balance reverts)."""
        have = s.balances.get(frm, 0)
        if have < amount:
            raise Refused("ERC20InsufficientBalance", sender=frm, balance=have, needed=amount)
        s.balances[frm] = have - amount
        s.balances[to] = s.balances.get(to, 0) + amount

    def _pull(self, s: State, frm: str, amount: int) -> None:
        self._move(s, frm, self.cfg.vault, amount)

    def _pay(self, s: State, to: str, amount: int) -> None:
        self._move(s, self.cfg.vault, to, amount)

    def _move_shares(self, s: State, frm: str, to: str, amount: int) -> None:
        have = s.shares.get(frm, 0)
        if have < amount:
            raise Refused("ERC20InsufficientBalance", sender=frm, balance=have, needed=amount)
        s.shares[frm] = have - amount
        s.shares[to] = s.shares.get(to, 0) + amount

    @staticmethod
    def _markets_of(mask: int) -> list[int]:
        return [i for i in range(k.MAX_MARKETS) if mask >> i & 1]

    # ------------------------------------------------------------------ oracle

    def _record(self, s: State, market: int, strict: bool) -> tuple[int, int]:
        """`_recordReference`: (reference price or 0, its round's time)."""
        r = s.rounds[market]
        s.oracle[market], price = m.oracle.record_round(
            self.cfg.oracle[market], s.oracle[market], market, r, self.now, strict
        )
        return price, r.updated_at

    def latest(self, s: State, market: int) -> PriceData:
        state, round_, now = s.oracle[market], s.rounds[market], self.now
        hit = self._latest.get(market)
        if hit is not None and hit[0] is state and hit[1] is round_ and hit[2] == now:
            return hit[3]  # type: ignore[no-any-return]
        d = m.oracle.latest(self.cfg.oracle[market], state, round_, now)
        self._latest[market] = (state, round_, now, d)
        return d

    def latest_within(self, s: State, market: int, max_age: int) -> PriceData:
        d = self.latest(s, market)
        if d.publish_time + max_age < self.now:
            raise Refused("OracleStalePrice", marketId=market)
        return d

    def _to_wad(self, market: int, blob: Blob) -> int:
        return m.oracle.pull_price_wad(market, blob.price, blob.conf, blob.expo, self.cfg.oracle[market].max_conf_ratio)

    def _deviation(self, market: int, price: int, reference: int) -> None:
        if not m.oracle.reference_deviation_ok(price, reference, self.cfg.oracle[market].max_reference_deviation):
            raise Refused("OracleReferenceDeviation", marketId=market)

    def settlement_price(self, s: State, market: int, blob: Blob, min_time: int, max_time: int) -> PriceData:
        """`OracleAdapter.settlementPrice`: the blob must be the earliest price at or after
        `min_time` (its previous publication before it) and published by `max_time`."""
        if not (
            blob.market == market and min_time <= blob.publish_time <= max_time and blob.prev_publish_time < min_time
        ):
            raise Refused("PriceFeedNotFoundWithinRange")
        price = self._to_wad(market, blob)
        reference, reference_time = self._record(s, market, strict=True)
        if reference_time <= blob.publish_time:
            self._deviation(market, price, reference)
        s.oracle[market] = m.oracle.store_if_newer(s.oracle[market], price, blob.publish_time)
        return m.oracle.price_data(
            self.cfg.oracle[market], s.oracle[market], price, blob.publish_time, self.now, reference
        )

    def update_prices(self, s: State, updates: list[Blob], value: int) -> None:
        """`OracleAdapter.updatePrices`: each blob newer than the stored price (and within the
        maximum age) is stored; older ones are skipped."""
        fee, spent = self.cfg.pyth_fee, 0
        for blob in updates:
            market = blob.market
            c = self.cfg.oracle[market]
            earliest = self.now - c.max_price_age if self.now > c.max_price_age else 0
            if s.oracle[market].latest_publish_time >= earliest:
                earliest = s.oracle[market].latest_publish_time + 1
            if earliest > self.now:
                continue
            if spent + fee > value:
                raise Refused("UpdateFeeUnpaid")
            if not earliest <= blob.publish_time <= self.now:
                continue
            price = self._to_wad(market, blob)
            spent += fee
            reference, _ = self._record(s, market, strict=False)
            if reference != 0:
                self._deviation(market, price, reference)
            s.oracle[market] = m.oracle.store_if_newer(s.oracle[market], price, blob.publish_time)

    def record_reference(self, s: State, market: int) -> None:
        self._record(s, market, strict=True)

    def confirm_shock(self, s: State, market: int) -> None:
        self._record(s, market, strict=True)
        s.oracle[market] = replace(s.oracle[market], shocked=False)

    def set_round(self, s: State, market: int, answer: int, updated_at: int, answered_in: int) -> None:
        """`MockPriceFeed.setPrice` / `setRoundData` (answered-in 0: this round)."""
        r = s.rounds[market]
        round_id = r.round_id + 1
        s.rounds[market] = ReferenceRound(round_id, answer, updated_at, answered_in or round_id, r.decimals)

    # ------------------------------------------------------------------ engine

    def coverage(self, s: State) -> m.Coverage:
        return m.Coverage(s.pool * self.cfg.token_scale, s.total_reserve)

    def view(self, s: State, market: int, price: PriceData, pool_wad: int) -> m.MarketView:
        params, state, prev, now = s.params[market], s.markets[market], s.prev[market], self.now
        hit = self._views.get(market)
        if (
            hit is not None
            and hit[0] is params
            and hit[1] is state
            and hit[2] is prev
            and hit[3] is price
            and hit[4] == pool_wad
            and hit[5] == now
        ):
            return hit[6]  # type: ignore[no-any-return]
        v = m.market_view(market, params, state, price, pool_wad, now, prev)
        self._views[market] = (params, state, prev, price, pool_wad, now, v)
        return v

    def _write_market(self, s: State, market: int, state: m.MarketState) -> None:
        s.markets[market] = state
        bit = 1 << market
        s.open_mask = s.open_mask | bit if state.long_oi or state.short_oi else s.open_mask & ~bit

    def _settle(self, s: State, account: int, pnl: int, fee: int) -> None:
        """`LeverVault.settle`."""
        ledgers = m.vault.Ledgers(s.pool, s.insurance, s.fees, self.cfg.fee_share)
        margin, after = m.vault.settle(s.margin.get(account, 0), ledgers, pnl, fee)
        if after.pool < 0:
            raise Refused("SafeCastOverflowedIntToUint")
        s.total_margin += margin - s.margin.get(account, 0)
        s.margin[account], s.pool, s.fees = margin, after.pool, after.protocol_fees

    def execute_trade(
        self, s: State, account: int, market: int, delta: int, acceptable: int, reduce_only: bool, price: PriceData
    ) -> m.TradeOutcome:
        """`PerpEngine.executeTrade` (called by the order book)."""
        acc = s.accounts[account]
        cov = self.coverage(s)
        view = self.view(s, market, price, cov.pool)
        pos = s.positions.get((account, market), m.Position())
        others, stale = [], None
        for other in self._markets_of(acc.mask):
            if other == market:
                continue
            try:
                d = self.latest_within(s, other, self.cfg.oracle[other].max_price_age)
            except Refused:
                stale = other
                break
            leg = s.positions[(account, other)]
            others.append((leg, self.view(s, other, m.oracle.worst_for(leg.size, d), cov.pool)))
        out = m.execute_trade(
            account_id=account,
            view=view,
            pos=pos,
            delta=delta,
            acceptable=acceptable,
            reduce_only=reduce_only,
            mask=acc.mask,
            margin_token=s.margin.get(account, 0),
            other_legs=others,
            cov=cov,
            total_reserve=s.total_reserve,
            paused=s.paused,
            token_scale=self.cfg.token_scale,
            now=self.now,
            stale_market=stale,
        )
        self._write_market(s, market, out.state)
        s.total_reserve = out.total_reserve
        if out.math.new_size == 0:
            s.positions.pop((account, market), None)
        else:
            s.positions[(account, market)] = out.position
        s.accounts[account] = replace(acc, mask=out.mask_after, last_trade_time=self.now)
        self._settle(s, account, out.pnl_token, out.fee_token)
        return out

    def liquidate_one(self, s: State, account: int, keeper: str) -> bool:
        """`PerpEngine.liquidate` and `LeverVault.settleLiquidation`; False: not liquidatable."""
        acc = s.accounts.get(account)
        if acc is None or acc.mask == 0:
            return False
        cov = self.coverage(s)
        legs = []
        for market in self._markets_of(acc.mask):
            d = self.latest_within(s, market, self.cfg.oracle[market].max_execution_age)
            legs.append((s.positions[(account, market)], self.view(s, market, d, cov.pool)))
        if any(view.price.publish_time <= acc.last_trade_time for _, view in legs):
            return False
        scale = self.cfg.token_scale
        p = m.predict_liquidation(s.margin.get(account, 0), scale, legs, s.liquidation, cov)
        if not p.liquidated:
            return False
        if self.on_liquidation(s, account):
            p = m.predict_liquidation(s.margin.get(account, 0), scale, legs, s.liquidation, cov)
            if not p.liquidated:
                return False
        mask = acc.mask
        for (pos, view), size, t in zip(legs, p.close_sizes, p.trades, strict=True):
            state, _ = m.engine.apply_to_market(view.state, pos, t)
            s.total_reserve += m.market_reserve(state, view.params) - m.market_reserve(view.state, view.params)
            self._write_market(s, view.market_id, state)
            if t.new_size == 0:
                s.positions.pop((account, view.market_id))
                mask &= ~(1 << view.market_id)
            else:
                s.positions[(account, view.market_id)] = replace(
                    pos, size=t.new_size, cost=t.new_cost, entry_charge=t.new_entry_charge
                )
        s.accounts[account] = replace(acc, mask=mask, last_trade_time=self.now)
        own = keeper == acc.owner  # an owner liquidating its own account is paid nothing
        floor = 0 if own else s.liquidation.min_reward // scale
        before = s.margin.get(account, 0)
        r = m.vault.settle_liquidation(
            before,
            m.vault.Ledgers(s.pool, s.insurance, s.fees, self.cfg.fee_share),
            p.pnl_token,
            p.fee_token,
            0 if own else p.reward_request,
            p.penalty_request,
            floor,
        )
        if r.ledgers.pool < 0:
            raise Refused("SafeCastOverflowedIntToUint")
        s.margin[account] = r.margin
        s.total_margin += r.margin - before
        s.pool, s.insurance, s.fees = r.ledgers.pool, r.ledgers.insurance, r.ledgers.protocol_fees
        if r.bad_debt:
            s.bad_debt += r.bad_debt
            s.bad_by_insurance += r.bad_debt_by_insurance
            s.bad_by_pool += r.bad_debt - r.bad_debt_by_insurance
        if r.reward_paid:
            self._pay(s, keeper, r.reward_paid)
        return True

    def liquidate(
        self, s: State, keeper: str, accounts: list[int], updates: list[Blob], value: int, batch: bool
    ) -> int:
        """`Liquidator.liquidate` / `liquidateBatch`."""
        if updates:
            self.update_prices(s, updates, value)
        done = sum(self.liquidate_one(s, a, keeper) for a in accounts)
        if done == 0:
            raise Refused("NothingToLiquidate" if batch else "AccountNotLiquidatable")
        return done

    def create_account(self, s: State, owner: str) -> int:
        s.account_count += 1
        s.accounts[s.account_count] = Account(owner)
        return s.account_count

    def accrue(self, s: State, market: int) -> None:
        view = self.view(s, market, self.latest(s, market), self.coverage(s).pool)
        self._write_market(s, market, view.state)

    def set_market_params(self, s: State, market: int, params: m.MarketParams) -> None:
        """`PerpEngine.setMarketParams` (through the timelock)."""
        m.engine.validate(params)
        view = self.view(s, market, self.latest(s, market), self.coverage(s).pool)
        if view.ramp < k.WAD:
            raise Refused("ParameterRampInProgress", marketId=market)
        state, old = view.state, view.params
        if (state.long_oi or state.short_oi) and params.max_profit_ratio < old.max_profit_ratio:
            raise Refused("ParameterOutOfBounds", name="maxProfitRatio")
        before = m.market_reserve(state, old)
        total = s.total_reserve + m.market_reserve(state, params) - before
        pool_wad = self.coverage(s).pool
        if total > s.total_reserve and total > pool_wad:
            raise Refused("ReserveExceeded")
        s.total_reserve = total
        s.prev[market], s.params[market] = old, params
        self._write_market(s, market, replace(state, ramp_start=self.now))

    def set_liquidation_params(self, s: State, params: m.LiquidationParams) -> None:
        m.liquidation.validate(params)
        s.liquidation = params

    def pause(self, s: State, paused: bool) -> None:
        if s.paused == paused:
            raise Refused("EnforcedPause" if paused else "ExpectedPause")
        s.paused = paused

    # ------------------------------------------------------------------ margin

    def deposit_margin(self, s: State, sender: str, account: int, amount: int) -> None:
        if amount == 0:
            raise Refused("ZeroAmount")
        if account not in s.accounts:
            raise Refused("UnknownAccount", accountId=account)
        self._pull(s, sender, amount)
        s.margin[account] = s.margin.get(account, 0) + amount
        s.total_margin += amount

    def withdraw_margin(self, s: State, sender: str, account: int, amount: int) -> None:
        if amount == 0:
            raise Refused("ZeroAmount")
        margin = s.margin.get(account, 0)
        if margin < 0 or amount > margin:
            raise Refused("WithdrawExceedsMargin", accountId=account)
        self.check_withdrawal(s, account, sender, margin - amount)
        s.margin[account] = margin - amount
        s.total_margin -= amount
        self._pay(s, sender, amount)

    def check_withdrawal(self, s: State, account: int, caller: str, margin_after: int) -> None:
        acc = s.accounts.get(account)
        if acc is None:
            raise Refused("UnknownAccount", accountId=account)
        if acc.owner != caller:
            raise Refused("NotAccountOwner", accountId=account)
        if acc.mask == 0:
            return
        a = self.account_state(s, account, margin_after, fresh=True)
        if a.equity < a.initial_margin:
            raise Refused("InsufficientMargin", accountId=account)

    def account_state(self, s: State, account: int, margin: int | None = None, fresh: bool = False) -> m.AccountState:
        """`PerpEngine._accountState`: at the stored prices (`fresh`: within their maximum age, each
        at the worse of the pull and reference prices)."""
        cov = self.coverage(s)
        legs = []
        for market in self._markets_of(s.accounts[account].mask):
            pos = s.positions[(account, market)]
            if fresh:
                d = m.oracle.worst_for(pos.size, self.latest_within(s, market, self.cfg.oracle[market].max_price_age))
            else:
                d = self.latest(s, market)
            legs.append((pos, self.view(s, market, d, cov.pool)))
        return m.account_state(s.margin.get(account, 0) if margin is None else margin, self.cfg.token_scale, legs, cov)

    def fund_insurance(self, s: State, sender: str, amount: int) -> None:
        if amount == 0:
            raise Refused("ZeroAmount")
        self._pull(s, sender, amount)
        s.insurance += amount

    # ------------------------------------------------------------------ orders

    def _owned(self, s: State, account: int, sender: str) -> None:
        acc = s.accounts.get(account)
        if acc is None:
            raise Refused("UnknownAccount", accountId=account)
        if acc.owner != sender:
            raise Refused("NotAccountOwner", accountId=account)

    def _check_conditional(
        self, s: State, account: int, market: int, kind: Kind, size: int, trigger: int, acceptable: int
    ) -> None:
        if size == 0:
            raise Refused("ZeroSize")
        if trigger == 0 or trigger > k.MAX_PRICE_WAD:
            raise Refused("ParameterOutOfBounds", name="triggerPrice")
        if acceptable > k.MAX_PRICE_WAD:
            raise Refused("ParameterOutOfBounds", name="acceptablePrice")
        if kind in (Kind.STOP_LOSS, Kind.TAKE_PROFIT):
            pos = s.positions.get((account, market), m.Position())
            if pos.size == 0 or (pos.size > 0) == (size > 0):
                raise Refused("ReduceOnlyViolated", accountId=account, marketId=market)

    def place(
        self,
        s: State,
        sender: str,
        account: int,
        market: int,
        kind: Kind,
        size: int,
        trigger: int,
        acceptable: int,
        fee: int,
    ) -> int:
        """`OrderBook.commitOrder` / `placeOrder`; returns the order id."""
        self._owned(s, account, sender)
        if market >= len(s.params):
            raise Refused("UnknownMarket", marketId=market)
        if size == 0:
            raise Refused("ZeroSize")
        if fee < self.cfg.min_executor_fee or fee > self.cfg.max_executor_fee:
            raise Refused("ExecutorFeeOutOfBounds")
        if kind != Kind.MARKET:
            self._check_conditional(s, account, market, kind, size, trigger, acceptable)
        elif acceptable > k.MAX_PRICE_WAD:
            raise Refused("ParameterOutOfBounds", name="acceptablePrice")
        slot = next((i for i in range(k.MAX_ORDERS_PER_ACCOUNT) if (account, i) not in s.orders), None)
        if slot is None:
            raise Refused("OrderSlotsFull", accountId=account)
        order_id = m.orders.order_id(account, slot)
        s.orders[(account, slot)] = Order(order_id, account, size, fee, self.now, market, kind, acceptable, trigger)
        margin = s.margin.get(account, 0)
        if margin >= fee:
            s.margin[account] = margin - fee
            s.total_margin -= fee
        else:
            self._pull(s, sender, fee)
        s.order_escrow += fee
        return order_id

    def update_order(self, s: State, sender: str, order_id: int, size: int, trigger: int, acceptable: int) -> None:
        account, slot = m.orders.split(order_id)
        self._owned(s, account, sender)
        o = s.orders.get((account, slot))
        if o is None:
            raise Refused("OrderNotFound", orderId=order_id)
        if o.kind == Kind.MARKET:
            raise Refused("InvalidOrderKind")
        if o.triggered:
            raise Refused("OrderNotCancellable", orderId=order_id)
        self._check_conditional(s, account, o.market_id, o.kind, size, trigger, acceptable)
        s.orders[(account, slot)] = replace(
            o, size_delta=size, trigger_price=trigger, acceptable_price=acceptable, updated_at=self.now
        )

    def cancel_order(self, s: State, sender: str, order_id: int) -> None:
        account, slot = m.orders.split(order_id)
        o = s.orders.get((account, slot))
        if o is None:
            raise Refused("OrderNotFound", orderId=order_id)
        if o.as_market:
            if self.now <= self._expiry(o):
                raise Refused("OrderNotCancellable", orderId=order_id)
            self._expire(s, o)
        else:
            self._owned(s, account, sender)
            self._release(s, o, None)

    def _expiry(self, o: Order) -> int:
        return m.orders.expiry(o, self.cfg.order_delay, self.cfg.order_window)

    def _expire(self, s: State, o: Order) -> None:
        """A lapsed market (or triggered) order: its fee goes to the insurance fund."""
        del s.orders[m.orders.split(o.order_id)]
        s.order_escrow -= o.executor_fee
        s.insurance += o.executor_fee

    def _release(self, s: State, o: Order, to: str | None) -> None:
        """Removes the order; its fee goes to `to` (None: back to the margin)."""
        del s.orders[m.orders.split(o.order_id)]
        s.order_escrow -= o.executor_fee
        if to is None:
            s.margin[o.account] = s.margin.get(o.account, 0) + o.executor_fee
            s.total_margin += o.executor_fee
        elif o.executor_fee:
            self._pay(s, to, o.executor_fee)

    def on_liquidation(self, s: State, account: int) -> int:
        refunded = 0
        for slot in range(k.MAX_ORDERS_PER_ACCOUNT):
            o = s.orders.get((account, slot))
            if o is not None:
                self._release(s, o, None)
                refunded += o.executor_fee
        return refunded

    def settle_orders(
        self, s: State, sender: str, ids: list[int], blobs: list[Blob | None], latest: list[Blob], value: int
    ) -> int:
        """`OrderBook.settleOrders`; returns how many filled."""
        if len(blobs) != len(ids):
            raise Refused("ParameterOutOfBounds", name="updates")
        if latest:
            self.update_prices(s, latest, self.cfg.pyth_fee * len(latest))
        proven: dict[tuple[int, int], PriceData] = {}
        settled = done = 0
        for order_id, blob in zip(ids, blobs, strict=True):
            account, slot = m.orders.split(order_id)
            o = s.orders.get((account, slot))
            if o is None:
                continue
            if not o.as_market:
                status = self._conditional_status(s, account, o)
                if status == ORPHAN:
                    self._release(s, o, None)
                    done += 1
                elif status == READY:  # triggered: from now on a market order committed now
                    s.orders[(account, slot)] = replace(o, triggered=True, updated_at=self.now)
                    done += 1
                continue
            if self.now > self._expiry(o):
                self._expire(s, o)
                done += 1
                continue
            price = self._market_price(s, o, blob, proven)
            if price is None:
                continue
            filled, moved = self._execute(s, sender, o, price)
            settled += filled
            done += filled or moved
        if done == 0:
            raise Refused("NothingToSettle")
        return settled

    def _market_price(
        self, s: State, o: Order, blob: Blob | None, proven: dict[tuple[int, int], PriceData]
    ) -> PriceData | None:
        min_time = o.updated_at + self.cfg.order_delay
        if self.now < min_time:
            return None
        if (o.market_id, min_time) in proven:
            return proven[(o.market_id, min_time)]
        if blob is None:
            return None
        max_time = min(min_time + self.cfg.order_window, self.now)
        trial = s.clone()
        try:
            d = self.settlement_price(trial, o.market_id, blob, min_time, max_time)
        except Refused:
            return None  # not the eligible price, or the oracle cannot price now: wait
        s.oracle[o.market_id] = trial.oracle[o.market_id]
        proven[(o.market_id, min_time)] = d
        return d

    def _conditional_status(self, s: State, account: int, o: Order) -> int:
        """ORPHAN, or READY if the stored price triggers the order, else WAIT."""
        pos = s.positions.get((account, o.market_id), m.Position())
        if o.kind != Kind.LIMIT and pos.size == 0:
            return ORPHAN
        try:
            d = self.latest_within(s, o.market_id, self.cfg.oracle[o.market_id].max_execution_age)
        except Refused:
            return WAIT
        if d.publish_time < m.orders.conditional_since(o, pos.last_increase_time) + self.cfg.order_delay:
            return WAIT
        return READY if m.orders.triggered(o, pos.size > 0, d.price) else WAIT

    RETRYABLE = frozenset({"OracleStalePrice", "SequencerDown", "SequencerGracePeriod"})
    RETRYABLE_CONDITIONAL = frozenset({"AcceptablePriceExceeded", "FillPriceInvalid"})

    def _execute(self, s: State, sender: str, o: Order, price: PriceData) -> tuple[bool, bool]:
        """(filled, moved): moved if it left the book or, triggered, went back to waiting."""
        trial = s.clone()
        try:
            out = self.execute_trade(trial, o.account, o.market_id, o.size_delta, o.limit_price, o.reduce_only, price)
        except Refused as refused:
            if refused.error in self.RETRYABLE:
                return False, False
            self._release(s, o, sender)  # refused: the fee to the settler
            fee, margin = o.executor_fee, s.margin.get(o.account, 0)
            if o.kind != Kind.MARKET and refused.error in self.RETRYABLE_CONDITIONAL and margin >= fee:
                # back to waiting for its trigger, a new fee escrowed from the margin
                s.margin[o.account] = margin - fee
                s.total_margin -= fee
                s.order_escrow += fee
                s.orders[m.orders.split(o.order_id)] = replace(o, triggered=False, updated_at=self.now)
            return False, True
        _copy_into(s, trial)
        self._release(s, o, sender)
        self.fills.append(
            Fill(
                o.order_id,
                o.account,
                o.market_id,
                o.kind,
                out.delta,
                out.math.fill,
                price.price,
                price.publish_time,
            )
        )
        if out.math.new_size == 0:
            for slot in range(k.MAX_ORDERS_PER_ACCOUNT):
                other = s.orders.get((o.account, slot))
                if (
                    other is not None
                    and other.market_id == o.market_id
                    and other.kind in (Kind.STOP_LOSS, Kind.TAKE_PROFIT)
                ):
                    self._release(s, other, None)
        return True, False

    # ------------------------------------------------------------------ LP requests (ERC-7540)

    def request_deposit(self, s: State, sender: str, assets: int) -> None:
        if assets == 0:
            raise Refused("ZeroAmount")
        q = s.pending_deposit.get(sender, Request(0, 0, 0))
        fee = self.cfg.lp_fee if q.amount == 0 else 0
        self._pull(s, sender, assets + fee)
        s.lp_escrow += assets + fee
        s.pending_deposit[sender] = Request(q.amount + assets, self.now, q.fee + fee)

    def request_redeem(self, s: State, sender: str, shares: int) -> None:
        if shares == 0:
            raise Refused("ZeroAmount")
        q = s.pending_redeem.get(sender, Request(0, 0, 0))
        if q.amount + shares == s.supply and s.total_reserve:
            raise Refused("LastSharesBackOpenPositions")
        fee = self.cfg.lp_fee if q.amount == 0 else 0
        if fee:
            self._pull(s, sender, fee)
            s.lp_escrow += fee
        self._move_shares(s, sender, self.cfg.vault, shares)
        s.pending_redeem[sender] = Request(q.amount + shares, self.now, q.fee + fee)

    def _lp_expiry(self, time: int) -> int:
        return time + self.cfg.lp_delay + self.cfg.lp_window + self.cfg.lp_grace

    def value_at(
        self, s: State, sender: str, controller: str, time: int, updates: list[Blob], is_deposit: bool
    ) -> tuple[int, list[int], list[Blob]]:
        """`LeverVault._valueAt`: the pool's value for the request (the worse for the requester of
        its value at the request's prices and at the newest stored prices), the request's prices,
        and the blobs that priced it."""
        earliest = time + self.cfg.lp_delay
        expiry = self._lp_expiry(time)
        if self.now > expiry:
            raise Refused("RequestExpired")
        if self.now < earliest + self.cfg.lp_grace:
            raise Refused("RequestNotDue")
        prices = [0] * k.MAX_MARKETS
        used = []
        for blob in updates:
            market = blob.market
            if market >= k.MAX_MARKETS or not s.open_mask >> market & 1 or prices[market] != 0:
                continue
            latest_time = min(earliest + self.cfg.lp_window, self.now)
            d = self.settlement_price(s, market, blob, earliest, latest_time)
            if self.now < d.publish_time + self.cfg.lp_grace:
                raise Refused("RequestNotDue")
            prices[market] = d.price
            used.append(blob)
        newest = [0] * k.MAX_MARKETS
        for market in self._markets_of(s.open_mask):
            d = self.latest(s, market)
            if prices[market] != 0:
                newest[market] = d.price
                continue
            stale = d.publish_time + self.cfg.oracle[market].max_price_age < self.now
            if is_deposit or not stale or sender != controller:
                raise Refused("LpPriceMissing", marketId=market)
        at_pull = m.pool.pool_value(s.pool, self.pool_liability_at(s, prices), self.cfg.token_scale)
        at_newest = m.pool.pool_value(s.pool, self.pool_liability_at(s, newest), self.cfg.token_scale)
        return m.pool.request_value(at_pull, at_newest, is_deposit), prices, used

    def settle_deposit(self, s: State, sender: str, controller: str, updates: list[Blob]) -> tuple[int, list[Blob]]:
        """`LeverVault.settleDeposit`; returns the shares minted (0: refunded) and the blobs used."""
        q = s.pending_deposit.get(controller)
        if q is None:
            raise Refused("NoPendingRequest")
        value, _, used = self.value_at(s, sender, controller, q.time, updates, True)
        shares = m.pool.to_shares_down(q.amount, value, s.supply)
        del s.pending_deposit[controller]
        s.lp_escrow -= q.amount + q.fee
        if shares == 0 or (s.supply > 0 and value == 0):
            self._pay(s, controller, q.amount)
            shares = 0
        else:
            s.pool += q.amount
            s.supply += shares
            s.shares[self.cfg.vault] = s.shares.get(self.cfg.vault, 0) + shares
            c = s.claim_deposit.get(controller, Claim())
            s.claim_deposit[controller] = Claim(c.assets + q.amount, c.shares + shares)
        if q.fee:
            self._pay(s, sender, q.fee)
        return shares, used

    def free_assets(self, s: State) -> int:
        return m.vault.free_assets(s.pool, s.total_reserve, self.cfg.token_scale)

    def _oi_caps_hold(self, s: State, prices: list[int], pool_wad: int) -> bool:
        markets = [(s.params[i], s.markets[i], prices[i]) for i in self._markets_of(s.open_mask)]
        return m.engine.oi_caps_hold(markets, pool_wad)

    def settle_redeem(self, s: State, sender: str, controller: str, updates: list[Blob]) -> tuple[int, list[Blob]]:
        """`LeverVault.settleRedeem`; returns the assets paid (-1: refused, shares returned)."""
        q = s.pending_redeem.get(controller)
        if q is None:
            raise Refused("NoPendingRequest")
        value, prices, used = self.value_at(s, sender, controller, q.time, updates, False)
        assets = m.pool.to_assets_down(q.amount, value, s.supply)
        del s.pending_redeem[controller]
        s.lp_escrow -= q.fee
        refused = m.vault.redeem_refusal(
            assets,
            q.amount,
            s.supply,
            s.pool,
            s.total_reserve,
            self.cfg.token_scale,
            assets <= s.pool and self._oi_caps_hold(s, prices, (s.pool - assets) * self.cfg.token_scale),
        )
        self.redeem_refusal = refused
        if refused:
            self._move_shares(s, self.cfg.vault, controller, q.amount)
            assets = -1
        else:
            s.shares[self.cfg.vault] -= q.amount
            s.supply -= q.amount
            s.pool -= assets
            s.lp_escrow += assets
            c = s.claim_redeem.get(controller, Claim())
            s.claim_redeem[controller] = Claim(c.assets + assets, c.shares + q.amount)
        if q.fee:
            self._pay(s, sender, q.fee)
        return assets, used

    def cancel_expired_request(self, s: State, controller: str, is_deposit: bool) -> None:
        book = s.pending_deposit if is_deposit else s.pending_redeem
        q = book.get(controller)
        if q is None:
            raise Refused("NoPendingRequest")
        if self.now <= self._lp_expiry(q.time):
            raise Refused("RequestNotExpired")
        del book[controller]
        if is_deposit:
            s.lp_escrow -= q.amount + q.fee
            self._pay(s, controller, q.amount)
        else:
            s.lp_escrow -= q.fee
            self._move_shares(s, self.cfg.vault, controller, q.amount)
        s.insurance += q.fee

    def claim_deposit(self, s: State, controller: str, assets: int) -> int:
        """`deposit(assets, receiver=controller)`: returns the shares claimed."""
        c = s.claim_deposit.get(controller, Claim())
        if assets > c.assets:
            raise Refused("ClaimExceedsClaimable")
        if assets == 0:
            return 0
        shares = c.shares if assets == c.assets else m.pool.pro_rata_down(assets, c.shares, c.assets)
        s.claim_deposit[controller] = Claim(c.assets - assets, c.shares - shares)
        self._move_shares(s, self.cfg.vault, controller, shares)
        return shares

    def claim_redeem(self, s: State, controller: str, shares: int) -> int:
        """`redeem(shares, receiver=controller, controller)`: returns the assets paid."""
        c = s.claim_redeem.get(controller, Claim())
        if shares > c.shares:
            raise Refused("ClaimExceedsClaimable")
        if shares == 0:
            return 0
        assets = c.assets if shares == c.shares else m.pool.pro_rata_down(shares, c.assets, c.shares)
        s.claim_redeem[controller] = Claim(c.assets - assets, c.shares - shares)
        s.lp_escrow -= assets
        self._pay(s, controller, assets)
        return assets

    # ------------------------------------------------------------------ views for the checks

    def total_assets(self, s: State) -> int:
        """`LeverVault.totalAssets`: the pool at the stored prices, a stale market at its worst case."""
        prices = [0] * k.MAX_MARKETS
        for market in self._markets_of(s.open_mask):
            d = self.latest(s, market)
            if d.price != 0 and d.publish_time + self.cfg.oracle[market].max_price_age >= self.now:
                prices[market] = d.price
        return m.pool.pool_value(s.pool, self.pool_liability_at(s, prices), self.cfg.token_scale)

    def pool_liability_at(self, s: State, prices: list[int]) -> int:
        markets = [(s.params[i], s.markets[i], prices[i]) for i in self._markets_of(s.open_mask)]
        return m.pool_liability(markets, self.coverage(s), self.now)


def _copy_into(dst: State, src: State) -> None:
    for name in State.__dataclass_fields__:
        setattr(dst, name, getattr(src, name))


# Helpers shared with the machine
__all__ = [
    "ORPHAN",
    "READY",
    "WAIT",
    "ZERO",
    "Account",
    "Blob",
    "Claim",
    "Fill",
    "Ghost",
    "Refused",
    "Request",
    "Settings",
    "State",
    "to_token_floor",
]
