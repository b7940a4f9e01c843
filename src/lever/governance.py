"""Parameter changes through the timelock: schedule, wait the delay, execute.

The timelock (OpenZeppelin's `TimelockController`) holds every risk role; a change is public for
`minDelay` seconds before it can run (zero on local chains). Market parameters then phase in
over a day inside the engine, so a change never liquidates an account in the block it lands.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from eth_utils.crypto import keccak

from lever import app
from lever import math as m
from lever.errors import ConfigError, LeverError
from lever.units import to_scaled, to_wad

# Which fields of which parameter set a change may name, and their units.
MARKET_FIELDS = {f: "wad" for f in m.MarketParams.__dataclass_fields__} | {"max_leverage": "int"}
LIQUIDATION_FIELDS = {f: "wad" for f in m.LiquidationParams.__dataclass_fields__}
STATES = {0: "unset", 1: "waiting", 2: "ready", 3: "done"}


@dataclass(frozen=True)
class Operation:
    id: bytes
    target: str
    module: str
    data: bytes
    salt: bytes
    ready_at: int
    state: str


@dataclass(frozen=True)
class Change:
    """One call the timelock will make, with a description for people."""

    target: Any  # an ape contract
    data: bytes
    description: str


def _convert(value: str, unit: str) -> int:
    try:
        return int(value) if unit == "int" else to_wad(Decimal(value))
    except (ValueError, ArithmeticError):
        raise ConfigError(f"not a number: {value!r}") from None


def _changed(current: Any, fields: dict[str, str], changes: dict[str, str]) -> Any:
    unknown = set(changes) - set(fields)
    if unknown:
        raise ConfigError(f"unknown parameter(s): {', '.join(sorted(unknown))} (known: {', '.join(fields)})")
    if not changes:
        raise ConfigError("name at least one parameter to change, e.g. taker_fee=0.0006")
    return replace(current, **{k: _convert(v, fields[k]) for k, v in changes.items()})


def market_params_change(protocol: Any, market: str, changes: dict[str, str]) -> Change:
    """`setMarketParams` for `market`, with the named fields changed (human units)."""
    mk = app.market_id(protocol, market)
    new = _changed(m.MarketParams.from_chain(protocol.engine.marketParams(mk)), MARKET_FIELDS, changes)
    data = protocol.engine.setMarketParams.encode_input(mk, tuple(new.__dict__.values()))
    return Change(protocol.engine, bytes(data), f"{market}: " + ", ".join(f"{k}={v}" for k, v in changes.items()))


def liquidation_params_change(protocol: Any, changes: dict[str, str]) -> Change:
    new = _changed(m.LiquidationParams.from_chain(protocol.liquidator.params()), LIQUIDATION_FIELDS, changes)
    data = protocol.liquidator.setParams.encode_input(tuple(new.__dict__.values()))
    return Change(protocol.liquidator, bytes(data), "liquidation: " + ", ".join(f"{k}={v}" for k, v in changes.items()))


def fee_share_change(protocol: Any, share: Decimal) -> Change:
    data = protocol.vault.setProtocolFeeShare.encode_input(to_wad(share))
    return Change(protocol.vault, bytes(data), f"protocol fee share = {share}")


def call_change(contract: Any, function: str, *args: Any) -> Change:
    """Any risk-role call (tests and scripts use it for what has no shortcut)."""
    data = getattr(contract, function).encode_input(*args)
    return Change(contract, bytes(data), f"{function}{args}")


def schedule(protocol: Any, sender: Any, change: Change, delay: int | None = None) -> Operation:
    """Schedules `change` on the timelock (after its minimum delay unless a longer one is given)."""
    tl = protocol.timelock
    delay = int(tl.getMinDelay()) if delay is None else delay
    salt = keccak(text=f"{change.description}:{time.time_ns()}:{os.getpid()}")
    zero = b"\x00" * 32
    app.send("scheduling", tl.schedule, change.target.address, 0, change.data, zero, salt, delay, sender=sender)
    op_id = bytes(tl.hashOperation(change.target.address, 0, change.data, zero, salt))
    return _operation(protocol, op_id, str(change.target.address), change.data, salt)


def execute(protocol: Any, sender: Any, op_id: bytes) -> Operation:
    """Runs a scheduled operation whose delay has passed."""
    op = next((o for o in status(protocol) if o.id == op_id), None)
    if op is None:
        raise LeverError(f"no scheduled operation 0x{op_id.hex()}")
    if op.state != "ready":
        raise LeverError(f"operation 0x{op_id.hex()} is {op.state} (ready at {op.ready_at})")
    app.send("executing", protocol.timelock.execute, op.target, 0, op.data, b"\x00" * 32, op.salt, sender=sender)
    return _operation(protocol, op.id, op.target, op.data, op.salt)


def apply(protocol: Any, sender: Any, change: Change) -> Operation:
    """Schedules and, when the timelock's delay is zero (local chains), executes at once."""
    op = schedule(protocol, sender, change)
    if op.state == "ready":
        op = execute(protocol, sender, op.id)
    return op


def status(protocol: Any) -> list[Operation]:
    """Every operation ever scheduled on the timelock, with its state."""
    tl = protocol.timelock
    salts = {bytes(log.id): bytes(log.salt) for log in tl.CallSalt.range(protocol.deploy_block, _head() + 1)}
    ops = []
    for log in tl.CallScheduled.range(protocol.deploy_block, _head() + 1):
        op_id = bytes(log.id)
        ops.append(_operation(protocol, op_id, str(log.target), bytes(log.data), salts.get(op_id, b"\x00" * 32)))
    return ops


def _operation(protocol: Any, op_id: bytes, target: str, data: bytes, salt: bytes) -> Operation:
    tl = protocol.timelock
    names = {str(addr).lower(): name for name, addr in protocol.contracts().items()}
    return Operation(
        op_id,
        target,
        names.get(target.lower(), target),
        data,
        salt,
        int(tl.getTimestamp(op_id)),
        STATES[int(tl.getOperationState(op_id))],
    )


def _head() -> int:
    from ape import chain

    return int(chain.blocks.head.number)


def schedule_change(
    protocol: Any, sender: Any, what: str, items: tuple[str, ...], delay: int | None = None
) -> Operation:
    """`lever admin schedule`: `market MARKET name=value ...` or `liquidation name=value ...`."""
    if what == "market":
        if not items:
            raise ConfigError("name the market, then name=value pairs")
        change = market_params_change(protocol, items[0], parse_assignments(items[1:]))
    elif what == "liquidation":
        change = liquidation_params_change(protocol, parse_assignments(items))
    else:
        raise ConfigError(f"a change is of market or liquidation parameters, not {what!r}")
    return schedule(protocol, sender, change, delay)


def operation_id(text: str) -> bytes:
    """An operation id typed by a person (hex, with or without 0x)."""
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ConfigError(f"bad operation id {text!r}: 32 bytes of hex")
    return raw


def parse_assignments(items: tuple[str, ...]) -> dict[str, str]:
    """`name=value` pairs (names with dashes or underscores)."""
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not value:
            raise ConfigError(f"expected name=value, got {item!r}")
        out[name.replace("-", "_")] = value
    return out


def token_units(amount: Decimal, decimals: int) -> int:
    return to_scaled(amount, decimals)
