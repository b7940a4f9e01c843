"""The keeper's pure core, without a chain: the liquidation index, evaluate/decide/pack, which
orders and LP requests are due. Runs without a node:

    python -m pytest tests/keeper/test_core.py -p no:ape_test

Markets and liquidation parameters are the ones `config/local.toml` deploys; every figure is the
mirror's (`lever.math`), never re-derived here.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lever import math as m
from lever.chain import AccountRecord
from lever.config import load_network_config
from lever.errors import ConfigError
from lever.keeper.core import (
    Candidate,
    DecideParams,
    LiquidationIndex,
    LpRequest,
    batch_gas_budget,
    decide,
    evaluate,
    items_per_batch,
    lp_work,
    order_work,
    pack,
    safe_behind,
    tx_gas_cap,
)
from lever.keeper.runner import bumped_fees
from lever.keeper.settings import load_settings
from lever.math.orders import Kind, Order, order_id

pytestmark = pytest.mark.pure

WAD = m.WAD
SCALE = 10**12  # a 6-decimal token
USDC = 10**6
CONFIG = load_network_config("local")
ETH_PARAMS = m.MarketParams.from_chain(CONFIG.markets["ETH-USD"].params())
BTC_PARAMS = m.MarketParams.from_chain(CONFIG.markets["BTC-USD"].params())
LIQ = m.LiquidationParams.from_chain(CONFIG.liquidation.params())
# a pool far larger than any reserve: profits paid in full
COV = m.Coverage(pool=10_000_000 * WAD, reserve=0)
PARAMS = DecideParams(liquidation=LIQ, token_scale=SCALE)
ETH, BTC = 0, 1
DELAY, WINDOW = CONFIG.orders.settlement_delay, CONFIG.orders.settlement_window
T0 = 1_800_000_000  # a chain time


def view(price_usd: float, market: int = ETH, publish_time: int = T0) -> m.MarketView:
    params = ETH_PARAMS if market == ETH else BTC_PARAMS
    return m.MarketView(market, params, m.PriceData(int(price_usd * WAD), publish_time), m.MarketState())


def position(size: str | float, entry_usd: int, last_increase: int = 0) -> m.Position:
    """A position filled at `entry_usd` with nothing owed since: cost = size x entry."""
    size_wad = int(float(size) * 10**6) * 10**12
    return m.Position(size_wad, m.fixed.mul_wad_ceil(size_wad, entry_usd * WAD), 0, last_increase)


def record(margin_usd: int, *legs: tuple[int, m.Position], last_trade: int = T0 - 60) -> AccountRecord:
    return AccountRecord(margin_usd * USDC, dict(legs), last_trade)


def state_at(r: AccountRecord, views: dict[int, m.MarketView]) -> m.AccountState:
    return m.account_state(r.margin_token, SCALE, [(pos, views[mk]) for mk, pos in sorted(r.positions.items())], COV)


# --------------------------------------------------------------------------- the liquidation index

BOOK = {
    1: record(991, (ETH, position(6, 3000))),  # long 18x: liquidatable a little below $2,900
    2: record(2_000, (ETH, position(6, 3000))),  # long 9x: far lower
    3: record(991, (ETH, position(-6, 3000))),  # short 18x: a little above $3,100
}


def indexed(records: dict[int, AccountRecord], views: dict[int, m.MarketView] | None = None) -> LiquidationIndex:
    index = LiquidationIndex()
    for account, r in records.items():
        index.update(account, r, views or {ETH: view(3000), BTC: view(60_000, BTC)}, SCALE, COV)
    return index


def test_the_index_returns_exactly_the_accounts_a_move_makes_liquidatable() -> None:
    index = indexed(BOOK)
    for price in (2_950, 2_900, 2_890, 2_700, 2_500, 3_050, 3_120, 3_300):
        views = {ETH: view(price)}
        liquidatable = {a for a, r in BOOK.items() if state_at(r, views).liquidatable}
        assert index.candidates(ETH, price * WAD, 0) == liquidatable, price
    assert index.candidates(ETH, 2_890 * WAD, 0) == {1}  # the move matters: not every account is a candidate
    assert index.candidates(ETH, 3_120 * WAD, 0) == {3}


def test_the_band_widens_the_candidates_by_its_share_of_the_price() -> None:
    index = indexed(BOOK)
    liq = m.liquidation_price(BOOK[1].margin_token, SCALE, [(BOOK[1].positions[ETH], view(3000))], ETH, COV)
    just_above = liq * 1_004 // 1_000  # 0.4% above the liquidation price: healthy ...
    assert not state_at(BOOK[1], {ETH: view(just_above / WAD)}).liquidatable
    assert index.candidates(ETH, just_above, 0) == set()
    assert index.candidates(ETH, just_above, WAD // 200) == {1}  # ... but within a 0.5% band


def test_the_index_always_returns_accounts_holding_several_markets() -> None:
    both = record(10_000, (ETH, position(1, 3000)), (BTC, position("-0.1", 60_000)))
    index = indexed({7: both, **BOOK})
    assert 7 in index.candidates(ETH, 3_000 * WAD, 0)
    assert index.candidates(BTC, 60_000 * WAD, 0) == {7}


def test_the_index_forgets_a_removed_account_and_moves_an_updated_one() -> None:
    index = indexed(BOOK)
    index.remove(1)
    assert index.candidates(ETH, 2_700 * WAD, 0) == {2}
    assert len(index) == 2
    safer = record(5_000, (ETH, position(6, 3000)))  # more margin: liquidatable far lower
    index.update(2, safer, {ETH: view(3000)}, SCALE, COV)
    assert index.candidates(ETH, 2_700 * WAD, 0) == set()
    index.update(2, AccountRecord(5_000 * USDC), {ETH: view(3000)}, SCALE, COV)  # no position left
    assert len(index) == 1


def test_a_short_with_no_liquidation_price_is_always_a_candidate_and_a_long_with_none_never() -> None:
    """`m.liquidation_price` returns 0 when there is none: for a short, because it is liquidatable
    at every price (here its funding and borrowing owed exceed its margin plus all a short can
    ever earn); for a long, because no price is low enough."""
    owing = m.MarketView(ETH, ETH_PARAMS, m.PriceData(3000 * WAD, T0), m.MarketState(short_index=4_000 * WAD))
    short = record(2_000, (ETH, position(-6, 3000)))  # owes 6 x $4,000 = $24,000 > $2,000 + $18,000
    safe_long = record(100_000, (ETH, position(1, 3000)))
    for r in (short, safe_long):
        assert m.liquidation_price(r.margin_token, SCALE, [(r.positions[ETH], owing)], ETH, COV) == 0
    index = indexed({1: short, 2: safe_long}, {ETH: owing})
    for usd in (1, 100, 2_000, 3_000, 5_000, 100_000):
        views = {ETH: m.MarketView(ETH, ETH_PARAMS, m.PriceData(usd * WAD, T0), owing.state)}
        assert state_at(short, views).liquidatable and not state_at(safe_long, views).liquidatable, usd
        assert index.candidates(ETH, usd * WAD, 0) == {1}, usd
    assert index.candidates(ETH, 0, 0) == {1}  # even at a price of 0, the long is no candidate


@settings(max_examples=300, deadline=None)
@given(
    margin=st.integers(50, 100_000),
    size_milli=st.integers(-100_000, 100_000).filter(lambda v: abs(v) >= 1),
    move_bp=st.integers(-3_000, 3_000),
)
def test_the_index_never_misses_a_liquidatable_single_position_account(
    margin: int, size_milli: int, move_bp: int
) -> None:
    r = record(margin, (ETH, position(size_milli / 1000, 3000)))
    index = indexed({1: r})
    price = 3000 * WAD * (10_000 + move_bp) // 10_000
    if state_at(r, {ETH: view(price / WAD)}).liquidatable:
        # a band of a millionth absorbs rounding
        assert 1 in index.candidates(ETH, price, WAD // 10**6)


# --------------------------------------------------------------------------- evaluate, decide, pack


def test_evaluate_keeps_the_liquidatable_accounts_with_the_mirrors_prediction() -> None:
    views = {ETH: view(2_890)}
    found = evaluate([1, 2, 3, 99], BOOK, views, PARAMS, COV, {ETH: T0})
    assert [c.account for c in found] == [1]
    legs = [(BOOK[1].positions[ETH], views[ETH])]
    assert found[0].prediction == m.predict_liquidation(BOOK[1].margin_token, SCALE, legs, LIQ, COV)
    assert found[0].prediction.liquidated and not found[0].prediction.full


def test_evaluate_waits_for_a_price_newer_than_the_accounts_last_trade() -> None:
    views = {ETH: view(2_890)}
    traded_now = {1: record(991, (ETH, position(6, 3000)), last_trade=T0)}
    # the contract would skip it
    assert evaluate([1], traded_now, views, PARAMS, COV, {ETH: T0}) == []
    assert [c.account for c in evaluate([1], traded_now, views, PARAMS, COV, {ETH: T0 + 1})] == [1]


def test_evaluate_counts_the_pending_orders_fees_a_liquidation_returns_to_the_margin() -> None:
    views = {ETH: view(2_890)}
    equity_gap = -state_at(BOOK[1], views).equity + state_at(BOOK[1], views).maintenance_margin
    escrow = {1: equity_gap // SCALE + USDC}  # escrowed fees that cover the gap: healthy once returned
    assert evaluate([1], BOOK, views, PARAMS, COV, {ETH: T0}, escrow) == []
    assert [c.account for c in evaluate([1], BOOK, views, PARAMS, COV, {ETH: T0}, {1: USDC})] == [1]


def candidate(account: int, equity_usd: int, reward: int = USDC, positions: int = 1) -> Candidate:
    state = m.AccountState(0, equity_usd * WAD, 0, 100 * WAD, 0, 0, positions)
    prediction = m.LiquidationPrediction(True, False, 0, (), (), 0, 0, 0, reward, 0, state)
    return Candidate(account, state, prediction)


def test_decide_sends_the_most_underwater_first_in_batches_of_at_most_max_batch() -> None:
    found = [candidate(a, equity) for a, equity in ((1, 90), (2, -5), (3, 50), (4, 10))]
    batches = decide(found, DecideParams(liquidation=LIQ, token_scale=SCALE, max_batch=3))
    assert [b.items for b in batches] == [(2, 4, 3), (1,)]


def test_decide_skips_accounts_already_in_flight() -> None:
    [batch] = decide([candidate(1, 0), candidate(2, 0)], PARAMS, in_flight=frozenset({1}))
    assert batch.items == (2,)


def test_the_profit_gate_drops_what_gas_costs_more_than_it_pays_but_clears_bad_debt() -> None:
    # 110k gas at 10 gwei is 0.0011 ETH: $3.30 at $3,000 an ETH, in token units.
    gated = DecideParams(liquidation=LIQ, token_scale=SCALE, gas_price_wei=10 * 10**9, token_per_eth=3_000 * USDC)
    found = [
        candidate(1, 10, reward=3 * USDC),
        candidate(2, 10, reward=4 * USDC),
        candidate(3, -1, reward=0),
    ]
    [batch] = decide(found, gated)
    assert set(batch.items) == {2, 3}
    keep_debt_out = DecideParams(
        liquidation=LIQ,
        token_scale=SCALE,
        gas_price_wei=10 * 10**9,
        token_per_eth=3_000 * USDC,
        clear_bad_debt=False,
    )
    [batch] = decide(found, keep_debt_out)
    assert batch.items == (2,)


def test_a_batch_carries_the_gas_of_its_accounts_and_a_second_position_costs_more() -> None:
    p = DecideParams(
        liquidation=LIQ,
        token_scale=SCALE,
        gas_base=1_000,
        gas_per_account=100,
        gas_per_extra_position=40,
        batch_gas_budget=1_400,
    )
    batches = decide([candidate(1, 0), candidate(2, 1, positions=2), candidate(3, 2), candidate(4, 3)], p)
    assert [b.items for b in batches] == [(1, 2, 3), (4,)]
    assert [b.gas_limit for b in batches] == [1_000 + 100 + 140 + 100, 1_000 + 100]


def test_pack_fills_each_batch_to_its_budget_or_its_size() -> None:
    items = [(i, 10) for i in range(7)]
    assert [b.items for b in pack(items, 100, 10, 135)] == [(0, 1, 2), (3, 4, 5), (6,)]
    assert [b.gas_limit for b in pack(items, 100, 10, 135)] == [130, 130, 110]
    assert [len(b.items) for b in pack(items, 100, 2, 0)] == [2, 2, 2, 1]
    assert pack([], 100, 2, 0) == []
    # one item alone may exceed it
    assert [b.items for b in pack([(1, 500)], 100, 5, 135)] == [(1,)]


def test_the_stress_lab_counts_a_batch_of_equal_items_as_pack_fills_it() -> None:
    cases = ((5_000_000, 600_000, 150_000), (5_000_000, 600_000, 200_000), (700_000, 600_000, 150_000))
    for budget, base, need in cases:
        batches = pack([(i, need) for i in range(500)], base, 500, budget)
        assert len(batches[0].items) == items_per_batch(budget, base, need)


def test_a_batch_never_carries_more_gas_than_a_transaction_may_nor_a_whole_block() -> None:
    # 30M blocks, six batches a block: 5M each; Ethereum's 60M blocks: 10M each
    assert batch_gas_budget(30_000_000, 6) == 5_000_000
    assert batch_gas_budget(60_000_000, 6) == 10_000_000
    # one batch a block asked for: still half a block, so no batch holds a block to itself
    assert batch_gas_budget(30_000_000, 1) == 15_000_000
    # a 300M-gas L2 block: EIP-7825's 2**24 binds; without the cap (0) the share does
    assert batch_gas_budget(300_000_000, 6) == 2**24
    assert batch_gas_budget(300_000_000, 6, 0) == 50_000_000
    # one transaction alone (a retry at double gas): the block, under the cap
    assert tx_gas_cap(30_000_000) == 2**24
    assert tx_gas_cap(10_000_000) == 10_000_000
    assert tx_gas_cap(30_000_000, 0) == 30_000_000


def test_fee_bumps_raise_both_fees_by_an_eighth_and_stop_at_the_cap() -> None:
    assert bumped_fees(80, 8, 10**12) == (91, 10)
    assert bumped_fees(10**9, 10**8, 10**9) == (10**9, 112_500_001)
    assert bumped_fees(10, 10, 5) == (5, 5)


# --------------------------------------------------------------------------- orders


def order(
    account: int,
    kind: Kind,
    size: str,
    updated_at: int,
    trigger: int = 0,
    slot: int = 0,
    market: int = ETH,
) -> Order:
    size_wad = int(float(size) * 10**6) * 10**12
    return Order(order_id(account, slot), account, size_wad, USDC, updated_at, market, kind, 0, trigger * WAD)


def work(
    orders: list[Order],
    now: int,
    records: dict[int, AccountRecord] | None = None,
    prices: dict[int, tuple[int, int]] | None = None,
) -> tuple[list[int], list[int], list[int]]:
    w = order_work(orders, now, DELAY, WINDOW, records or {}, prices or {})
    return (
        [o.order_id for o in w.due],
        [o.order_id for o in w.expired],
        [o.order_id for o in w.triggered],
    )


def test_a_market_order_is_due_from_commit_plus_delay_until_its_window_closes() -> None:
    o = order(1, Kind.MARKET, "1", T0)
    assert work([o], T0 + DELAY - 1) == ([], [], [])
    assert work([o], T0 + DELAY) == ([o.order_id], [], [])
    # the contract's expiry is inclusive
    assert work([o], T0 + DELAY + WINDOW) == (
        [o.order_id],
        [],
        [],
    )
    assert work([o], T0 + DELAY + WINDOW + 1) == ([], [o.order_id], [])


def test_due_orders_come_oldest_first() -> None:
    late, early, tie = (
        order(5, Kind.MARKET, "1", T0 + 3),
        order(9, Kind.MARKET, "1", T0),
        order(2, Kind.MARKET, "1", T0),
    )
    due, _, _ = work([late, early, tie], T0 + 10)
    assert due == [tie.order_id, early.order_id, late.order_id]


def test_a_stop_loss_triggers_only_on_a_price_published_a_delay_after_the_positions_last_increase() -> None:
    increased = T0 + 20
    records = {1: record(10_000, (ETH, position(2, 3000, last_increase=increased)))}
    stop = order(1, Kind.STOP_LOSS, "-2", T0, trigger=2_900)
    for publish_time, price, fires in (
        (T0 + DELAY, 2_890, False),  # a delay after the order, but before the position grew
        (increased + DELAY - 1, 2_890, False),
        (increased + DELAY, 2_910, False),  # in time, but above the trigger
        (increased + DELAY, 2_900, True),
    ):
        fired = work([stop], publish_time, records, {ETH: (price * WAD, publish_time)})[2]
        assert fired == ([stop.order_id] if fires else []), (publish_time, price)


def test_a_batch_goes_behind_a_steps_earlier_ones_only_if_they_cannot_leave_it_nothing_to_settle() -> None:
    """The earlier batches of a step may increase a position (its stop-loss then needs a price
    published a delay later). A batch they could leave with nothing done would revert
    `NothingToSettle`: it waits for the next step. A market or triggered order is always done
    (filled, cancelled or sent back to waiting); a limit order's trigger needs only the price."""
    market = order(1, Kind.MARKET, "1", T0)
    stop = order(2, Kind.STOP_LOSS, "-1", T0, trigger=2_900)
    take = order(3, Kind.TAKE_PROFIT, "-1", T0, trigger=3_100)
    limit = order(4, Kind.LIMIT, "1", T0, trigger=2_900)
    bounded = replace(order(5, Kind.TAKE_PROFIT, "-1", T0, trigger=3_100), acceptable_price=3_050 * WAD)
    assert safe_behind([market, limit, bounded], touched={1, 4, 5})  # filled or cancelled, whatever came first
    assert safe_behind([replace(limit, triggered=True)], touched={4})
    assert safe_behind([limit], touched={4})
    assert safe_behind([stop, take], touched={9})
    assert safe_behind([bounded], touched=set())  # triggering it does not look at its acceptable price
    assert not safe_behind([stop, take], touched={3})  # an earlier batch traded for the take-profit's account
    assert not safe_behind([stop, limit], touched={2})


