"""The keeper's pure core: an index of accounts and a `decide` step. No I/O.

The shell (`lever.keeper.runner`) feeds it chain data; everything here is a function of that
data and the Python mirror of the contracts (`lever.math`), so it is tested without a chain.

Scale comes from not re-checking every account on every price move: each account with a single
position has an exact liquidation price (other terms fixed), kept in a per-market sorted index;
when a market's price moves, only accounts whose liquidation price lies within the move (plus a
safety band for funding and volatility drift) become candidates. Accounts holding several
markets are candidates whenever any of their markets moves.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from lever import math as m

WAD = m.WAD


@dataclass
class AccountRecord:
    """What the keeper knows of one account: its margin (token units) and positions."""

    margin_token: int
    positions: dict[int, m.Position] = field(default_factory=dict)


def account_state(record: AccountRecord, views: Mapping[int, m.MarketView], token_scale: int) -> m.AccountState:
    legs = [(pos, views[market]) for market, pos in sorted(record.positions.items())]
    return m.account_state(record.margin_token, token_scale, legs)


def liquidation_price(record: AccountRecord, market: int, views: Mapping[int, m.MarketView], token_scale: int) -> int:
    """The engine's `liquidationPrice`: the price of `market` at which equity meets maintenance
    margin with every other price fixed; 0 if there is none."""
    pos = record.positions[market]
    view = views[market]
    state = account_state(record, views, token_scale)
    figures = m.position_figures(pos, view)
    mmr = m.scaled_ratio(view.maintenance_ratio, pos.size, view.params.skew_scale, view.mm_factor)
    a0 = (
        state.equity
        - state.maintenance_margin
        + figures.close_fee
        + (figures.maintenance - view.params.min_margin)
        - m.mul_div_floor(pos.size, view.price, WAD)
    )
    k = view.params.trading_fee + mmr
    size = abs(pos.size)
    if pos.size > 0:
        if a0 >= 0 or k >= WAD:
            return 0
        return m.mul_div_down(-a0, WAD * WAD, size * (WAD - k))
    if a0 <= 0:
        return 0
    return m.mul_div_down(a0, WAD * WAD, size * (WAD + k))


class LiquidationIndex:
    """Per market, single-position accounts sorted by liquidation price (longs and shorts apart),
    plus the set of multi-market accounts of each market."""

    def __init__(self) -> None:
        self._longs: dict[int, list[tuple[int, int]]] = {}
        self._shorts: dict[int, list[tuple[int, int]]] = {}
        self._multi: dict[int, set[int]] = {}
        self._entries: dict[int, list[tuple[str, int, tuple[int, int]]]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def remove(self, account: int) -> None:
        for kind, market, entry in self._entries.pop(account, []):
            if kind == "multi":
                self._multi[market].discard(account)
                continue
            book = (self._longs if kind == "long" else self._shorts)[market]
            i = bisect.bisect_left(book, entry)
            if i < len(book) and book[i] == entry:
                book.pop(i)

    def update(self, account: int, record: AccountRecord, views: Mapping[int, m.MarketView], token_scale: int) -> None:
        """(Re)indexes an account from its current record and market views."""
        self.remove(account)
        entries: list[tuple[str, int, tuple[int, int]]] = []
        if len(record.positions) == 1:
            [(market, pos)] = record.positions.items()
            price = liquidation_price(record, market, views, token_scale)
            kind = "long" if pos.size > 0 else "short"
            entry = (price, account)
            bisect.insort((self._longs if kind == "long" else self._shorts).setdefault(market, []), entry)
            entries.append((kind, market, entry))
        else:
            for market in record.positions:
                self._multi.setdefault(market, set()).add(account)
                entries.append(("multi", market, (0, account)))
        if entries:
            self._entries[account] = entries

    def candidates(self, market: int, price: int, band_wad: int) -> set[int]:
        """Accounts of `market` that may be liquidatable at `price`: longs whose liquidation price
        is at least `price * (1 - band)`, shorts whose liquidation price is positive and at most
        `price * (1 + band)`, and every multi-market account."""
        found = set(self._multi.get(market, ()))
        low = m.mul_div_down(price, WAD - band_wad, WAD)
        longs = self._longs.get(market, [])
        found.update(account for _, account in longs[bisect.bisect_left(longs, (low, -1)) :])
        high = m.mul_div_up(price, WAD + band_wad, WAD)
        shorts = self._shorts.get(market, [])
        found.update(account for liq, account in shorts[: bisect.bisect_right(shorts, (high, 2**256))] if liq > 0)
        return found


@dataclass(frozen=True)
class Candidate:
    account: int
    state: m.AccountState
    prediction: m.LiquidationPrediction

    @property
    def health_wad(self) -> int:
        """equity / maintenance (WAD); the most underwater first."""
        if self.state.maintenance_margin == 0:
            return 2**255
        return self.state.equity * WAD // self.state.maintenance_margin


@dataclass(frozen=True)
class Batch:
    accounts: tuple[int, ...]
    expected_reward_token: int
    has_bad_debt: bool
    gas_limit: int = 0  # the transaction's gas limit: base + each account's budget


@dataclass(frozen=True)
class DecideParams:
    """What `decide` needs besides the accounts and markets."""

    liquidation: m.LiquidationParams
    token_scale: int
    max_batch: int = 500
    # Gas limit one account needs in a batch: eth_estimateGas gives 66.0k per single-position
    # account in a batch of 400 (the receipt shows ~58k: storage refunds are paid back only at
    # the end, so the limit must cover the gas before them). A second position adds up to 45k.
    # `gas_base` covers the batch itself and its first account's cold storage (~125k measured in a
    # 400-account batch; a 2-account batch with bad debt needed more than 150k + 2 x 67k).
    # `batch_gas_budget` (0: none) caps a batch.
    gas_per_account: int = 67_000
    gas_per_extra_position: int = 45_000
    gas_base: int = 250_000
    batch_gas_budget: int = 0
    gas_price_wei: int = 0
    token_per_eth: int = 0  # token units one ETH is worth (for the profit gate); 0 = no gate
    clear_bad_debt: bool = True


def evaluate(
    accounts: Iterable[int],
    records: Mapping[int, AccountRecord],
    views: Mapping[int, m.MarketView],
    params: DecideParams,
    pool: int = 0,
    insurance: int = 0,
    protocol_fees: int = 0,
    protocol_fee_share: int = 0,
) -> list[Candidate]:
    """Liquidatable accounts among `accounts`, with the mirror's prediction of each liquidation."""
    found = []
    for account in accounts:
        record = records.get(account)
        if record is None or not record.positions:
            continue
        legs = [(pos, views[market]) for market, pos in sorted(record.positions.items())]
        state = m.account_state(record.margin_token, params.token_scale, legs)
        if not state.liquidatable:
            continue
        prediction = m.predict_liquidation(
            record.margin_token, params.token_scale, legs, params.liquidation,
            pool, insurance, protocol_fees, protocol_fee_share,
        )
        found.append(Candidate(account, state, prediction))
    return found


