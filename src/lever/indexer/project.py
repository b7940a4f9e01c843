"""The projection: events in, the protocol's ledgers, accounts and positions out (pure).

Every ledger of the vault is followed exactly from the events, through the mirror (`lever.math`)
wherever the contract computes: a trade's margin comes from `Settled`, a position's cost and
entry charge from `PositionChanged` and the last `Accrued` index, a liquidation's settlement from
`lever.math.vault.settle_liquidation` on the legs its `PositionChanged` events closed. The
indexer's tests compare the result with the chain's own views.

`Projection.apply` mutates the state and records what a batch must write (`Changes`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from lever import math as m
from lever.errors import LeverError
from lever.indexer.decode import Event
from lever.math import perp
from lever.math.fixed import to_token_down, to_token_floor, to_token_up

ZERO = "0x" + "00" * 20


class ProjectionError(LeverError):
    """The events disagree with the projection (an event the indexer cannot explain)."""


@dataclass
class Account:
    owner: str
    margin: int
    created_block: int


@dataclass
class Ledgers:
    pool: int = 0
    insurance: int = 0
    protocol_fees: int = 0
    order_escrow: int = 0
    lp_escrow: int = 0
    share_supply: int = 0


@dataclass
class Small:
    """The projection's state that is not a table of its own (stored as JSON in `cursor`)."""

    ledgers: Ledgers = field(default_factory=Ledgers)
    protocol_fee_share: int = 0
    liquidation_params: list[int] = field(default_factory=list)
    lp_fee: int = 0
    indices: dict[int, list[int]] = field(default_factory=dict)  # market -> [long, short]
    lp_deposits: dict[str, list[int]] = field(default_factory=dict)  # controller -> [assets, fee]
    lp_redeems: dict[str, list[int]] = field(default_factory=dict)  # controller -> [shares, fee]
    open_orders: dict[int, list[int]] = field(default_factory=dict)  # order id -> [block, log index]

    def to_json(self) -> str:
        def ints(o: Any) -> Any:
            if isinstance(o, int) and not isinstance(o, bool):
                return str(o)
            if isinstance(o, dict):
                return {str(k): ints(v) for k, v in o.items()}
            if isinstance(o, list):
                return [ints(v) for v in o]
            return o

        return json.dumps(ints(asdict(self)), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Small:
        raw = json.loads(text)

        def vals(d: dict[str, list[str]]) -> dict[str, list[int]]:
            return {k: [int(x) for x in v] for k, v in d.items()}

        return cls(
            ledgers=Ledgers(**{k: int(v) for k, v in raw["ledgers"].items()}),
            protocol_fee_share=int(raw["protocol_fee_share"]),
            liquidation_params=[int(v) for v in raw["liquidation_params"]],
            lp_fee=int(raw["lp_fee"]),
            indices={int(k): v for k, v in vals(raw["indices"]).items()},
            lp_deposits=vals(raw["lp_deposits"]),
            lp_redeems=vals(raw["lp_redeems"]),
            open_orders={int(k): v for k, v in vals(raw["open_orders"]).items()},
        )


@dataclass
class Changes:
    """What one batch writes: new history rows, and the keys of state rows to upsert."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    orders: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)  # order rows to upsert
    accounts: set[int] = field(default_factory=set)
    positions: set[tuple[int, int]] = field(default_factory=set)
    holders: set[str] = field(default_factory=set)
    markets: list[dict[str, Any]] = field(default_factory=list)

    def add(self, table: str, row: dict[str, Any]) -> dict[str, Any]:
        self.rows.setdefault(table, []).append(row)
        return row

    def count(self) -> int:
        return sum(len(v) for v in self.rows.values())


@dataclass
class _Legs:
    """A transaction's position changes of one account not yet settled (a trade's `Settled`
    follows its `PositionChanged`; a liquidation's `Liquidation` follows all its legs)."""

    realised: int = 0
    fee: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)