def test_a_triggered_order_is_due_and_expires_as_a_market_order_committed_when_it_triggered() -> None:
    records = {1: record(10_000, (ETH, position(2, 3000)))}
    at = T0 + 100
    stop = replace(order(1, Kind.STOP_LOSS, "-1", T0, trigger=2_900), triggered=True, updated_at=at)
    low = {ETH: (2_800 * WAD, at + DELAY)}  # its trigger still met: it is not triggered again
    assert work([stop], at + DELAY - 1, records, low) == ([], [], [])
    assert work([stop], at + DELAY, records, low) == ([stop.order_id], [], [])
    assert work([stop], at + DELAY + WINDOW, records, low) == ([stop.order_id], [], [])
    assert work([stop], at + DELAY + WINDOW + 1, records, low) == ([], [stop.order_id], [])


def test_a_limit_order_counts_only_from_its_own_update() -> None:
    records = {1: record(10_000, (ETH, position(2, 3000, last_increase=T0 + 20)))}
    buy = order(1, Kind.LIMIT, "1", T0, trigger=2_950)
    assert work([buy], T0 + DELAY, records, {ETH: (2_950 * WAD, T0 + DELAY)})[2] == [buy.order_id]
    assert work([buy], T0 + DELAY - 1, records, {ETH: (2_950 * WAD, T0 + DELAY - 1)})[2] == []
    assert work([buy], T0 + DELAY, records, {ETH: (2_951 * WAD, T0 + DELAY)})[2] == []
    sell = order(1, Kind.LIMIT, "-1", T0, trigger=3_050, slot=1)
    assert work([sell], T0 + DELAY, records, {ETH: (3_050 * WAD, T0 + DELAY)})[2] == [sell.order_id]


