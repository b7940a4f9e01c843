"""The replay's comparison fails loudly on the first difference (no chain needed)."""

from __future__ import annotations

from typing import Any

import pytest

from lever.stress.errors import ReplayMismatch
from lever.stress.exact import LiquidationEvent
from lever.stress.replay import _check, _compare_liquidations


def test_a_value_one_wei_apart_is_a_mismatch_naming_the_step_and_the_ledger() -> None:
    _check("step 3", "pool assets", 10**12, 10**12)
    with pytest.raises(ReplayMismatch, match=r"step 3: pool assets: chain 1000000000001 != exact engine 1000000000000"):
        _check("step 3", "pool assets", 10**12 + 1, 10**12)


class _Logs:
    def __init__(self, events: list[dict[str, Any]]):
        self.events = events

    def get_logs(self, from_block: int) -> list[dict[str, Any]]:
        return self.events


class _Reader:
    def __init__(self, events: list[dict[str, Any]]):
        logs = _Logs(events)

        class Events:
            @staticmethod
            def Liquidation() -> _Logs:
                return logs

        class Liquidator:
            events = Events

        class Eth:
            @staticmethod
            def get_block(number: int) -> dict[str, int]:
                return {"timestamp": 1_000 + 12 * number}

        class W3:
            eth = Eth

        self.liquidator, self.w3 = Liquidator, W3


def _event(block: int, reward: int) -> dict[str, Any]:
    return {
        "blockNumber": block,
        "args": {
            "accountId": 4,
            "full": True,
            "closeShareWad": 10**18,
            "closedNotionalWad": 5 * 10**21,
            "rewardToken": reward,
            "penaltyToken": 25_000_000,
            "badDebtToken": 0,
        },
    }


def test_liquidation_events_are_compared_field_by_field() -> None:
    want = [LiquidationEvent(2, 4, True, 10**18, 5 * 10**21, 12_500_000, 25_000_000, 0)]
    assert _compare_liquidations(want, _Reader([_event(2, 12_500_000)]), 0, 1_000) == 8  # type: ignore[arg-type]
    with pytest.raises(ReplayMismatch, match="liquidation 0"):
        _compare_liquidations(want, _Reader([_event(2, 12_500_001)]), 0, 1_000)  # type: ignore[arg-type]
    with pytest.raises(ReplayMismatch, match="liquidations: chain 0 != exact engine 1"):
        _compare_liquidations(want, _Reader([]), 0, 1_000)  # type: ignore[arg-type]