def decide(candidates: Iterable[Candidate], params: DecideParams, in_flight: frozenset[int] = frozenset()) -> list[Batch]:
    """Batches to send: most underwater first, at most `max_batch` accounts each, skipping
    accounts already in flight. The profit gate drops accounts whose reward does not cover their
    share of gas, except bad-debt accounts when `clear_bad_debt` is set."""
    ordered = sorted((c for c in candidates if c.account not in in_flight), key=lambda c: (c.health_wad, c.account))
    kept = []
    for c in ordered:
        bad_debt = c.prediction.bad_debt > 0
        if params.token_per_eth and not (bad_debt and params.clear_bad_debt):
            gas_cost_token = account_gas(c, params) * params.gas_price_wei * params.token_per_eth // 10**18
            if c.prediction.reward_token <= gas_cost_token:
                continue
        kept.append(c)
    batches: list[Batch] = []
    chunk: list[Candidate] = []
    gas = params.gas_base
    for c in kept:
        need = account_gas(c, params)
        full = len(chunk) >= params.max_batch or (params.batch_gas_budget and gas + need > params.batch_gas_budget)
        if chunk and full:
            batches.append(_batch(chunk, gas))
            chunk, gas = [], params.gas_base
        chunk.append(c)
        gas += need
    if chunk:
        batches.append(_batch(chunk, gas))
    return batches


def account_gas(c: Candidate, params: DecideParams) -> int:
    return params.gas_per_account + params.gas_per_extra_position * max(0, c.state.position_count - 1)


def _batch(chunk: list[Candidate], gas: int) -> Batch:
    return Batch(
        tuple(c.account for c in chunk),
        sum(c.prediction.reward_token for c in chunk),
        any(c.prediction.bad_debt > 0 for c in chunk),
        gas,
    )
