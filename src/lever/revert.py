"""Contract reverts in words: every custom error of the protocol (and OpenZeppelin's that a user
can hit) as one sentence naming the problem, with amounts in human units.

The selector table is built from every compiled ABI, so an error raised by a contract deeper in
the call (the vault under the engine, the oracle adapter under either) decodes too.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from eth_abi.abi import decode as abi_decode

from lever.artifacts import artifacts
from lever.math.constants import MAX_ORDERS_PER_ACCOUNT
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
        if a["leverageWad"] >= 10**6 * 10**18
        else f"leverage {_leverage(a['leverageWad'])} is above market {a['marketId']}'s maximum"
        f" {_leverage(a['maxLeverageWad'])}"
    ),
    "OpenInterestCapExceeded": lambda a, t: (
        f"market {a['marketId']}'s open-interest cap is reached: {_usd(a['openInterestWad'])} > cap {_usd(a['capWad'])}"
    ),
    "ReserveExceeded": lambda a, t: (
        f"the pool cannot reserve for this position: open positions' capped profits would need"
        f" {_usd(a['reserveWad'])}, the pool holds {_usd(a['poolWad'])}"
    ),
    "LastSharesBackOpenPositions": lambda a, t: (
        f"these are the pool's last shares and it backs open positions (reserve {_usd(a['reserveWad'])}):"
        " redeem them once the positions close"
    ),
    "PositionTooSmall": lambda a, t: (
        f"position size {_num(a['sizeWad'])} is below market {a['marketId']}'s minimum {_num(a['minSizeWad'])}"
    ),
    "PositionFlip": lambda a, t: (
        f"this trade would flip the position in market {a['marketId']} from one side to the other: close it first"
    ),
    "NoPosition": lambda a, t: f"account {a['accountId']} has no position in market {a['marketId']}",
    "TooManyPositions": lambda a, t: f"account {a['accountId']} cannot hold another position",
    "AcceptablePriceExceeded": lambda a, t: (
        f"the fill price {_usd(a['fillPriceWad'])} is worse than the acceptable price {_usd(a['acceptablePriceWad'])}"
    ),
    "FillPriceInvalid": lambda a, t: f"market {a['marketId']}'s skew leaves no valid fill price",
    "AccountUnderwater": lambda a, t: (
        f"closing account {a['accountId']}'s last position would leave it owing {t(-a['marginAfterToken'])}:"
        " it must be liquidated"
    ),
    "ParameterOutOfBounds": lambda a, t: (
        f"parameter {bytes(a['parameter']).rstrip(bytes(1)).decode(errors='replace')} is out of bounds: {a['value']}"
    ),
    "ParameterRampInProgress": lambda a, t: (
        f"market {a['marketId']}'s last parameter change is still phasing in until {a['until']}"
    ),
    "TooManyMarkets": lambda a, t: "no more markets can be created",
    "WithdrawExceedsMargin": lambda a, t: (
        f"cannot withdraw {t(a['amount'])}: account {a['accountId']} has {t(a['marginToken'])} of margin"
    ),
    "TransferAmountMismatch": lambda a, t: (
        f"the token delivered {t(a['received'])} instead of {t(a['expected'])}"
        " (fee-on-transfer tokens are not supported)"
    ),
    "UnsupportedTokenDecimals": lambda a, t: f"collateral tokens with {a['decimals']} decimals are not supported",
    "Unauthorized": lambda a, t: f"{a['caller']} may not call this",
    "AsyncFlow": lambda a, t: "the pool is asynchronous: request a deposit or redemption, then claim it",
    "NotOperator": lambda a, t: f"{a['caller']} may not act for {a['controller']}",
    "ClaimExceedsClaimable": lambda a, t: f"only {a['claimable']} is claimable, not {a['amount']}",
    "NoPendingRequest": lambda a, t: f"{a['controller']} has no pending request",
    "RequestNotDue": lambda a, t: f"the request cannot settle before {a['dueTime']}",
    "RequestExpired": lambda a, t: f"the request expired at {a['expiry']}: cancel it",
    "RequestNotExpired": lambda a, t: f"the request is still settleable until {a['expiry']}",
    "LpPriceMissing": lambda a, t: f"market {a['marketId']} has open interest but no price for this request",
    "PoolWorthless": lambda a, t: "the pool is worth nothing: deposits are returned",
    "OrderNotFound": lambda a, t: f"no pending order {a['orderId']}",
    "OrderSlotsFull": lambda a, t: (
        f"account {a['accountId']} already has the maximum of {MAX_ORDERS_PER_ACCOUNT} pending orders"
    ),
    "InvalidOrderKind": lambda a, t: f"order kind {a['kind']} is not valid here",
    "ExecutorFeeOutOfBounds": lambda a, t: (
        f"the executor fee {t(a['fee'])} must be between {t(a['minFee'])} and {t(a['maxFee'])}"
    ),
    "OrderNotCancellable": lambda a, t: (
        f"order {a['orderId']} is a pending market order (or a triggered conditional one): it settles or"
        f" expires (at {a['expiry']}); it cannot be updated or cancelled before"
    ),
    "ReduceOnlyViolated": lambda a, t: (
        f"account {a['accountId']} has no position in market {a['marketId']} that this order reduces"
    ),
    "NothingToSettle": lambda a, t: "none of these orders could be settled or cancelled now",
    "UpdateFeeUnpaid": lambda a, t: f"the price updates cost {a['required']} wei, {a['paid']} was sent",
    "OracleNotConfigured": lambda a, t: f"market {a['marketId']} has no oracle",
    "OracleNonPositivePrice": lambda a, t: (
        f"market {a['marketId']}'s oracle reports a non-positive price ({a['answer']})"
    ),
    "OraclePriceTooHigh": lambda a, t: f"market {a['marketId']}'s oracle reports an implausibly high price",
    "OracleStalePrice": lambda a, t: (
        f"market {a['marketId']}'s price is stale: published at {a['updatedAt']}, older than {a['maxAge']} s"
    ),
    "OracleIncompleteRound": lambda a, t: f"market {a['marketId']}'s reference round {a['roundId']} is incomplete",
    "OracleExponentInvalid": lambda a, t: f"market {a['marketId']}'s pull price has exponent {a['expo']}",
    "OracleConfidenceTooWide": lambda a, t: (
        f"market {a['marketId']}'s pull price is too uncertain: ±{_usd(a['confWad'])} on {_usd(a['priceWad'])}"
    ),
    "OracleReferenceDeviation": lambda a, t: (
        f"market {a['marketId']}'s pull price {_usd(a['priceWad'])} is too far"
        f" from its reference {_usd(a['referenceWad'])}"
    ),
    "SequencerDown": lambda a, t: "the L2 sequencer is down: no fills or liquidations",
    "SequencerGracePeriod": lambda a, t: f"the L2 sequencer restarted recently: fills resume at {a['until']}",
    "OracleShockUnconfirmed": lambda a, t: (
        f"market {a['marketId']}'s last reference round moved more than the shock threshold: opening and"
        " increasing wait for confirmation (closing still works)"
    ),
    "AccountNotLiquidatable": lambda a, t: (
        f"account {a['accountId']} is not liquidatable: equity {_usd(a['equityWad'])}"
        f" >= maintenance margin {_usd(a['maintenanceMarginWad'])}"
    ),
    "NothingToLiquidate": lambda a, t: "none of these accounts is liquidatable",
    "PriceFeedNotFoundWithinRange": lambda a, t: "the price update is not the eligible one for this order",
    "InsufficientFee": lambda a, t: "the pull oracle's update fee was not paid",
    "EnforcedPause": lambda a, t: "the protocol is paused: opening and increasing positions are stopped",
    "AccessControlUnauthorizedAccount": lambda a, t: f"{a['account']} lacks the role this needs",
    "ERC20InsufficientBalance": lambda a, t: f"the wallet holds {t(a['balance'])} tokens, {t(a['needed'])} are needed",
    "ERC20InsufficientAllowance": lambda a, t: (
        f"the allowance is {t(a['allowance'])} tokens, {t(a['needed'])} are needed"
    ),
    "ReentrancyGuardReentrantCall": lambda a, t: "re-entrant call refused",
    "TimelockUnexpectedOperationState": lambda a, t: "the timelock operation is not in the state this needs",
    "TimelockInsufficientDelay": lambda a, t: f"the delay {a['delay']} is below the timelock's minimum {a['minDelay']}",
    "TimelockUnauthorizedCaller": lambda a, t: f"{a['caller']} may not change the timelock itself",
    "ExpectedPause": lambda a, t: "the protocol is not paused",
    "SafeERC20FailedOperation": lambda a, t: f"the token {a['token']} refused the transfer",
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


def decode(data: bytes) -> tuple[str, Args] | None:
    """An error's name and arguments from revert data; None if it is not a known error."""
    shape = artifacts().errors.get(bytes(data[:4])) if len(data) >= 4 else None
    if shape is None:
        return None
    try:
        values = abi_decode(list(shape.arg_types), data[4:])
    except Exception:  # noqa: BLE001 - malformed data: not this error after all
        return None
    return shape.name, dict(zip(shape.arg_names, values, strict=True))


