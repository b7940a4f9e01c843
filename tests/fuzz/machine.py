"""The fuzz machine: traders, LPs, keepers, adversaries, the oracles, time and the risk role act on
the chain and on the ghost; after every step they must agree, and the economic invariants must
hold.

**Agreement.** Every action asks the ghost first: it either moves (the transaction must succeed)
or names the custom error the transaction must revert with. After every step the ledgers, the
market and oracle states and everything the step touched are compared word for word (the whole
state every `FULL_CHECK_EVERY` steps and at the end).

**Economics.** The invariants in `ECONOMIC_INVARIANTS` are computed from first principles - token
balances before and after, the publication history, event data, the contracts' views - never from
`lever.math` (which only picks the accounts `set_market_params` checks). Ten adversaries
(`ADVERSARIES`) each follow a strategy against them.

**Swarm.** Each run enables a random subset of the actions (drawn once, by `@initialize`), then
each `@rule` draws the bytes of `STEPS_PER_RULE` steps: each step an action and three integers
that the action maps onto its own arguments. Hypothesis' public API only.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cache
from operator import attrgetter
from typing import Any

from backends import Reverted
from ghost import Blob, Claim, Fill, Ghost, Kind, Refused, State
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule
from world import ACCOUNT_MARGIN, LP_FUNDS, MAX_UINT, TRADER_FUNDS, USDC, WAD, Prices, World

from lever import math as m
from lever.math.oracle import OracleState

_FOUR_U16 = struct.Struct(">4H")  # a step's action pick and three arguments, big-endian
PYTH_SCALE = 10**10  # Pyth prices at expo -8 to WAD
FULL_CHECK_EVERY = 25
STEPS_PER_RULE = 8
VALUE = 100  # wei sent with every transaction that carries price updates (1 wei each; the rest comes back)

# The economic invariants, each with the attack it rules out (the README lists the same).
ECONOMIC_INVARIANTS = {
    "fill_at_first_eligible_price": "an order fills only at the earliest price published at or after its commit "
    "(a conditional order: its trigger) plus the delay, and a conditional order only once triggered (latency "
    "arbitrage, a keeper choosing the price)",
    "lp_priced_at_first_eligible_price": "an LP request settles only at the earliest prices published after it plus "
    "the delay (an LP trading on a price it already knows)",
    "round_trip_gains_nothing": "opening and closing with no price change in between gains at most the funding the "
    "position received (an arbitrageur who knows the next price)",
    "deposit_worth_what_was_paid": "right after a deposit settles, its shares are worth at most what was paid, and at "
    "least that less a token unit of rounding (a JIT LP buying the pool cheap)",
    "settlements_never_dilute": "a deposit or redemption settling never lowers the value of a share held by the other "
    "LPs (an LP moving its loss onto the others)",
    "bad_debt_only_in_liquidation": "bad debt appears only in a liquidation of an account whose equity was negative; "
    "an account without positions never owes (a cross-margin account closing its losing leg first)",
    "close_order_independent": "closing an account's legs in either order pays the same total (a dumper choosing the "
    "order of its closes)",
    "funding_bounded_by_payers_rate": "a position receives at most the paying side's rate on its own notional (funding "
    "captured by dust on the minority side)",
    "reserves_cover_profits": "the pool's assets always cover every side's reserve, bad debt or not (winners left "
    "unpaid by LPs who leave first)",
    "self_liquidation_unprofitable": "an owner liquidating its own account ends with no more than before (a "
    "self-liquidator farming the keeper reward)",
    "parameter_change_never_liquidates": "no account healthy before a parameter change is liquidatable right after it "
    "(a risk change that liquidates by surprise)",
    "redeemer_shares_bad_debt": "an LP that asked to redeem while an account was underwater is paid no more per share "
    "than the pool is worth once keepers have liquidated it (an LP redeeming ahead of a known liquidation)",
    "everyone_can_exit": "after closing everything every account withdraws its margin and every LP redeems; the "
    "vault keeps only the insurance fund, the protocol's fees and dust (funds stuck or owed twice)",
}

ADVERSARIES = (
    "latency_arbitrageur",
    "jit_lp",
    "cross_margin_dumper",
    "funding_sniper",
    "cap_blocker",
    "choosy_keeper",
    "self_liquidator",
    "redeemer_ahead_of_liquidation",
    "stop_straddler",
    "lp_run",
)


class EconomicViolation(AssertionError):
    """An economic invariant failed: someone gained at another's expense."""

    def __init__(self, invariant: str, detail: str):
        super().__init__(f"{invariant}: {detail}")
        self.invariant = invariant


def require(invariant: str, ok: bool, detail: Callable[[], str]) -> None:
    STATS.checks[invariant] += 1
    if not ok:
        raise EconomicViolation(invariant, detail())


@dataclass
class Stats:
    steps: int = 0
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    checks: Counter[str] = field(default_factory=Counter)
    swarms: list[frozenset[str]] = field(default_factory=list)  # the actions each example enabled

    def coverage(self) -> str:
        lines = []
        for label in sorted({label for label, _ in self.outcomes}):
            parts = sorted(((n, out) for (lab, out), n in self.outcomes.items() if lab == label), reverse=True)
            lines.append(f"{label:30} " + ", ".join(f"{out} {n}" for n, out in parts[:6]))
        lines.append("economic checks: " + ", ".join(f"{k} {v}" for k, v in sorted(self.checks.items())))
        return "\n".join(lines)


STATS = Stats()

# The ghost's per-key ledgers, compared key by key after the steps that touch them.
_LEDGERS = (
    "margin",
    "accounts",
    "positions",
    "orders",
    "pending_deposit",
    "pending_redeem",
    "claim_deposit",
    "claim_redeem",
    "shares",
    "balances",
)


_MISSING = object()


@cache
def _topic(art: Any, contract: str, event: str) -> bytes:
    """An event's topic (a keccak: computed once per event)."""
    return bytes(art.topic(contract, event))


