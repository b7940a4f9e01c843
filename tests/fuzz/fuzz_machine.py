"""The invariant machine: Hypothesis drives traders, LPs, keepers, the oracle, time and the risk
role against the protocol on one backend and against the ghost; they must agree after every step.

Every rule asks the ghost first. The ghost either moves (the transaction must succeed) or names
the custom error the transaction must revert with; any other outcome fails the run. After every
step `agrees_with_ghost` compares every ledger, market state, margin and position (DESIGN.md
invariants 1, 2, 5) and the rules check the per-action invariants (3, 4) where they act. At the
end of every run the whole protocol is unwound: everyone must be able to exit (invariant 6).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from fuzz_chain import Reverted, calldata, signed, uint_array, words
from fuzz_model import VIRTUAL_SHARES, Ghost, Rejected
from fuzz_world import FUZZ_LIQUIDATION, S, World, market_params_words, packed
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from hypothesis.strategies import SearchStrategy

from lever import math as m
from lever.math import WAD

USDC = 10**6
# Leverage in tenths, spread over what traders use (Hypothesis' integers favour small values,
# which would leave nearly every position far from liquidation); beyond 25x is refused.
LEVERAGE_TENTHS = st.sampled_from([5, -5, 20, -20, 50, -50, 80, -80, 120, -120, 160, -160, 200, -200, 240, -240, 300, -300])

# Bounded risk-parameter changes the risk role makes: (max leverage, fee, initial, maintenance)
# per market; the last row is out of bounds (initial <= maintenance) and must be refused.
MARKET_PARAM_CHANGES = (
    (25, 5 * 10**14, 4 * 10**16, 2 * 10**16),
    (10, 10**15, 10 * 10**16, 5 * 10**16),
    (50, 2 * 10**14, 2 * 10**16, 10**16),
    (20, 5 * 10**14, 6 * 10**16, 3 * 10**16),
    (25, 5 * 10**14, 2 * 10**16, 2 * 10**16),
)
LIQUIDATION_PARAM_CHANGES = (
    FUZZ_LIQUIDATION,
    m.LiquidationParams(13 * 10**17, 8 * 10**17, 10**16, 10**16, 5 * WAD, 50 * WAD, 0),
    m.LiquidationParams(WAD, WAD, 0, 0, 0, 0, 0),
    m.LiquidationParams(2 * WAD, 3 * 10**17, 5 * 10**16, 2 * 10**16, 0, 10_000 * WAD, 1000 * WAD),
    m.LiquidationParams(11 * 10**17, 5 * 10**17, 5 * 10**15, 25 * 10**14, 300 * WAD, 250 * WAD, 0),
)


@dataclass
class Stats:
    steps: int = 0
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)  # (action, success | error)

    def coverage(self) -> str:
        """Per action: how often it succeeded and with which errors it was refused."""
        lines = []
        for label in sorted({label for label, _ in self.outcomes}):
            parts = sorted(((n, out) for (lab, out), n in self.outcomes.items() if lab == label), reverse=True)
            lines.append(f"{label:32} " + ", ".join(f"{out} {n}" for n, out in parts))
        return "\n".join(lines)


STATS = Stats()


def machine_for(world: World) -> type[RuleBasedStateMachine]:
    """The machine class bound to one deployed world (revm or a node)."""

    class ProtocolMachine(_Machine):
        WORLD = world

    return ProtocolMachine


def swarm_rules(rules: list[Any]) -> SearchStrategy[tuple[Any, dict[str, Any]]]:
    """Rule selection with swarm testing decided once per run.

    Hypothesis' own selection (6.170) disables a random subset of rules per run too, but decides
    lazily: every step draws a flag for each rule it considers and rejects disabled ones, about
    three extra draws a step and, in long runs, the choice buffer filling before 400 steps.
    Here the run's subset is drawn up front (a disabling probability, then one draw a rule; both
    shrink towards "everything enabled") and each step is one draw among the enabled rules,
    then the rule's arguments.
    """
    return _SwarmSteps(rules)


class _SwarmSteps(SearchStrategy[tuple[Any, dict[str, Any]]]):
    """`swarm_rules`' strategy, one per run. Its choices go straight onto the test's choice
    sequence (the swarm flags and the rule pick with `draw_integer`, each argument through its own
    strategy's `do_draw`): one span a step instead of one a choice, ~10% of a step. Each argument
    is drawn as its strategy draws it; replay and shrinking work on the choices as before."""

    def __init__(self, rules: list[Any]) -> None:
        super().__init__()
        self.rules = rules
        self.enabled: list[tuple[Any, list[tuple[str, SearchStrategy[Any]]]]] = []

    def do_draw(self, data: Any) -> tuple[Any, dict[str, Any]]:
        if not self.enabled:  # the run's first step: which rules it uses
            p = data.draw_integer(0, 254)
            enabled = [r for r in self.rules if data.draw_integer(0, 254) < 255 - p] or self.rules
            self.enabled = [(r, [(k, _unwrapped(s)) for k, s in r.arguments.items()]) for r in enabled]
        rule, arguments = self.enabled[data.draw_integer(0, len(self.enabled) - 1)] if len(self.enabled) > 1 \
            else self.enabled[0]
        return rule, {k: s.do_draw(data) for k, s in arguments}


def _unwrapped(strategy: SearchStrategy[Any]) -> SearchStrategy[Any]:
    while hasattr(strategy, "wrapped_strategy"):  # st.integers() and the like are lazy wrappers
        strategy = strategy.wrapped_strategy
    return strategy


class _Machine(RuleBasedStateMachine):
    WORLD: World

    def __init__(self) -> None:
        super().__init__()
        # Hypothesis draws each step from `_rules_strategy` (pinned hypothesis==6.170.15); the
        # machine has no bundles or preconditions, which that selection would honour.
        rules = self._rules_strategy.rules
        assert all(not r.bundles and not r.preconditions for r in rules)
        self._rules_strategy = swarm_rules(rules)
        self.w = self.WORLD
        self.w.chain.restore()
        self.g: Ghost = self.w.fresh_ghost()
        self.chain = self.w.chain
        self.n_accounts = self.w.n_accounts
        self.n_markets = len(self.w.feeds)
        self.clean = True  # no step has failed: the exit check at teardown is meaningful
        self.ref = [mk.feed.answer for mk in self.g.markets]
        self.checks = 0

    # ------------------------------------------------------------------ plumbing

    def act(self, label: str, sender: str, to: str, data: bytes, predict: Any) -> Any:
        """Runs `predict` on the ghost and the transaction on the chain; their outcomes must match."""
        self.clean = False
        try:
            result, expected = predict(), None
        except Rejected as rejected:
            result, expected = None, rejected.error
        try:
            self.chain.transact(sender, to, data)
            got = None
        except Reverted as reverted:
            got = self.w.artifacts.error_name(reverted.data)
            if got.startswith("<"):
                got += f" ({reverted.detail[:200]})"
        STATS.outcomes[(label, got or "ok")] += 1
        assert got == expected, f"{label}: the ghost predicted {expected or 'success'}, the chain gave {got or 'success'}"
        self.clean = True
        return expected is None and (result if result is not None else True)

    def owner(self, account: int) -> str:
        return self.w.owner_of(account)

    def price(self, market: int) -> int:
        """The last positive answer posted (bad rounds excepted): what traders size against."""
        return self.ref[market]

    def chain_account(self, account: int) -> tuple[int, int, int, int, int, int, int]:
        v = words(self.chain.call(self.w.engine, calldata(S["accountState"], account)))
        return (v[0], signed(v[1]), v[2], v[3], v[4], v[5], v[6])

    def check_account_matches(self, account: int) -> m.AccountState:
        """The mirror against the contract's view of one account (a differential check)."""
        mine = self.g.account_state(account)
        chain = self.chain_account(account)
        expected = (mine.margin, mine.equity, mine.initial_margin, mine.maintenance_margin, mine.notional,
                    mine.min_margin, mine.position_count)
        assert chain == expected, f"accountState({account}): chain {chain} != mirror {expected}"
        return mine

    # ------------------------------------------------------------------ traders

    @rule(a=st.integers(1, 6), amount=st.integers(0, 30_000))
    def deposit_margin(self, a: int, amount: int) -> None:
        owner = self.owner(a)
        self.act("depositMargin", owner, self.w.vault, calldata(S["depositMargin"], a, amount * USDC),
                 lambda: self.g.deposit_margin(owner, a, amount * USDC))

    @rule(a=st.integers(1, 6), per_mille=st.integers(0, 1100))
    def withdraw_margin(self, a: int, per_mille: int) -> None:
        owner = self.owner(a)
        amount = self.g.margin.get(a, 0) * per_mille // 1000
        if self.act("withdrawMargin", owner, self.w.vault, calldata(S["withdrawMargin"], a, amount, owner),
                    lambda: self.g.withdraw_margin(owner, a, amount)) and self.g.markets_of(a):
            state = self.check_account_matches(a)
            assert state.equity >= state.initial_margin, "a withdrawal left equity below initial margin"

    @rule(a=st.integers(1, 6), market=st.integers(0, 1), leverage_tenths=LEVERAGE_TENTHS)
    def trade(self, a: int, market: int, leverage_tenths: int) -> None:
        """Open, increase, decrease (or try to flip) by a size worth `leverage` times the margin."""
        margin_wad = max(self.g.margin.get(a, 0), 100 * USDC) * self.g.scale
        size = margin_wad * leverage_tenths // 10 * WAD // (self.price(market) * 10**10)
        self._modify(a, market, size, 0)

    @rule(a=st.integers(1, 6), market=st.integers(0, 1), leverage_tenths=LEVERAGE_TENTHS,
          slippage_bp=st.integers(-20, 100))
    def trade_with_limit(self, a: int, market: int, leverage_tenths: int, slippage_bp: int) -> None:
        margin_wad = max(self.g.margin.get(a, 0), 100 * USDC) * self.g.scale
        price = self.price(market) * 10**10
        size = margin_wad * leverage_tenths // 10 * WAD // price
        tolerance = slippage_bp if size > 0 else -slippage_bp  # a short's limit is a floor
        self._modify(a, market, size, price * (10_000 + tolerance) // 10_000)

    def held(self, pick: int) -> tuple[int, int]:
        """The `pick`-th open position (account, market), or an empty slot when none is open."""
        open_positions = sorted(self.g.positions)
        if not open_positions:
            return 1 + pick % self.n_accounts, pick % (self.n_markets + 1)
        return open_positions[pick % len(open_positions)]

    @rule(pick=st.integers(0, 11), percent=st.integers(1, 100))
    def decrease(self, pick: int, percent: int) -> None:
        a, market = self.held(pick)
        pos = self.g.positions.get((a, market))
        size = pos.size if pos else 10**15
        self._modify(a, market, -size * percent // 100, 0)

    def _modify(self, a: int, market: int, size: int, limit: int) -> None:
        owner = self.owner(a)
        before = self.g.positions.get((a, market))
        if self.act("modifyPosition", owner, self.w.engine, calldata(S["modifyPosition"], a, market, size, limit),
                    lambda: self.g.modify(owner, a, market, size, limit)):
            increased = before is None or (before.size > 0) == (size > 0)
            if increased:
                state = self.check_account_matches(a)
                assert state.equity >= state.initial_margin, "an increase left equity below initial margin"
                self._check_oi_cap(market, self.g.positions[(a, market)].size > 0)

    def _check_oi_cap(self, market: int, long_side: bool) -> None:
        """Invariant 2: after an increase, the traded side's open interest is within its cap."""
        mk = self.g.markets[market]
        oi = mk.state.long_oi if long_side else mk.state.short_oi
        cap = m.mul_div_down(self.g.pool * self.g.scale, mk.params.oi_cap_ratio, WAD)
        assert m.mul_div_up(oi, mk.feed.answer * 10**10, WAD) <= cap, "open interest above its cap"

    @rule(pick=st.integers(0, 11))
    def close(self, pick: int) -> None:
        a, market = self.held(pick)
        owner = self.owner(a)
        self.act("closePosition", owner, self.w.engine, calldata(S["closePosition"], a, market, 0),
                 lambda: self.g.close(owner, a, market))

    @rule(a=st.integers(0, 7), who=st.integers(0, 2), market=st.integers(0, 1))
    def act_on_someone_elses_account(self, a: int, who: int, market: int) -> None:
        sender = self.w.traders[who]
        self.act("modifyPosition(other)", sender, self.w.engine, calldata(S["modifyPosition"], a, market, 10**16, 0),
                 lambda: self.g.modify(sender, a, market, 10**16))
        self.act("withdrawMargin(other)", sender, self.w.vault, calldata(S["withdrawMargin"], a, 1, sender),
                 lambda: self.g.withdraw_margin(sender, a, 1))

    # ------------------------------------------------------------------ liquidity providers

    @rule(lp=st.integers(0, 1), amount=st.integers(0, 400_000))
    def lp_deposit(self, lp: int, amount: int) -> None:
        who = self.w.lps[lp]
        self.act("deposit", who, self.w.vault, calldata(S["deposit"], amount * USDC, who),
                 lambda: self.g.lp_deposit(who, amount * USDC))

    @rule(lp=st.integers(0, 1), per_mille=st.integers(0, 1000))
    def lp_redeem(self, lp: int, per_mille: int) -> None:
        who = self.w.lps[lp]
        shares = self.g.shares.get(who, 0) * per_mille // 1000
        self.act("redeem", who, self.w.vault, calldata(S["redeem"], shares, who, who),
                 lambda: self.g.lp_redeem(who, shares))

    @rule(lp=st.integers(0, 1), over=st.integers(0, 1))
    def lp_redeem_at_the_limit(self, lp: int, over: int) -> None:
        """ERC-4626's promise: `maxRedeem` (all the LP's shares, or what the reserve leaves free)
        can be redeemed, one share more cannot; the limit itself must be the model's."""
        who = self.w.lps[lp]
        try:
            limit: int | str = words(self.chain.call(self.w.vault, calldata(S["maxRedeem"], who)))[0]
        except Reverted as reverted:
            limit = self.w.artifacts.error_name(reverted.data)
        try:
            mine: int | str = self.g.max_redeem(who)
        except Rejected as rejected:
            mine = rejected.error
        assert limit == mine, f"maxRedeem: chain {limit} != model {mine}"
        if isinstance(limit, int):
            self.act("redeem at the limit", who, self.w.vault, calldata(S["redeem"], limit + over, who, who),
                     lambda: self.g.lp_redeem(who, limit + over))

    # ------------------------------------------------------------------ keepers

    @rule(keeper=st.integers(0, 2), pick=st.integers(0, 12))
    def liquidate(self, keeper: int, pick: int) -> None:
        """An account holding a position: for even picks an unhealthy one if the model knows of
        any (pick 12: an account that does not exist); keeper 2 is the account's owner: a
        self-liquidation."""
        unhealthy = [a for a, s in self._health(sorted({a for a, _ in self.g.positions})).items()
                     if s is not None and s.equity < s.maintenance_margin]
        if pick == 12:
            a = self.n_accounts + 1
        elif unhealthy and pick % 2 == 0:
            a = unhealthy[pick // 2 % len(unhealthy)]
        else:
            a = self.held(pick)[0]
        own = keeper == 2 and a <= self.n_accounts
        who = self.owner(a) if own else self.w.keepers[keeper % 2]
        before = self._health([a])
        wallet_before = self.g.balance.get(who, 0)
        p = self.act("liquidate", who, self.w.liquidator, calldata(S["liquidate"], a),
                     lambda: self.g.liquidate(who, a))
        if p:
            self._check_liquidation(a, p, before[a], wallet_before if own else None)

    @rule(keeper=st.integers(0, 1), ids=st.lists(st.integers(0, 8), max_size=4))
    def liquidate_batch(self, keeper: int, ids: list[int]) -> None:
        """Healthy, unknown and duplicate ids are skipped; only an all-healthy batch reverts."""
        who = self.w.keepers[keeper]
        before = self._health(ids)
        done = self.act("liquidateBatch", who, self.w.liquidator, S["liquidateBatch"] + uint_array(ids),
                        lambda: self.g.liquidate_batch(who, ids))
        if done:
            seen = set()
            for a, p in done:
                # A duplicate id is liquidated again only if the first pass left it unhealthy.
                self._check_liquidation(a, p, before[a] if a not in seen else p.before, None)
                seen.add(a)

    def _health(self, accounts: list[int]) -> dict[int, m.AccountState | None]:
        out: dict[int, m.AccountState | None] = {}
        for a in accounts:
            try:
                out[a] = self.g.account_state(a) if self.g.markets_of(a) else None
            except Rejected:  # an unreadable price: the liquidation must be refused for that reason
                out[a] = None
        return out

    def _check_liquidation(self, a: int, p: m.LiquidationPrediction, before: m.AccountState | None,
                           owner_wallet_before: int | None) -> None:
        """Invariants 3-5 for one liquidation: it was due, it made progress, the reward is
        bounded, a self-liquidation pays nothing, bad debt is covered exactly."""
        assert before is not None and before.equity < before.maintenance_margin, "a healthy account was liquidated"
        after = self.check_account_matches(a) if self.g.markets_of(a) else None
        if after is not None:
            assert not p.full, "a full liquidation left a position"
            assert after.equity * before.maintenance_margin > before.equity * after.maintenance_margin, (
                "a partial liquidation did not leave the account healthier"
            )
        assert p.reward_token <= m.keeper_reward(p.closed_notional, self.g.liq) // self.g.scale
        assert p.reward_token <= self.g.liq.max_reward // self.g.scale
        if owner_wallet_before is not None:
            owner = self.owner(a)
            value_after = after.equity if after else self.g.margin[a] * self.g.scale
            gained = (self.g.balance[owner] - owner_wallet_before) * self.g.scale + value_after
            assert gained <= max(before.equity, 0), "self-liquidation paid the owner more than closing"
        assert p.settlement is not None
        assert p.settlement.bad_debt == p.bad_debt and p.settlement.bad_debt_by_insurance <= p.bad_debt

    @rule(keeper=st.integers(0, 1))
    def keeper_sweep(self, keeper: int) -> None:
        """A keeper's batch over every account: exactly the unhealthy ones are liquidated."""
        self.liquidate_batch(keeper, list(range(1, self.n_accounts + 1)))

    # ------------------------------------------------------------------ the oracle and time

    @rule(market=st.integers(0, 1), bp=st.integers(-300, 300))
    def move_price(self, market: int, bp: int) -> None:
        self._post(market, max(self.price(market) * (10_000 + bp) // 10_000, 1))

    @rule(market=st.integers(0, 1), percent=st.integers(5, 60))
    def crash(self, market: int, percent: int) -> None:
        self._post(market, max(self.price(market) * (100 - percent) // 100, 1))

    @rule(market=st.integers(0, 1), percent=st.integers(5, 100))
    def spike(self, market: int, percent: int) -> None:
        self._post(market, self.price(market) * (100 + percent) // 100)

    @rule(pick=st.integers(0, 11), percent=st.sampled_from([3, 5, 8, 12, 20, 35, 50]))
    def move_against(self, pick: int, percent: int) -> None:
        """The price of an open position's market moves against it (liquidations follow)."""
        a, market = self.held(pick)
        pos = self.g.positions.get((a, market))
        if market < self.n_markets:
            down = pos is None or pos.size > 0
            self._post(market, max(self.price(market) * (100 - percent if down else 100 + percent) // 100, 1))
            self.keeper_sweep(0)  # keepers answer the price update

    def _post(self, market: int, answer: int) -> None:
        self.ref[market] = answer
        self.act("setPrice", self.w.admin, self.w.feeds[market], calldata(S["setPrice"], answer),
                 lambda: self.g.post_round(market, answer))

    @rule(market=st.integers(0, 1), kind=st.integers(0, 3))
    def bad_round(self, market: int, kind: int) -> None:
        """A zero, negative, stale or incomplete answer: everything reading it must refuse it."""
        price, now, f = self.price(market), self.g.now, self.g.markets[market].feed
        answer, updated, answered_in = {
            0: (0, now, 0),
            1: (-price, now, 0),
            2: (price, now - self.g.markets[market].fp.max_age - 1, 0),
            3: (price, now, f.round_id),  # answered in an earlier round than the new one
        }[kind]
        self.act("setRoundData", self.w.admin, self.w.feeds[market],
                 calldata(S["setRoundData"], answer, updated, updated, answered_in),
                 lambda: self.g.post_round(market, answer, updated, answered_in))

    @rule(market=st.integers(0, 1))
    def confirm_shock(self, market: int) -> None:
        self.act("confirmShock", self.w.admin, self.w.oracle, calldata(S["confirmShock"], self.w.feeds[market]),
                 lambda: self.g.confirm_shock(market))

    @rule(seconds=st.integers(1, 3_600))
    def wait(self, seconds: int) -> None:
        """Time passes (funding accrues) and the feeds post heartbeat rounds at the same price."""
        self._advance(seconds)
        for market in range(self.n_markets):
            self._post(market, self.price(market))

    @rule(hours=st.integers(1, 72))
    def wait_hours_in_silence(self, hours: int) -> None:
        """Hours pass with no oracle round: prices go stale and everything that needs one stops."""
        self._advance(hours * 3600)

    def _advance(self, seconds: int) -> None:
        self.g.now += seconds
        self.chain.set_time(self.g.now)

    @rule(market=st.integers(0, 1))
    def accrue_funding(self, market: int) -> None:
        self.act("accrueFunding", self.w.stranger, self.w.engine, calldata(S["accrueFunding"], market),
                 lambda: self.g.accrue_funding(market))

    # ------------------------------------------------------------------ roles

    @rule(market=st.integers(0, 1), choice=st.integers(0, len(MARKET_PARAM_CHANGES) - 1))
    def set_market_params(self, market: int, choice: int) -> None:
        lev, fee, im, mm = MARKET_PARAM_CHANGES[choice]
        params = replace(self.g.markets[market].params, max_leverage=lev, trading_fee=fee,
                         initial_margin_ratio=im, maintenance_margin_ratio=mm)
        data = S["setMarketParams"] + calldata(b"", market, *market_params_words(self.w.feeds[market], params))
        self.act("setMarketParams", self.w.admin, self.w.engine, data,
                 lambda: self.g.set_market_params(market, params))

    @rule(choice=st.integers(0, len(LIQUIDATION_PARAM_CHANGES) - 1))
    def set_liquidation_params(self, choice: int) -> None:
        p = LIQUIDATION_PARAM_CHANGES[choice]
        data = calldata(S["setParams"], p.target_health, p.max_partial_share, p.penalty_ratio, p.reward_ratio,
                        p.min_reward, p.max_reward, p.min_leftover_notional)
        self.act("setParams", self.w.admin, self.w.liquidator, data, lambda: self.g.set_liquidation_params(p))

    @rule(a=st.integers(1, 6), market=st.integers(0, 1), leverage_tenths=LEVERAGE_TENTHS)
    def trade_while_paused(self, a: int, market: int, leverage_tenths: int) -> None:
        """The pause stops increases only: reducing, closing, withdrawing, liquidating go on."""
        self.act("pause", self.w.admin, self.w.engine, S["pause"], lambda: self._set_paused(True))
        self.trade(a, market, leverage_tenths)
        self.decrease(a, 50)
        self.act("unpause", self.w.admin, self.w.engine, S["unpause"], lambda: self._set_paused(False))

    def _set_paused(self, paused: bool) -> None:
        if self.g.paused == paused:
            raise Rejected("EnforcedPause" if paused else "ExpectedPause")
        self.g.paused = paused

    @rule(action=st.integers(0, 4))
    def stranger_calls_a_role_function(self, action: int) -> None:
        target, data = [
            (self.w.engine, S["pause"]),
            (self.w.engine, S["setMarketParams"] + calldata(b"", 0, *market_params_words(self.w.feeds[0], self.g.markets[0].params))),
            (self.w.oracle, calldata(S["confirmShock"], self.w.feeds[0])),
            (self.w.vault, calldata(S["claimProtocolFees"], self.w.stranger, 1)),
            (self.w.feeds[1], calldata(S["setPrice"], 1)),
        ][action]
        self.act("role-gated call by a stranger", self.w.stranger, target, data,
                 lambda: refuse("AccessControlUnauthorizedAccount"))

    @rule(amount=st.integers(0, 5_000))
    def fund_insurance(self, amount: int) -> None:
        def predict() -> None:
            if amount == 0:
                raise Rejected("ZeroAmount")
            self.g._transfer(self.w.admin, self.g.vault, amount * USDC)
            self.g.insurance += amount * USDC

        self.act("fundInsurance", self.w.admin, self.w.vault, calldata(S["fundInsurance"], amount * USDC), predict)

    @rule(amount=st.integers(1, 10_000))
    def donate(self, amount: int) -> None:
        """Tokens sent straight to the vault are nobody's: no ledger, no share price moves."""
        self.act("transfer", self.w.stranger, self.w.token, calldata(S["transfer"], self.w.vault, amount),
                 lambda: self.g.donate(self.w.stranger, amount))

    @rule(per_mille=st.integers(1, 1000))
    def claim_protocol_fees(self, per_mille: int) -> None:
        amount = self.g.fees * per_mille // 1000

        def predict() -> None:
            if amount == 0:
                raise Rejected("ZeroAmount")
            self.g.fees -= amount
            self.g._transfer(self.g.vault, self.w.admin, amount)

        self.act("claimProtocolFees", self.w.admin, self.w.vault,
                 calldata(S["claimProtocolFees"], self.w.admin, amount), predict)

    # ------------------------------------------------------------------ invariants

    @invariant()
    def agrees_with_ghost(self) -> None:
        """Invariants 1, 2 and 5 on the chain, through the ghost: every ledger, market state,
        margin and position equals the model's, and the model's own books balance."""
        if self.checks:
            STATS.steps += 1  # Hypothesis checks invariants once before the first step, then after each
        self.checks += 1
        g = self.g
        # In process the slots are compared as stored (the ghost packed); on a node, or to name
        # what differs, the lens' words.
        if not (self.w.in_process and self.w.storage_words() == packed(g, self.n_accounts)):
            chain, expected = self.w.state_words(), self.ghost_words()
            if chain != expected:
                names = self.word_names()
                diff = [f"{n}: chain {signed(c)} != ghost {signed(e)}"
                        for n, c, e in zip(names, chain, expected, strict=True) if c != e]
                raise AssertionError("the chain left the ghost: " + "; ".join(diff))
            assert not self.w.in_process, "storage and the packed ghost differ while their words agree: fix packed()"
        # 1. Solvency identity: the balance is every ledger plus what was donated.
        assert g.balance.get(g.vault, 0) == sum(g.margin.values()) + g.pool + g.insurance + g.fees + g.donated
        # 5. Bad debt: insurance + pool cover exactly the realised shortfall.
        assert g.bad_debt == g.bad_by_insurance + g.bad_by_pool
        for mk in range(self.n_markets):
            # 2. Open interest per side is the sum of the sizes; the aggregate cost likewise.
            s = g.markets[mk].state
            sizes = [p.size for (_, pm), p in g.positions.items() if pm == mk]
            assert s.long_oi == sum(x for x in sizes if x > 0) and s.short_oi == -sum(x for x in sizes if x < 0)
            assert s.net_cost == sum(p.cost for (_, pm), p in g.positions.items() if pm == mk)

    def ghost_words(self) -> list[int]:
        """The ghost in the lens's layout (words; signed values as two's complement)."""
        g, u = self.g, 2**256
        out = [g.balance.get(g.vault, 0), sum(g.margin.values()), g.pool, g.insurance, g.fees, g.supply,
               g.bad_debt, g.bad_by_insurance, g.bad_by_pool, g.unpaid]
        for mk in g.markets:
            s = mk.state
            out += [s.long_oi, s.short_oi, s.long_index % u, s.short_index % u, s.net_cost % u,
                    s.last_funding_time, s.mmr_ramp_start, s.mmr_ramp_from]
        none = m.Position()
        for a in range(1, self.n_accounts + 1):
            out.append(g.margin.get(a, 0))
            for mk in range(self.n_markets):
                p = g.positions.get((a, mk), none)
                out += [p.size % u, p.cost % u]
        return out

    def word_names(self) -> list[str]:
        names = ["vault balance", "total margin", "pool", "insurance", "protocol fees", "lvLP supply",
                 "bad debt", "bad debt by insurance", "bad debt by pool", "unpaid profit"]
        for mk in range(self.n_markets):
            names += [f"market {mk} {f}" for f in ("long OI", "short OI", "long index", "short index", "net cost",
                                                   "last funding", "mmr ramp start", "mmr ramp from")]
        for a in range(1, self.n_accounts + 1):
            names.append(f"margin {a}")
            for mk in range(self.n_markets):
                names += [f"position ({a}, {mk}) size", f"position ({a}, {mk}) cost"]
        return names

    # ------------------------------------------------------------------ the end of a run

    def teardown(self) -> None:
        if self.clean:
            self.everyone_exits()

    def everyone_exits(self) -> None:
        """Invariant 6: with fresh prices, every trader closes and withdraws, the admin claims
        the fees, every LP redeems; all must succeed and the vault keeps only the insurance fund,
        donations and dust."""
        for mk in range(self.n_markets):
            self._post(mk, min(max(self.price(mk), 1), self.g.max_answer(mk)))
            self.confirm_shock(mk)
        for a in range(1, self.n_accounts + 1):
            for mk in self.g.markets_of(a):
                assert self.act("exit: close", self.owner(a), self.w.engine, calldata(S["closePosition"], a, mk, 0),
                                lambda a=a, mk=mk: self.g.close(self.owner(a), a, mk))
            margin = self.g.margin.get(a, 0)
            if margin:
                owner = self.owner(a)
                assert self.act("exit: withdraw", owner, self.w.vault, calldata(S["withdrawMargin"], a, margin, owner),
                                lambda a=a, margin=margin, owner=owner: self.g.withdraw_margin(owner, a, margin))
        if self.g.fees:
            self.claim_protocol_fees(1000)
        # What the pool may keep once every LP has left: the vault's virtual shares' part of it
        # (OpenZeppelin's inflation defence; it grows with the share price), plus under a unit
        # per LP from each redemption's rounding down.
        virtual = (self.g.total_assets() + 1) * VIRTUAL_SHARES // (self.g.supply + VIRTUAL_SHARES)
        dust = virtual + 1 + len(self.w.lps)
        for lp in self.w.lps:
            shares = self.g.shares.get(lp, 0)
            if shares and self.g.max_redeem(lp) < shares:
                raise AssertionError(f"an LP cannot redeem all its shares: {self.g.max_redeem(lp)} < {shares}")
            if shares and shares * (self.g.total_assets() + 1) // (self.g.supply + VIRTUAL_SHARES) > 0:
                assert self.act("exit: redeem", lp, self.w.vault, calldata(S["redeem"], shares, lp, lp),
                                lambda lp=lp, shares=shares: self.g.lp_redeem(lp, shares))
        self.checks = 0  # the exit is not a step
        self.agrees_with_ghost()
        assert sum(self.g.margin.values()) == 0 and not self.g.positions
        assert self.g.fees == 0 and self.g.pool <= dust, f"the pool kept {self.g.pool} (> {dust}) after every LP left"
        assert self.g.balance[self.g.vault] == self.g.insurance + self.g.donated + self.g.pool


def refuse(error: str) -> None:
    raise Rejected(error)