_HEX = re.compile(r"0x[0-9a-fA-F]{8,}")


def describe(exc: BaseException, decimals: int = 6) -> tuple[str | None, Args, str]:
    """A failed call or transaction: the custom error's name (None if none is known), its
    arguments, and its meaning in words (else the node's message, first line)."""
    abi = getattr(exc, "abi", None)
    inputs = getattr(exc, "inputs", None)
    if abi is not None and isinstance(inputs, dict):  # ape's CustomError
        return str(abi.name), inputs, sentence(abi.name, inputs, decimals)
    for candidate in (getattr(exc, "data", None), getattr(exc, "revert_message", None), str(exc)):
        raw = _raw_bytes(candidate)
        if raw is not None and (found := decode(raw)) is not None:
            return found[0], found[1], sentence(*found, decimals=decimals)
    text = str(exc).strip().splitlines()
    return None, {}, text[0] if text else type(exc).__name__


def explain(exc: BaseException, decimals: int = 6) -> str:
    """A failed call or transaction in words (see `describe`)."""
    return describe(exc, decimals)[2]


def reason(selector: bytes) -> tuple[str, str]:
    """The name and meaning of a bare error selector (an `OrderCancelled` or `LpRequestCancelled`
    event's `reason`); the meaning is the error's sentence with its arguments unknown."""
    shape = artifacts().errors.get(bytes(selector[:4]))
    if shape is None:
        return f"0x{bytes(selector).hex()}", "an unknown reason"
    return shape.name, REASONS.get(shape.name, _words(shape.name))