def test_a_take_profit_on_a_short_triggers_when_the_price_falls_to_it() -> None:
    records = {1: record(10_000, (ETH, position(-1, 3000)))}
    take = order(1, Kind.TAKE_PROFIT, "1", T0, trigger=2_800)
    later = T0 + DELAY
    assert work([take], later, records, {ETH: (2_801 * WAD, later)})[2] == []
    assert work([take], later, records, {ETH: (2_800 * WAD, later)})[2] == [take.order_id]
    stop = order(1, Kind.STOP_LOSS, "1", T0, trigger=3_100, slot=1)  # the short's stop: a rise
    assert work([stop], later, records, {ETH: (3_100 * WAD, later)})[2] == [stop.order_id]
    assert work([stop], later, records, {ETH: (3_099 * WAD, later)})[2] == []


def test_a_stop_whose_position_is_gone_is_cancelled_and_one_without_a_price_waits() -> None:
    stop = order(1, Kind.STOP_LOSS, "-1", T0, trigger=2_900)
    price = {ETH: (2_800 * WAD, T0 + DELAY)}
    assert work([stop], T0 + DELAY, {1: record(100)}, price) == ([], [stop.order_id], [])
    holding = {1: record(10_000, (ETH, position(1, 3000)))}
    assert work([stop], T0 + DELAY, holding, {}) == ([], [], [])  # no price for the market yet


