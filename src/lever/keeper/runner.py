"""The keeper's shell: hydrate, follow blocks and events, decide with the core, send batches.

One `step()` per new block. Work per block is proportional to what changed: the touched
accounts (from events) and, for each market whose price moved, the accounts whose liquidation
price the move crossed (from the core's index); a full re-index runs every
`reindex_every_blocks` to absorb funding and volatility drift.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from hexbytes import HexBytes
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError
from web3.types import Nonce, TxParams, Wei

from lever import math as m
from lever.keeper.chain import TRANSPORT_ERRORS, ChainClient, MarketRaw, is_out_of_gas
from lever.keeper.core import AccountRecord, DecideParams, LiquidationIndex, decide, evaluate

log = logging.getLogger("lever.keeper")
RECEIPT_NOT_YET: tuple[type[BaseException], ...] = (TransactionNotFound, *TRANSPORT_ERRORS)


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
        self.gas = Counter("lever_keeper_gas_spent_total", "Gas used by this keeper's transactions", registry=r)
        self.block_lag = Gauge("lever_keeper_block_lag", "Head block minus the last handled block", registry=r)
        self.loop = Histogram("lever_keeper_loop_seconds", "Time to handle one block", registry=r)
        self.errors = Counter("lever_keeper_errors_total", "RPC or send errors", registry=r)


@dataclass
class KeeperConfig:
    max_batch: int = 500  # upper bound; the block gas limit usually binds first
    gas_market: int | None = 0  # the market whose price prices the gas token (ETH-USD); None: no profit gate
    band_wad: int = m.WAD // 200  # 0.5%: candidates within half a percent of their liquidation price
    page_size: int = 500
    reindex_every_blocks: int = 50
    clear_bad_debt: bool = True
    dry_run: bool = False
    tip_wei: int = 10**9
    # Gas limit of a batch: base + a budget per account (see DecideParams), capped at the block's
    # gas limit. The eth_call simulation runs with that limit, so a batch that would run out of
    # gas is split instead of sent (a node-side eth_estimateGas would re-run a big batch ~20 times).
    gas_base: int = 250_000
    gas_per_account: int = 67_000
    # A transaction not mined after `stuck_after` seconds is replaced (same nonce) with fees
    # raised by 12.5%, at most `max_fee_bumps` times and never above `max_fee_cap_wei`.
    stuck_after: float = 30.0
    max_fee_bumps: int = 3
    max_fee_cap_wei: int = 500 * 10**9


@dataclass
class KeeperState:
    records: dict[int, AccountRecord] = field(default_factory=dict)
    markets: dict[int, MarketRaw] = field(default_factory=dict)
    last_block: int = -1
    last_hash: bytes = b""
    last_reindex: int = -1
    check_all: bool = True  # after hydration: every market's crossed accounts are candidates
    in_flight: set[int] = field(default_factory=set)


def bumped_fees(max_fee: int, tip: int, cap: int) -> tuple[int, int]:
    """EIP-1559 replacement fees: both +12.5% (plus 1 wei, the minimum nodes accept), capped."""
    new_tip = min(cap, tip + tip // 8 + 1)
    new_max = min(cap, max_fee + max_fee // 8 + 1)
    return max(new_max, new_tip), new_tip


class Keeper:
    def __init__(self, client: ChainClient, private_key: str | None, config: KeeperConfig | None = None,
                 metrics: KeeperMetrics | None = None):
        self.client = client
        self.config = config or KeeperConfig()
        self.metrics = metrics or KeeperMetrics()
        self.account = Account.from_key(private_key) if private_key else None
        self.state = KeeperState()
        self.index = LiquidationIndex()
        self._nonce_lock = threading.Lock()
        self._next_nonce: int | None = None
        self.token_scale = 0  # read at hydration (no RPC in the constructor)

    @property
    def address(self) -> str:
        return self.account.address if self.account else "0x0000000000000000000000000000000000000000"

    # ------------------------------------------------------------------ state

    def hydrate(self) -> None:
        """Reads every market and every account with positions, pinned to one block."""
        block, now = self.client.head()
        self.token_scale = self.client.token_scale()
        count = self.client.market_count(block)
        self.state.markets = {mk: self.client.market(mk, block) for mk in range(count)}
        total = self.client.account_count(block)
        records: dict[int, AccountRecord] = {}
        for start in range(1, total + 1, self.config.page_size):
            for account in self.client.accounts_with_positions(start, self.config.page_size, block):
                records[account] = self.client.account(account, block)
        self.state.records = records
        self._reindex(now)
        self.state.last_block = block
        self.state.last_hash = self.client.head_hash
        self.state.last_reindex = block
        self.state.check_all = True

    def _views(self, now: int) -> dict[int, m.MarketView]:
        return {mk: raw.view(now) for mk, raw in self.state.markets.items()}

    def _reindex(self, now: int) -> None:
        views = self._views(now)
        self.index = LiquidationIndex()
        for account, record in self.state.records.items():
            self.index.update(account, record, views, self.token_scale)
        self.metrics.accounts.set(len(self.state.records))

    # ------------------------------------------------------------------ one block

    def step(self) -> int:
        """Handles the chain up to its head; returns how many accounts it liquidated.

        An idle block costs two requests: the head and one `eth_getLogs`."""
        started = time.monotonic()
        block, now = self.client.head()
        first = self.state.check_all
        if block <= self.state.last_block and not first:
            return 0
        if block > self.state.last_block and self._reorged(block):
            log.warning("reorg below block %d: rebuilding state", self.state.last_block)
            self.hydrate()
            return self.step()
        self.metrics.block_lag.set(block - self.state.last_block)
        # Only the new blocks' logs: a reorg is caught by the block-hash check above.
        changes = self.client.changes(self.state.last_block + 1 if not first else self.state.last_block, block)
        moved = set(self.state.markets) if first or changes.params else set(changes.markets)
        old_prices = {mk: self.state.markets[mk].price for mk in moved if mk in self.state.markets}
        for mk in moved:
            self.state.markets[mk] = self.client.market(mk, block)
        for account in changes.accounts:
            record = self.client.account(account, block)
            if record.positions:
                self.state.records[account] = record
            else:
                self.state.records.pop(account, None)
        views = self._views(now)
        if block - self.state.last_reindex >= self.config.reindex_every_blocks:
            self._reindex(now)
            self.state.last_reindex = block
        else:
            for account in changes.accounts:
                if account in self.state.records:
                    self.index.update(account, self.state.records[account], views, self.token_scale)
                else:
                    self.index.remove(account)
        candidates = set(changes.accounts) & set(self.state.records)
        for mk in moved:
            # A new price (or the first block after hydration) re-checks the crossed accounts.
            if first or self.state.markets[mk].price != old_prices.get(mk):
                candidates |= self.index.candidates(mk, views[mk].price, self.config.band_wad)
        self.metrics.candidates.inc(len(candidates))
        self.metrics.accounts.set(len(self.state.records))
        liquidated = self._act(sorted(candidates), views, block)
        self.state.last_block = block
        self.state.last_hash = self.client.head_hash
        self.state.check_all = False
        self.metrics.loop.observe(time.monotonic() - started)
        return liquidated

    def _reorged(self, block: int) -> bool:
        """Is the block we last handled still on the chain? (One extra request only when more
        than one block has passed.)"""
        if not self.state.last_hash:
            return False
        if block == self.state.last_block + 1:
            return self.client.head_parent != self.state.last_hash
        return self.client.block_hash(self.state.last_block) != self.state.last_hash

    def _act(self, candidates: list[int], views: dict[int, m.MarketView], block: int) -> int:
        if not candidates:
            return 0
        pool, insurance, fees, share = self.client.ledgers(block)
        gas_market = self.config.gas_market
        params = DecideParams(
            liquidation=self.client.liquidation_params(block),
            token_scale=self.token_scale,
            max_batch=self.config.max_batch,
            # As few transactions as the block gas limit allows: a batch fills at most 90% of a block.
            batch_gas_budget=self.client.head_gas_limit * 9 // 10,
            gas_base=self.config.gas_base,
            gas_per_account=self.config.gas_per_account,
            gas_price_wei=self.client.head_base_fee + self.config.tip_wei,
            # token units one gas-token unit is worth: the gas market's price over the token scale
            token_per_eth=views[gas_market].price // self.token_scale if gas_market in views else 0,
            clear_bad_debt=self.config.clear_bad_debt,
        )
        found = evaluate(candidates, self.state.records, views, params, pool, insurance, fees, share)
        if not found:
            return 0
        # Confirm with the contract's own condition, in one call.
        confirmed = self.client.health([c.account for c in found], block)
        found = [c for c in found if confirmed.get(c.account)]
        liquidated = 0
        for batch in decide(found, params, frozenset(self.state.in_flight)):
            liquidated += self._send(list(batch.accounts), batch.gas_limit)
        return liquidated

    def _allocate_nonce(self) -> int:
        """The next nonce, under a lock: the node's pending count, or past what this keeper has
        already used if the node has not seen it yet."""
        assert self.account is not None
        sender = self.account.address
        with self._nonce_lock:
            pending = int(self.client.retry(lambda: self.client.w3.eth.get_transaction_count(sender, "pending")))
            nonce = pending if self._next_nonce is None else max(pending, self._next_nonce)
            self._next_nonce = nonce + 1
            return nonce

    def _send_until_mined(self, tx: TxParams) -> Any:
        """Signs and broadcasts; if not mined within `stuck_after`, replaces it (same nonce,
        bumped fees) up to `max_fee_bumps` times; returns the receipt of whichever got mined."""
        assert self.account is not None
        hashes: list[bytes] = []
        for bump in range(self.config.max_fee_bumps + 1):
            if bump:
                max_fee, tip = bumped_fees(int(tx["maxFeePerGas"]), int(tx["maxPriorityFeePerGas"]),
                                           self.config.max_fee_cap_wei)
                tx = {**tx, "maxFeePerGas": Wei(max_fee), "maxPriorityFeePerGas": Wei(tip)}
                log.warning("transaction stuck: replacing it with fees +12.5%%", extra={"kv_bump": bump})
            signed = self.account.sign_transaction(tx)
            self._broadcast(signed.raw_transaction)
            hashes.append(bytes(signed.hash))
            last = bump == self.config.max_fee_bumps
            receipt = self._receipt(hashes, timeout=60.0 if last else self.config.stuck_after)
            if receipt is not None:
                return receipt
        with self._nonce_lock:
            self._next_nonce = None  # resynchronise with the node next time
        return None

    def _broadcast(self, raw: bytes) -> None:
        """Sends a signed transaction, re-sending the same bytes (same hash) if the transport
        fails; a node that already has it says so, which is success."""
        for attempt in range(self.client.retries + 1):
            self.client.calls += 1
            try:
                self.client.w3.eth.send_raw_transaction(raw)
                return
            except TRANSPORT_ERRORS:
                log.warning("send failed in transit; sending the same transaction again")
                time.sleep(self.client.backoff * 2**attempt)
            except Web3RPCError as exc:
                if "already known" in str(exc) or "nonce too low" in str(exc):
                    return
                raise

    def _receipt(self, tx_hashes: list[bytes], timeout: float = 60.0) -> Any:
        """Polls for the receipt of any of `tx_hashes` (replacements share a nonce, so at most one
        lands) through transport errors; None if none landed in time."""
        deadline = time.monotonic() + timeout
        pause = 0.01
        while time.monotonic() < deadline:
            for tx_hash in tx_hashes:
                try:
                    self.client.calls += 1
                    return self.client.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
                except RECEIPT_NOT_YET:
                    pass
            time.sleep(pause)
            pause = min(pause * 2, 1.0)
        return None

    def _send(self, accounts: list[int], gas: int = 0) -> int:
        if self.config.dry_run or self.account is None:
            log.info("dry run: would liquidate %s", accounts)
            return 0
        w3 = self.client.w3
        latest = self.client.retry(lambda: w3.eth.get_block("latest"))
        gas = min(gas or self.config.gas_base + self.config.gas_per_account * len(accounts), int(latest["gasLimit"]))
        try:
            # Simulated with the gas limit the transaction will carry: a batch that would run out
            # of gas is caught here, not on chain.
            expected = self.client.simulate_batch(accounts, self.address, gas)
        except (ContractLogicError, Web3RPCError) as exc:
            if isinstance(exc, ContractLogicError) and not is_out_of_gas(exc):
                # the batch would revert: someone else got there first
                log.info("batch %s would revert (%s): counted as lost", accounts, exc)
                self.metrics.lost.inc(len(accounts))
                return 0
            block_limit = int(latest["gasLimit"])
            if not is_out_of_gas(exc) or (len(accounts) == 1 and gas >= block_limit):
                raise
            # These accounts need more than their budget: each half gets the whole limit (a
            # single account, twice the limit).
            log.warning("a batch of %d would run out of gas at %d: splitting it", len(accounts), gas)
            if len(accounts) == 1:
                return self._send(accounts, min(2 * gas, block_limit))
            half = len(accounts) // 2
            return self._send(accounts[:half], gas) + self._send(accounts[half:], gas)
        self.state.in_flight.update(accounts)
        try:
            base_fee = int(latest.get("baseFeePerGas", 0))
            assert self.account is not None
            tx: TxParams = {
                "to": self.client.liquidator.address,
                "data": self.client.liquidator.encode_abi("liquidateBatch", args=[accounts]),
                "value": Wei(0),
                "nonce": Nonce(self._allocate_nonce()),
                "gas": gas,
                "maxPriorityFeePerGas": Wei(self.config.tip_wei),
                "maxFeePerGas": Wei(min(self.config.max_fee_cap_wei, 2 * base_fee + self.config.tip_wei)),
                "chainId": self.client.retry(lambda: w3.eth.chain_id),
                "type": 2,
            }
            receipt = self._send_until_mined(tx)
        except Exception:
            self.metrics.errors.inc()
            raise
        finally:
            self.state.in_flight.difference_update(accounts)
        if receipt is None:
            return 0
        self.metrics.sent.inc(len(accounts))
        self.metrics.gas.inc(int(receipt["gasUsed"]))
        if receipt["status"] != 1:
            self.metrics.lost.inc(len(accounts))
            return 0
        won = self.client.liquidated_in(receipt)
        self.metrics.won.inc(len(won))
        self.metrics.lost.inc(len(accounts) - len(won))
        log.info("liquidated %s of %s (expected %s)", sorted(won), accounts, expected)
        return len(won)