class Driver:
    """The chain, the ghost beside it and the publications: every action goes through `act`."""

    def __init__(self, world: World, state: State, prices: Prices, now: int):
        self.w = world
        self.chain = world.chain
        self.g = Ghost(world.settings, state, now)
        self.prices = prices
        self.truth = [p.publications[-1].price if p.publications else 0 for p in prices.feeds]
        self.clean = True
        self.steps = 0
        self.touched: set[Any] = set()
        self.liquidating = False  # a liquidation ran this step (the only place bad debt may appear)
        self.sent = False  # a transaction was sent this step (otherwise the chain did not change)
        self.bad_debt = state.bad_debt
        self._ghost_scalars = attrgetter(*world.observer.scalar_names)  # the ghost's, in the chain's order

    # ------------------------------------------------------------------ plumbing

    def act(
        self, label: str, sender: str, to: str, data: bytes, predict: Callable[[State], Any], value: int = 0
    ) -> Any:
        """Runs `predict` on the ghost and the transaction on the chain; their outcomes must match.
        Returns the ghost's result (True if it returns nothing), or None if and only if refused."""
        self.clean = False
        self.sent = True
        before = self.g.s
        try:
            result, expected = self.g.act(predict), None
        except Refused as refused:
            result, expected = None, refused.error
        try:
            self.chain.transact(sender, to, data, value)
            got = None
        except Reverted as reverted:
            got = self.w.art.error_name(reverted.data)
            if got.startswith("<"):
                got += f" ({reverted.detail[:300]})"
        STATS.outcomes[(label, got or "ok")] += 1
        assert got == expected, (
            f"{label}: the ghost predicted {expected or 'success'}, the chain gave {got or 'success'}"
        )
        self._note_touched(before, self.g.s)
        if "iquidat" in label and expected is None:
            self.liquidating = True
            _check_bad_debt(self)
        self.clean = True
        if expected is not None:
            return None
        return True if result is None else result

    def _note_touched(self, before: State, after: State) -> None:
        """Every key whose value in one of the ledgers is not the same object as before (added,
        replaced or removed): what `check_step` compares."""
        add = self.touched.add
        for name in _LEDGERS:
            old, new = getattr(before, name), getattr(after, name)
            if old is new:
                continue
            get, added = old.get, 0
            for key, value in new.items():
                was = get(key, _MISSING)
                if was is not value:
                    add((name, key))
                    added += was is _MISSING
            if len(new) - added < len(old):  # some key was removed
                for key in old.keys() - new.keys():
                    if old[key] is not None:
                        add((name, key))

    def now(self) -> int:
        return self.g.now

    def set_time(self, t: int) -> None:
        self.chain.set_time(t)
        self.g.now = t

    def wait_seconds(self, seconds: int) -> None:
        if seconds > 0:
            self.set_time(self.now() + seconds)

    def tx(self, contract: str, function: str, *args: Any) -> bytes:
        return self.w.calls.encode(contract, function, *args)

    def view(self, contract: str, address: str, function: str, *args: Any) -> Any:
        out = self.chain.call(address, self.tx(contract, function, *args))
        return self.w.calls.decode(contract, function, out)

    def view_words(self, contract: str, address: str, function: str, *args: Any) -> list[int]:
        """A view's return words, as signed integers (static return types only)."""
        out = self.chain.call(address, self.tx(contract, function, *args))
        words = [int.from_bytes(out[i : i + 32], "big") for i in range(0, len(out), 32)]
        return [w - 2**256 if w >> 255 else w for w in words]

    def owner(self, account: int) -> str:
        return self.w.owner_of(account)

    def account_of(self, a: int) -> int:
        return self.w.accounts[a % len(self.w.accounts)]

    def market_of(self, b: int) -> int:
        return b % self.w.n_markets

    def price_wad(self, market: int) -> int:
        return self.truth[market] * PYTH_SCALE

    def claim(self, who: str, accounts: list[int]) -> int:
        """What `who` can take out, in tokens: its wallet and the margin of `accounts` (a debt is
        the account's, not its owner's: margin counts from zero)."""
        return self.g.s.balances.get(who, 0) + sum(max(self.g.s.margin.get(a, 0), 0) for a in accounts)

    # ------------------------------------------------------------------ prices

    def publish(self, market: int, price: int, conf: int = 0) -> Blob:
        """Publishes `price` at now (a second later if the feed already published this second)."""
        last = self.prices.published(market)
        if last and last[-1].publish_time >= self.now():
            self.set_time(last[-1].publish_time + 1)
        self.truth[market] = price
        return self.prices.publish(market, price, self.now(), conf)

    def publish_all(self) -> None:
        t = self.now()
        if any(p and p[-1].publish_time >= t for p in (self.prices.published(i) for i in range(self.w.n_markets))):
            self.set_time(t + 1)
        for market in range(self.w.n_markets):
            self.publish(market, self.truth[market])

    def set_reference(self, market: int, answer: int | None = None) -> None:
        """A new reference round at the true price (feeds have 8 decimals, as Pyth's expo -8)."""
        answer = self.truth[market] if answer is None else answer
        self.act(
            "reference.setPrice",
            self.w.admin,
            self.w.feeds[market],
            self.tx("MockPriceFeed", "setPrice", answer),
            lambda s: self.g.set_round(s, market, answer, self.now(), 0),
        )

    def latest_blobs(self) -> list[Blob]:
        return [b for b in (self.prices.latest(i) for i in range(self.w.n_markets)) if b is not None]

    @staticmethod
    def updates(blobs: list[Blob]) -> list[tuple[int, bytes]]:
        return [(b.market, b.data) for b in blobs]

    # ------------------------------------------------------------------ order helpers

    def commit(
        self,
        account: int,
        market: int,
        size: int,
        acceptable: int = 0,
        fee: int = USDC // 10,
        label: str = "commitOrder",
    ) -> int | None:
        owner = self.owner(account)
        return self.act(
            label,
            owner,
            self.w.book,
            self.tx("OrderBook", "commitOrder", account, market, size, acceptable, fee),
            lambda s: self.g.place(s, owner, account, market, Kind.MARKET, size, 0, acceptable, fee),
        )

    def request_redeem(self, lp: str, shares: int, label: str = "requestRedeem") -> Any:
        """`lp` asks to redeem `shares` of its own (ERC-7540 requestRedeem); None if refused."""
        return self.act(
            label,
            lp,
            self.w.vault,
            self.tx("LeverVault", "requestRedeem", shares, lp, lp),
            lambda s: self.g.request_redeem(s, lp, shares),
        )

    def due_orders(self) -> list[tuple[int, Blob | None]]:
        """Pending market and triggered orders whose eligible price exists, with it; and the
        conditional orders waiting for their trigger."""
        out = []
        for (account, _slot), o in sorted(self.g.s.orders.items()):
            if o.as_market:
                start = o.updated_at + self.w.settings.order_delay
                if self.now() < start:
                    continue
                out.append((o.order_id, self.prices.at_or_after(o.market_id, start)))
            else:
                out.append((o.order_id, None))
        return out

    def settle(
        self, ids: list[int], blobs: list[Blob | None], latest: list[Blob], keeper: str, label: str = "settleOrders"
    ) -> int | None:
        before = {o.order_id: o for o in self.g.s.orders.values()}
        data = self.tx("OrderBook", "settleOrders", ids, [b.data if b else b"" for b in blobs], self.updates(latest))
        out = self.act(
            label,
            keeper,
            self.w.book,
            data,
            lambda s: self.g.settle_orders(s, keeper, ids, blobs, latest, VALUE),
            value=VALUE,
        )
        if out is not None:
            self.check_fills(before, self.g.fills)
        return out

    def settle_all(self, keeper: str | None = None) -> None:
        """The honest keeper's order job: every due order with its eligible price, latest prices
        for conditional orders."""
        due = self.due_orders()
        if due:
            self.settle([i for i, _ in due], [b for _, b in due], self.latest_blobs(), keeper or self.w.keepers[0])

    # ------------------------------------------------------------------ economic checks from first principles

    def check_fills(self, before: dict[int, Any], fills: list[Fill]) -> None:
        """`fill_at_first_eligible_price`, from the chain's OrderSettled events and the publication history."""
        topic = _topic(self.w.art, "OrderBook", "OrderSettled")
        events = [log for log in self.chain.logs if log.topics and log.topics[0] == topic]
        require(
            "fill_at_first_eligible_price",
            len(events) == len(fills),
            lambda: f"{len(events)} OrderSettled events, {len(fills)} fills predicted",
        )
        delay = self.w.settings.order_delay
        for log in events:
            order_id = int.from_bytes(log.topics[1], "big")
            words = [int.from_bytes(log.data[i : i + 32], "big") for i in range(0, len(log.data), 32)]
            publish_time = words[3]  # kind, sizeDelta, fillPrice, publishTime, settler, fee
            o = before[order_id]
            first = self.prices.at_or_after(o.market_id, o.updated_at + delay)
            require(
                "fill_at_first_eligible_price",
                o.as_market and first is not None and publish_time == first.publish_time,
                lambda: (
                    f"order {order_id} ({o.kind.name}, triggered {o.triggered}) of {o.updated_at} "
                    f"filled at a price of {publish_time}"
                ),
            )

    def check_step(self) -> None:
        """Agreement on the ledgers, markets, oracles and whatever the step touched."""
        obs, s = self.w.observer, self.g.s
        chain = obs.scalars_tuple(0)
        if chain != self._ghost_scalars(s):  # the same test, field by field, with the first difference
            for name, value in zip(obs.scalar_names, chain, strict=True):
                mine = getattr(s, name)
                assert value == int(mine), f"{name}: chain {value} != ghost {int(mine)}"
        scalars = dict(zip(obs.scalar_names, chain, strict=True))
        for i in range(self.w.n_markets):
            assert _same(obs.market_tuple(i), s.markets[i], m.MarketState), (
                f"market {i}: chain {obs.market(i)} != ghost {s.markets[i]}"
            )
            assert _same(obs.oracle_tuple(i), s.oracle[i], OracleState), (
                f"oracle {i}: chain {obs.oracle_state(i)} != ghost {s.oracle[i]}"
            )
        assert obs.balance(self.w.vault) == s.balances.get(self.w.vault, 0), "the vault's token balance"
        compare = self._compare
        for name, key in self.touched:
            compare(name, key)
            if name == "margin" and not s.accounts[key].mask:
                require(
                    "bad_debt_only_in_liquidation",
                    s.margin.get(key, 0) >= 0,
                    lambda key=key: f"account {key} has no positions and owes {-s.margin[key]}",
                )
        self.touched.clear()
        require(
            "bad_debt_only_in_liquidation",
            self.liquidating or scalars["bad_debt"] == self.bad_debt,
            lambda: f"bad debt grew from {self.bad_debt} to {scalars['bad_debt']} outside a liquidation",
        )
        self.bad_debt, self.liquidating = scalars["bad_debt"], False
        require(
            "reserves_cover_profits",
            scalars["pool"] * self.w.settings.token_scale >= scalars["total_reserve"],
            lambda: f"pool {scalars['pool']} < reserve {scalars['total_reserve']}",
        )

    def _compare(self, name: str, key: Any) -> None:
        obs, s = self.w.observer, self.g.s
        if name == "margin":
            margin, pending = obs.margin_tuple(key)
            assert margin == s.margin.get(key, 0), f"margin {key}: chain {margin} != ghost {s.margin.get(key, 0)}"
            assert pending == s.pending_orders(key), (
                f"pending orders of {key}: chain {pending} != ghost {s.pending_orders(key)}"
            )
        elif name == "pending_orders":
            chain = obs.pending_orders(key)
            assert chain == s.pending_orders(key), (
                f"pending orders of {key}: chain {chain} != ghost {s.pending_orders(key)}"
            )
        elif name == "accounts":
            assert obs.account(key) == s.accounts.get(key), (
                f"account {key}: chain {obs.account(key)} != ghost {s.accounts.get(key)}"
            )
        elif name == "positions":
            assert _same(obs.position_tuple(*key), s.positions.get(key, _NO_POSITION), m.Position), (
                f"position {key}: chain {obs.position(*key)} != ghost {s.positions.get(key)}"
            )
        elif name == "orders":
            account, slot = key
            chain = obs.order(account, slot)
            assert chain == s.orders.get(key), f"order {key}: chain {chain} != ghost {s.orders.get(key)}"
            self._compare("pending_orders", account)
        elif name in ("pending_deposit", "pending_redeem"):
            chain = obs.request(key, name == "pending_deposit")
            assert chain == getattr(s, name).get(key), (
                f"{name} {key}: chain {chain} != ghost {getattr(s, name).get(key)}"
            )
        elif name in ("claim_deposit", "claim_redeem"):
            chain_claim = obs.claim_tuple(key, name == "claim_deposit")
            assert _same(chain_claim, getattr(s, name).get(key, _NO_CLAIM), Claim), (
                f"{name} {key}: chain {obs.claim(key, name == 'claim_deposit')}"
            )
        elif name == "shares":
            assert obs.shares(key) == s.shares.get(key, 0), (
                f"shares {key}: chain {obs.shares(key)} != ghost {s.shares.get(key, 0)}"
            )
        elif name == "balances":
            assert obs.balance(key) == s.balances.get(key, 0), (
                f"balance {key}: chain {obs.balance(key)} != ghost {s.balances.get(key, 0)}"
            )

    def check_everything(self) -> None:
        s, obs = self.g.s, self.w.observer
        for a in self.w.accounts:
            self._compare("margin", a)
            self._compare("accounts", a)
            for i in range(self.w.n_markets):
                self._compare("positions", (a, i))
            chain_orders = obs.orders(a)
            mine = {slot: o for (acc, slot), o in s.orders.items() if acc == a}
            assert chain_orders == mine, f"orders of {a}: chain {chain_orders} != ghost {mine}"
        for who in self.w.actors:
            self._compare("balances", who)
            self._compare("shares", who)
        for lp in self.w.lps:
            for name in ("pending_deposit", "pending_redeem", "claim_deposit", "claim_redeem"):
                self._compare(name, lp)
        for i in range(self.w.n_markets):
            assert _same(obs.params_tuple(i), s.params[i], m.MarketParams), f"params {i}: chain {obs.params(i)}"
            if s.prev[i] is not None:
                assert _same(obs.params_tuple(i, previous=True), s.prev[i], m.MarketParams), (
                    f"previous params {i}: chain {obs.params(i, previous=True)}"
                )
        assert _same(obs.liquidation_tuple(), s.liquidation, m.LiquidationParams), (
            f"liquidation params: chain {obs.liquidation_params()}"
        )
        # The contracts' views against the mirror's formulas: equity and margins of every account,
        # the pool's value (the storage comparison above does not run the views' arithmetic).
        for a in self.w.accounts:
            if s.accounts.get(a) and s.accounts[a].mask:
                chain_state = self.view_words("PerpEngine", self.w.engine, "accountState", a)
                mine = self.g.account_state(s, a)
                expected = [
                    mine.margin,
                    mine.equity,
                    mine.initial_margin,
                    mine.maintenance_margin,
                    mine.notional,
                    mine.min_margin,
                    mine.position_count,
                ]
                assert chain_state == expected, f"accountState({a}): chain {chain_state} != mirror {expected}"
        total = self.view_words("LeverVault", self.w.vault, "totalAssets")[0]
        assert total == self.g.total_assets(s), f"totalAssets: chain {total} != mirror {self.g.total_assets(s)}"
        for i in range(self.w.n_markets):
            assert _same(obs.oracle_tuple(i), s.oracle[i], OracleState), f"oracle {i}: chain {obs.oracle_state(i)}"


