"""Contract reverts in words: every custom error of the protocol (and OpenZeppelin's that a user
can hit) as one sentence naming the problem, with amounts in human units.

The selector table is built from every compiled ABI, so an error raised by a contract deeper in
the call (the vault under the engine, the oracle adapter under either) decodes too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.crypto import keccak

from lever.units import from_scaled, from_wad

Args = dict[str, Any]


def _usd(value: int) -> str:
    return f"${from_wad(value):,.2f}"


def _num(value: int) -> str:
    return f"{from_wad(value).normalize():,f}"


def _tokens(value: int, decimals: int = 6) -> str:
    return f"{from_scaled(value, decimals):,f}"


class _Tokens:
    """Formats collateral amounts (called) and lvLP shares (`.shares`: the token's decimals + 6,
    the vault's virtual-share offset)."""

    def __init__(self, decimals: int):
        self.decimals = decimals

    def __call__(self, value: int) -> str:
        return _tokens(int(value), self.decimals)

    def shares(self, value: int) -> str:
        return _tokens(int(value), self.decimals + 6)


def _leverage(value: int) -> str:
    return f"{from_wad(value):.2f}x"


# name -> sentence; `t` formats token units of the collateral (6 decimals unless told).
MESSAGES: dict[str, Callable[[Args, _Tokens], str]] = {
    "ZeroAmount": lambda a, t: "the amount is zero",
    "ZeroSize": lambda a, t: "the size is zero",
    "ZeroAddress": lambda a, t: "an address is zero",
    "UnknownAccount": lambda a, t: f"account {a['accountId']} does not exist",
    "UnknownMarket": lambda a, t: f"market {a['marketId']} does not exist",
    "NotAccountOwner": lambda a, t: f"account {a['accountId']} is not owned by {a['caller']}",
    "InsufficientMargin": lambda a, t: (
        f"not enough margin on account {a['accountId']}: equity {_usd(a['equityWad'])}"
        f" < required {_usd(a['requiredWad'])}"
    ),
    "LeverageTooHigh": lambda a, t: (
        f"account {a['accountId']} has no equity behind this position: deposit margin first"
        if a["leverageWad"] >= 2**255 - 1 or a["leverageWad"] >= 10**6 * 10**18
        else f"leverage {_leverage(a['leverageWad'])} is above market {a['marketId']}'s maximum"
        f" {_leverage(a['maxLeverageWad'])}"
    ),
    "OpenInterestCapExceeded": lambda a, t: (
        f"market {a['marketId']}'s open-interest cap is reached: {_usd(a['openInterestWad'])}"
        f" > cap {_usd(a['capWad'])}"
    ),
    "PositionTooSmall": lambda a, t: (
        f"position size {_num(a['sizeWad'])} is below market {a['marketId']}'s minimum {_num(a['minSizeWad'])}"
    ),
    "PositionFlip": lambda a, t: (
        f"this trade would flip the position in market {a['marketId']} from one side to the other: close it first"
    ),
    "NoPosition": lambda a, t: f"account {a['accountId']} has no position in market {a['marketId']}",
    "TooManyPositions": lambda a, t: f"account {a['accountId']} cannot hold another position (isolated or full)",
    "PriceLimitExceeded": lambda a, t: (
        f"the price {_usd(a['priceWad'])} is past your limit {_usd(a['limitPriceWad'])}"
    ),
    "ParameterOutOfBounds": lambda a, t: (
        f"parameter {bytes(a['parameter']).rstrip(bytes(1)).decode(errors='replace')} is out of bounds:"
        f" {a['value']}"
    ),
    "TooManyMarkets": lambda a, t: "no more markets can be created",
    "WithdrawExceedsMargin": lambda a, t: (
        f"cannot withdraw {t(a['amount'])}: account {a['accountId']} has {t(a['marginToken'])} of margin"
    ),
    "TransferAmountMismatch": lambda a, t: (
        f"the token delivered {t(a['received'])} instead of {t(a['expected'])} (fee-on-transfer tokens are not supported)"
    ),
    "UnsupportedTokenDecimals": lambda a, t: f"collateral tokens with {a['decimals']} decimals are not supported",
    "Unauthorized": lambda a, t: f"{a['caller']} may not call this",
    "OracleFeedUnknown": lambda a, t: f"the oracle has no feed {a['feed']}",
    "OracleNonPositivePrice": lambda a, t: f"feed {a['feed']} reports a non-positive price ({a['answer']})",
    "OraclePriceTooHigh": lambda a, t: f"feed {a['feed']} reports an implausibly high price ({a['answer']})",
    "OracleStalePrice": lambda a, t: (
        f"feed {a['feed']}'s price is stale: updated at {a['updatedAt']}, older than {a['maxAge']} s"
    ),
    "OracleIncompleteRound": lambda a, t: f"feed {a['feed']}'s round {a['roundId']} is incomplete",
    "OracleShockUnconfirmed": lambda a, t: (
        f"feed {a['feed']}'s last price moved more than the shock threshold: opening and increasing"
        " wait for a confirming round (closing still works)"
    ),
    "AccountNotLiquidatable": lambda a, t: (
        f"account {a['accountId']} is not liquidatable: equity {_usd(a['equityWad'])}"
        f" >= maintenance margin {_usd(a['maintenanceMarginWad'])}"
    ),
    "NothingToLiquidate": lambda a, t: "none of these accounts is liquidatable",
    "EnforcedPause": lambda a, t: "the protocol is paused: opening and increasing positions are stopped",
    "AccessControlUnauthorizedAccount": lambda a, t: f"{a['account']} lacks the role this needs",
    "ERC20InsufficientBalance": lambda a, t: (
        f"the wallet holds {t(a['balance'])} tokens, {t(a['needed'])} are needed"
    ),
    "ERC20InsufficientAllowance": lambda a, t: (
        f"the allowance is {t(a['allowance'])} tokens, {t(a['needed'])} are needed"
    ),
    "ERC4626ExceededMaxRedeem": lambda a, t: (
        f"cannot redeem {t.shares(a['shares'])} lvLP now: at most {t.shares(a['max'])} (the pool keeps"
        " a reserve against open positions' profits)"
    ),
    "ERC4626ExceededMaxWithdraw": lambda a, t: (
        f"cannot withdraw {t(a['assets'])} now: at most {t(a['max'])} (the pool keeps a reserve"
        " against open positions' profits)"
    ),
    "ReentrancyGuardReentrantCall": lambda a, t: "re-entrant call refused",
}


def _words(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).lower()


def sentence(name: str, args: Args, decimals: int = 6) -> str:
    """One sentence for an error and its arguments."""
    message = MESSAGES.get(name)
    if message is not None:
        return message(args, _Tokens(decimals))
    shown = ", ".join(f"{k}={v}" for k, v in args.items())
    return f"{_words(name)}" + (f" ({shown})" if shown else "")


@cache
def _selectors() -> dict[bytes, tuple[str, tuple[str, ...], tuple[str, ...]]]:
    from lever.keeper.chain import abi_type, load_abis

    table = {}
    for abi in load_abis().values():
        for item in abi:
            if item.get("type") != "error":
                continue
            types = tuple(abi_type(i) for i in item["inputs"])
            selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
            table[selector] = (item["name"], tuple(i["name"] for i in item["inputs"]), types)
    return table


def decode(data: bytes) -> tuple[str, Args] | None:
    """An error's name and arguments from revert data; None if it is not a known error."""
    if len(data) < 4 or data[:4] not in _selectors():
        return None
    name, names, types = _selectors()[data[:4]]
    try:
        values = abi_decode(list(types), data[4:])
    except Exception:  # noqa: BLE001 - malformed data: not this error after all
        return None
    return name, dict(zip(names, values, strict=True))


_HEX = re.compile(r"0x[0-9a-fA-F]{8,}")


def explain(exc: BaseException, decimals: int = 6) -> str:
    """A failed call or transaction in words: a decoded custom error if there is one, else the
    node's message (first line)."""
    abi = getattr(exc, "abi", None)
    inputs = getattr(exc, "inputs", None)
    if abi is not None and isinstance(inputs, dict):  # ape's CustomError
        return sentence(abi.name, inputs, decimals)
    for candidate in (getattr(exc, "data", None), getattr(exc, "revert_message", None), str(exc)):
        raw = _raw_bytes(candidate)
        if raw is not None and (found := decode(raw)) is not None:
            return sentence(*found, decimals=decimals)
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _raw_bytes(candidate: Any) -> bytes | None:
    if isinstance(candidate, bytes | bytearray):
        return bytes(candidate)
    if isinstance(candidate, str):
        match = _HEX.search(candidate)
        if match:
            return bytes.fromhex(match.group(0)[2:])
    return None