# --------------------------------------------------------------------------- LP requests

LP_DELAY, LP_WINDOW, LP_GRACE = (
    CONFIG.lp.settlement_delay,
    CONFIG.lp.settlement_window,
    CONFIG.lp.liquidation_grace,
)


def test_an_lp_request_is_due_after_its_delay_and_the_liquidation_grace_then_expires() -> None:
    r = LpRequest("0x00000000000000000000000000000000000000aa", True, 1_000 * USDC, T0)

    def at(now: int) -> tuple[list[LpRequest], list[LpRequest]]:
        return lp_work([r], now, LP_DELAY, LP_WINDOW, LP_GRACE)

    assert at(T0 + LP_DELAY + LP_GRACE - 1) == ([], [])
    assert at(T0 + LP_DELAY + LP_GRACE) == ([r], [])
    assert at(T0 + LP_DELAY + LP_WINDOW + LP_GRACE) == ([r], [])  # the vault's expiry is inclusive
    assert at(T0 + LP_DELAY + LP_WINDOW + LP_GRACE + 1) == ([], [r])


# --------------------------------------------------------------------------- settings


def test_a_bad_setting_is_one_config_error_naming_the_field() -> None:
    with pytest.raises(ConfigError, match="^invalid keeper setting poll_interval: "):
        load_settings({"poll_interval": 0})
    with pytest.raises(ConfigError, match="^invalid keeper setting max_batch: "):
        load_settings({"max_batch": 5_000})
    with pytest.raises(ConfigError, match="^invalid keeper setting max_tx_gas: "):
        load_settings({"max_tx_gas": -1})


def test_a_transaction_carries_at_most_ethereums_cap_unless_the_operator_lifts_it(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from lever.keeper.core import MAX_TX_GAS, KeeperConfig

    assert load_settings().max_tx_gas == KeeperConfig().max_tx_gas == MAX_TX_GAS == 16_777_216
    monkeypatch.setenv("LEVER_MAX_TX_GAS", "0")
    assert load_settings().max_tx_gas == 0


def test_a_flag_beats_the_environment_which_beats_the_file(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    file = tmp_path / "keeper.toml"
    file.write_text('max_batch = 7\nband = "0.01"\npoll_interval = 3\n')
    monkeypatch.setenv("LEVER_MAX_BATCH", "8")
    s = load_settings({"poll_interval": 0.5}, file)
    assert (s.max_batch, str(s.band), s.poll_interval) == (8, "0.01", 0.5)
    assert load_settings().max_batch == 8
    monkeypatch.delenv("LEVER_MAX_BATCH")
    assert load_settings().max_batch == 500  # the default once nothing sets it
