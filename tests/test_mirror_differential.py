"""The Python mirror against the contracts on random states: equal to the wei."""

from ape.exceptions import ContractLogicError
from helpers import account_legs, ledgers, mirror_account, usdc, wad
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from lever import math as m
from lever.deploy import create_account

DAY = 86_400
SCALE = 10**12
PRICES = {"ETH-USD": 3000, "BTC-USD": 60_000}


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    margin=st.integers(200, 50_000),
    eth_leverage_tenths=st.integers(-240, 240),
    btc_leverage_tenths=st.integers(-240, 240),
    # per mille per round, positive = against the position (so liquidations happen often)
    eth_moves=st.lists(st.integers(-10, 30), min_size=1, max_size=4),
    btc_moves=st.lists(st.integers(-10, 30), min_size=0, max_size=3),
    elapsed=st.integers(0, 3_000),
    record_last=st.booleans(),
)
def test_mirror_matches_contract_views_and_liquidations(
    protocol, chain, alice, bob, deployer, set_price,
    margin, eth_leverage_tenths, btc_leverage_tenths, eth_moves, btc_moves, elapsed, record_last,
):
    engine, vault, token = protocol.engine, protocol.vault, protocol.token
    with chain.isolate():
        account = create_account(engine, alice)
        token.mint(alice, usdc(margin), sender=alice)
        token.approve(vault, usdc(margin), sender=alice)
        vault.depositMargin(account, usdc(margin), sender=alice)
        for name, tenths in (("ETH-USD", eth_leverage_tenths), ("BTC-USD", btc_leverage_tenths)):
            # size = margin * leverage / price, in units the market accepts
            size = wad(margin) * tenths // 10 // PRICES[name]
            size -= size % 10**14
            if abs(size) >= 10**15:
                try:
                    engine.modifyPosition(account, protocol.markets[name], size, 0, sender=alice)
                except ContractLogicError as error:
                    # Beyond what the margin can carry: the only reasons the engine may give.
                    assert type(error).__name__ in ("InsufficientMargin", "LeverageTooHigh"), error
        if not engine.accountMarkets(account):
            event("no position")
            return
        chain.pending_timestamp = chain.blocks.head.timestamp + elapsed
        for name, moves, tenths in (("ETH-USD", eth_moves, eth_leverage_tenths), ("BTC-USD", btc_moves, btc_leverage_tenths)):
            price = PRICES[name] * 1000
            against = -1 if tenths > 0 else 1
            for i, move in enumerate(moves):
                price = price * (1000 + against * move) // 1000
                set_price(name, f"{price / 1000:.3f}")
                if record_last or i < len(moves) - 1:
                    protocol.oracle.update(protocol.feeds[name], sender=deployer)
        chain.mine()
        now = chain.blocks.head.timestamp

        on_chain = engine.accountState(account)
        mirror = mirror_account(protocol, account, now)
        assert (on_chain.equityWad, on_chain.initialMarginWad, on_chain.maintenanceMarginWad,
                on_chain.notionalWad, on_chain.minMarginWad) == (
            mirror.equity, mirror.initial_margin, mirror.maintenance_margin, mirror.notional, mirror.min_margin)

        if not mirror.liquidatable:
            event("healthy")
            return
        legs = account_legs(protocol, account)
        before = ledgers(vault)
        lp = m.LiquidationParams.from_chain(protocol.liquidator.params())
        receipt = protocol.liquidator.liquidate(account, sender=bob)
        predicted = m.predict_liquidation(
            mirror.margin // SCALE, SCALE,
            [(pos, raw.view(receipt.timestamp)) for pos, raw in legs], lp,
            before["pool"], before["insurance"], before["fees"], int(vault.protocolFeeShareWad()),
        )
        [liquidation] = receipt.events.filter(protocol.liquidator.Liquidation)
        event("liquidated in full" if predicted.full else "liquidated in part")
        if predicted.bad_debt:
            event("bad debt")
        assert (liquidation.closeShareWad, liquidation.closedNotionalWad, liquidation.rewardToken,
                liquidation.penaltyToken, liquidation.badDebtToken) == (predicted.share, predicted.closed_notional, predicted.reward_token,
                                        predicted.penalty_token, predicted.bad_debt)
        assert int(vault.marginOf(account)) == predicted.settlement.margin
        assert ledgers(vault)["insurance"] == predicted.settlement.insurance
        assert ledgers(vault)["pool"] == predicted.settlement.pool