# What a cancellation for each reason means (the event carries the selector, not the arguments).
REASONS: dict[str, str] = {
    "OrderNotCancellable": "the order expired unsettled: its executor fee went to the insurance fund",
    "NoPosition": "the position it protected is gone",
    "AccountNotLiquidatable": "the account was liquidated: its orders are cancelled, their fees back to its margin",
    "InsufficientMargin": "the account's equity would be below the initial margin after the fill",
    "LeverageTooHigh": "the position would exceed the market's maximum leverage",
    "AcceptablePriceExceeded": "the fill price was worse than the order's acceptable price",
    "OpenInterestCapExceeded": "the market's open-interest cap would be exceeded",
    "ReserveExceeded": "the pool cannot reserve for the position's capped profit",
    "LastSharesBackOpenPositions": "the pool's last shares stay until its open positions close",
    "EnforcedPause": "the protocol is paused: opening and increasing are stopped",
    "OracleShockUnconfirmed": "the market's reference moved beyond the shock threshold: increases wait",
    "PositionTooSmall": "the position would be below the market's minimum size",
    "PositionFlip": "the order would flip the position's side",
    "ReduceOnlyViolated": "there is no position for this reduce-only order to reduce",
    "PoolWorthless": "the pool is worth nothing: the deposit was returned",
    "RequestExpired": "the request expired unsettled: its fee went to the insurance fund",
}


def _raw_bytes(candidate: Any) -> bytes | None:
    if isinstance(candidate, bytes | bytearray):
        return bytes(candidate)
    if isinstance(candidate, str):
        match = _HEX.search(candidate)
        if match:
            return bytes.fromhex(match.group(0)[2:])
    return None
