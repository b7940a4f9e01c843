"""The keeper's shell: hydrate, follow blocks, events and prices, decide with the core, send.

One keeper, three jobs, in this order every block:
1. **liquidations** (they protect the pool, and LP settlements wait a grace period for them):
   candidates from the liquidation-price index, predicted with the mirror, batched by gas and
   sent with the latest price updates;
2. **orders**: market orders whose earliest eligible price is due get it from the price service
   (`/v2/updates/price/{time}`), expired ones are cancelled (for their fee), conditional orders
   whose trigger the latest price meets are executed; one `settleOrders` batch per gas budget;
3. **LP requests** whose prices and grace have passed are settled one by one.
Everything is simulated with `eth_call` before it is sent: the keeper never sends a transaction
that would revert. An idle block costs two RPC requests (the head and one `eth_getLogs`) and one
request to the price service.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from eth_account import Account
from hexbytes import HexBytes
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from web3 import Web3
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError
from web3.types import Nonce, TxParams, Wei

from lever import math as m
from lever.chain import (
    TRANSPORT_ERRORS,
    AccountRecord,
    MarketSnapshot,
    ProtocolReader,
    is_out_of_gas,
)
from lever.hermes import HermesClient, PriceServiceError
from lever.keeper.core import (
    DecideParams,
    KeeperConfig,
    LiquidationIndex,
    LpRequest,
    decide,
    evaluate,
    lp_work,
    order_work,
    pack,
    safe_behind,
    tx_gas_cap,
)
from lever.math.orders import Kind, Order, earliest_publish_time

log = logging.getLogger("lever.keeper")

GAS_KINDS = ("market", "conditional fill", "other")


def _gas_kind(o: Order) -> str:
    """Which measured gas figure an order is budgeted at (`Keeper._gas_per_order`)."""
    if o.kind == Kind.MARKET:
        return "market"
    return "conditional fill" if o.triggered else "other"


RECEIPT_NOT_YET: tuple[type[BaseException], ...] = (TransactionNotFound, *TRANSPORT_ERRORS)
SLOW_STEP_S = 1.0  # a step longer than this logs where its time went
RECHECK_S = 2.0  # how often a transaction not yet mined is checked for having been dropped


class KeeperMetrics:
    """Prometheus metrics, in a registry of their own (several keepers may share a process)."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.accounts = Gauge("lever_keeper_accounts_tracked", "Accounts with positions in the index", registry=r)
        self.candidates = Counter("lever_keeper_candidates_total", "Accounts re-checked after a change", registry=r)
        self.sent = Counter("lever_keeper_liquidations_sent_total", "Accounts sent for liquidation", registry=r)
        self.won = Counter("lever_keeper_liquidations_won_total", "Accounts this keeper liquidated", registry=r)
        self.lost = Counter("lever_keeper_liquidations_lost_total", "Accounts another keeper got first", registry=r)
        self.orders_pending = Gauge("lever_keeper_orders_pending", "Pending orders the keeper watches", registry=r)
        self.orders_settled = Counter("lever_keeper_orders_settled_total", "Orders this keeper filled", registry=r)
        self.orders_cancelled = Counter(
            "lever_keeper_orders_cancelled_total", "Orders this keeper cancelled", registry=r
        )
        self.lp_settled = Counter("lever_keeper_lp_settled_total", "LP requests this keeper settled", registry=r)
        self.gas = Counter("lever_keeper_gas_spent_total", "Gas used by this keeper's transactions", registry=r)
        self.block_lag = Gauge("lever_keeper_block_lag", "Head block minus the last handled block", registry=r)
        self.loop = Histogram("lever_keeper_loop_seconds", "Time to handle one block", registry=r)
        self.errors = Counter("lever_keeper_errors_total", "RPC or send errors", registry=r)


@dataclass
class KeeperState:
    records: dict[int, AccountRecord] = field(default_factory=dict)
    markets: dict[int, MarketSnapshot] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)  # order id -> pending order
    lp: dict[tuple[str, bool], LpRequest] = field(default_factory=dict)
    # market -> (price, publish time)
    prices: dict[int, tuple[int, int]] = field(default_factory=dict)
    last_block: int = -1
    last_hash: bytes = b""
    last_reindex: int = -1
    check_all: bool = True  # after hydration: every market's crossed accounts are candidates
    in_flight: set[int] = field(default_factory=set)  # order ids broadcast, receipts not yet read
    liquidating: set[int] = field(default_factory=set)  # accounts in this step's liquidation batches
    liquidatable: set[int] = field(default_factory=set)  # found liquidatable by the last evaluation


@dataclass
class Changes:
    accounts: set[int] = field(default_factory=set)
    markets: set[int] = field(default_factory=set)
    order_accounts: set[int] = field(default_factory=set)  # accounts whose orders changed
    orders_read: set[int] = field(default_factory=set)  # ... of which orders were placed or updated
    orders_done: set[int] = field(default_factory=set)  # order ids settled or cancelled
    lp_controllers: set[str] = field(default_factory=set)
    params: bool = False
    logs: int = 0  # the protocol's logs in the range (none: the vault's ledgers did not move)


class OutOfGas(Exception):
    """The simulation ran out of gas at the limit the transaction would carry."""


@dataclass(frozen=True)
class OrderCall:
    """What every `settleOrders` batch of a step draws on: each due market order's (market,
    minTime) key, each key's proof, every market's latest update, and the oracle's fee."""

    keys: dict[int, tuple[int, int]]
    proofs: dict[tuple[int, int], bytes]
    latest: list[tuple[int, bytes]]
    fee: int


@dataclass
class Sent:
    """A broadcast transaction: its latest signed version and the hashes of every version
    (replacements share its nonce, so at most one lands)."""

    tx: TxParams
    raw: bytes
    hashes: list[bytes]
    since: float = field(default_factory=time.monotonic)  # sent, or last replaced
    checked: float = field(default_factory=time.monotonic)  # last asked whether the node dropped it
    bumps: int = 0
    abandoned: bool = False  # never mined, however replaced: its nonce is asked of the node again


@dataclass
class Flight:
    """An order batch broadcast and not yet seen mined: its orders stay `in_flight` until then."""

    ids: list[int]
    sent: Sent
    accounts: set[int]


