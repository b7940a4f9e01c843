"""The keeper's pure core, without a chain: liquidation prices, the index, evaluation, batching."""

from hypothesis import given, settings
from hypothesis import strategies as st

from lever import math as m
from lever.keeper.core import (
    AccountRecord,
    Candidate,
    DecideParams,
    LiquidationIndex,
    decide,
    evaluate,
    liquidation_price,
)

WAD = m.WAD
SCALE = 10**12
ETH = m.MarketParams(
    max_leverage=25, min_margin=5 * WAD, trading_fee=WAD * 5 // 10_000, initial_margin_ratio=WAD * 4 // 100,
    maintenance_margin_ratio=WAD * 2 // 100, max_funding_rate_per_day=WAD // 1000, skew_scale=10_000 * WAD,
    min_position_size=WAD // 1000, reserve_ratio=WAD // 2, oi_cap_ratio=WAD,
)
LIQ = m.LiquidationParams(WAD * 11 // 10, WAD // 2, WAD * 5 // 1000, WAD * 25 // 10_000, WAD, 250 * WAD, 100 * WAD)
PARAMS = DecideParams(liquidation=LIQ, token_scale=SCALE)


def view(price: int, market_params: m.MarketParams = ETH) -> m.MarketView:
    return m.MarketView(market_params, m.MarketState(), price)


def long_account(margin_usd: int, size: int, entry: int) -> AccountRecord:
    """A position opened at `entry` with no funding: cost = size * entry."""
    return AccountRecord(margin_usd * 10**6, {0: m.Position(size, m.mul_wad_ceil(size, entry))})


def test_liquidation_price_separates_healthy_from_liquidatable():
    record = long_account(991, 6 * WAD, 3000 * WAD)
    liq = liquidation_price(record, 0, {0: view(3000 * WAD)}, SCALE)
    assert 2890 * WAD < liq < 2900 * WAD
    below = m.account_state(record.margin_token, SCALE, [(record.positions[0], view(liq - WAD // 100))])
    above = m.account_state(record.margin_token, SCALE, [(record.positions[0], view(liq + WAD // 100))])
    assert below.liquidatable and not above.liquidatable


def test_short_liquidation_price_is_above_the_price():
    record = AccountRecord(991 * 10**6, {0: m.Position(-6 * WAD, -18_000 * WAD)})
    liq = liquidation_price(record, 0, {0: view(3000 * WAD)}, SCALE)
    assert 3090 * WAD < liq < 3110 * WAD


def test_index_candidates_are_the_crossed_accounts():
    views = {0: view(3000 * WAD)}
    index = LiquidationIndex()
    records = {
        1: long_account(991, 6 * WAD, 3000 * WAD),  # liquidation near $2,895
        2: long_account(2_000, 6 * WAD, 3000 * WAD),  # near $2,720
        3: AccountRecord(991 * 10**6, {0: m.Position(-6 * WAD, -18_000 * WAD)}),  # short, near $3,100
    }
    for account, record in records.items():
        index.update(account, record, views, SCALE)
    assert index.candidates(0, 2_900 * WAD, 0) == set()
    assert index.candidates(0, 2_890 * WAD, 0) == {1}
    assert index.candidates(0, 2_700 * WAD, 0) == {1, 2}
    assert index.candidates(0, 3_150 * WAD, 0) == {3}
    index.remove(1)
    assert index.candidates(0, 2_700 * WAD, 0) == {2}


def test_index_always_returns_multi_market_accounts():
    views = {0: view(3000 * WAD), 1: view(60_000 * WAD)}
    record = AccountRecord(10**10, {0: m.Position(WAD, 3000 * WAD), 1: m.Position(-WAD // 10, -6000 * WAD)})
    index = LiquidationIndex()
    index.update(7, record, views, SCALE)
    assert index.candidates(0, 3000 * WAD, 0) == {7} == index.candidates(1, 1, 0)


@settings(max_examples=300, deadline=None)
@given(
    margin=st.integers(50, 100_000),
    size_milli=st.integers(-100_000, 100_000).filter(lambda v: abs(v) >= 1),
    move_bp=st.integers(-3_000, 3_000),
)
def test_index_never_misses_a_liquidatable_single_position_account(margin, size_milli, move_bp):
    size = size_milli * WAD // 1000
    record = AccountRecord(margin * 10**6, {0: m.Position(size, m.mul_wad_ceil(size, 3000 * WAD))})
    index = LiquidationIndex()
    index.update(1, record, {0: view(3000 * WAD)}, SCALE)
    price = 3000 * WAD * (10_000 + move_bp) // 10_000
    state = m.account_state(record.margin_token, SCALE, [(record.positions[0], view(price))])
    if state.liquidatable:
        assert 1 in index.candidates(0, price, WAD // 10**6)  # a 1e-6 band absorbs rounding


def test_evaluate_keeps_only_liquidatable_accounts():
    records = {1: long_account(991, 6 * WAD, 3000 * WAD), 2: long_account(5_000, 6 * WAD, 3000 * WAD)}
    found = evaluate([1, 2, 99], records, {0: view(2_890 * WAD)}, PARAMS)
    assert [c.account for c in found] == [1]
    assert found[0].prediction.liquidated and not found[0].prediction.full


def _candidate(account: int, equity: int, reward: int, bad_debt: int = 0) -> Candidate:
    state = m.AccountState(0, equity, 0, 100 * WAD, 0, 0, 1)
    prediction = m.LiquidationPrediction(True, False, 0, (), 0, reward, 0, bad_debt, None, state)
    return Candidate(account, state, prediction)


def test_decide_orders_most_underwater_first_and_splits_batches():
    candidates = [_candidate(a, equity, 10**6) for a, equity in ((1, 90 * WAD), (2, -5 * WAD), (3, 50 * WAD))]
    batches = decide(candidates, DecideParams(liquidation=LIQ, token_scale=SCALE, max_batch=2))
    assert [b.accounts for b in batches] == [(2, 3), (1,)]


def test_decide_skips_accounts_in_flight():
    candidates = [_candidate(1, 0, 10**6), _candidate(2, 0, 10**6)]
    [batch] = decide(candidates, PARAMS, in_flight=frozenset({1}))
    assert batch.accounts == (2,)


def test_profit_gate_drops_unprofitable_but_keeps_bad_debt():
    # gas: 80k * 10 gwei = 0.0008 ETH; at $3,000 that is $2.40 = 2_400_000 token units.
    gated = DecideParams(
        liquidation=LIQ, token_scale=SCALE, gas_per_account=80_000, gas_price_wei=10 * 10**9, token_per_eth=3000 * 10**6
    )
    candidates = [_candidate(1, 0, 2_000_000), _candidate(2, 0, 3_000_000), _candidate(3, -WAD, 0, bad_debt=5)]
    [batch] = decide(candidates, gated)
    assert set(batch.accounts) == {2, 3} and batch.has_bad_debt
    no_bad_debt = DecideParams(
        liquidation=LIQ, token_scale=SCALE, gas_per_account=80_000, gas_price_wei=10 * 10**9,
        token_per_eth=3000 * 10**6, clear_bad_debt=False,
    )
    [batch] = decide(candidates, no_bad_debt)
    assert batch.accounts == (2,)


def test_fee_bump_is_at_least_an_eighth_and_capped():
    from lever.keeper.runner import bumped_fees

    assert bumped_fees(80, 8, 10**12) == (91, 10)
    assert bumped_fees(10**9, 10**8, 10**9) == (10**9, 112_500_001)  # the cap holds the max fee
    assert bumped_fees(10, 10, 5) == (5, 5)


def test_batches_respect_the_gas_budget_and_give_their_gas_limit():
    candidates = [_candidate(a, 0, 10**6) for a in range(1, 8)]
    params = DecideParams(liquidation=LIQ, token_scale=SCALE, gas_base=100, gas_per_account=10, batch_gas_budget=135)
    batches = decide(candidates, params)
    assert [len(b.accounts) for b in batches] == [3, 3, 1]
    assert [b.gas_limit for b in batches] == [130, 130, 110]