_NO_POSITION = m.Position()
_NO_CLAIM = Claim()
_FIELDS: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


def _same(chain: tuple[int, ...], mine: Any, kind: type) -> bool:
    """`kind(*chain) == mine`, without building the dataclass: the same class, the same fields."""
    if type(mine) is not kind:
        return False
    fields = _FIELDS.get(kind)
    if fields is None:
        names = list(kind.__dataclass_fields__)  # type: ignore[attr-defined]
        getter = attrgetter(*names)
        fields = _FIELDS[kind] = getter if len(names) > 1 else (lambda v, g=getter: (g(v),))
    return fields(mine) == chain


# =========================================================================== actions
# Each takes three integers in [0, 65535] and maps them onto its arguments.

LEVERAGE_TENTHS = (5, 20, 50, 80, 120, 160, 200, 240, 300)


def sized(machine: Driver, account: int, market: int, choice: int) -> int:
    """A size worth a leverage (in tenths) times the account's margin; the low bit is the side."""
    tenths = LEVERAGE_TENTHS[(choice >> 1) % len(LEVERAGE_TENTHS)]
    margin = max(machine.g.s.margin.get(account, 0), 100 * USDC) * machine.w.settings.token_scale
    size = margin * tenths // 10 * WAD // machine.price_wad(market)
    return size if choice & 1 else -size


def deposit_margin(machine: Driver, a: int, b: int, c: int) -> None:
    account = machine.account_of(a)
    owner = machine.owner(account)
    amount = (b % 20_000) * USDC if c % 8 else 0
    machine.act(
        "depositMargin",
        owner,
        machine.w.vault,
        machine.tx("LeverVault", "depositMargin", account, amount),
        lambda s: machine.g.deposit_margin(s, owner, account, amount),
    )


def withdraw_margin(machine: Driver, a: int, b: int, c: int) -> None:
    account = machine.account_of(a)
    owner = machine.owner(account) if c % 16 else machine.w.stranger
    amount = max(machine.g.s.margin.get(account, 0), 0) * (b % 1100) // 1000
    machine.act(
        "withdrawMargin",
        owner,
        machine.w.vault,
        machine.tx("LeverVault", "withdrawMargin", account, amount, owner),
        lambda s: machine.g.withdraw_margin(s, owner, account, amount),
    )