class Projection:
    def __init__(self, token_scale: int, vault: str, error_name: Callable[[bytes], str], request_expired: bytes):
        self.scale = token_scale
        self.vault = vault.lower()
        self.error_name = error_name
        self.request_expired = request_expired
        self.small = Small()
        self.accounts: dict[int, Account] = {}
        self.positions: dict[tuple[int, int], m.Position] = {}
        self.account_markets: dict[int, set[int]] = {}  # account -> markets with a position
        self.holders: dict[str, int] = {}
        self.open_order_rows: dict[tuple[int, int], dict[str, Any]] = {}  # loaded lazily by the shell
        self._legs: dict[tuple[str, int], _Legs] = {}
        self.changes = Changes()
        self._handlers: dict[str, Callable[[Event, dict[str, Any]], None]] = {
            name.removeprefix("_on_"): getattr(self, name) for name in dir(self) if name.startswith("_on_")
        }

    def take_changes(self) -> Changes:
        changes, self.changes = self.changes, Changes()
        return changes

    def apply(self, e: Event) -> None:
        handler = self._handlers.get(e.name)
        if handler is not None:
            handler(e, e.args)

    # ------------------------------------------------------------------ helpers

    def _row(self, e: Event, **values: Any) -> dict[str, Any]:
        return {"block": e.block, "log_index": e.log_index, "tx_hash": e.tx_hash, "timestamp": e.timestamp, **values}

    def _account(self, account_id: int) -> Account:
        try:
            return self.accounts[account_id]
        except KeyError:
            raise ProjectionError(f"event for unknown account {account_id}") from None

    def _margin(self, account_id: int, delta: int = 0, set_to: int | None = None) -> None:
        acct = self._account(account_id)
        acct.margin = set_to if set_to is not None else acct.margin + delta
        self.changes.accounts.add(account_id)

    def _vault_ledgers(self) -> m.vault.Ledgers:
        led = self.small.ledgers
        return m.vault.Ledgers(led.pool, led.insurance, led.protocol_fees, self.small.protocol_fee_share)

    def _set_vault_ledgers(self, v: m.vault.Ledgers) -> None:
        led = self.small.ledgers
        led.pool, led.insurance, led.protocol_fees = v.pool, v.insurance, v.protocol_fees

    # ------------------------------------------------------------------ engine

    def _on_AccountCreated(self, e: Event, a: dict[str, Any]) -> None:
        self.accounts[a["accountId"]] = Account(a["owner"], 0, e.block)
        self.changes.accounts.add(a["accountId"])

    def _on_MarketCreated(self, e: Event, a: dict[str, Any]) -> None:
        name = bytes(a["name"]).rstrip(b"\0").decode(errors="replace")
        self.changes.markets.append({"market_id": a["marketId"], "name": name, "created_block": e.block})
        self.small.indices.setdefault(a["marketId"], [0, 0])

    def _on_Accrued(self, e: Event, a: dict[str, Any]) -> None:
        self.small.indices[a["marketId"]] = [a["longIndexWad"], a["shortIndexWad"]]
        self.changes.add(
            "funding",
            self._row(
                e,
                market_id=a["marketId"],
                long_index=a["longIndexWad"],
                short_index=a["shortIndexWad"],
                price=a["priceWad"],
            ),
        )

    def _on_PositionChanged(self, e: Event, a: dict[str, Any]) -> None:
        key = (a["accountId"], a["marketId"])
        pos = self.positions.get(key, m.Position())
        delta, after, fill = a["sizeDeltaWad"], a["sizeAfterWad"], a["fillPriceWad"]
        if pos.size + delta != after:
            raise ProjectionError(f"account {key[0]} market {key[1]}: size {pos.size} + {delta} != {after}")
        if pos.size == 0 or (pos.size > 0) == (delta > 0):
            index = self.small.indices.get(key[1], [0, 0])[0 if after > 0 else 1]
            new = m.Position(
                after,
                pos.cost + perp.added_cost(delta, fill),
                pos.entry_charge + perp.added_entry_charge(abs(delta), index),
                e.timestamp,
            )
        else:
            closed = abs(delta)
            new = m.Position(
                after,
                pos.cost - perp.removed_cost(pos.cost, closed, abs(pos.size)),
                pos.entry_charge - perp.removed_entry_charge(pos.entry_charge, closed, abs(pos.size)),
                pos.last_increase_time,
            )
        if after == 0:
            self.positions.pop(key, None)
            self.account_markets.get(key[0], set()).discard(key[1])
        else:
            self.positions[key] = new
            self.account_markets.setdefault(key[0], set()).add(key[1])
        self.changes.positions.add(key)
        self.changes.accounts.add(key[0])
        row = self.changes.add(
            "trades",
            self._row(
                e,
                account_id=key[0],
                market_id=key[1],
                size_delta=delta,
                size_after=after,
                fill_price=fill,
                oracle_price=a["oraclePriceWad"],
                realised=a["realisedWad"],
                fee=a["feeWad"],
                liquidation=False,
            ),
        )
        legs = self._legs.setdefault((e.tx_hash, key[0]), _Legs())
        legs.realised += a["realisedWad"]
        legs.fee += a["feeWad"]
        legs.rows.append(row)

    # ------------------------------------------------------------------ vault: margin and settlement

    def _on_MarginDeposited(self, e: Event, a: dict[str, Any]) -> None:
        self._margin(a["accountId"], a["amount"])
        self.changes.add(
            "margin_flows",
            self._row(e, account_id=a["accountId"], kind="deposit", address=a["from"], amount=a["amount"]),
        )

    def _on_MarginWithdrawn(self, e: Event, a: dict[str, Any]) -> None:
        self._margin(a["accountId"], -a["amount"])
        self.changes.add(
            "margin_flows",
            self._row(e, account_id=a["accountId"], kind="withdrawal", address=a["to"], amount=a["amount"]),
        )

    def _on_Settled(self, e: Event, a: dict[str, Any]) -> None:
        self._legs.pop((e.tx_hash, a["accountId"]), None)
        margin, ledgers = m.vault.settle(
            self._account(a["accountId"]).margin, self._vault_ledgers(), a["pnlToken"], a["feeToken"]
        )
        if margin != a["marginAfterToken"]:
            raise ProjectionError(f"account {a['accountId']}: margin {margin} != {a['marginAfterToken']} after a trade")
        self._margin(a["accountId"], set_to=margin)
        self._set_vault_ledgers(ledgers)

    def _on_InsuranceFunded(self, e: Event, a: dict[str, Any]) -> None:
        self.small.ledgers.insurance += a["amount"]

    def _on_ProtocolFeesClaimed(self, e: Event, a: dict[str, Any]) -> None:
        self.small.ledgers.protocol_fees -= a["amount"]

    def _on_ProtocolFeeShareSet(self, e: Event, a: dict[str, Any]) -> None:
        self.small.protocol_fee_share = a["shareWad"]

    def _on_ExecutorFeeEscrowed(self, e: Event, a: dict[str, Any]) -> None:
        # LeverVault.escrowExecutorFee: from the margin if it covers the fee, else from the wallet.
        if self._account(a["accountId"]).margin >= a["amount"]:
            self._margin(a["accountId"], -a["amount"])
        self.small.ledgers.order_escrow += a["amount"]

    def _on_ExecutorFeeReleased(self, e: Event, a: dict[str, Any]) -> None:
        self.small.ledgers.order_escrow -= a["amount"]
        if a["to"] == ZERO:
            self._margin(a["accountId"], a["amount"])
        elif a["to"] == self.vault:  # forfeited to the insurance fund
            self.small.ledgers.insurance += a["amount"]

    # ------------------------------------------------------------------ liquidations

    def _on_LiquidationParamsSet(self, e: Event, a: dict[str, Any]) -> None:
        self.small.liquidation_params = list(a["params"])

    def _on_Liquidation(self, e: Event, a: dict[str, Any]) -> None:
        account_id = a["accountId"]
        legs = self._legs.pop((e.tx_hash, account_id), _Legs())
        for row in legs.rows:
            row["liquidation"] = True
        p = m.LiquidationParams(*self.small.liquidation_params)
        closed = a["closedNotionalWad"]
        acct = self._account(account_id)
        s = m.vault.settle_liquidation(
            acct.margin,
            self._vault_ledgers(),
            to_token_floor(legs.realised, self.scale),
            to_token_up(legs.fee, self.scale),
            to_token_down(m.keeper_reward(closed, p), self.scale),
            to_token_up(m.liquidation_penalty(closed, p), self.scale),
            0 if a["keeper"] == acct.owner else to_token_down(p.min_reward, self.scale),
        )
        paid = (s.reward_paid, s.penalty_paid, s.bad_debt)
        if paid != (a["rewardToken"], a["penaltyToken"], a["badDebtToken"]):
            raise ProjectionError(
                f"liquidation of account {account_id}: mirror {paid} != event "
                f"{(a['rewardToken'], a['penaltyToken'], a['badDebtToken'])}"
            )
        self._margin(account_id, set_to=s.margin)
        self._set_vault_ledgers(s.ledgers)
        self.changes.add(
            "liquidations",
            self._row(
                e,
                account_id=account_id,
                keeper=a["keeper"],
                full=a["full"],
                close_share=a["closeShareWad"],
                closed_notional=closed,
                reward=a["rewardToken"],
                penalty=a["penaltyToken"],
                bad_debt=a["badDebtToken"],
                equity=a["equityWad"],
                maintenance=a["maintenanceMarginWad"],
            ),
        )

    # ------------------------------------------------------------------ the pool (ERC-7540)

    def _on_LpParamsSet(self, e: Event, a: dict[str, Any]) -> None:
        self.small.lp_fee = a["params"][3]

    def _lp_row(
        self, e: Event, kind: str, controller: str, assets: int = 0, shares: int = 0, reason: str | None = None
    ) -> None:
        self.changes.add(
            "lp_flows", self._row(e, kind=kind, controller=controller, assets=assets, shares=shares, reason=reason)
        )

    def _request(self, book: dict[str, list[int]], controller: str, amount: int) -> int:
        q = book.get(controller, [0, 0])
        fee = self.small.lp_fee if q[0] == 0 else 0
        book[controller] = [q[0] + amount, q[1] + fee]
        return fee

    def _on_DepositRequest(self, e: Event, a: dict[str, Any]) -> None:
        fee = self._request(self.small.lp_deposits, a["controller"], a["assets"])
        self.small.ledgers.lp_escrow += a["assets"] + fee
        self._lp_row(e, "deposit request", a["controller"], assets=a["assets"])

    def _on_RedeemRequest(self, e: Event, a: dict[str, Any]) -> None:
        self.small.ledgers.lp_escrow += self._request(self.small.lp_redeems, a["controller"], a["shares"])
        self._lp_row(e, "redeem request", a["controller"], shares=a["shares"])

    def _on_DepositSettled(self, e: Event, a: dict[str, Any]) -> None:
        amount, fee = self.small.lp_deposits.pop(a["controller"], [0, 0])
        led = self.small.ledgers
        led.lp_escrow -= amount + fee
        led.pool += a["assets"]
        self._lp_row(e, "deposit settled", a["controller"], a["assets"], a["shares"])

    def _on_RedeemSettled(self, e: Event, a: dict[str, Any]) -> None:
        _, fee = self.small.lp_redeems.pop(a["controller"], [0, 0])
        led = self.small.ledgers
        led.lp_escrow += a["assets"] - fee
        led.pool -= a["assets"]
        self._lp_row(e, "redeem settled", a["controller"], a["assets"], a["shares"])

    def _on_LpRequestCancelled(self, e: Event, a: dict[str, Any]) -> None:
        book = self.small.lp_deposits if a["deposit"] else self.small.lp_redeems
        amount, fee = book.pop(a["controller"], [0, 0])
        led = self.small.ledgers
        led.lp_escrow -= amount + fee if a["deposit"] else fee
        if bytes(a["reason"]) == self.request_expired:
            led.insurance += fee
        self._lp_row(
            e,
            "deposit cancelled" if a["deposit"] else "redeem cancelled",
            a["controller"],
            a["amount"] if a["deposit"] else 0,
            0 if a["deposit"] else a["amount"],
            self.error_name(bytes(a["reason"])),
        )

    def _on_Deposit(self, e: Event, a: dict[str, Any]) -> None:
        self._lp_row(e, "deposit claimed", a["sender"], a["assets"], a["shares"])

    def _on_Withdraw(self, e: Event, a: dict[str, Any]) -> None:
        self.small.ledgers.lp_escrow -= a["assets"]
        self._lp_row(e, "redemption claimed", a["owner"], a["assets"], a["shares"])

    def _on_Transfer(self, e: Event, a: dict[str, Any]) -> None:
        src, dst, value = a["from"], a["to"], a["value"]
        if src == ZERO:
            self.small.ledgers.share_supply += value
        else:
            self.holders[src] = self.holders.get(src, 0) - value
            self.changes.holders.add(src)
        if dst == ZERO:
            self.small.ledgers.share_supply -= value
        else:
            self.holders[dst] = self.holders.get(dst, 0) + value
            self.changes.holders.add(dst)

    # ------------------------------------------------------------------ orders

    def _on_OrderPlaced(self, e: Event, a: dict[str, Any]) -> None:
        key = (e.block, e.log_index)
        row = self._row(
            e,
            order_id=a["orderId"],
            account_id=a["accountId"],
            market_id=a["marketId"],
            kind=a["kind"],
            size_delta=a["sizeDeltaWad"],
            trigger_price=a["triggerPriceWad"],
            acceptable_price=a["acceptablePriceWad"],
            executor_fee=a["executorFee"],
            status="pending",
            closed_block=None,
            fill_price=None,
            reason=None,
        )
        self.small.open_orders[a["orderId"]] = list(key)
        self.open_order_rows[key] = row
        self.changes.orders[key] = row

    def _open_order(self, order_id: int) -> dict[str, Any] | None:
        key = self.small.open_orders.get(order_id)
        if key is None:
            return None
        row = self.open_order_rows.get((key[0], key[1]))
        if row is not None:
            self.changes.orders[(key[0], key[1])] = row
        return row

    def _close_order(self, e: Event, order_id: int, **values: Any) -> None:
        row = self._open_order(order_id)
        if row is None:
            raise ProjectionError(f"order {order_id} closed but never placed")
        row.update(status=values.pop("status"), closed_block=e.block, **values)
        key = self.small.open_orders.pop(order_id)
        self.open_order_rows.pop((key[0], key[1]), None)

    def _on_OrderUpdated(self, e: Event, a: dict[str, Any]) -> None:
        row = self._open_order(a["orderId"])
        if row is None:
            raise ProjectionError(f"order {a['orderId']} updated but never placed")
        row.update(
            size_delta=a["sizeDeltaWad"], trigger_price=a["triggerPriceWad"], acceptable_price=a["acceptablePriceWad"]
        )

    def _on_OrderTriggered(self, e: Event, a: dict[str, Any]) -> None:
        self._set_status(a["orderId"], "triggered")

    def _on_OrderRearmed(self, e: Event, a: dict[str, Any]) -> None:
        self._set_status(a["orderId"], "pending")

    def _set_status(self, order_id: int, status: str) -> None:
        row = self._open_order(order_id)
        if row is None:
            raise ProjectionError(f"order {order_id} {status} but never placed")
        row.update(status=status)

    def _on_OrderSettled(self, e: Event, a: dict[str, Any]) -> None:
        self._close_order(e, a["orderId"], status="settled", fill_price=a["fillPriceWad"])

    def _on_OrderCancelled(self, e: Event, a: dict[str, Any]) -> None:
        self._close_order(e, a["orderId"], status="cancelled", reason=self.error_name(bytes(a["reason"])))

    # ------------------------------------------------------------------ oracle

    def _on_PriceStored(self, e: Event, a: dict[str, Any]) -> None:
        self.changes.add(
            "prices", self._row(e, market_id=a["marketId"], price=a["priceWad"], publish_time=a["publishTime"])
        )