def bumped_fees(max_fee: int, tip: int, cap: int) -> tuple[int, int]:
    """EIP-1559 replacement fees: both +12.5% (plus 1 wei, the minimum nodes accept), capped."""
    new_tip = min(cap, tip + tip // 8 + 1)
    new_max = min(cap, max_fee + max_fee // 8 + 1)
    return max(new_max, new_tip), new_tip


class Keeper:
    def __init__(
        self,
        reader: ProtocolReader,
        prices: HermesClient,
        private_key: str | None,
        config: KeeperConfig | None = None,
        metrics: KeeperMetrics | None = None,
    ):
        self.reader = reader
        self.prices = prices
        self.config = config or KeeperConfig()
        self.metrics = metrics or KeeperMetrics()
        self.account = Account.from_key(private_key) if private_key else None
        self.state = KeeperState()
        self.index = LiquidationIndex()
        self._nonce_lock = threading.Lock()
        self._next_nonce: int | None = None
        self._chain_id: int | None = None
        self._topics = self._event_topics()
        self.token_scale = 0  # read at hydration (no RPC in the constructor)
        self.settings = (0, 0, 0, 0)
        self.lp_params = (0, 0, 0, 0)
        self._pool_wad = 0
        # the vault's coverage, re-read after any protocol event
        self._cov: m.Coverage | None = None
        # market orders (True), other orders (False), liquidated accounts ("liquidation") ->
        # (block, gas per order or account) measured by eth_estimateGas
        self._measured_gas: dict[bool | str, tuple[int, int]] = {}
        # order batches broadcast and not yet seen mined, oldest first
        self._flights: list[Flight] = []

    @property
    def address(self) -> str:
        return self.account.address if self.account else "0x0000000000000000000000000000000000000000"

    # ------------------------------------------------------------------ state

    def hydrate(self) -> None:
        """Reads every market, every account with positions or orders, and pending LP requests,
        pinned to one block."""
        block, now = self.reader.head()
        self.token_scale = self.reader.token_scale()
        self.settings = self.reader.order_settings(block)
        self.lp_params = self.reader.lp_params(block)
        count = self.reader.market_count(block)
        self.state.markets = {mk: self.reader.market(mk, block) for mk in range(count)}
        total = self.reader.account_count(block)
        with_positions: list[int] = []
        for start in range(1, total + 1, self.config.page_size):
            with_positions += self.reader.accounts_with_positions(start, self.config.page_size, block)
        records = self.reader.accounts(with_positions, block)
        # Accounts with orders and LP controllers with requests: from one scan of the history.
        placed = self.reader.arts.topic("OrderBook", "OrderPlaced")
        with_orders = set()
        self.state.lp = {}
        for log_ in self.reader.logs(self.config.start_block, block):
            if bytes(log_["topics"][0]) == placed:
                with_orders.add(int.from_bytes(bytes(log_["topics"][2]), "big"))
            else:
                self._note_lp_log(log_, block)
        orders: dict[int, Order] = {}
        for pending in self.reader.orders_of_accounts(sorted(with_orders), block).values():
            orders.update(pending)
        self.state.records, self.state.orders = records, orders
        self._refresh_prices()
        self._reindex(now)
        self.state.last_block = block
        self.state.last_hash = self.reader.head_hash
        self.state.last_reindex = block
        self.state.check_all = True

    def _views(self, now: int) -> dict[int, m.MarketView]:
        pool = self._pool_wad
        return {
            mk: snap.view(now, pool, *self.state.prices.get(mk, (None, None)))
            for mk, snap in self.state.markets.items()
        }

    def _reindex(self, now: int) -> None:
        self._pool_wad, cov = self._coverage()
        self._cov = cov
        views = self._views(now)
        self.index = LiquidationIndex()
        for account, record in self.state.records.items():
            self.index.update(account, record, views, self.token_scale, cov)
        self.metrics.accounts.set(len(self.state.records))

    def _coverage(self) -> tuple[int, m.Coverage]:
        ledgers = self.reader.ledgers()
        cov = ledgers.coverage(self.token_scale)
        return cov.pool, cov

    def _refresh_prices(self) -> set[int]:
        """Latest prices from the price service; returns the markets whose price changed."""
        ids = self.reader.addresses.price_ids
        try:
            latest = self.prices.latest(list(ids.values()))
        except PriceServiceError as exc:
            log.warning("price service: %s", exc)
            return set()
        moved = set()
        for mk, pid in ids.items():
            u = latest.get(pid)
            if u is None:
                continue
            price = m.oracle.pull_price_wad(mk, u.price, u.conf, u.expo, 10**18)
            if self.state.prices.get(mk) != (price, u.publish_time):
                if self.state.prices.get(mk, (None,))[0] != price:
                    moved.add(mk)
                self.state.prices[mk] = (price, u.publish_time)
        return moved

    # ------------------------------------------------------------------ one block

    def step(self) -> int:
        """Handles the chain up to its head; returns how many accounts it liquidated."""
        started = time.monotonic()
        block, now = self.reader.head()
        first = self.state.check_all
        if block > self.state.last_block and self._reorged(block):
            log.warning("reorg below block %d: rebuilding state", self.state.last_block)
            self.hydrate()
            return self.step()
        self.metrics.block_lag.set(max(0, block - self.state.last_block))
        changes = Changes()
        if block > self.state.last_block or first:
            changes = self._changes(self.state.last_block + 1 if not first else self.state.last_block, block)
        logged = time.monotonic()
        moved_prices = self._refresh_prices()
        moved = set(self.state.markets) if first or changes.params else set(changes.markets)
        for mk in moved:
            self.state.markets[mk] = self.reader.market(mk, block)
        for account, record in self.reader.accounts(sorted(changes.accounts | changes.order_accounts), block).items():
            if record.positions:
                self.state.records[account] = record
            else:
                self.state.records.pop(account, None)
        for order_id in changes.orders_done:
            self.state.orders.pop(order_id, None)
        if changes.orders_read:
            self.state.orders = {i: o for i, o in self.state.orders.items() if o.account not in changes.orders_read}
            for pending in self.reader.orders_of_accounts(sorted(changes.orders_read), block).values():
                self.state.orders.update(pending)
        if changes.logs or self._cov is None:  # the ledgers move only with the protocol's own events
            self._pool_wad, self._cov = self._coverage()
        cov = self._cov
        views = self._views(now)
        if block - self.state.last_reindex >= self.config.reindex_every_blocks:
            self._reindex(now)
            self.state.last_reindex = block
        else:
            for account in changes.accounts | changes.order_accounts:
                if account in self.state.records:
                    self.index.update(account, self.state.records[account], views, self.token_scale, cov)
                else:
                    self.index.remove(account)
        # Accounts found liquidatable last time and not liquidated (lost, deferred, refused) stay
        # candidates: the price need not move again for them to be tried again.
        candidates = (set(changes.accounts) | self.state.liquidatable) & set(self.state.records)
        for mk in moved | moved_prices:
            if mk in views:
                candidates |= self.index.candidates(mk, views[mk].price.price, self.config.band_wad)
        if first:
            candidates |= set(self.state.records)
        self.metrics.candidates.inc(len(candidates))
        self.metrics.accounts.set(len(self.state.records))
        read = time.monotonic()
        liquidated = self._liquidate(sorted(candidates), views, cov, block)
        checked = time.monotonic()
        if self.config.settle_orders:
            self._settle_orders(now)
        if self.config.settle_lp:
            self._settle_lp(now)
        self.metrics.orders_pending.set(len(self.state.orders))
        self.state.last_block = block
        self.state.last_hash = self.reader.head_hash
        self.state.check_all = False
        took = time.monotonic() - started
        self.metrics.loop.observe(took)
        if took > SLOW_STEP_S:  # where a slow step's time went, for the operator
            log.info(
                "slow step",
                extra={
                    "kv_block": block,
                    "kv_seconds": round(took, 3),
                    "kv_logs_s": round(logged - started, 3),
                    "kv_reads_s": round(read - logged, 3),
                    "kv_accounts_read": len(changes.accounts | changes.order_accounts),
                    "kv_liquidations_s": round(checked - read, 3),
                    "kv_orders_and_lp_s": round(time.monotonic() - checked, 3),
                },
            )
        return liquidated

    def _reorged(self, block: int) -> bool:
        """Is the block we last handled still on the chain? (One extra request only when more
        than one block has passed.)"""
        if not self.state.last_hash:
            return False
        if block == self.state.last_block + 1:
            return self.reader.head_parent != self.state.last_hash
        return self.reader.block_hash(self.state.last_block) != self.state.last_hash

    # ------------------------------------------------------------------ events

    def _event_topics(self) -> dict[bytes, tuple[str, str]]:
        arts = self.reader.arts
        table: dict[bytes, tuple[str, str]] = {}
        for contract in (
            "PerpEngine",
            "LeverVault",
            "Liquidator",
            "OracleAdapter",
            "OrderBook",
            "MockPriceFeed",
        ):
            for item in arts.abi(contract):
                if item.get("type") == "event":
                    table[arts.topic(contract, item["name"])] = (contract, item["name"])
        return table

    def _changes(self, from_block: int, to_block: int) -> Changes:
        """Everything that changed in [from_block, to_block], from one `eth_getLogs` request."""
        changes = Changes()
        feeds = {a.lower(): mk for mk, a in self.reader.addresses.feeds.items()}
        for log_ in self.reader.logs(max(0, from_block), to_block):
            topics = log_["topics"]
            found = self._topics.get(bytes(topics[0]))
            if found is None:
                continue
            contract, event = found
            changes.logs += 1
            indexed = [int.from_bytes(bytes(t), "big") for t in topics[1:]]
            if contract == "MockPriceFeed":
                mk = feeds.get(log_["address"].lower())
                if mk is not None:
                    changes.markets.add(mk)
            elif contract == "OracleAdapter":
                if indexed:
                    changes.markets.add(indexed[0])
                else:
                    changes.params = True
            elif contract == "OrderBook":
                # A placed, updated, triggered or re-armed order is read back; a settled or
                # cancelled one is gone.
                if event in ("OrderPlaced", "OrderSettled", "OrderCancelled"):
                    changes.order_accounts.add(indexed[1])
                    if event == "OrderPlaced":
                        changes.orders_read.add(indexed[1])
                    else:
                        changes.orders_done.add(indexed[0])
                    if event in ("OrderPlaced", "OrderSettled"):
                        changes.markets.add(indexed[2])
                elif event in ("OrderUpdated", "OrderTriggered", "OrderRearmed"):
                    account = m.orders.split(indexed[0])[0]
                    changes.order_accounts.add(account)
                    changes.orders_read.add(account)
                else:
                    changes.params = True
            elif contract == "LeverVault" and event in (
                "DepositRequest",
                "RedeemRequest",
                "DepositSettled",
                "RedeemSettled",
                "LpRequestCancelled",
            ):
                self._note_lp_log(log_, to_block)
            elif event in ("PositionChanged",):
                changes.accounts.add(indexed[0])
                changes.markets.add(indexed[1])
            elif event in ("Accrued", "MarketParamsSet", "MarketCreated"):
                changes.markets.add(indexed[0])
                if event != "Accrued":
                    changes.params = True
            elif indexed and event in (
                "MarginDeposited",
                "MarginWithdrawn",
                "Settled",
                "Liquidation",
                "BadDebt",
                "ExecutorFeeEscrowed",
                "ExecutorFeeReleased",
                "AccountCreated",
            ):
                changes.accounts.add(indexed[0])
            elif event in (
                "LiquidationParamsSet",
                "LpParamsSet",
                "SettingsSet",
                "Paused",
                "Unpaused",
            ):
                changes.params = True
        if changes.params:
            self.settings = self.reader.order_settings(to_block)
            self.lp_params = self.reader.lp_params(to_block)
        return changes

    def _note_lp_log(self, log_: Any, block: int) -> None:
        """Re-reads the pending LP requests of the controller a vault log names."""
        found = self._topics.get(bytes(log_["topics"][0]))
        if found is None or found[0] != "LeverVault":
            return
        if found[1] not in (
            "DepositRequest",
            "RedeemRequest",
            "DepositSettled",
            "RedeemSettled",
            "LpRequestCancelled",
        ):
            return
        controller = "0x" + bytes(log_["topics"][1])[-20:].hex()
        controller = Web3.to_checksum_address(controller)
        for is_deposit in (True, False):
            amount, t, _ = self.reader.pending_lp(controller, is_deposit, block)
            if amount:
                self.state.lp[(controller, is_deposit)] = LpRequest(controller, is_deposit, amount, t)
            else:
                self.state.lp.pop((controller, is_deposit), None)

    # ------------------------------------------------------------------ job 1: liquidations

    def _liquidate(self, candidates: list[int], views: dict[int, m.MarketView], cov: m.Coverage, block: int) -> int:
        self.state.liquidatable = set()
        if not candidates:
            return 0
        gas_market = self.config.gas_market
        params = DecideParams(
            liquidation=self.reader.liquidation_params(block),
            token_scale=self.token_scale,
            max_batch=self.config.max_batch,
            batch_gas_budget=self.config.liquidation_budget(self.reader.head_gas_limit),
            gas_base=self.config.gas_base,
            gas_per_account=self.config.gas_per_account,
            gas_price_wei=self.reader.head_base_fee + self.config.tip_wei,
            # token units one gas-token unit is worth: the gas market's price over the token scale
            token_per_eth=views[gas_market].price.price // self.token_scale if gas_market in views else 0,
            clear_bad_debt=self.config.clear_bad_debt,
        )
        latest_publish = {mk: t for mk, (_, t) in self.state.prices.items()}
        escrow: dict[int, int] = {}
        for o in self.state.orders.values():
            escrow[o.account] = escrow.get(o.account, 0) + o.executor_fee
        found = evaluate(candidates, self.state.records, views, params, cov, latest_publish, escrow)
        self.state.liquidatable = {c.account for c in found}
        if not found:
            return 0
        updates = self._latest_updates(sorted({mk for c in found for mk in self.state.records[c.account].positions}))
        in_flight = frozenset(self.state.liquidating)
        batches = decide(found, params, in_flight)
        value = self.reader.update_fee() * len(updates)
        if len(batches) > 1:
            measured = self._gas_per_account([a for b in batches for a in b.items], updates, value, block)
            if measured < params.gas_per_account:
                batches = decide(found, replace(params, gas_per_account=measured), in_flight)
        return self._send_liquidations([(list(b.items), b.gas_limit) for b in batches], updates, value)

    def _gas_per_account(
        self, accounts: Sequence[int], updates: list[tuple[int, bytes]], value: int, block: int
    ) -> int:
        """The gas to budget per liquidated account when the work needs several batches:
        `gas_per_account`, or less when `eth_estimateGas` says less. The marginal cost of an
        account, from a batch of 32 candidates spread over the work and one of every other of
        them (the transaction's own cost and the price updates cancel out), plus 5%; kept for
        20 blocks. Fewer, fuller
        batches: a batch's gas limit is what decides how many fit in a block, and at 150,000 an
        account one 27M batch used 14M. An estimate too low costs a split (the simulation runs out
        of gas), never a failed transaction."""
        configured = self.config.gas_per_account
        cached = self._measured_gas.get("liquidation")
        if cached is not None and block - cached[0] < 20:
            return cached[1]
        if self.config.dry_run or self.account is None or len(accounts) < 32:
            return configured
        # 32 accounts spread over the work (the most underwater come first and cost the most:
        # the first 32 overstated the average by a quarter), and every other one of them.
        sample = list(accounts[:: len(accounts) // 32][:32])
        need: list[int] = []
        for part in (sample[::2], sample):
            fn = self.reader.liquidator.functions.liquidateBatch(part, updates)
            params: dict[str, Any] = {"from": self.address, "value": value}

            def estimate(fn: Any = fn, params: dict[str, Any] = params) -> int:
                return int(fn.estimate_gas(params, "pending"))

            try:
                need.append(int(self.reader.retry(estimate)))
            except (ContractLogicError, Web3RPCError, ValueError) as exc:
                log.info("estimating a liquidation batch of %d: %s", len(part), exc)
                return configured
        measured = min(configured, max(1, -(-(need[1] - need[0]) * 21 // (20 * 16))))
        self._measured_gas["liquidation"] = (block, measured)
        log.info("liquidation gas measured", extra={"kv_per_account": measured, "kv_configured": configured})
        return measured

    def _latest_updates(self, markets: list[int]) -> list[tuple[int, bytes]]:
        ids = self.reader.addresses.price_ids
        latest = self.prices.latest([ids[mk] for mk in markets])
        return [(mk, latest[ids[mk]].blob) for mk in markets if ids[mk] in latest]

    def _send_liquidations(
        self, batches: list[tuple[list[int], int]], updates: list[tuple[int, bytes]], value: int
    ) -> int:
        """The step's liquidation batches (accounts, gas limit), each carrying `value` (the update
        fees), pipelined as the order batches are: simulated two at a time, all broadcast back to
        back in ascending order of gas limit, then their receipts read, within the step. Returns the
        accounts liquidated. A later batch simulated before the ones ahead are mined still
        liquidates: the batches hold disjoint accounts, and the ones ahead change only the pool,
        the insurance fund and the skew, which decide what a liquidation pays, not whether an
        account is liquidatable (a smaller coverage of profits only lowers an equity)."""
        if not batches:
            return 0
        head = self.reader.retry(lambda: self.reader.w3.eth.get_block("latest"))
        planned: list[tuple[list[int], TxParams]] = []
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="simulate") as pool:
            for found in pool.map(lambda b: self._simulate_liquidations(b[0], updates, value, b[1], head), batches):
                planned += found
        planned.sort(key=lambda p: int(p[1]["gas"]))
        sent: list[tuple[list[int], Sent]] = []
        liquidated = 0
        try:
            for accounts, tx in planned:
                self.state.liquidating.update(accounts)
                sent.append((accounts, self._send(tx)))
            if sent:
                # Order batches of earlier steps still in flight have lower nonces: the
                # liquidations are mined after them, so nothing is lost by landing them first.
                self.land()
            for accounts, flight in sent:
                flight.since = time.monotonic()  # behind the ones just mined: `stuck_after` runs from now
                liquidated += self._liquidated(accounts, self._wait(flight))
        finally:
            for accounts, _ in planned:
                self.state.liquidating.difference_update(accounts)
        return liquidated

    def _simulate_liquidations(
        self, accounts: list[int], updates: list[tuple[int, bytes]], value: int, gas: int, head: Any
    ) -> list[tuple[list[int], TxParams]]:
        """The transactions liquidating `accounts` at `gas`, each simulated with its gas limit: a
        batch that would run out of gas is split in halves (one account alone gets twice the
        gas, up to the block's limit); one that would revert is counted lost and not sent."""
        fn = self.reader.liquidator.functions.liquidateBatch(accounts, updates)
        try:
            tx = self._prepare(fn, value, gas, "liquidate", head)
        except OutOfGas:
            limit = tx_gas_cap(int(head["gasLimit"]), self.config.max_tx_gas)
            if len(accounts) == 1:
                if gas >= limit:
                    raise
                return self._simulate_liquidations(accounts, updates, value, min(2 * gas, limit), head)
            log.warning("a batch of %d would run out of gas at %d: splitting it", len(accounts), gas)
            half = len(accounts) // 2
            return self._simulate_liquidations(accounts[:half], updates, value, gas, head) + (
                self._simulate_liquidations(accounts[half:], updates, value, gas, head)
            )
        except ContractLogicError as exc:
            log.info("liquidation of %s would revert (%s): counted as lost", accounts, exc)
            self.metrics.lost.inc(len(accounts))
            return []
        return [] if tx is None else [(accounts, tx)]

    def _liquidated(self, accounts: list[int], receipt: Any) -> int:
        """How many of `accounts` a liquidation's receipt liquidated (the rest are lost). Their
        orders are gone (a liquidation cancels them all): forgotten now, so that this step's
        order batches neither hold them nor hang another order's price proof on one of them."""
        if receipt is None:
            return 0
        self.metrics.sent.inc(len(accounts))
        if receipt["status"] != 1:
            self.metrics.lost.inc(len(accounts))
            return 0
        won = self._logged(receipt, "Liquidator", "Liquidation")
        self.state.orders = {i: o for i, o in self.state.orders.items() if o.account not in won}
        self.metrics.won.inc(len(won))
        self.metrics.lost.inc(len(accounts) - len(won))
        log.info("liquidated %s of %s", sorted(won), accounts)
        return len(won)

    # ------------------------------------------------------------------ job 2: orders

    def _settle_orders(self, now: int) -> int:
        """Lands the batches in flight, then sends batches for the orders due, expired or
        triggered that none of them holds; returns the orders the landed batches filled."""
        filled = self._land_orders()
        delay, window = self.settings[0], self.settings[1]
        work = order_work(self.state.orders.values(), now, delay, window, self.state.records, self.state.prices)
        if not (work.due or work.expired or work.triggered):
            return filled
        ids = self.reader.addresses.price_ids
        # A market order's price: the earliest published at or after its commit + delay, proven
        # once per (market, time) in each batch; the batch's other orders of that key reuse it.
        proofs: dict[tuple[int, int], bytes] = {}
        keys: dict[int, tuple[int, int]] = {}
        ready: list[Order] = []
        for o in work.due:
            key = (o.market_id, earliest_publish_time(o, delay))
            if key not in proofs:
                try:
                    found = self.prices.at_or_after(key[1], [ids[o.market_id]]).get(ids[o.market_id])
                except PriceServiceError as exc:
                    log.warning("price service: %s", exc)
                    found = None
                # Not published yet, or not yet on the chain's clock: wait.
                proofs[key] = found.blob if found is not None and found.publish_time <= now else b""
            if proofs[key]:
                keys[o.order_id] = key
                ready.append(o)
        # Triggers first: they are cheap, and a triggered order's delay then runs while the
        # backlog of due orders is settled, not after it.
        ready = [*work.triggered, *ready, *work.expired]
        # Every market's latest price rides along: conditional orders trigger at it, and a fill's
        # margin check needs the account's other markets fresh (a stale one must not stall it).
        latest = self._latest_updates(sorted(self.state.markets))
        todo = [o for o in ready if o.order_id not in self.state.in_flight]
        call = OrderCall(keys, proofs, latest, self.reader.update_fee())
        budget = self.config.order_budget(self.reader.head_gas_limit)
        gas = self._gas_per_order(todo, call, budget)
        items = [(o.order_id, gas[_gas_kind(o)]) for o in todo]
        batches = pack(items, self.config.gas_base, self.config.max_batch, budget)
        self._send_orders([(list(b.items), b.gas_limit) for b in batches], call)
        return filled

    def _gas_per_order(
        self,
        orders: list[Order],
        call: OrderCall,
        budget: int,
    ) -> dict[str, int]:
        """The gas to budget per order, each kind apart (`_gas_kind`: market orders, triggered
        conditional orders, whose fill often closes a position and costs more before refunds, and
        the rest, triggers and cancellations, which cost less):
        `gas_per_order`, or less when the work needs several batches and `eth_estimateGas` of a
        batch of that kind (one request a kind; as many orders as 90% of a block, or `max_tx_gas`, holds at
        `gas_per_order`, so that the per-transaction cost weighs little in the figure) says
        less, plus 5%; kept for 20 blocks (a backlog takes several steps). Fewer, fuller batches:
        fewer blocks to settle a backlog. An estimate too low costs a split (the simulation runs
        out of gas), never a failed transaction."""
        configured = self.config.gas_per_order
        out = dict.fromkeys(GAS_KINDS, configured)
        if self.config.dry_run or self.account is None:
            return out
        first = pack(
            [(o.order_id, configured) for o in orders],
            self.config.gas_base,
            self.config.max_batch,
            budget,
        )
        if len(first) < 2:
            return out
        block = self.state.last_block
        for name in GAS_KINDS:
            kind = [o.order_id for o in orders if _gas_kind(o) == name]
            cached = self._measured_gas.get(name)
            if cached is not None and block - cached[0] < 20:
                out[name] = cached[1]
                continue
            if len(kind) < 2:
                continue
            sample = tx_gas_cap(self.reader.head_gas_limit * 9 // 10, self.config.max_tx_gas)
            batch = pack([(i, configured) for i in kind], self.config.gas_base, self.config.max_batch, sample)[0]
            fn, value = self._settle_call(list(batch.items), call)
            params: dict[str, Any] = {"from": self.address, "value": value, "gas": batch.gas_limit}

            def estimate(fn: Any = fn, params: dict[str, Any] = params) -> int:
                return int(fn.estimate_gas(params, "pending"))

            try:
                need = self.reader.retry(estimate)
            except (ContractLogicError, Web3RPCError, ValueError) as exc:
                log.info("estimating a batch of %d orders: %s", len(batch.items), exc)
                continue
            out[name] = min(configured, -(-need * 21 // (20 * len(batch.items))))
            self._measured_gas[name] = (block, out[name])
        return out

    def _settle_call(self, order_ids: list[int], call: OrderCall) -> tuple[Any, int]:
        """`settleOrders` for `order_ids` and the value it carries: the first order of each
        (market, minTime) key in this batch carries that key's proof, the others reuse it."""
        blobs, proven = [], set()
        for i in order_ids:
            key = call.keys.get(i)
            blobs.append(call.proofs[key] if key is not None and key not in proven else b"")
            proven.add(key)
        fn = self.reader.order_book.functions.settleOrders(order_ids, blobs, call.latest)
        return fn, call.fee * (len(call.latest) + sum(1 for b in blobs if b))

    def _send_orders(self, batches: list[tuple[list[int], int]], call: OrderCall) -> int:
        """A step's batches (order ids, gas limit), pipelined: each simulated and broadcast at
        once, back to back (consecutive nonces), so the first is mined while the later ones are
        simulated. Their receipts are read by the next steps (`_land_orders`): a step does not
        wait for its batches to be mined, so the next one reads what changed and sends the next
        batches while they are. Returns the transactions sent."""
        started = time.monotonic()
        head = self.reader.retry(lambda: self.reader.w3.eth.get_block("latest"))
        # In ascending order of gas limit. A node admits a transaction into a block while its gas
        # limit fits what the block has left (counted after the refunds of those before it); one
        # that does not fit waits for the next block, and so does every later one no smaller.
        # A later, smaller one that fits is executed ahead of its nonce: Anvil then finds the
        # nonce too high and drops it from its pool (a batch split for gas breaks the order; the
        # drop is found and the same bytes sent again, `_poll`).
        # A batch may be simulated before the ones ahead of it (this step's, and earlier steps'
        # still in flight) are mined: its simulation does not see what they will have done by
        # the time it runs. The batches hold disjoint orders; each carries its own proofs (the
        # first order of each key), which `settlementPrice` checks against the order's window,
        # not against the stored price; and `settleOrders` refuses an order by leaving it pending
        # or cancelling it, never by reverting. So the batches ahead can: have stored the
        # `latest` prices already (the later batch skips them, fee refunded: cheaper); have
        # removed an order (a take-profit cancelled when its account's stop-loss closed the
        # position: skipped); have moved the skew, and so a fill price past an acceptable price
        # (a market order is then cancelled, a limit or conditional one left pending); have
        # accrued the markets already (cheaper). None of it reverts a batch, except through
        # `NothingToSettle`: a batch every one of whose orders they turned into a skip or a
        # refusal-for-now. A batch with a market order settles or cancels it whatever happened
        # before; in a batch of stop-losses and take-profits without an acceptable price, of
        # accounts no batch ahead touched, each order is done exactly when its simulation said.
        # Any other batch behind others waits for a later step, simulated again on the state
        # they left (`core.safe_behind`). Gas: they change a later batch's only through storage
        # both write, and a refusal costs less than a fill; its limit keeps the headroom it was
        # simulated with (`gas_base`, 5% over the estimate).
        touched: set[int] = set().union(*(f.accounts for f in self._flights))
        sent = orders_sent = 0
        # The simulations run two at a time (a node serves `eth_call`s in parallel), in the
        # order the batches are sent; each is sent as soon as it and those before it are done.
        pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="simulate")
        simulated = [
            pool.submit(self._simulate_orders, batch, call, gas, head)
            for batch, gas in sorted(batches, key=lambda b: b[1])
        ]
        try:
            for future in simulated:
                for ids, tx in future.result():
                    orders = [self.state.orders[i] for i in ids if i in self.state.orders]
                    if self._flights and not safe_behind(orders, touched):
                        log.info("%d orders wait for a later step: the batches ahead may leave them pending", len(ids))
                        continue
                    self.state.in_flight.update(ids)  # until its receipt is read
                    try:
                        flight = self._send(tx)
                    except Exception:
                        self.state.in_flight.difference_update(ids)
                        raise
                    accounts = {o.account for o in orders}
                    self._flights.append(Flight(ids, flight, accounts))
                    touched |= accounts
                    sent += 1
                    orders_sent += len(ids)
        finally:  # a broadcast refused: those sent before it are in flight
            pool.shutdown(cancel_futures=True)
            if sent:
                log.info(
                    "settling orders",
                    extra={
                        "kv_orders": orders_sent,
                        "kv_transactions": sent,
                        "kv_seconds": round(time.monotonic() - started, 3),
                    },
                )
        return sent

    def land(self) -> int:
        """Waits until every order batch in flight is mined (or abandoned) and reads its receipt:
        for a service stopping, or a caller that wants a step's outcome. Returns the orders
        filled."""
        filled, pause = 0, 0.01
        while True:
            filled += self._land_orders()
            if not self._flights:
                return filled
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def _land_orders(self) -> int:
        """Reads the receipts of the order batches in flight, without waiting for those not yet
        mined: the orders a mined batch filled or cancelled are forgotten, and every order of a
        mined or abandoned batch leaves `in_flight` (one it left pending is tried again). Returns
        the orders filled."""
        filled = 0
        flying: list[Flight] = []
        for f in self._flights:
            # Nonce order: one behind a batch not yet mined cannot be mined before it, so its
            # `stuck_after` runs only from when those ahead of it are.
            receipt = self._poll(f.sent, behind=bool(flying))
            if receipt is None and not f.sent.abandoned:
                flying.append(f)
                continue
            filled += self._orders_done(receipt)
            self.state.in_flight.difference_update(f.ids)
        self._flights = flying
        return filled

    def _simulate_orders(
        self, order_ids: list[int], call: OrderCall, gas: int, head: Any
    ) -> list[tuple[list[int], TxParams]]:
        """The transactions settling `order_ids` at `gas`, each simulated with its gas limit: a
        batch that would run out of gas is split in halves (one order alone gets twice the gas,
        up to the block's limit); one that would revert is dropped."""
        fn, value = self._settle_call(order_ids, call)
        try:
            tx = self._prepare(fn, value, gas, "settle orders", head)
        except OutOfGas:
            limit = tx_gas_cap(int(head["gasLimit"]), self.config.max_tx_gas)
            if len(order_ids) == 1:
                if gas >= limit:
                    raise
                return self._simulate_orders(order_ids, call, min(2 * gas, limit), head)
            log.warning("%d orders would run out of gas at %d: splitting them", len(order_ids), gas)
            half = len(order_ids) // 2
            return self._simulate_orders(order_ids[:half], call, gas, head) + self._simulate_orders(
                order_ids[half:], call, gas, head
            )
        except ContractLogicError as exc:
            log.info("settling %s would revert (%s): skipped", order_ids, exc)
            return []
        return [] if tx is None else [(order_ids, tx)]

    def _orders_done(self, receipt: Any) -> int:
        """Forgets the orders a settlement's receipt filled or cancelled; returns those filled."""
        if receipt is None or receipt["status"] != 1:
            return 0
        filled = self._logged(receipt, "OrderBook", "OrderSettled")
        cancelled = self._logged(receipt, "OrderBook", "OrderCancelled")
        self.metrics.orders_settled.inc(len(filled))
        self.metrics.orders_cancelled.inc(len(cancelled))
        # Only what the transaction settled or cancelled is done. An order it left pending (its
        # price not proven) stays known and is tried again; one it triggered or sent back to
        # waiting is read back from its event.
        for i in filled | cancelled:
            self.state.orders.pop(i, None)
        log.info(
            "orders settled",
            extra={
                "kv_block": int(receipt["blockNumber"]),
                "kv_filled": len(filled),
                "kv_cancelled": len(cancelled),
                "kv_gas_used": int(receipt["gasUsed"]),
            },
        )
        return len(filled)

    def _logged(self, receipt: Any, contract: str, event: str) -> set[int]:
        """The first indexed argument (an id) of each `event` in `receipt`."""
        topic = self.reader.arts.topic(contract, event)
        return {
            int.from_bytes(bytes(lg["topics"][1]), "big") for lg in receipt["logs"] if bytes(lg["topics"][0]) == topic
        }

    # ------------------------------------------------------------------ job 3: LP requests

    def _settle_lp(self, now: int) -> int:
        delay, window, grace, _ = self.lp_params
        due, expired = lp_work(self.state.lp.values(), now, delay, window, grace)
        ids = self.reader.addresses.price_ids
        done = 0
        for r in expired:
            fn = self.reader.vault.functions.cancelExpiredRequest(r.controller, r.deposit)
            try:
                self._transact(fn, 0, self.config.gas_per_lp, "cancel an LP request")
            except ContractLogicError as exc:
                log.info("cancelling %s would revert (%s)", r, exc)
            self.state.lp.pop((r.controller, r.deposit), None)
        for r in due:
            open_markets = self.reader.open_markets()
            try:
                found = (
                    self.prices.at_or_after(r.time + delay, [ids[mk] for mk in open_markets]) if open_markets else {}
                )
            except PriceServiceError as exc:
                log.warning("price service: %s", exc)
                continue
            if any(ids[mk] not in found or found[ids[mk]].publish_time + grace > now for mk in open_markets):
                continue  # a price or its grace is not there yet
            updates = [(mk, found[ids[mk]].blob) for mk in open_markets]
            fn = (self.reader.vault.functions.settleDeposit if r.deposit else self.reader.vault.functions.settleRedeem)(
                r.controller, updates
            )
            try:
                receipt = self._transact(
                    fn,
                    self.reader.update_fee() * len(updates),
                    self.config.gas_per_lp,
                    "settle an LP request",
                )
            except ContractLogicError as exc:
                log.info("settling %s would revert (%s): skipped", r, exc)
                continue
            if receipt is not None and receipt["status"] == 1:
                self.metrics.lp_settled.inc()
                self.state.lp.pop((r.controller, r.deposit), None)
                done += 1
        return done

    # ------------------------------------------------------------------ sending

    def _transact(self, fn: Any, value: int, gas: int, what: str) -> Any:
        """Simulates `fn` with the gas limit it will carry (raising `ContractLogicError` if it
        would revert), then signs, sends, replaces if stuck, and returns the receipt."""
        tx = self._prepare(fn, value, gas, what)
        if tx is None:
            return None
        return self._send_until_mined(tx)

    def _prepare(self, fn: Any, value: int, gas: int, what: str, head: Any = None) -> TxParams | None:
        """Simulates `fn` with the gas limit it will carry: raises `OutOfGas` if it would run out
        of gas, `ContractLogicError` if it would revert; returns the transaction to send (its
        nonce is allocated when it is sent), or None in a dry run. `head`: the latest block, if
        the caller has read it."""
        if self.config.dry_run or self.account is None:
            log.info("dry run: would %s", what)
            return None
        w3 = self.reader.w3
        latest = head if head is not None else self.reader.retry(lambda: w3.eth.get_block("latest"))
        cap = tx_gas_cap(int(latest["gasLimit"]), self.config.max_tx_gas)
        gas = min(gas, cap)
        call: TxParams = {
            "from": self.address,
            "to": fn.address,
            "data": fn._encode_transaction_data(),
            "gas": gas,
            "value": Wei(value),
        }
        try:
            # On the pending block: the one the transaction joins, at its time. A price published
            # since the head block is valid there and not on the head (the pull oracle refuses a
            # price from after the block's timestamp).
            self.reader.retry(lambda: w3.eth.call(call, "pending"))
        except (ContractLogicError, Web3RPCError) as exc:
            if is_out_of_gas(exc):
                raise OutOfGas(f"{what} at {gas} gas") from None
            if gas < cap and self._simulates({**call, "gas": cap}):
                # Starved, not refused: a sub-call that ran out of gas inside a try/catch reads as
                # "not ready" (the order book then reverts NothingToSettle); at the block's gas
                # limit the same call goes through. One more eth_call, on refusals only.
                raise OutOfGas(f"{what} at {gas} gas (a sub-call starved)") from None
            if isinstance(exc, ContractLogicError):
                raise
            raise ContractLogicError(str(exc)) from None
        if self._chain_id is None:
            self._chain_id = int(self.reader.retry(lambda: w3.eth.chain_id))
        base_fee = int(latest.get("baseFeePerGas", 0))
        return {
            "to": call["to"],
            "data": call["data"],
            "value": Wei(value),
            "gas": gas,
            "maxPriorityFeePerGas": Wei(self.config.tip_wei),
            "maxFeePerGas": Wei(min(self.config.max_fee_cap_wei, 2 * base_fee + self.config.tip_wei)),
            "chainId": self._chain_id,
            "type": 2,
        }

    def _simulates(self, call: TxParams) -> bool:
        try:
            self.reader.retry(lambda: self.reader.w3.eth.call(call, "pending"))
        except (ContractLogicError, Web3RPCError):
            return False
        return True

    def _allocate_nonce(self) -> int:
        """The next nonce, under a lock: the node's pending count, or past what this keeper has
        already used if the node has not seen it yet."""
        assert self.account is not None
        sender = self.account.address
        with self._nonce_lock:
            pending = int(self.reader.retry(lambda: self.reader.w3.eth.get_transaction_count(sender, "pending")))
            nonce = pending if self._next_nonce is None else max(pending, self._next_nonce)
            self._next_nonce = nonce + 1
            return nonce

    def _send_until_mined(self, tx: TxParams) -> Any:
        """Sends `tx` (a nonce of its own) and waits for it to be mined; None if it never was."""
        return self._wait(self._send(tx))

    def _send(self, tx: TxParams) -> Sent:
        """Allocates `tx` the next nonce, signs it and broadcasts it."""
        assert self.account is not None
        nonce = self._allocate_nonce()
        signed = self.account.sign_transaction({**tx, "nonce": Nonce(nonce)})
        try:
            self._broadcast(signed.raw_transaction)
        except Exception:
            self.metrics.errors.inc()
            with self._nonce_lock:
                if self._next_nonce == nonce + 1:
                    self._next_nonce = None  # not sent, perhaps: ask the node next time
            raise
        return Sent({**tx, "nonce": Nonce(nonce)}, bytes(signed.raw_transaction), [bytes(signed.hash)])

    def _wait(self, sent: Sent) -> Any:
        """The receipt of `sent`, waiting for it (`_poll` replaces it when stuck and sends it
        again when dropped); None if no version of it was mined."""
        pause = 0.01
        while True:
            receipt = self._poll(sent)
            if receipt is not None or sent.abandoned:
                return receipt
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def _poll(self, sent: Sent, behind: bool = False) -> Any:
        """One look at a broadcast transaction, without waiting: the receipt of whichever version
        was mined, or None. While none is: every `RECHECK_S` seconds, one the node no longer knows
        (dropped from its pool) is broadcast again, same bytes; one not mined `stuck_after`
        seconds after it was sent is replaced (same nonce, fees +12.5%), up to `max_fee_bumps`
        times; the last version gets 60 s, then the transaction is `abandoned`. `behind`: a
        transaction of this keeper's with a lower nonce is not mined yet, so this one cannot be
        (its receipt is not asked for) and is not stuck: its clock restarts."""
        for tx_hash in [] if behind else sent.hashes:
            try:
                self.reader.count_call()
                receipt = self.reader.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
            except RECEIPT_NOT_YET:
                continue
            self.metrics.gas.inc(int(receipt["gasUsed"]))
            return receipt
        now = time.monotonic()
        if now - sent.checked > RECHECK_S:
            sent.checked = now
            if self._dropped(sent.hashes[-1]):
                log.warning("transaction dropped by the node: sending it again")
                try:
                    self._broadcast(sent.raw)
                except Web3RPCError as exc:  # refused: replaced with higher fees once stuck
                    log.warning("sending it again: %s", exc)
        if behind:
            sent.since = now
            return None
        last = sent.bumps == self.config.max_fee_bumps
        if now - sent.since <= (60.0 if last else self.config.stuck_after):
            return None
        if last:
            sent.abandoned = True
            with self._nonce_lock:
                self._next_nonce = None  # resynchronise with the node next time
            return None
        assert self.account is not None
        sent.bumps += 1
        max_fee, tip = bumped_fees(
            int(sent.tx["maxFeePerGas"]), int(sent.tx["maxPriorityFeePerGas"]), self.config.max_fee_cap_wei
        )
        sent.tx = {**sent.tx, "maxFeePerGas": Wei(max_fee), "maxPriorityFeePerGas": Wei(tip)}
        log.warning("transaction stuck: replacing it with fees +12.5%%", extra={"kv_bump": sent.bumps})
        signed = self.account.sign_transaction(sent.tx)
        try:
            self._broadcast(signed.raw_transaction)
        except Exception:
            self.metrics.errors.inc()
            raise
        sent.raw = bytes(signed.raw_transaction)
        sent.hashes.append(bytes(signed.hash))
        sent.since = sent.checked = time.monotonic()
        return None

    def _broadcast(self, raw: bytes) -> None:
        """Sends a signed transaction, re-sending the same bytes (same hash) if the transport
        fails; a node that already has it says so, which is success."""
        for attempt in range(self.reader.retries + 1):
            self.reader.count_call()
            try:
                self.reader.w3.eth.send_raw_transaction(raw)
                return
            except TRANSPORT_ERRORS:
                log.warning("send failed in transit; sending the same transaction again")
                time.sleep(self.reader.backoff * 2**attempt)
            except Web3RPCError as exc:
                if "already known" in str(exc) or "nonce too low" in str(exc):
                    return
                raise

    def _dropped(self, tx_hash: bytes) -> bool:
        """Does the node no longer know `tx_hash` (neither pending nor mined)?"""
        self.reader.count_call()
        try:
            self.reader.w3.eth.get_transaction(HexBytes(tx_hash))
        except TransactionNotFound:
            return True
        except TRANSPORT_ERRORS:
            pass
        return False