def commit_order(machine: Driver, a: int, b: int, c: int) -> None:
    account, market = machine.account_of(a), machine.market_of(b)
    size = sized(machine, account, market, b >> 1)
    slippage = (0, 0, 5, 50, 300)[c % 5]  # in basis points; 0: no limit
    price = machine.price_wad(market)
    acceptable = 0 if slippage == 0 else price * (10_000 + slippage if size > 0 else 10_000 - slippage) // 10_000
    fee = (USDC // 20, USDC // 10, USDC, 20 * USDC, 21 * USDC, USDC // 100)[(c >> 3) % 6]
    machine.commit(account, market, size, acceptable, fee)


def close_position(machine: Driver, a: int, b: int, c: int) -> None:
    account, market = machine.account_of(a), machine.market_of(b)
    size = machine.g.s.positions.get((account, market), m.Position()).size
    part = (1, 2, 4)[c % 3]
    machine.commit(account, market, -size // part if size else (b % 7 + 1) * 10**15, label="commitOrder.close")


def place_conditional(machine: Driver, a: int, b: int, c: int) -> None:
    account, market = machine.account_of(a), machine.market_of(b)
    kind = (Kind.LIMIT, Kind.STOP_LOSS, Kind.TAKE_PROFIT)[(b >> 1) % 3]
    pos = machine.g.s.positions.get((account, market), m.Position())
    price = machine.price_wad(market)
    offset = (c % 600) - 300  # basis points around the price
    trigger = max(price * (10_000 + offset) // 10_000, 0)
    if kind == Kind.LIMIT:
        size = sized(machine, account, market, b >> 3)
    else:
        size = -pos.size // (1 + (c >> 10) % 2) if pos.size else sized(machine, account, market, b >> 3)
    owner = machine.owner(account)
    fee = USDC // 10
    # A third of them name an acceptable price within 0.5% of the trigger, on either side: their
    # fills are often refused (the settler paid, the order waiting again or cancelled).
    acceptable = trigger * (10_000 + (c >> 4) % 100 - 50) // 10_000 if (c >> 12) % 3 == 0 else 0
    machine.act(
        f"placeOrder.{kind.name.lower()}",
        owner,
        machine.w.book,
        machine.tx("OrderBook", "placeOrder", account, market, int(kind), size, trigger, acceptable, fee),
        lambda s: machine.g.place(s, owner, account, market, kind, size, trigger, acceptable, fee),
    )


def update_conditional(machine: Driver, a: int, b: int, c: int) -> None:
    orders = [o for o in machine.g.s.orders.values() if o.kind != Kind.MARKET]
    if not orders:
        return
    o = orders[a % len(orders)]
    owner = machine.owner(o.account)
    price = machine.price_wad(o.market_id)
    trigger = price * (10_000 + (c % 600) - 300) // 10_000
    size = o.size_delta if b % 4 else -o.size_delta
    machine.act(
        "updateOrder",
        owner,
        machine.w.book,
        machine.tx("OrderBook", "updateOrder", o.order_id, size, trigger, 0),
        lambda s: machine.g.update_order(s, owner, o.order_id, size, trigger, 0),
    )


def cancel_order(machine: Driver, a: int, b: int, c: int) -> None:
    orders = sorted(machine.g.s.orders.values(), key=lambda o: o.order_id)
    order_id = orders[a % len(orders)].order_id if orders and b % 8 else machine.account_of(a) * 8 + b % 8
    who = machine.owner(order_id // 8) if c % 3 else machine.w.stranger
    machine.act(
        "cancelOrder",
        who,
        machine.w.book,
        machine.tx("OrderBook", "cancelOrder", order_id),
        lambda s: machine.g.cancel_order(s, who, order_id),
    )


def keeper_settles(machine: Driver, a: int, b: int, c: int) -> None:
    machine.settle_all(machine.w.keepers[c % 2])


def liquidate(machine: Driver, a: int, b: int, c: int) -> None:
    account = machine.account_of(a)
    keeper = machine.w.keepers[0] if c % 4 else machine.w.stranger
    blobs = machine.latest_blobs() if b % 3 else []
    machine.act(
        "liquidate",
        keeper,
        machine.w.liquidator,
        machine.tx("Liquidator", "liquidate", account, machine.updates(blobs)),
        lambda s: machine.g.liquidate(s, keeper, [account], blobs, VALUE, batch=False),
        value=VALUE,
    )


def liquidate_batch(machine: Driver, a: int, b: int, c: int) -> None:
    accounts = [x for i, x in enumerate(machine.w.accounts) if (a >> i) & 1] or machine.w.accounts
    keeper = machine.w.keepers[c % 2]
    blobs = machine.latest_blobs()
    machine.act(
        "liquidateBatch",
        keeper,
        machine.w.liquidator,
        machine.tx("Liquidator", "liquidateBatch", accounts, machine.updates(blobs)),
        lambda s: machine.g.liquidate(s, keeper, accounts, blobs, VALUE, batch=True),
        value=VALUE,
    )


def _check_bad_debt(machine: Driver) -> None:
    """`bad_debt_only_in_liquidation`: a liquidation books bad debt only for an account whose
    equity (as the liquidation saw it, from its event) was negative, and at most that."""
    topic = _topic(machine.w.art, "Liquidator", "Liquidation")
    scale = machine.w.settings.token_scale
    for log in machine.chain.logs:
        if log.topics and log.topics[0] == topic:
            account = int.from_bytes(log.topics[1], "big")
            words = [int.from_bytes(log.data[i : i + 32], "big") for i in range(0, len(log.data), 32)]
            bad_debt, equity = words[5], words[6] - 2**256 if words[6] >> 255 else words[6]
            require(
                "bad_debt_only_in_liquidation",
                bad_debt == 0 or (equity < 0 and bad_debt <= -equity // scale + 1),
                lambda: f"account {account} booked {bad_debt} of bad debt with equity {equity}",
            )


def lp_request_deposit(machine: Driver, a: int, b: int, c: int) -> None:
    lp = machine.w.lps[a % len(machine.w.lps)]
    assets = (b % 200_000) * USDC if c % 8 else 0
    machine.act(
        "requestDeposit",
        lp,
        machine.w.vault,
        machine.tx("LeverVault", "requestDeposit", assets, lp, lp),
        lambda s: machine.g.request_deposit(s, lp, assets),
    )


def lp_request_redeem(machine: Driver, a: int, b: int, c: int) -> None:
    lp = machine.w.lps[a % len(machine.w.lps)]
    shares = machine.g.s.shares.get(lp, 0) * (b % 1100) // 1000
    machine.request_redeem(lp, shares, "requestRedeem")


def claim_all(machine: Driver, lp: str, label: str, deposit: bool = True, redeem: bool = True) -> None:
    """`lp` claims whatever its settled requests left claimable: shares (deposit), assets (redeem)."""
    g, w = machine.g, machine.w
    claim = g.s.claim_deposit.get(lp)
    if deposit and claim and claim.assets:
        machine.act(
            f"{label}.claimDeposit",
            lp,
            w.vault,
            machine.tx("LeverVault", "deposit", claim.assets, lp),
            lambda s, x=claim.assets: g.claim_deposit(s, lp, x),
        )
    claim = g.s.claim_redeem.get(lp)
    if redeem and claim and claim.shares:
        machine.act(
            f"{label}.claimRedeem",
            lp,
            w.vault,
            machine.tx("LeverVault", "redeem", claim.shares, lp, lp),
            lambda s, x=claim.shares: g.claim_redeem(s, lp, x),
        )


def lp_blobs(machine: Driver, time: int, choice: int) -> list[Blob]:
    """Prices for an LP settlement: the eligible ones (0), a later one (1), an earlier one (2), none (3)."""
    start = time + machine.w.settings.lp_delay
    out = []
    for market in range(machine.w.n_markets):
        if choice == 1:
            blob = machine.prices.nth_after(market, start, 1)
        elif choice == 2:
            blob = machine.prices.before(market, start)
        else:
            blob = machine.prices.at_or_after(market, start)
        if blob is not None and choice != 3:
            out.append(blob)
    return out


def lp_settle(machine: Driver, a: int, b: int, c: int) -> None:
    lp = machine.w.lps[a % len(machine.w.lps)]
    deposit = bool(b % 2)
    q = (machine.g.s.pending_deposit if deposit else machine.g.s.pending_redeem).get(lp)
    choice = 0 if c % 4 else (c >> 2) % 4
    blobs = lp_blobs(machine, q.time if q else machine.now(), choice)
    keeper = machine.w.keepers[(c >> 4) % 2]
    settle_lp(machine, lp, deposit, blobs, keeper)


def settle_lp(machine: Driver, lp: str, deposit: bool, blobs: list[Blob], keeper: str) -> Any:
    """Settles `lp`'s request and checks the LP invariants on the chain's own figures."""
    s0 = machine.g.s
    q = (s0.pending_deposit if deposit else s0.pending_redeem).get(lp)
    function = "settleDeposit" if deposit else "settleRedeem"
    ghost_fn = machine.g.settle_deposit if deposit else machine.g.settle_redeem
    out = machine.act(
        function,
        keeper,
        machine.w.vault,
        machine.tx("LeverVault", function, lp, machine.updates(blobs)),
        lambda s: ghost_fn(s, keeper, lp, blobs),
        value=VALUE,
    )
    if out is None or q is None:
        return None
    if not deposit:  # a refused redemption names its reason: the reserve first, then the caps
        topic = _topic(machine.w.art, "LeverVault", "LpRequestCancelled")
        reasons = [
            machine.w.art.error_name(log.data[96:100])
            for log in machine.chain.logs
            if log.topics and log.topics[0] == topic
        ]
        assert reasons == ([machine.g.redeem_refusal] if machine.g.redeem_refusal else []), (
            f"settleRedeem refused for {reasons}, the ghost for {machine.g.redeem_refusal!r}"
        )
    _, used = out
    start = q.time + machine.w.settings.lp_delay
    for blob in used:
        first = machine.prices.at_or_after(blob.market, start)
        require(
            "lp_priced_at_first_eligible_price",
            first is not None and first.publish_time == blob.publish_time,
            lambda: f"{lp}'s request of {q.time} settled at a price of {blob.publish_time}",
        )
    topic = _topic(machine.w.art, "LeverVault", "DepositSettled" if deposit else "RedeemSettled")
    for log in machine.chain.logs:
        if log.topics and log.topics[0] == topic:
            words = [int.from_bytes(log.data[i : i + 32], "big") for i in range(0, len(log.data), 32)]
            supply0, virtual = s0.supply, m.pool.VIRTUAL_SHARES if hasattr(m.pool, "VIRTUAL_SHARES") else 10**6
            if deposit:
                assets, shares, value = words[0], words[1], words[2]
                value1, supply1 = value + assets, supply0 + shares
                worth = shares * (value1 + 1) // (supply1 + virtual)
                require(
                    "deposit_worth_what_was_paid",
                    assets - 1 <= worth <= assets,
                    lambda: f"{shares} shares for {assets} are worth {worth}",
                )
            else:
                shares, assets, value = words[0], words[1], words[2]
                value1, supply1 = value - assets, supply0 - shares
            # A share held by the others is worth no less after (cross-multiplied, exact).
            require(
                "settlements_never_dilute",
                (value1 + 1) * (supply0 + virtual) >= (value + 1) * (supply1 + virtual),
                lambda: (
                    f"{function} moved a share from {(value + 1) / (supply0 + virtual)}"
                    f" to {(value1 + 1) / (supply1 + virtual)}"
                ),
            )
    return out


def lp_claim(machine: Driver, a: int, b: int, c: int) -> None:
    lp = machine.w.lps[a % len(machine.w.lps)]
    if b % 2:
        c_ = machine.g.s.claim_deposit.get(lp)
        assets = (c_.assets if c_ else 0) * (1 + c % 2) // 2 + (1 if c % 13 == 0 else 0)
        machine.act(
            "deposit(claim)",
            lp,
            machine.w.vault,
            machine.tx("LeverVault", "deposit", assets, lp),
            lambda s: machine.g.claim_deposit(s, lp, assets),
        )
    else:
        c_ = machine.g.s.claim_redeem.get(lp)
        shares = (c_.shares if c_ else 0) * (1 + c % 2) // 2
        machine.act(
            "redeem(claim)",
            lp,
            machine.w.vault,
            machine.tx("LeverVault", "redeem", shares, lp, lp),
            lambda s: machine.g.claim_redeem(s, lp, shares),
        )


def lp_cancel_expired(machine: Driver, a: int, b: int, c: int) -> None:
    lp = machine.w.lps[a % len(machine.w.lps)]
    deposit = bool(b % 2)
    who = machine.w.stranger
    machine.act(
        "cancelExpiredRequest",
        who,
        machine.w.vault,
        machine.tx("LeverVault", "cancelExpiredRequest", lp, deposit),
        lambda s: machine.g.cancel_expired_request(s, lp, deposit),
    )


def publish_price(machine: Driver, a: int, b: int, c: int) -> None:
    """The pull oracle publishes a move of up to +-6% (rarely a crash or a spike), sometimes with
    a confidence interval too wide to use."""
    market = machine.market_of(a)
    move = (b % 1201) - 600 if b % 16 else (-2500, 1500, -4000, 900)[(b >> 4) % 4]  # basis points
    price = max(machine.truth[market] * (10_000 + move) // 10_000, 1)
    conf = price * (c % 300) // 10_000 if c % 8 == 0 else 0
    machine.publish(market, price, conf)


def reference_round(machine: Driver, a: int, b: int, c: int) -> None:
    """The reference feed posts a round: at the true price, or a bad one (stale, incomplete, not positive)."""
    market = machine.market_of(a)
    kind = b % 10
    if kind < 7:
        machine.set_reference(market)
        return
    answer = (0, machine.truth[market], machine.truth[market])[kind - 7]
    updated = machine.now() - 7_200 if kind == 8 else machine.now()
    answered = 1 if kind == 9 else 0
    machine.act(
        "reference.setRoundData",
        machine.w.admin,
        machine.w.feeds[market],
        machine.tx("MockPriceFeed", "setRoundData", answer, updated, updated, answered),
        lambda s: machine.g.set_round(s, market, answer, updated, answered),
    )


WAITS = (1, 1, 2, 3, 5, 10, 30, 31, 60, 600, 3_600, 86_400)


def wait(machine: Driver, a: int, b: int, c: int) -> None:
    machine.wait_seconds(WAITS[a % len(WAITS)])
    if b % 3 == 0:
        machine.publish_all()  # the feed keeps publishing


def confirm_shock(machine: Driver, a: int, b: int, c: int) -> None:
    market = machine.market_of(a)
    who = machine.w.admin
    machine.act(
        "confirmShock",
        who,
        machine.w.oracle,
        machine.tx("OracleAdapter", "confirmShock", market),
        lambda s: machine.g.confirm_shock(s, market),
    )


def accrue(machine: Driver, a: int, b: int, c: int) -> None:
    market = machine.market_of(a)
    machine.act(
        "accrue",
        machine.w.stranger,
        machine.w.engine,
        machine.tx("PerpEngine", "accrue", market),
        lambda s: machine.g.accrue(s, market),
    )


def fund_insurance(machine: Driver, a: int, b: int, c: int) -> None:
    who = machine.w.lps[a % len(machine.w.lps)]
    amount = (b % 5_000) * USDC
    machine.act(
        "fundInsurance",
        who,
        machine.w.vault,
        machine.tx("LeverVault", "fundInsurance", amount),
        lambda s: machine.g.fund_insurance(s, who, amount),
    )


def timelock(machine: Driver, target: str, data: bytes, predict: Callable[[State], Any], label: str) -> None:
    """A parameter change through the timelock (delay 0 here): schedule, then execute."""
    salt = machine.steps.to_bytes(32, "big")
    w = machine.w
    machine.act(
        "timelock.schedule",
        w.admin,
        w.timelock,
        machine.tx("LeverTimelock", "schedule", target, 0, data, b"\0" * 32, salt, 0),
        lambda s: None,
    )
    machine.act(
        label, w.admin, w.timelock, machine.tx("LeverTimelock", "execute", target, 0, data, b"\0" * 32, salt), predict
    )


def set_market_params(machine: Driver, a: int, b: int, c: int) -> None:
    """A bounded risk change: margin, fees, profit cap, caps, scales (one change in five is out of bounds)."""
    market = machine.market_of(a)
    p = machine.g.s.params[market]
    change = b % 8
    q = (
        replace(
            p,
            initial_margin_ratio=p.initial_margin_ratio * 3 // 2,
            maintenance_margin_ratio=p.maintenance_margin_ratio * 3 // 2,
        ),
        replace(
            p,
            initial_margin_ratio=p.initial_margin_ratio * 2 // 3,
            maintenance_margin_ratio=p.maintenance_margin_ratio * 2 // 3,
        ),
        replace(p, taker_fee=min(p.taker_fee * 2, 10**16), maker_fee=p.maker_fee),
        replace(p, max_profit_ratio=p.max_profit_ratio * 2),
        replace(p, max_profit_ratio=p.max_profit_ratio // 2),
        replace(p, oi_cap_ratio=p.oi_cap_ratio // 2),
        replace(p, max_leverage=p.max_leverage // 2 or 1),
        replace(p, maintenance_margin_ratio=p.initial_margin_ratio),  # out of bounds
    )[change]
    healthy = _healthy_accounts(machine)
    data = machine.tx("PerpEngine", "setMarketParams", market, tuple(getattr(q, f) for f in q.__dataclass_fields__))
    timelock(machine, machine.w.engine, data, lambda s: machine.g.set_market_params(s, market, q), "setMarketParams")
    for account in healthy:
        state = m.AccountState(*machine.view_words("PerpEngine", machine.w.engine, "accountState", account))
        require(
            "parameter_change_never_liquidates",
            not state.liquidatable,
            lambda: f"account {account} healthy before the change is liquidatable after it",
        )


def _healthy_accounts(machine: Driver) -> list[int]:
    """The accounts with positions whose equity covers their maintenance margin, by the mirror's
    `accountState` (a quarter of the view's cost in revm). The mirror is held to the contract's
    view of every account every `FULL_CHECK_EVERY` steps and at the end of every run; what is
    checked after a change is the chain's own view."""
    g, s = machine.g, machine.g.s
    return [
        account
        for account in machine.w.accounts
        if s.accounts.get(account) and s.accounts[account].mask and not g.account_state(s, account).liquidatable
    ]


def set_liquidation_params(machine: Driver, a: int, b: int, c: int) -> None:
    p = machine.g.s.liquidation
    q = (
        replace(p, max_reward=250 * WAD),
        replace(p, max_reward=20 * WAD),
        replace(p, target_health=13 * 10**17, max_partial_share=8 * 10**17),
        replace(p, penalty_ratio=10**16, reward_ratio=10**16),
        replace(p, min_reward=p.max_reward + 1),  # out of bounds
    )[b % 5]
    data = machine.tx("Liquidator", "setParams", tuple(getattr(q, f) for f in q.__dataclass_fields__))
    timelock(
        machine, machine.w.liquidator, data, lambda s: machine.g.set_liquidation_params(s, q), "setLiquidationParams"
    )


def pause(machine: Driver, a: int, b: int, c: int) -> None:
    paused = bool(a % 2)
    fn = "pause" if paused else "unpause"
    machine.act(
        fn, machine.w.admin, machine.w.engine, machine.tx("PerpEngine", fn), lambda s: machine.g.pause(s, paused)
    )


# --------------------------------------------------------------------------- adversaries


def latency_arbitrageur(machine: Driver, a: int, b: int, c: int) -> None:
    """Knows the next price before it lands: opens in its direction, then closes with no further move.
    `round_trip_gains_nothing`: the fill comes after the move, so the knowledge is worth nothing."""
    account, market = machine.account_of(a), machine.market_of(b)
    if machine.g.s.positions.get((account, market)) or any(acc == account for acc, _ in machine.g.s.orders):
        return
    owner = machine.owner(account)
    start = machine.claim(owner, [account])
    move = (400, -400, 150, -150)[c % 4]
    size = sized(machine, account, market, (b >> 1) | 0b1110)
    size = abs(size) if move > 0 else -abs(size)
    opened = machine.commit(account, market, size, label="arbitrageur.commit")
    machine.wait_seconds(1)
    machine.publish(market, machine.truth[market] * (10_000 + move) // 10_000)  # the price it knew lands
    machine.set_reference(market)
    machine.wait_seconds(machine.w.settings.order_delay)
    machine.publish_all()
    machine.settle_all()
    pos = machine.g.s.positions.get((account, market))
    if opened is None or pos is None:
        return
    t_open = machine.now()
    machine.commit(account, market, -pos.size, label="arbitrageur.close")
    machine.wait_seconds(machine.w.settings.order_delay)
    machine.publish_all()  # no change
    machine.settle_all()
    if machine.g.s.positions.get((account, market)) is not None:
        return
    net = machine.claim(owner, [account]) - start
    bound = _funding_bound(machine, market, abs(pos.size), machine.now() - t_open)
    require(
        "round_trip_gains_nothing",
        net <= bound,
        lambda: (
            f"a round trip around a known +-{abs(move)} bp move made {net / USDC:.6f} USDC (bound {bound / USDC:.6f})"
        ),
    )


def _funding_bound(machine: Driver, market: int, size: int, seconds: int) -> int:
    """The most a position of `size` can receive in funding over `seconds` at the payers' maximum
    rate, at the highest price published meanwhile (token units, rounded up), plus a unit."""
    rate = machine.g.s.params[market].max_funding_rate_per_day
    price = max(p.price for p in machine.prices.published(market)) * PYTH_SCALE
    wad = -(-size * price * rate * (seconds + 1) // (WAD * WAD * 86_400))
    return -(-wad // machine.w.settings.token_scale) + 1


def jit_lp(machine: Driver, a: int, b: int, c: int) -> None:
    """Knows a price move that will lower the traders' side: asks to deposit before it lands,
    redeems right after. `lp_priced_at_first_eligible_price` and `deposit_worth_what_was_paid`
    hold on the way; the round trip itself gains nothing (its fees are a loss)."""
    lp = machine.w.lps[2]
    if machine.g.s.pending_deposit.get(lp) or machine.g.s.pending_redeem.get(lp):
        return
    claim_all(machine, lp, "jit")  # what earlier requests left claimable: the round trip is measured alone
    start = machine.g.s.balances.get(lp, 0)
    shares0 = machine.g.s.shares.get(lp, 0)
    assets = (50_000 + b % 100_000) * USDC
    if (
        machine.act(
            "jit.requestDeposit",
            lp,
            machine.w.vault,
            machine.tx("LeverVault", "requestDeposit", assets, lp, lp),
            lambda s: machine.g.request_deposit(s, lp, assets),
        )
        is None
    ):
        return
    t = machine.now()
    machine.wait_seconds(1)
    market = machine.market_of(a)
    machine.publish(market, machine.truth[market] * (10_000 + (300 if c % 2 else -300)) // 10_000)
    machine.set_reference(market)
    machine.wait_seconds(machine.w.settings.lp_delay)
    machine.publish_all()
    machine.wait_seconds(machine.w.settings.lp_grace)
    settle_lp(machine, lp, True, lp_blobs(machine, t, 0), machine.w.keepers[0])
    claim = machine.g.s.claim_deposit.get(lp)
    if claim is None or claim.assets == 0:
        return
    machine.act(
        "jit.claim",
        lp,
        machine.w.vault,
        machine.tx("LeverVault", "deposit", claim.assets, lp),
        lambda s: machine.g.claim_deposit(s, lp, claim.assets),
    )
    shares = machine.g.s.shares.get(lp, 0) - shares0
    if machine.request_redeem(lp, shares, "jit.requestRedeem") is None:
        return
    t = machine.now()
    machine.wait_seconds(machine.w.settings.lp_delay)
    machine.publish_all()
    machine.wait_seconds(machine.w.settings.lp_grace)
    out = settle_lp(machine, lp, False, lp_blobs(machine, t, 0), machine.w.keepers[0])
    if out is None or out[0] < 0:
        return
    redeemed = machine.g.s.claim_redeem.get(lp)
    machine.act(
        "jit.claimRedeem",
        lp,
        machine.w.vault,
        machine.tx("LeverVault", "redeem", redeemed.shares, lp, lp),
        lambda s: machine.g.claim_redeem(s, lp, redeemed.shares),
    )
    net = machine.g.s.balances.get(lp, 0) - start
    # Between its two settlements only funding and borrowing accrue (no trade, no price change):
    # the pool's gain from them is the only thing the LP may share.
    require(
        "round_trip_gains_nothing",
        net <= _accrual_bound(machine, assets),
        lambda: f"a just-in-time LP round trip around a known move made {net / USDC:.6f} USDC",
    )


def _accrual_bound(machine: Driver, assets: int) -> int:
    """What `assets` can earn in the pool over a few seconds of borrowing and funding: generous."""
    return assets // 10_000 + 10 * USDC


def cross_margin_dumper(machine: Driver, a: int, b: int, c: int) -> None:
    """Holds legs in both markets (opening a long and a short itself if it has not), lets both
    prices fall so that the long loses, then closes the legs in the order it likes.
    `close_order_independent`: both orders pay the same; `bad_debt_only_in_liquidation`."""
    account = machine.account_of(a)
    if any(acc == account for acc, _ in machine.g.s.orders):
        return
    markets = range(machine.w.n_markets)
    if any((account, mk) not in machine.g.s.positions for mk in markets):
        ids: list[tuple[int, int]] = []
        for mk in markets:
            if (account, mk) not in machine.g.s.positions:
                size = abs(sized(machine, account, mk, b | 0b1000)) * (1 if mk == 0 else -1)  # long the first
                order_id = machine.commit(account, mk, size, label="dumper.open")
                if order_id is None:
                    return
                ids.append((order_id, mk))
        t = machine.now()
        machine.wait_seconds(machine.w.settings.order_delay)
        machine.publish_all()
        opened = [machine.prices.at_or_after(mk, t + machine.w.settings.order_delay) for _, mk in ids]
        if machine.settle([i for i, _ in ids], opened, [], machine.w.keepers[0], label="dumper.settleOpen") is None:
            return
        if any((account, mk) not in machine.g.s.positions for mk in markets):
            return
        for mk in markets:  # both fall, under the shock threshold: the long leg loses
            machine.publish(mk, machine.truth[mk] * (10_000 - (100 + c % 350)) // 10_000)
            machine.set_reference(mk)
    legs = [mk for mk in markets if (account, mk) in machine.g.s.positions]
    scalars = machine.w.observer.scalars()
    full_coverage = scalars["pool"] * machine.w.settings.token_scale >= scalars["total_reserve"]
    machine.publish_all()
    for mk in markets:
        machine.set_reference(mk)
    tolerance = _unaccrued_charge_bound(machine, account, legs, machine.w.settings.order_delay + 1)
    saved = _snapshot(machine)
    outcomes = []
    for order in (legs, legs[::-1]):
        if outcomes:
            _restore(machine, saved)
        ids = []
        for mk in order:
            size = machine.g.s.positions[(account, mk)].size
            order_id = machine.commit(account, mk, -size, label="dumper.close")
            if order_id is None:
                return
            ids.append(order_id)
        t = machine.now()
        machine.wait_seconds(machine.w.settings.order_delay)
        machine.publish_all()
        blobs = [machine.prices.at_or_after(mk, t + machine.w.settings.order_delay) for mk in order]
        bad0 = machine.g.s.bad_debt
        if machine.settle(ids, blobs, [], machine.w.keepers[0], label="dumper.settle") is None:
            return
        require("bad_debt_only_in_liquidation", machine.g.s.bad_debt == bad0, lambda: "a close booked bad debt")
        outcomes.append(
            (machine.g.s.margin.get(account, 0), tuple((account, mk) in machine.g.s.positions for mk in order))
        )
    if full_coverage and outcomes[0][1] == outcomes[1][1] == (False, False):
        require(
            "close_order_independent",
            abs(outcomes[0][0] - outcomes[1][0]) <= tolerance,
            lambda: f"closing in one order paid {outcomes[0][0]}, in the other {outcomes[1][0]} (bound {tolerance})",
        )


def _unaccrued_charge_bound(machine: Driver, account: int, legs: list[int], ahead: int) -> int:
    """The most the order of closes can move, in tokens: the charges of the period each leg's market
    has not yet accrued (from its last accrual to `ahead` seconds from now), at the highest funding
    and borrowing rates the market's parameters allow and the highest price it published. The pool
    and the price at the moment a market accrues price that period, and closing one leg moves the
    pool before the other accrues; fills, fees and profit caps must not depend on the order."""
    total = 0
    for mk in legs:
        params = [machine.g.s.params[mk], *([machine.g.s.prev[mk]] if machine.g.s.prev[mk] is not None else [])]
        rate = max(p.max_funding_rate_per_day + p.borrow_rate_per_day for p in params)
        price = max(p.price for p in machine.prices.published(mk)) * PYTH_SCALE
        seconds = machine.now() + ahead - machine.g.s.markets[mk].last_accrual_time
        size = abs(machine.g.s.positions[(account, mk)].size)
        wad = -(-size * price * rate * seconds // (WAD * WAD * 86_400))
        total += -(-wad // machine.w.settings.token_scale) + 1
    return total


@dataclass
class Saved:
    chain: Any
    state: State
    now: int
    prices: Prices
    truth: list[int]


def _snapshot(machine: Driver) -> Saved:
    """The chain (a revm journal checkpoint or a node snapshot) and everything the driver knows."""
    chain = machine.chain
    snap = chain.evm.snapshot() if hasattr(chain, "evm") else chain._rpc("evm_snapshot", [])
    return Saved(snap, machine.g.s, machine.g.now, machine.prices.copy(), list(machine.truth))


def _restore(machine: Driver, saved: Saved) -> None:
    chain = machine.chain
    if hasattr(chain, "evm"):
        chain.evm.revert(saved.chain)
        chain.set_time(saved.now)
    else:
        chain._rpc("evm_revert", [saved.chain])
        chain._now = saved.now
    machine.g.s, machine.g.now, machine.prices, machine.truth = (
        saved.state,
        saved.now,
        saved.prices.copy(),
        list(saved.truth),
    )
    machine.touched.clear()


def funding_sniper(machine: Driver, a: int, b: int, c: int) -> None:
    """Opens the smallest position on the side that receives funding, waits, closes.
    `funding_bounded_by_payers_rate`: it earns at most the payers' rate on its own notional."""
    account, market = machine.account_of(a), machine.market_of(b)
    if machine.g.s.positions.get((account, market)) or any(acc == account for acc, _ in machine.g.s.orders):
        return
    st = machine.g.s.markets[market]
    skew = st.long_oi - st.short_oi
    if skew == 0:
        return
    owner = machine.owner(account)
    start = machine.claim(owner, [account])
    size = machine.g.s.params[market].min_position_size * (1 + c % 3)
    size = -size if skew > 0 else size  # the minority side receives
    if machine.commit(account, market, size, label="sniper.open") is None:
        return
    machine.wait_seconds(machine.w.settings.order_delay)
    machine.publish_all()
    machine.settle_all()
    if (account, market) not in machine.g.s.positions:
        return
    t0 = machine.now()
    fill0 = machine.price_wad(market)
    machine.wait_seconds((60, 3_600, 43_200)[(c >> 2) % 3])
    machine.publish_all()
    machine.set_reference(market)
    machine.commit(account, market, -size, label="sniper.close")
    machine.wait_seconds(machine.w.settings.order_delay)
    machine.publish_all()
    machine.settle_all()
    if (account, market) in machine.g.s.positions:
        return
    net = machine.claim(owner, [account]) - start
    price_pnl = size * (machine.price_wad(market) - fill0) // WAD // machine.w.settings.token_scale
    # What the skew premium can add on each fill, at most |size| * price * |size + skew| / skewScale, is tiny here.
    slack = abs(size) * machine.price_wad(market) // WAD // machine.w.settings.token_scale // 100 + 2
    bound = _funding_bound(machine, market, abs(size), machine.now() - t0) + slack
    require(
        "funding_bounded_by_payers_rate",
        net - price_pnl <= bound,
        lambda: f"a dust position of {size} received {(net - price_pnl) / USDC:.6f} USDC (bound {bound / USDC:.6f})",
    )


def cap_blocker(machine: Driver, a: int, b: int, c: int) -> None:
    """Fills a market's open-interest cap with a hedged pair (long in one account, short in the
    other) to block honest traders, and holds it a while: `round_trip_gains_nothing` - the block
    costs it fees and borrowing, it never pays."""
    trader = machine.w.traders[a % len(machine.w.traders)]
    accounts = [x for x in machine.w.accounts if machine.owner(x) == trader]
    market = machine.market_of(b)
    if any((x, market) in machine.g.s.positions for x in accounts) or any(
        acc in accounts for acc, _ in machine.g.s.orders
    ):
        return
    start = machine.claim(trader, accounts)
    cap = machine.g.s.pool * machine.w.settings.token_scale * machine.g.s.params[market].oi_cap_ratio // WAD
    st = machine.g.s.markets[market]
    room = cap - max(st.long_oi, st.short_oi) * machine.price_wad(market) // WAD
    size = max(room // 4, 0) * WAD // machine.price_wad(market)
    if size < machine.g.s.params[market].min_position_size * 10:
        return
    for account, sign in zip(accounts, (1, -1), strict=True):
        machine.act(
            "blocker.deposit",
            trader,
            machine.w.vault,
            machine.tx("LeverVault", "depositMargin", account, size * machine.price_wad(market) // WAD // 10**12 // 5),
            lambda s, account=account: machine.g.deposit_margin(
                s, trader, account, size * machine.price_wad(market) // WAD // 10**12 // 5
            ),
        )
        machine.commit(account, market, sign * size, label="blocker.open")
    machine.wait_seconds(machine.w.settings.order_delay)
    machine.publish_all()
    machine.settle_all()
    machine.wait_seconds((30, 600, 3_600)[c % 3])
    machine.publish_all()
    machine.set_reference(market)
    for account in accounts:
        pos = machine.g.s.positions.get((account, market))
        if pos:
            machine.commit(account, market, -pos.size, label="blocker.close")
    machine.wait_seconds(machine.w.settings.order_delay)
    machine.publish_all()
    machine.settle_all()
    if any((x, market) in machine.g.s.positions for x in accounts):
        return
    net = machine.claim(trader, accounts) - start
    require("round_trip_gains_nothing", net <= 1, lambda: f"a hedged pair blocking the cap made {net / USDC:.6f} USDC")


def choosy_keeper(machine: Driver, a: int, b: int, c: int) -> None:
    """A keeper who picks its blobs: a later publication, an earlier one, another market's, or
    none at all, and waits to the end of the window. The ghost predicts what the chain accepts;
    `fill_at_first_eligible_price` checks what filled."""
    due = [
        (i, blob)
        for i, blob in machine.due_orders()
        if machine.g.s.orders.get(divmod(i, 8)) and machine.g.s.orders[divmod(i, 8)].kind == Kind.MARKET
    ]
    if not due:
        return
    order_id, _ = due[a % len(due)]
    o = machine.g.s.orders[divmod(order_id, 8)]
    start = o.updated_at + machine.w.settings.order_delay
    choice = b % 5
    if choice == 0:
        blob = machine.prices.nth_after(o.market_id, start, 1 + c % 3)
    elif choice == 1:
        blob = machine.prices.before(o.market_id, start)
    elif choice == 2:
        blob = machine.prices.at_or_after((o.market_id + 1) % machine.w.n_markets, start)
    elif choice == 3:
        blob = None
    else:
        machine.wait_seconds(
            max(o.updated_at + machine.w.settings.order_delay + machine.w.settings.order_window - machine.now(), 0)
        )
        blob = machine.prices.at_or_after(o.market_id, start)
    machine.settle([order_id], [blob], [], machine.w.keepers[1], label="choosyKeeper.settle")


def stop_straddler(machine: Driver, a: int, b: int, c: int) -> None:
    """Holds a stop-loss whose trigger the prices already meet, increases the position, then asks
    for the stop at once, at the price stored by the increase's own fill. The stop must wait for a
    price published the delay after the increase (`fill_at_first_eligible_price`; the ghost predicts
    the refusal): otherwise the increase could be closed at a price from before it."""
    account, market = machine.account_of(a), machine.market_of(b)
    pos = machine.g.s.positions.get((account, market))
    if pos is None or pos.size == 0 or any(acc == account for acc, _ in machine.g.s.orders):
        return
    owner, long = machine.owner(account), pos.size > 0
    trigger = machine.price_wad(market) * (10_200 if long else 9_800) // 10_000  # met at today's price
    fee = USDC // 10
    placed = machine.act(
        "straddler.placeStop",
        owner,
        machine.w.book,
        machine.tx("OrderBook", "placeOrder", account, market, int(Kind.STOP_LOSS), -pos.size, trigger, 0, fee),
        lambda s: machine.g.place(s, owner, account, market, Kind.STOP_LOSS, -pos.size, trigger, 0, fee),
    )
    if placed is None:
        return
    stops = [o.order_id for o in machine.g.s.orders.values() if o.account == account and o.kind == Kind.STOP_LOSS]
    machine.wait_seconds(machine.w.settings.order_delay + c % 3)
    machine.publish_all()
    grow = abs(sized(machine, account, market, (b >> 1) | 0b11)) // 4 or 1
    if machine.commit(account, market, grow if long else -grow, label="straddler.increase") is None:
        return
    increase = [o for o in machine.g.s.orders.values() if o.account == account and o.kind == Kind.MARKET]
    machine.wait_seconds(machine.w.settings.order_delay)
    machine.publish_all()
    for o in increase:
        start = o.updated_at + machine.w.settings.order_delay
        machine.settle(
            [o.order_id],
            [machine.prices.at_or_after(o.market_id, start)],
            [],
            machine.w.keepers[0],
            label="straddler.settleIncrease",
        )
    machine.settle(
        stops, [None] * len(stops), machine.latest_blobs(), machine.w.keepers[1], label="straddler.settleStop"
    )


def self_liquidator(machine: Driver, a: int, b: int, c: int) -> None:
    """An owner liquidating its own unhealthy account. `self_liquidation_unprofitable`: its
    wallet plus what the account is worth (its equity and its orders' escrowed fees, at the same
    prices; a negative sum counts as nothing, the debt being the account's) does not grow."""
    account = machine.account_of(a)
    owner = machine.owner(account)
    blobs = machine.latest_blobs()
    machine.act(
        "selfLiquidate.updatePrices",
        owner,
        machine.w.oracle,
        machine.tx("OracleAdapter", "updatePrices", machine.updates(blobs)),
        lambda s: machine.g.update_prices(s, blobs, VALUE),
        value=VALUE,
    )

    def worth() -> int:
        if not machine.g.s.accounts[account].mask:
            return machine.claim(owner, [account])
        equity = machine.view_words("PerpEngine", machine.w.engine, "accountState", account)[1]
        # Pending orders' executor fees are the account's too: a liquidation returns them to its margin.
        escrow = sum(o.executor_fee for (x, _), o in machine.g.s.orders.items() if x == account)
        equity += escrow * machine.w.settings.token_scale
        return machine.g.s.balances.get(owner, 0) + max(equity, 0) // machine.w.settings.token_scale

    start = worth()
    if (
        machine.act(
            "selfLiquidate",
            owner,
            machine.w.liquidator,
            machine.tx("Liquidator", "liquidate", account, []),
            lambda s: machine.g.liquidate(s, owner, [account], [], 0, batch=False),
        )
        is None
    ):
        return
    gain = worth() - start
    require("self_liquidation_unprofitable", gain <= 0, lambda: f"self-liquidation made {gain / USDC:.6f} USDC")


def redeemer_ahead_of_liquidation(machine: Driver, a: int, b: int, c: int) -> None:
    """An LP that sees an underwater account asks to redeem before keepers act. The settlement
    waits the liquidation grace after its prices; the honest keeper liquidates first.
    `redeemer_shares_bad_debt`: the redemption pays no more per share than the pool is worth
    after the liquidation."""
    lp = machine.w.lps[a % 2]
    shares = machine.g.s.shares.get(lp, 0) // 4
    if shares == 0 or machine.g.s.pending_redeem.get(lp):
        return
    market = machine.market_of(b)
    _levered_long(machine, machine.account_of(c), market)  # the liquidation it will see coming
    machine.publish(market, machine.truth[market] * (10_000 - (300 + c % 900)) // 10_000)  # a crash
    machine.set_reference(market)
    if machine.request_redeem(lp, shares, "ahead.requestRedeem") is None:
        return
    t = machine.now()
    machine.wait_seconds(machine.w.settings.lp_delay)
    machine.publish_all()
    keeper_liquidates_all(machine)  # the keeper's first job, every block
    machine.wait_seconds(machine.w.settings.lp_grace)
    keeper_liquidates_all(machine)
    out = settle_lp(machine, lp, False, lp_blobs(machine, t, 0), machine.w.keepers[0])
    if out is None or out[0] <= 0:
        return
    assets = out[0]
    # The pool's value per share now, at the same prices, with every liquidation booked.
    value = int(machine.view("LeverVault", machine.w.vault, "totalAssets"))
    supply = machine.g.s.supply
    require(
        "redeemer_shares_bad_debt",
        assets * (supply + 10**6) <= shares * (value + assets + 1) + shares,
        lambda: f"{shares} shares redeemed for {assets}, the pool is worth {value} for {supply} shares after",
    )


def _levered_long(machine: Driver, account: int, market: int) -> None:
    """`account` opens a 24x long in `market` (if it holds none and has no order pending)."""
    if (account, market) in machine.g.s.positions or any(acc == account for acc, _ in machine.g.s.orders):
        return
    order_id = machine.commit(account, market, abs(sized(machine, account, market, 7 << 1)), label="levered.open")
    if order_id is None:
        return
    t = machine.now()
    machine.wait_seconds(machine.w.settings.order_delay)
    machine.publish_all()
    blob = machine.prices.at_or_after(market, t + machine.w.settings.order_delay)
    machine.settle([order_id], [blob], [], machine.w.keepers[0], label="levered.settle")


def lp_run(machine: Driver, a: int, b: int, c: int) -> None:
    """A run on the pool while positions are open: every LP asks to redeem all its shares at once
    (a balanced book's LPs leaving before a move). What exceeds the pool's free assets must be
    refused for the reserve (the ghost names the reason; the chain's event must agree), and
    `reserves_cover_profits` holds after each settlement: the winners stay payable."""
    if not machine.g.s.total_reserve:
        return
    asked = []
    for lp in machine.w.lps:
        shares = machine.g.s.shares.get(lp, 0)
        if (
            shares
            and not machine.g.s.pending_redeem.get(lp)
            and machine.request_redeem(lp, shares, "run.requestRedeem") is not None
        ):
            asked.append((lp, machine.now()))
    if not asked:
        return
    machine.wait_seconds(machine.w.settings.lp_delay + c % 3)
    machine.publish_all()
    keeper_liquidates_all(machine)
    machine.wait_seconds(machine.w.settings.lp_grace)
    for lp, t in asked[a % len(asked) :] + asked[: a % len(asked)]:  # in an order the run chooses
        settle_lp(machine, lp, False, lp_blobs(machine, t, 0), machine.w.keepers[b % 2])
    for lp in machine.w.lps:  # those refused ask again at once (the last holder is refused outright)
        shares = machine.g.s.shares.get(lp, 0)
        if shares and not machine.g.s.pending_redeem.get(lp):
            machine.request_redeem(lp, shares, "run.askAgain")


def keeper_liquidates_all(machine: Driver) -> None:
    """The honest keeper's liquidation job: every account below maintenance, with the latest prices."""
    candidates = []
    for account in machine.w.accounts:
        acc = machine.g.s.accounts.get(account)
        if acc is None or acc.mask == 0:
            continue
        try:
            state = machine.g.account_state(machine.g.s, account)
        except Refused:
            continue
        escrow = sum(o.executor_fee for (x, _), o in machine.g.s.orders.items() if x == account)
        if state.equity + escrow * machine.w.settings.token_scale < state.maintenance_margin:
            candidates.append(account)
    if candidates:
        blobs = machine.latest_blobs()
        machine.act(
            "keeper.liquidateBatch",
            machine.w.keepers[0],
            machine.w.liquidator,
            machine.tx("Liquidator", "liquidateBatch", candidates, machine.updates(blobs)),
            lambda s: machine.g.liquidate(s, machine.w.keepers[0], candidates, blobs, VALUE, batch=True),
            value=VALUE,
        )


def keeper_liquidates(machine: Driver, a: int, b: int, c: int) -> None:
    keeper_liquidates_all(machine)


# --------------------------------------------------------------------------- the end of a run


def exit_everyone(machine: Driver) -> None:
    """`everyone_can_exit`: orders cancelled or lapsed, positions closed (or liquidated), LPs
    redeemed and claimed, margins withdrawn; the vault keeps insurance, fees and dust."""
    w, g = machine.w, machine.g
    if g.s.paused:
        pause(machine, 0, 0, 0)
    for market in range(w.n_markets):
        if g.s.oracle[market].shocked or True:
            machine.set_reference(market)
            if g.s.oracle[market].shocked:
                confirm_shock(machine, market, 0, 0)
    for _ in range(6):
        # Lapse every pending market order, cancel conditional ones.
        machine.wait_seconds(w.settings.order_delay + w.settings.order_window + 1)
        machine.publish_all()
        for market in range(w.n_markets):
            machine.set_reference(market)
        for (account, slot), o in sorted(g.s.orders.items()):
            who = machine.owner(account)
            machine.act(
                "exit.cancel",
                who,
                w.book,
                machine.tx("OrderBook", "cancelOrder", o.order_id),
                lambda s, o=o, who=who: g.cancel_order(s, who, o.order_id),
            )
        keeper_liquidates_all(machine)
        open_legs = sorted(g.s.positions)
        if not open_legs:
            break
        for account, market in open_legs:
            pos = g.s.positions.get((account, market))
            if pos is not None:
                machine.commit(account, market, -pos.size, label="exit.close")
        machine.wait_seconds(w.settings.order_delay)
        machine.publish_all()
        machine.settle_all()
    assert not g.s.positions, f"positions left after the exit: {sorted(g.s.positions)}"
    for account in w.accounts:
        margin = g.s.margin.get(account, 0)
        assert margin >= 0, f"account {account} owes {margin} with no positions"
        if margin > 0:
            owner = machine.owner(account)
            machine.act(
                "exit.withdraw",
                owner,
                w.vault,
                machine.tx("LeverVault", "withdrawMargin", account, margin, owner),
                lambda s, a=account, o=owner, x=margin: g.withdraw_margin(s, o, a, x),
            )
    # LPs: settle or lapse pending requests, claim, redeem everything.
    machine.wait_seconds(w.settings.lp_delay + w.settings.lp_window + w.settings.lp_grace + 1)
    for lp in w.lps:
        for deposit in (True, False):
            if (g.s.pending_deposit if deposit else g.s.pending_redeem).get(lp):
                lp_cancel_expired(machine, w.lps.index(lp), int(deposit), 0)
        claim_all(machine, lp, "exit", redeem=False)
        shares = g.s.shares.get(lp, 0)
        if shares:
            machine.request_redeem(lp, shares, "exit.requestRedeem")
    machine.wait_seconds(w.settings.lp_delay)
    machine.publish_all()
    machine.wait_seconds(w.settings.lp_grace)
    for lp in w.lps:
        q = g.s.pending_redeem.get(lp)
        if q:
            out = settle_lp(machine, lp, False, lp_blobs(machine, q.time, 0), w.keepers[0])
            assert out is not None and out[0] >= 0, f"{lp} could not redeem at the exit"
        claim_all(machine, lp, "exit", deposit=False)
    machine.check_step()
    machine.check_everything()
    scalars = w.observer.scalars()
    balance = w.observer.balance(w.vault)
    kept = scalars["insurance"] + scalars["fees"]
    dust = balance - kept
    require(
        "everyone_can_exit",
        scalars["margin_and_escrow"] == 0
        and scalars["order_escrow"] == 0
        and scalars["lp_escrow"] == 0
        and 0 <= dust <= 10 * USDC
        and scalars["supply"] == 0,
        lambda: f"after the exit the vault holds {balance} for insurance+fees {kept}: {scalars}",
    )


# Actions with their weights (an action listed twice is drawn twice as often).
ACTIONS: tuple[Callable[[Driver, int, int, int], None], ...] = (
    wait,
    deposit_margin,
    withdraw_margin,
    commit_order,
    commit_order,
    commit_order,
    close_position,
    close_position,
    place_conditional,
    update_conditional,
    cancel_order,
    keeper_settles,
    keeper_settles,
    keeper_settles,
    liquidate,
    liquidate_batch,
    keeper_liquidates,
    lp_request_deposit,
    lp_request_redeem,
    lp_settle,
    lp_settle,
    lp_claim,
    lp_cancel_expired,
    publish_price,
    publish_price,
    publish_price,
    reference_round,
    reference_round,
    wait,
    wait,
    confirm_shock,
    accrue,
    fund_insurance,
    set_market_params,
    set_liquidation_params,
    pause,
    latency_arbitrageur,
    jit_lp,
    cross_margin_dumper,
    funding_sniper,
    cap_blocker,
    choosy_keeper,
    self_liquidator,
    redeemer_ahead_of_liquidation,
    stop_straddler,
    lp_run,
)
assert {a.__name__ for a in ACTIONS} >= set(ADVERSARIES)


class Machine(RuleBasedStateMachine):
    """The fuzz machine over one deployed world (bound by `machine_for`); each example starts from
    the world's snapshot."""

    WORLD: World

    def __init__(self) -> None:
        super().__init__()
        w = self.WORLD
        w.chain.restore()
        self.d = Driver(w, w.state0.clone(), w.prices0.copy(), w.chain.now())
        self.enabled: list[Callable[..., None]] = list(ACTIONS)

    # ------------------------------------------------------------------ the step

    @initialize(disabled=st.integers(0, 2**40 - 1))
    def choose_actions(self, disabled: int) -> None:
        """Swarm testing: this run disables the actions whose bit is set (0 shrinks to all enabled)."""
        self.enabled = [action for i, action in enumerate(ACTIONS) if not disabled >> (i % 40) & 1] or list(ACTIONS)
        STATS.swarms.append(frozenset(a.__name__ for a in self.enabled))
        self.d.check_step()  # before the first step: the snapshot restored is the ghost's

    @rule(draw=st.binary(min_size=8 * STEPS_PER_RULE, max_size=8 * STEPS_PER_RULE))
    def steps(self, draw: bytes) -> None:
        """`STEPS_PER_RULE` steps from one draw of random bytes (Hypothesis' per-rule cost, paid
        once for them; the bytes shrink towards zeros): each 8 bytes pick an action (2 bytes) and
        its three arguments (2 bytes each). The ghost is checked after every step that sent a
        transaction."""
        d = self.d
        for i in range(0, 8 * STEPS_PER_RULE, 8):
            pick, a, b, c = _FOUR_U16.unpack_from(draw, i)
            d.sent = False
            self.enabled[pick % len(self.enabled)](d, a, b, c)
            STATS.steps += 1
            d.steps += 1
            if d.clean and d.sent:
                d.check_step()
            if d.steps % FULL_CHECK_EVERY == 0:
                d.check_everything()

    def teardown(self) -> None:
        if self.d.clean and self.d.steps > 0:
            exit_everyone(self.d)


def seed(world: World) -> World:
    """The world every example starts from: funded actors, accounts with margin, two LPs in the
    pool, prices on both oracles and a book of levered positions; then the chain's snapshot."""
    w = world
    d = Driver(w, w.state0, w.prices0, w.chain.now())
    g = d.g
    config = w.config
    names = sorted(config.markets, key=lambda n: w.protocol.markets[n])
    d.truth = [config.markets[n].feed_answer() for n in names]
    for who in w.actors:
        funds = TRADER_FUNDS if who in w.traders else LP_FUNDS

        def mint(s: State, who: str = who, funds: int = funds) -> None:
            s.balances[who] = s.balances.get(who, 0) + funds

        d.act("seed.mint", who, w.token, d.tx("MockToken", "mint", who, funds), mint)
        d.act("seed.approve", who, w.token, d.tx("MockToken", "approve", w.vault, MAX_UINT), lambda s: None)
    for trader in w.traders:
        for _ in range(2):
            d.act(
                "seed.createAccount",
                trader,
                w.engine,
                d.tx("PerpEngine", "createAccount"),
                lambda s, t=trader: g.create_account(s, t),
            )
    for account in w.accounts:
        owner = d.owner(account)
        d.act(
            "seed.depositMargin",
            owner,
            w.vault,
            d.tx("LeverVault", "depositMargin", account, ACCOUNT_MARGIN),
            lambda s, a=account, o=owner: g.deposit_margin(s, o, a, ACCOUNT_MARGIN),
        )
    d.publish_all()
    for lp, assets in zip(w.lps, (1_000_000 * USDC, 250_000 * USDC), strict=False):
        d.act(
            "seed.requestDeposit",
            lp,
            w.vault,
            d.tx("LeverVault", "requestDeposit", assets, lp, lp),
            lambda s, lp=lp, x=assets: g.request_deposit(s, lp, x),
        )
    t = d.now()
    d.wait_seconds(w.settings.lp_delay)
    d.publish_all()
    d.wait_seconds(w.settings.lp_grace)
    for lp in w.lps[:2]:
        settle_lp(d, lp, True, lp_blobs(d, t, 0), w.keepers[0])
        claim = g.s.claim_deposit[lp]
        d.act(
            "seed.claim",
            lp,
            w.vault,
            d.tx("LeverVault", "deposit", claim.assets, lp),
            lambda s, lp=lp, x=claim.assets: g.claim_deposit(s, lp, x),
        )
    # A book of levered positions, so that price moves reach liquidation within a few steps.
    for account, market, tenths in OPENING_BOOK:
        size = ACCOUNT_MARGIN * w.settings.token_scale * abs(tenths) // 10 * WAD // d.price_wad(market)
        d.commit(account, market, size if tenths > 0 else -size, label="seed.commit")
    d.wait_seconds(w.settings.order_delay)
    d.publish_all()
    d.settle_all()
    assert len(g.s.positions) == len(OPENING_BOOK), "the opening book did not fill"
    d.check_everything()
    w.state0, w.prices0 = g.s, d.prices
    w.chain.snapshot()
    return w


# (account, market, leverage in tenths; negative: short)
OPENING_BOOK = ((1, 0, 180), (2, 1, -150), (3, 0, -100), (3, 1, 50), (4, 0, 50), (5, 1, 180), (7, 0, -120), (7, 1, 60))


def machine_for(world: World) -> Callable[[], Machine]:
    """The machine over `world`, as a factory for `run_state_machine_as_test`.

    A function, not the class: Hypothesis hashes the factory's source at every run, and a class
    defined in a function is found by parsing this whole module (80-100 ms a shard)."""

    class Bound(Machine):
        WORLD = world

    def machine() -> Machine:
        return Bound()

    return machine


__all__ = [
    "ACCOUNT_MARGIN",
    "ACTIONS",
    "ADVERSARIES",
    "ECONOMIC_INVARIANTS",
    "LP_FUNDS",
    "MAX_UINT",
    "STATS",
    "TRADER_FUNDS",
    "Machine",
    "machine_for",
]
