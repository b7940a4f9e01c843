"""The ghost protocol: the whole state of the deployed protocol, kept in Python and moved only
by the model's own predictions (`lever.math`, the exact mirror of the contracts' math).

Each action returns what the contracts must do, or raises `Rejected` with the name of the custom
error they must revert with, checked in the contracts' own order. Nothing here reads the chain:
the invariant machine compares the two after every step.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from lever import math as m
from lever.math import WAD

MAX_PRICE_WAD = 10**36  # OracleAdapter: a higher answer is refused
VIRTUAL_SHARES = 10**6  # the vault's ERC-4626 virtual shares (decimals offset 6)
MM_RAMP = 86_400


class Rejected(Exception):
    """The contracts must revert with this custom error."""

    def __init__(self, error: str):
        super().__init__(error)
        self.error = error


@dataclass
class Feed:
    """A mock Chainlink feed's latest round and the adapter's recorded state for it."""

    round_id: int
    answer: int
    updated_at: int
    answered_in: int
    adapter: m.FeedState
    decimals: int = 8


@dataclass
class Market:
    params: m.MarketParams
    state: m.MarketState
    feed: Feed
    fp: m.FeedParams


@dataclass
class Ctx:
    """A market as an entry point sees it (the engine's `Ctx`)."""

    market: int
    view: m.MarketView
    adapter: m.FeedState  # the adapter's state once the round is recorded


@dataclass
class Ghost:
    now: int
    scale: int
    fee_share: int
    liq: m.LiquidationParams
    markets: list[Market]
    owner: dict[int, str]
    margin: dict[int, int] = field(default_factory=dict)
    positions: dict[tuple[int, int], m.Position] = field(default_factory=dict)
    pool: int = 0
    insurance: int = 0
    fees: int = 0
    bad_debt: int = 0
    bad_by_insurance: int = 0
    bad_by_pool: int = 0
    unpaid: int = 0
    shares: dict[str, int] = field(default_factory=dict)
    supply: int = 0
    balance: dict[str, int] = field(default_factory=dict)  # token balances: actors and the vault
    vault: str = ""
    donated: int = 0
    paused: bool = False

    # ------------------------------------------------------------------ oracle

    def max_answer(self, market: int) -> int:
        """The highest answer the oracle accepts from the market's feed (`MAX_PRICE_WAD`)."""
        return MAX_PRICE_WAD // 10 ** (18 - self.markets[market].feed.decimals)

    def latest_price(self, market: int) -> int:
        """`OracleAdapter._latest`: the feed's latest answer in WAD, or its rejection."""
        f = self.markets[market].feed
        if f.answer <= 0:
            raise Rejected("OracleNonPositivePrice")
        if f.answer > self.max_answer(market):
            raise Rejected("OraclePriceTooHigh")
        if f.updated_at == 0 or f.answered_in < f.round_id:
            raise Rejected("OracleIncompleteRound")
        if f.updated_at < self.now and self.now - f.updated_at > self.markets[market].fp.max_age:
            raise Rejected("OracleStalePrice")
        return f.answer * 10 ** (18 - f.decimals)

    def ctx(self, market: int) -> Ctx:
        """`_loadTx` / `_loadView`: the round recorded, funding accrued, the ramped ratio."""
        mk = self.markets[market]
        price = self.latest_price(market)
        adapter = m.record_round(mk.fp, mk.feed.adapter, mk.feed.round_id, price, self.now)
        im = m.target_factor(adapter.variance, mk.fp.ref_volatility, mk.fp.max_vol_factor)
        mm = m.mm_factor(mk.fp, adapter, self.now)
        state = self.accrue(mk.state, mk.params, price)
        mmr = m.effective_mmr(mk.params.maintenance_margin_ratio, state.mmr_ramp_from, state.mmr_ramp_start, self.now)
        view = m.MarketView(mk.params, state, price, im, mm, mmr)
        return Ctx(market, view, adapter)

    def accrue(self, state: m.MarketState, params: m.MarketParams, price: int) -> m.MarketState:
        """Funding to now; checks it is zero-sum up to rounding in the protocol's favour."""
        after = m.accrued(state, params, price, self.now)
        paid_long = (after.long_index - state.long_index) * state.long_oi
        paid_short = (after.short_index - state.short_index) * state.short_oi
        assert paid_long + paid_short >= 0, "funding receivers got more than payers paid"
        return after

    def record(self, c: Ctx) -> None:
        self.markets[c.market].feed.adapter = c.adapter

    # ------------------------------------------------------------------ accounts

    def markets_of(self, account: int) -> list[int]:
        return [mk for mk in range(len(self.markets)) if (account, mk) in self.positions]

    def account_state(self, account: int, margin: int | None = None, known: Ctx | None = None) -> m.AccountState:
        """`_accountStateView` (`known` spares reloading the market being traded)."""
        legs = []
        for mk in self.markets_of(account):
            c = known if known is not None and known.market == mk else self.ctx(mk)
            legs.append((self.positions[(account, mk)], c.view))
        return m.account_state(self.margin.get(account, 0) if margin is None else margin, self.scale, legs)

    def _owned(self, account: int, sender: str) -> None:
        owner = self.owner.get(account)
        if owner is None:
            raise Rejected("UnknownAccount")
        if owner != sender:
            raise Rejected("NotAccountOwner")

    def _settle(self, account: int, pnl_token: int, fee_token: int, reward: int = 0, penalty: int = 0) -> m.Settlement:
        s = m.settle(
            self.margin.get(account, 0), self.pool, self.insurance, self.fees, pnl_token, fee_token, self.fee_share,
            reward, penalty,
        )
        self.margin[account] = s.margin
        self.pool, self.insurance, self.fees = s.pool, s.insurance, s.protocol_fees
        self.bad_debt += s.bad_debt
        self.bad_by_insurance += s.bad_debt_by_insurance
        self.bad_by_pool += s.bad_debt - s.bad_debt_by_insurance
        self.unpaid += s.unpaid_profit
        return s

    def deposit_margin(self, sender: str, account: int, amount: int) -> None:
        if amount == 0:
            raise Rejected("ZeroAmount")
        if account not in self.owner:
            raise Rejected("UnknownAccount")
        self._transfer(sender, self.vault, amount)
        self.margin[account] = self.margin.get(account, 0) + amount

    def withdraw_margin(self, sender: str, account: int, amount: int) -> None:
        if amount == 0:
            raise Rejected("ZeroAmount")
        margin = self.margin.get(account, 0)
        if amount > margin:
            raise Rejected("WithdrawExceedsMargin")
        self._owned(account, sender)
        if self.markets_of(account):
            a = self.account_state(account, margin - amount)
            if a.equity < a.initial_margin:
                raise Rejected("InsufficientMargin")
        self.margin[account] = margin - amount
        self._transfer(self.vault, sender, amount)

    def modify(self, sender: str, account: int, market: int, delta: int, limit: int = 0) -> None:
        """`PerpEngine.modifyPosition` (and `closePosition`, which passes minus the size)."""
        if delta == 0:
            raise Rejected("ZeroSize")
        self._owned(account, sender)
        self._trade(account, market, delta, limit)

    def close(self, sender: str, account: int, market: int, limit: int = 0) -> None:
        self._owned(account, sender)
        pos = self.positions.get((account, market))
        if pos is None:
            raise Rejected("NoPosition")
        self._trade(account, market, -pos.size, limit)

    def _trade(self, account: int, market: int, delta: int, limit: int) -> None:
        if market >= len(self.markets):
            raise Rejected("UnknownMarket")
        c = self.ctx(market)
        price, params = c.view.price, c.view.params
        if limit != 0 and (price > limit if delta > 0 else price < limit):
            raise Rejected("PriceLimitExceeded")
        pos = self.positions.get((account, market), m.Position())
        new_size = pos.size + delta
        increasing = pos.size == 0 or (pos.size > 0) == (delta > 0)
        if not increasing and new_size != 0 and (new_size > 0) != (pos.size > 0):
            raise Rejected("PositionFlip")
        if new_size != 0 and abs(new_size) < params.min_position_size:
            raise Rejected("PositionTooSmall")
        if increasing:
            if self.paused:
                raise Rejected("EnforcedPause")
            if c.adapter.shocked:
                raise Rejected("OracleShockUnconfirmed")
        t = m.trade(pos, c.view.state, params, delta, price, self.scale)
        if increasing:
            side_oi = t.state.long_oi if new_size > 0 else t.state.short_oi
            cap = m.mul_div_down(self.pool * self.scale, params.oi_cap_ratio, WAD)
            if m.mul_div_up(side_oi, price, WAD) > cap:
                raise Rejected("OpenInterestCapExceeded")
        saved = self._save()
        self.record(c)
        self.markets[market].state = t.state
        self._set_position(account, market, t.position)
        self._settle(account, t.pnl_token, t.fee_token)
        if increasing:
            view = replace(c.view, state=t.state)
            try:
                a = self.account_state(account, known=Ctx(market, view, c.adapter))
                n = m.notional(new_size, price)
                if a.equity <= 0 or n > a.equity * params.max_leverage:
                    raise Rejected("LeverageTooHigh")
                if a.equity < a.initial_margin:
                    raise Rejected("InsufficientMargin")
            except Rejected:
                self._load(saved)
                raise

    def _set_position(self, account: int, market: int, pos: m.Position) -> None:
        if pos.size == 0:
            self.positions.pop((account, market), None)
        else:
            self.positions[(account, market)] = pos

    def _save(self) -> tuple[object, ...]:
        return (
            [(mk.state, mk.feed.adapter) for mk in self.markets], dict(self.positions), dict(self.margin),
            self.pool, self.insurance, self.fees, self.bad_debt, self.bad_by_insurance, self.bad_by_pool, self.unpaid,
        )

    def _load(self, saved: tuple[object, ...]) -> None:
        markets, positions, margin, *ledgers = saved
        for mk, (state, adapter) in zip(self.markets, markets, strict=True):  # type: ignore[call-overload]
            mk.state, mk.feed.adapter = state, adapter
        self.positions, self.margin = positions, margin  # type: ignore[assignment]
        (self.pool, self.insurance, self.fees, self.bad_debt, self.bad_by_insurance, self.bad_by_pool,
         self.unpaid) = ledgers  # type: ignore[assignment]

    # ------------------------------------------------------------------ liquidation

    def liquidate_one(self, keeper: str, account: int) -> m.LiquidationPrediction | None:
        """`PerpEngine.liquidate` + `LeverVault.settleLiquidation`; None if not liquidatable
        (the oracle rounds it read stay recorded, as in a batch)."""
        mks = self.markets_of(account)
        if not mks:
            return None
        ctxs = [self.ctx(mk) for mk in mks]
        for c in ctxs:
            self.record(c)
        legs = [(self.positions[(account, c.market)], c.view) for c in ctxs]
        p = m.predict_liquidation(
            self.margin.get(account, 0), self.scale, legs, self.liq, self.pool, self.insurance, self.fees, self.fee_share
        )
        if not p.liquidated:
            return None
        pnl = fee = 0
        for c, (pos, view), size in zip(ctxs, legs, p.close_sizes, strict=True):
            t = m.trade(pos, view.state, view.params, -size, view.price, self.scale)
            self.markets[c.market].state = t.state
            self._set_position(account, c.market, t.position)
            pnl += t.realised
            fee += t.fee
        reward = m.keeper_reward(p.closed_notional, self.liq) // self.scale
        penalty = m.div_up(m.liquidation_penalty(p.closed_notional, self.liq), self.scale)
        s = self._settle(account, m.to_token_floor(pnl, self.scale), m.div_up(fee, self.scale), reward, penalty)
        assert (s.reward_paid, s.penalty_paid, s.bad_debt) == (p.reward_token, p.penalty_token, p.bad_debt)
        self._transfer(self.vault, keeper, s.reward_paid)
        return p

    def liquidate(self, keeper: str, account: int) -> m.LiquidationPrediction:
        saved = self._save()
        p = self.liquidate_one(keeper, account)
        if p is None:
            self._load(saved)
            raise Rejected("AccountNotLiquidatable")
        return p

    def liquidate_batch(self, keeper: str, accounts: list[int]) -> list[tuple[int, m.LiquidationPrediction]]:
        saved, balances = self._save(), dict(self.balance)
        try:
            done = [(a, p) for a in accounts if (p := self.liquidate_one(keeper, a)) is not None]
            if not done:
                raise Rejected("NothingToLiquidate")
        except Rejected:
            self._load(saved)
            self.balance = balances
            raise
        return done

    # ------------------------------------------------------------------ the pool (ERC-4626)

    def exposure(self) -> tuple[int, int]:
        """`PerpEngine.poolExposure`: traders' value with funding, and the reserved notional."""
        pnl = reserved = 0
        for i, mk in enumerate(self.markets):
            if mk.state.long_oi == 0 and mk.state.short_oi == 0:
                continue
            price = self.latest_price(i)
            s = m.accrued(mk.state, mk.params, price, self.now)
            pnl += (
                m.mul_wad_ceil(s.long_oi, price - s.long_index)
                - m.mul_wad_floor(s.short_oi, price + s.short_index)
                - s.net_cost
            )
            reserved += m.mul_div_up(m.mul_div_up(abs(s.long_oi - s.short_oi), price, WAD), mk.params.reserve_ratio, WAD)
        return pnl, reserved

    def pool_value(self, pnl: int) -> int:
        if pnl >= 0:
            owed = m.div_up(pnl, self.scale)
            return self.pool - owed if self.pool > owed else 0
        return self.pool + (-pnl) // self.scale

    def total_assets(self) -> int:
        return self.pool_value(self.exposure()[0])

    def free_assets(self) -> int:
        pnl, reserved_wad = self.exposure()
        available = min(self.pool, self.pool_value(pnl))
        reserved = m.div_up(reserved_wad, self.scale)
        return available - reserved if available > reserved else 0

    def lp_deposit(self, lp: str, assets: int) -> int:
        total = self.total_assets()
        if self.supply > 0 and total == 0 and assets > 0:
            raise Rejected("ERC4626ExceededMaxDeposit")
        shares = assets * (self.supply + VIRTUAL_SHARES) // (total + 1)
        if assets == 0 or shares == 0:
            raise Rejected("ZeroAmount")
        self._transfer(lp, self.vault, assets)
        self.pool += assets
        self.shares[lp] = self.shares.get(lp, 0) + shares
        self.supply += shares
        return shares

    def max_redeem(self, lp: str) -> int:
        shares, free, ta = self.shares.get(lp, 0), self.free_assets(), self.total_assets()
        if shares * (ta + 1) // (self.supply + VIRTUAL_SHARES) <= free:
            return shares
        return free * (self.supply + VIRTUAL_SHARES) // (ta + 1)

    def lp_redeem(self, lp: str, shares: int) -> int:
        if shares > self.max_redeem(lp):
            raise Rejected("ERC4626ExceededMaxRedeem")
        assets = shares * (self.total_assets() + 1) // (self.supply + VIRTUAL_SHARES)
        if assets == 0 or shares == 0:
            raise Rejected("ZeroAmount")
        self.pool -= assets
        self.shares[lp] -= shares
        self.supply -= shares
        self._transfer(self.vault, lp, assets)
        return assets

    # ------------------------------------------------------------------ tokens, prices, time, roles

    def _transfer(self, src: str, dst: str, amount: int) -> None:
        if self.balance.get(src, 0) < amount:
            raise Rejected("ERC20InsufficientBalance")
        self.balance[src] = self.balance.get(src, 0) - amount
        self.balance[dst] = self.balance.get(dst, 0) + amount

    def donate(self, sender: str, amount: int) -> None:
        self._transfer(sender, self.vault, amount)
        self.donated += amount

    def post_round(self, market: int, answer: int, updated_at: int | None = None, answered_in: int = 0) -> None:
        """`MockPriceFeed.setRoundData` / `setPrice`: a new round."""
        f = self.markets[market].feed
        f.round_id += 1
        f.answer = answer
        f.updated_at = self.now if updated_at is None else updated_at
        f.answered_in = f.round_id if answered_in == 0 else answered_in

    def confirm_shock(self, market: int) -> None:
        c = self.ctx(market)
        self.record(c)
        self.markets[market].feed.adapter = replace(c.adapter, shocked=False)

    def accrue_funding(self, market: int) -> None:
        c = self.ctx(market)
        self.record(c)
        self.markets[market].state = c.view.state

    def set_market_params(self, market: int, params: m.MarketParams) -> None:
        if params.max_leverage == 0 or params.max_leverage > 100:
            raise Rejected("ParameterOutOfBounds")
        if params.maintenance_margin_ratio < 10**15:
            raise Rejected("ParameterOutOfBounds")
        if params.initial_margin_ratio <= params.maintenance_margin_ratio or params.initial_margin_ratio > WAD:
            raise Rejected("ParameterOutOfBounds")
        c = self.ctx(market)
        state = c.view.state
        if params.maintenance_margin_ratio > c.view.maintenance_ratio:
            state = replace(state, mmr_ramp_start=self.now, mmr_ramp_from=c.view.maintenance_ratio)
        else:
            state = replace(state, mmr_ramp_start=0, mmr_ramp_from=0)
        self.record(c)
        self.markets[market].state = state
        self.markets[market].params = params

    def set_liquidation_params(self, p: m.LiquidationParams) -> None:
        if p.target_health < WAD or p.target_health > 3 * WAD:
            raise Rejected("ParameterOutOfBounds")
        if p.penalty_ratio > WAD // 20 or p.reward_ratio > WAD // 50 or p.max_reward > 10_000 * WAD:
            raise Rejected("ParameterOutOfBounds")
        if p.min_reward > p.max_reward:
            raise Rejected("ParameterOutOfBounds")
        self.liq = p
