"""Keeper benchmark: writes build/bench/keeper.json (several minutes; not part of `make test`).

    make bench-keeper     (its own Anvil on a free port; then `ape run bench_keeper --network <its URL>`)

One chain is seeded with 10,000 accounts (`contracts/test/BulkSeeder.sol`: accounts and their
orders in bulk through the protocol's public entry points; the positions are then filled by
ordinary `settleOrders` calls), snapshotted, and two scenes are played from the snapshot, with
one-second blocks (Anvil's interval mining) and the real price service (`lever.priceservice`,
republishing every second of chain time, as Pyth's publishers do):

- **liquidations**: 15% of the accounts are 18x longs; ETH falls 4.7%. This keeper (the
  liquidation-price index, the mirror, gas-packed batches bringing their own Pyth update) against a
  naive one that pushes the price on chain and asks the contract about every account every
  block, then sends the same batches.
- **orders**: 2,000 market orders committed in four consecutive blocks, and 1,000 stop-losses that one price
  move triggers at the moment those orders fall due. Every order must be settled (none missed,
  none left to expire), each market order at the first price published after its delay, in as
  few blocks as the block gas limit forces, plus one.

Targets sit next to the figures in the JSON; a target missed is reported as such (`"met": false`),
never hidden. LEVER_BENCH_ACCOUNTS / _MARKET_ORDERS / _CONDITIONAL_ORDERS scale it down for a
quick look.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from eth_account import Account
from web3 import Web3
from web3.exceptions import TransactionNotFound

from lever.chain import Addresses, ProtocolReader
from lever.config import load_network_config
from lever.deploy import deploy_protocol
from lever.hermes import HermesClient
from lever.keeper.core import KeeperConfig, pack
from lever.keeper.runner import Keeper
from lever.keeper.service import JsonFormatter, KeeperService
from lever.keeper.wiring import connect
from lever.math.orders import Kind
from lever.priceservice import PriceState, Publisher, Server
from lever.pyth import PriceBook, Publication, encode_update, to_pyth_price

OUT = Path("build/bench/keeper.json")
LOG = Path("build/bench/keeper.log")  # the keepers' own log lines (JSON), for a look after a run
USDC = 10**6
WAD = 10**18
ETH, ETH_ID = "ETH-USD", 0
ACCOUNTS = int(os.environ.get("LEVER_BENCH_ACCOUNTS", "10000"))
MARKET_ORDERS = int(os.environ.get("LEVER_BENCH_MARKET_ORDERS", "2000"))
CONDITIONAL_ORDERS = int(os.environ.get("LEVER_BENCH_CONDITIONAL_ORDERS", "1000"))
SCENES = os.environ.get("LEVER_BENCH_SCENES", "liquidations,naive,orders").split(",")
# 18x longs ($100 on 0.6 ETH); the rest 2x ($300 on 0.2 ETH), long and short
RISKY_SHARE = Decimal("0.15")
# -4.7%: the 18x longs fall; -2%: the stop-losses fire
CRASH_USD, MOVE_USD = (
    Decimal(2860),
    Decimal(2940),
)
STOP_TRIGGER = Decimal(2950)
SEED_FEE = USDC // 20  # the smallest executor fee ($0.05)
BLOCK_SECONDS = 1
POLL_SECONDS = 0.5  # the keeper service's poll interval in the bench (default 1 s)
IDLE_BLOCKS = 10
SEND_GAS = 29_000_000  # the bench's own seeding transactions
COMMIT_GAS = 14_000_000  # 250 market orders committed (~11.4M gas): two such transactions a block
BENCH_KEY_INDEX, KEEPER_KEY_INDEX, LP_KEY_INDEX = 0, 8, 1
log = logging.getLogger("lever.bench")


def usd(value: Decimal | int | str) -> int:
    return int(Decimal(str(value)) * USDC)


def wad(value: Decimal | int | str) -> int:
    return int(Decimal(str(value)) * WAD)


# --------------------------------------------------------------------------- plumbing


class CountingSession(requests.Session):
    """Counts the HTTP requests a web3 connection makes (one per JSON-RPC request)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.lock = threading.Lock()

    def request(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        with self.lock:
            self.count += 1
        return super().request(*args, **kwargs)


class Chain:
    """The node, raw: blocks, mining mode, snapshots, and signed transactions sent in bulk."""

    def __init__(self, rpc_url: str, key: str):
        self.url = rpc_url
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 120}))
        self.account = Account.from_key(key)
        self.chain_id = int(self.w3.eth.chain_id)
        self.nonce = int(self.w3.eth.get_transaction_count(self.account.address, "pending"))
        self.sent: dict[bytes, bytes] = {}  # hash -> signed bytes, to broadcast again if dropped

    def rpc(self, method: str, params: list[Any]) -> Any:
        response = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
        if "error" in response:
            raise RuntimeError(f"{method}: {response['error']}")
        return response.get("result")

    def head(self) -> tuple[int, int]:
        block = self.w3.eth.get_block("latest")
        return int(block["number"]), int(block["timestamp"])

    def mine(self, timestamp: int | None = None) -> None:
        self.rpc("evm_mine", [timestamp] if timestamp is not None else [])

    def interval_mining(self, on: bool) -> None:
        """One block a second (a live chain) or one block per transaction (fast seeding)."""
        if on:
            self.rpc("evm_setAutomine", [False])
            self.rpc("evm_setIntervalMining", [BLOCK_SECONDS])
        else:
            self.rpc("evm_setIntervalMining", [0])
            self.rpc("evm_setAutomine", [True])

    def snapshot(self) -> str:
        return str(self.rpc("evm_snapshot", []))

    def revert(self, snapshot: str) -> None:
        assert self.rpc("evm_revert", [snapshot])
        self.nonce = int(self.w3.eth.get_transaction_count(self.account.address, "pending"))

    def send(self, fn: Any, gas: int = SEND_GAS, value: int = 0) -> bytes:
        """Signs and broadcasts `fn` (no gas estimate, no wait); returns its hash."""
        base = int(self.w3.eth.get_block("latest").get("baseFeePerGas", 0))
        tx = fn.build_transaction(
            {
                "from": self.account.address,
                "nonce": self.nonce,
                "gas": gas,
                "value": value,
                "maxFeePerGas": 2 * base + 10**9,
                "maxPriorityFeePerGas": 10**9,
                "chainId": self.chain_id,
            }
        )
        self.nonce += 1
        signed = self.account.sign_transaction(tx)
        self.sent[bytes(signed.hash)] = bytes(signed.raw_transaction)
        return bytes(self.w3.eth.send_raw_transaction(signed.raw_transaction))

    def wait(self, hashes: Iterable[bytes], timeout: float = 300.0) -> list[Any]:
        """The receipts of `hashes`. Anvil's pool now and then drops a pending transaction while
        blocks are mined on an interval (foundry-rs/foundry#13352: nothing says so, the receipt
        never comes); one not in the pool nor mined is broadcast again, same bytes."""
        receipts = []
        for h in hashes:
            deadline, checked = time.monotonic() + timeout, time.monotonic()
            while True:
                try:
                    receipts.append(self.w3.eth.get_transaction_receipt(h))
                    break
                except TransactionNotFound:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"transaction 0x{h.hex()} not mined in {timeout} s")
                if time.monotonic() - checked > 3.0:
                    checked = time.monotonic()
                    try:
                        self.w3.eth.get_transaction(h)
                    except TransactionNotFound:
                        log.warning("transaction 0x%s dropped by the node: sending it again", h.hex())
                        print(f"  (node dropped 0x{h.hex()[:12]}; sent again)", flush=True)
                        self.w3.eth.send_raw_transaction(self.sent[h])
                time.sleep(0.05)
        failed = [r for r in receipts if r["status"] != 1]
        if failed:
            raise RuntimeError(f"seeding transaction reverted: {failed[0]['transactionHash'].hex()}")
        return receipts

    def do(self, fn: Any, gas: int = SEND_GAS, value: int = 0) -> Any:
        return self.wait([self.send(fn, gas, value)])[0]


def chain_clock(w3: Web3, every: float = 0.25) -> Callable[[], int]:
    """The node's clock: its latest block's timestamp plus the wall time since it was read (re-read
    every `every` s). Unlike `lever.priceservice.chain_clock`, which never runs behind the wall
    clock, this one follows the chain behind it too: under load, interval mining falls behind
    the wall clock, and a price published at wall time would be in every block's future (the pull
    oracle refuses it, and the stored price goes stale)."""
    lock = threading.Lock()
    state = {"offset": 0.0, "read": 0.0}

    def now() -> int:
        wall = time.time()
        with lock:
            if wall - state["read"] > every:
                try:
                    state["offset"] = int(w3.eth.get_block("latest")["timestamp"]) - wall
                    state["read"] = wall
                except Exception as exc:  # noqa: BLE001 - a node hiccup: keep the last offset
                    log.debug("chain clock: %s", exc)
            return int(wall + state["offset"])

    return now


class World:
    """The deployed protocol, the seeded accounts, the price service. (Plain classes in this
    script: `ape run` loads it without a module entry, which dataclasses need.)"""

    def __init__(
        self,
        chain: Chain,
        reader: ProtocolReader,
        addresses: Addresses,
        deploy_block: int,
        prices: PriceState,
        service_url: str,
        seeder: Any,
    ):
        self.chain, self.reader, self.addresses, self.deploy_block = (
            chain,
            reader,
            addresses,
            deploy_block,
        )
        self.prices, self.service_url, self.seeder = prices, service_url, seeder
        self.risky: list[int] = []
        self.safe_longs: list[int] = []
        self.safe_shorts: list[int] = []
        self.seeding: dict[str, Any] = {}

    @property
    def accounts(self) -> list[int]:
        return sorted(self.risky + self.safe_longs + self.safe_shorts)

    def publish(self, usd_price: Decimal, at: int) -> None:
        with self.prices.lock:
            self.prices.book.publish(ETH, usd_price, at)

    def set_price(self, usd_price: Decimal) -> None:
        """The price service's current ETH price (published from now on, every second)."""
        self.prices.set(ETH, usd_price)

    def reference(self, usd_price: Decimal) -> Any:
        feed = self.reader.feeds[ETH_ID]
        return feed.functions.setPrice(int(usd_price * 10**8))

    def save_prices(self) -> tuple[PriceBook, dict[str, Decimal]]:
        with self.prices.lock:
            return copy.deepcopy(self.prices.book), dict(self.prices.current)

    def restore_prices(self, saved: tuple[PriceBook, dict[str, Decimal]]) -> None:
        with self.prices.lock:
            self.prices.book, self.prices.current = copy.deepcopy(saved[0]), dict(saved[1])


# --------------------------------------------------------------------------- seeding


def seed(project: Any, accounts: Any) -> World:
    from ape import chain as ape_chain

    config = load_network_config("local")
    deployer, lp = accounts.test_accounts[BENCH_KEY_INDEX], accounts.test_accounts[LP_KEY_INDEX]
    protocol = deploy_protocol(project, deployer, config)
    seeder = project.BulkSeeder.deploy(
        protocol.engine, protocol.vault, protocol.order_book, protocol.token, sender=deployer
    )
    rpc_url = str(ape_chain.provider.uri)
    node = Chain(rpc_url, str(deployer.private_key))
    addresses = Addresses(
        token=protocol.token.address,
        oracle=protocol.oracle.address,
        vault=protocol.vault.address,
        engine=protocol.engine.address,
        order_book=protocol.order_book.address,
        liquidator=protocol.liquidator.address,
        timelock=protocol.timelock.address,
        pyth=protocol.pyth.address,
        markets=dict(protocol.markets),
        feeds={mk: protocol.feeds[name].address for name, mk in protocol.markets.items()},
        price_ids={mk: protocol.price_ids[name] for name, mk in protocol.markets.items()},
    )
    reader = ProtocolReader(node.w3, addresses)
    book = PriceBook.for_markets(protocol.price_ids)
    clock = chain_clock(Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30})))
    state = PriceState(book, {name: mc.initial_price for name, mc in config.markets.items()}, clock)
    server = Server(state)
    url = server.start()
    seeder_w3 = node.w3.eth.contract(address=seeder.address, abi=reader.arts.abi("BulkSeeder"))
    world = World(node, reader, addresses, protocol.deploy_block, state, url, seeder_w3)
    started = time.monotonic()
    _fund_pool(world, lp, config)
    risky = int(ACCOUNTS * RISKY_SHARE)
    ids = _open_accounts(world, risky, usd(100)) + _open_accounts(world, ACCOUNTS - risky, usd(300))
    world.risky = ids[:risky]
    safe = ids[risky:]
    world.safe_longs, world.safe_shorts = safe[0::2], safe[1::2]
    sizes = {a: wad("0.6") for a in world.risky}
    sizes.update({a: wad("0.2") for a in world.safe_longs})
    sizes.update({a: -wad("0.2") for a in world.safe_shorts})
    _open_positions(world, sizes)
    world.seeding["seconds"] = round(time.monotonic() - started, 1)
    print(f"seeded {len(ids)} accounts with positions in {world.seeding['seconds']} s", flush=True)
    return world


def _fund_pool(world: World, lp: Any, config: Any) -> None:
    """$20M of liquidity through the asynchronous flow (request, settle after the delay, claim)."""
    node, r = world.chain, world.reader
    amount = usd(20_000_000)
    fee = int(r.vault.functions.lpParams().call()[3])
    lp_chain = Chain(node.url, str(lp.private_key))
    lp_chain.do(r.token.functions.mint(lp.address, amount + fee), gas=200_000)
    lp_chain.do(r.token.functions.approve(r.vault.address, 2**256 - 1), gas=200_000)
    receipt = lp_chain.do(r.vault.functions.requestDeposit(amount, lp.address, lp.address), gas=500_000)
    t = int(node.w3.eth.get_block(receipt["blockNumber"])["timestamp"])
    node.mine(t + config.lp.settlement_delay + config.lp.liquidation_grace)
    node.do(r.vault.functions.settleDeposit(lp.address, []), gas=1_000_000)
    lp_chain.do(r.vault.functions.deposit(amount, lp.address), gas=500_000)


def _open_accounts(world: World, count: int, margin: int, per_tx: int = 200) -> list[int]:
    node, r = world.chain, world.reader
    node.do(r.token.functions.mint(world.seeder.address, count * margin), gas=200_000)
    hashes = [
        node.send(world.seeder.functions.openAccounts(min(per_tx, count - done), margin))
        for done in range(0, count, per_tx)
    ]
    receipts = node.wait(hashes)
    world.seeding.setdefault("gas_per_account_opened", max(r["gasUsed"] for r in receipts) // per_tx)
    total = int(r.engine.functions.accountCount().call())
    return list(range(total - count + 1, total + 1))


def _open_positions(
    world: World,
    sizes: dict[int, int],
    round_size: int = 1_000,
    per_commit: int = 250,
    per_settle: int = 140,
) -> None:
    """Commits a market order for each account (the seeder owns them), then settles them like a
    keeper would: each batch proves the price published at its orders' commit time + delay once."""
    node, r = world.chain, world.reader
    delay = int(r.order_book.functions.settings().call()[0])
    fee = int(r.oracle.functions.updateFee().call())
    accounts = sorted(sizes)
    for start in range(0, len(accounts), round_size):
        chunk = accounts[start : start + round_size]
        hashes = [
            node.send(world.seeder.functions.commitOrders(part, ETH_ID, [sizes[a] for a in part], SEED_FEE))
            for part in _chunks(chunk, per_commit)
        ]
        receipts = node.wait(hashes)
        placed = _placed(world, receipts)
        committed = {order_id // 8: t for order_id, t in placed.items()}
        times = set(committed.values())
        due = max(times) + delay
        for t in sorted(times):
            world.publish(Decimal(3000), t + delay)
        node.mine(due)
        settle_hashes = []
        for part in _chunks(chunk, per_settle):
            blobs, proven = [], set()
            for a in part:
                t = committed[a] + delay
                blobs.append(b"" if t in proven else world.prices.book.feeds[ETH].update_at_or_after(t))
                proven.add(t)
            ids = [a * 8 for a in part]  # each account's first order slot
            value = fee * sum(1 for b in blobs if b)
            settle_hashes.append(node.send(r.order_book.functions.settleOrders(ids, blobs, []), value=value))
        settled = node.wait(settle_hashes)
        world.seeding["gas_per_position_opened"] = max(rc["gasUsed"] for rc in settled) // per_settle
        world.seeding["gas_per_order_committed"] = max(rc["gasUsed"] for rc in receipts) // per_commit
        left = [a for a in chunk if int(r.engine.functions.position(a, ETH_ID).call()[0]) != sizes[a]]
        if left:
            raise RuntimeError(f"{len(left)} seeded positions did not open (e.g. account {left[0]})")


def _placed(world: World, receipts: list[Any]) -> dict[int, int]:
    """Order id -> the time it was placed (its block's), from the receipts' `OrderPlaced` logs."""
    topic = world.reader.arts.topic("OrderBook", "OrderPlaced")
    out = {}
    for rc in receipts:
        t = int(world.chain.w3.eth.get_block(rc["blockNumber"])["timestamp"])
        for lg in rc["logs"]:
            if bytes(lg["topics"][0]) == topic:
                out[int.from_bytes(bytes(lg["topics"][1]), "big")] = t
    return out


def _chunks(items: list[int], size: int) -> list[list[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# --------------------------------------------------------------------------- the keeper under test


class Runner:
    """A keeper service (as `lever keeper run` runs it) in a thread, its requests counted."""

    def __init__(self, keeper: Keeper, service: KeeperService, session: CountingSession):
        self.keeper, self.service, self.session = keeper, service, session
        self.thread: threading.Thread | None = None

    @classmethod
    def build(cls, world: World, key: str) -> Runner:
        session = CountingSession()
        w3 = connect(world.chain.url, timeout=120, session=session)
        keeper = Keeper(
            ProtocolReader(w3, world.addresses),
            HermesClient(world.service_url, timeout=30),
            key,
            KeeperConfig(start_block=world.deploy_block),
        )
        return cls(
            keeper,
            KeeperService(keeper, poll_interval=POLL_SECONDS, max_consecutive_errors=5),
            session,
        )

    def start(self) -> None:
        def run() -> None:
            try:
                self.service.run()
            except BaseException:
                log.exception("the keeper service died")
                raise

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.service.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=120)


def wait_until(done: Callable[[], bool], timeout: float, pause: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(pause)
    return False


def idle_requests_per_block(world: World, runner: Runner) -> float:
    """Requests to the node per block while nothing happens (the service polling as it runs)."""
    node = world.chain
    # the first step re-checks everything
    wait_until(lambda: not runner.keeper.state.check_all, 300)
    start_block, _ = node.head()
    wait_until(lambda: node.head()[0] > start_block, 10)
    first_block, _ = node.head()
    before = runner.session.count
    wait_until(lambda: node.head()[0] >= first_block + IDLE_BLOCKS, IDLE_BLOCKS * 3)
    last_block, _ = node.head()
    return round((runner.session.count - before) / max(1, last_block - first_block), 2)


def _logs(world: World, contract: str, event: str, from_block: int, address: str) -> list[Any]:
    topic = world.reader.arts.topic(contract, event)
    return list(
        world.chain.w3.eth.get_logs(
            {
                "fromBlock": from_block,
                "toBlock": "latest",
                "address": address,
                "topics": ["0x" + topic.hex()],
            }
        )
    )


def _gas_of(world: World, logs: list[Any]) -> tuple[int, int]:
    """(transactions, total gas used) of the transactions that emitted `logs`."""
    hashes = {bytes(lg["transactionHash"]) for lg in logs}
    return len(hashes), sum(int(world.chain.w3.eth.get_transaction_receipt(h)["gasUsed"]) for h in hashes)


def _reverted(world: World, sender: str, from_block: int) -> int:
    w3, count = world.chain.w3, 0
    for number in range(from_block, int(w3.eth.block_number) + 1):
        for tx in w3.eth.get_block(number, full_transactions=True)["transactions"]:
            if tx["from"].lower() == sender.lower() and w3.eth.get_transaction_receipt(tx["hash"])["status"] != 1:
                count += 1
    return count


def target(value: float, op: str, bound: float) -> dict[str, Any]:
    met = value <= bound if op == "<=" else value == bound
    return {"target": f"{op} {bound}", "met": met}


# --------------------------------------------------------------------------- scene 1: liquidations


def liquidations(world: World, key: str, naive: bool) -> dict[str, Any]:
    node = world.chain
    unhealthy = _unhealthy_after(world, CRASH_USD)
    runner = Runner.build(world, key)
    hydrate_seconds = 0.0
    if not naive:  # the naive keeper keeps no state
        started = time.monotonic()
        runner.keeper.hydrate()
        runner.service.hydrated = True
        hydrate_seconds = time.monotonic() - started
    print(
        f"  {len(unhealthy)} accounts unhealthy after the crash; hydrated in {hydrate_seconds:.1f} s",
        flush=True,
    )
    node.interval_mining(True)
    idle = 0.0
    try:
        if not naive:
            runner.start()
            idle = idle_requests_per_block(world, runner)
            print(f"  idle: {idle} requests a block", flush=True)
        crash_block = int(node.wait([node.send(world.reference(CRASH_USD), gas=300_000)])[0]["blockNumber"])
        world.set_price(CRASH_USD)
        started = time.monotonic()
        liquidated: list[int] = []

        def covered() -> bool:
            logs = _logs(world, "Liquidator", "Liquidation", crash_block, world.addresses.liquidator)
            liquidated[:] = [int.from_bytes(bytes(lg["topics"][1]), "big") for lg in logs]
            return set(unhealthy) <= set(liquidated)

        if naive:
            idle = _run_naive(world, runner, covered)
        else:
            wait_until(covered, 600)
        seconds = time.monotonic() - started
    finally:
        runner.stop()
        node.interval_mining(False)
    logs = _logs(world, "Liquidator", "Liquidation", crash_block, world.addresses.liquidator)
    transactions, gas = _gas_of(world, logs)
    limit = int(node.w3.eth.get_block("latest")["gasLimit"])
    last = max((int(lg["blockNumber"]) for lg in logs), default=crash_block)
    forced = math.ceil(gas / limit)
    out: dict[str, Any] = {
        "accounts": len(world.accounts),
        "unhealthy": len(unhealthy),
        "liquidated": len(set(liquidated)),
        "missed": len(set(unhealthy) - set(liquidated)),
        "wrongly_liquidated": len(set(liquidated) - set(unhealthy)),
        "liquidated_twice": len(liquidated) - len(set(liquidated)),
        "transactions": transactions,
        "gas_used": gas,
        "gas_per_account": gas // max(1, len(liquidated)),
        "gas_limit_batches": forced,
        "blocks_to_clear": last - crash_block,
        "seconds_to_clear": round(seconds, 2),
        "idle_rpc_per_block": idle,
        "hydrate_seconds": round(hydrate_seconds, 1),
        "reverted_transactions": _reverted(world, runner.keeper.address, crash_block),
    }
    if not naive:
        out["targets"] = {
            "missed": target(out["missed"], "==", 0),
            "wrongly_liquidated": target(out["wrongly_liquidated"], "==", 0),
            "liquidated_twice": target(out["liquidated_twice"], "==", 0),
            "reverted_transactions": target(out["reverted_transactions"], "==", 0),
            "blocks_to_clear": target(out["blocks_to_clear"], "<=", forced + 1),
        }
    return out


def _unhealthy_after(world: World, price: Decimal) -> list[int]:
    """The accounts the contract itself finds liquidatable once `price` is stored (a throwaway
    snapshot: the price stored, `healthOf` over every account, then reverted)."""
    node, r = world.chain, world.reader
    snapshot = node.snapshot()
    try:
        node.do(world.reference(price), gas=300_000)
        _, now = node.head()
        node.mine(now + 1)
        feed = world.prices.book.feeds[ETH]
        latest = feed.latest()
        blob = encode_update(
            feed.price_id,
            Publication(now + 1, to_pyth_price(price)),
            latest.publish_time if latest else 0,
        )
        node.do(
            r.oracle.functions.updatePrices([(ETH_ID, blob)]),
            gas=1_000_000,
            value=int(r.update_fee()),
        )
        health = r.health(world.accounts)
    finally:
        node.revert(snapshot)
    return sorted(a for a, bad in health.items() if bad)


def _run_naive(world: World, runner: Runner, covered: Callable[[], bool]) -> float:
    """Every block: push the latest price on chain, ask `healthOf` about every account (one
    request each), liquidate what it says, in the keeper's own gas-packed batches. Returns its
    requests per block while nothing is liquidatable (one whole scan)."""
    keeper, r = runner.keeper, runner.keeper.reader
    session = runner.session
    scans = []

    def scan() -> list[int]:
        found = []
        for account in world.accounts:
            [row] = r.liquidator.functions.healthOf([account]).call()
            if row[5]:
                found.append(account)
        return found

    before = session.count
    scan()
    scans.append(session.count - before)
    deadline = time.monotonic() + 1200
    while not covered() and time.monotonic() < deadline:
        updates = keeper._latest_updates([ETH_ID])
        keeper._transact(r.oracle.functions.updatePrices(updates), r.update_fee(), 1_000_000, "push the price")
        found = scan()
        print(f"  naive: {len(found)} found by a scan", flush=True)
        # The scan takes longer than a liquidation's maximum price age (30 s at 10,000
        # accounts): the liquidations bring the latest price again.
        updates = keeper._latest_updates([ETH_ID])
        gas = [(a, keeper.config.gas_per_account) for a in found]
        for batch in pack(gas, keeper.config.gas_base, keeper.config.max_batch, r.head_gas_limit * 9 // 10):
            value = r.update_fee() * len(updates)
            keeper._send_liquidations([(list(batch.items), batch.gas_limit)], updates, value)  # one at a time
    return float(scans[0])


# --------------------------------------------------------------------------- scene 2: orders


def orders(world: World, key: str) -> dict[str, Any]:
    node, r = world.chain, world.reader
    delay, window = (int(v) for v in r.order_book.functions.settings().call()[:2])
    stops = world.safe_longs[:CONDITIONAL_ORDERS]
    taken = set(stops) | set(world.risky)
    traders = [a for a in world.accounts if a not in taken][:MARKET_ORDERS]
    if len(stops) < CONDITIONAL_ORDERS or len(traders) < MARKET_ORDERS:
        raise RuntimeError("not enough seeded accounts for the orders scene")
    # The stop-losses (closing each long whole), placed well before the move.
    hashes = [
        node.send(
            world.seeder.functions.placeOrders(
                part,
                ETH_ID,
                int(Kind.STOP_LOSS),
                [-wad("0.2")] * len(part),
                wad(STOP_TRIGGER),
                SEED_FEE,
            )
        )
        for part in _chunks(stops, 250)
    ]
    stop_ids = set(_placed(world, node.wait(hashes)))
    runner = Runner.build(world, key)
    started = time.monotonic()
    runner.keeper.hydrate()
    runner.service.hydrated = True
    hydrate_seconds = time.monotonic() - started
    node.interval_mining(True)
    try:
        runner.start()
        idle = idle_requests_per_block(world, runner)
        # The market orders as fast as blocks take them (250 a transaction, two transactions a
        # block: 2,000 orders in four blocks), the reference feed's move with them; the pull
        # price moves when the last of them falls due: all the work is due at one moment.
        sizes = [wad("0.05") if i % 2 else -wad("0.05") for i in range(len(traders))]
        hashes = [
            node.send(
                world.seeder.functions.commitOrders(ids, ETH_ID, sizes[i : i + 250], SEED_FEE),
                gas=COMMIT_GAS,
            )
            for i, ids in zip(range(0, len(traders), 250), _chunks(traders, 250), strict=True)
        ]
        hashes.append(node.send(world.reference(MOVE_USD), gas=300_000))
        receipts = node.wait(hashes)
        market_ids = _placed(world, receipts[:-1])  # order id -> commit time
        first_block = min(int(rc["blockNumber"]) for rc in receipts)
        due = max(market_ids.values()) + delay
        wait_until(lambda: world.prices.clock() >= due, 30, pause=0.02)
        world.set_price(MOVE_USD)
        due_block = _first_block_at(world, due)
        pending = set(market_ids) | stop_ids
        started = time.monotonic()

        def handled() -> dict[int, Any]:
            return {i: lg for i, lg in _order_logs(world, first_block).items() if i in pending}

        finished = wait_until(lambda: len(handled()) == len(pending), window + 60, pause=1.0)
        seconds = time.monotonic() - started
    finally:
        runner.stop()
        node.interval_mining(False)
    logs = handled()
    settled_topic = r.arts.topic("OrderBook", "OrderSettled")
    settled = {i: lg for i, lg in logs.items() if bytes(lg["topics"][0]) == settled_topic}
    cancelled = {i: lg for i, lg in logs.items() if i not in settled}
    expired = r.arts.error_selector("OrderNotCancellable")
    late = {
        i
        for i, lg in cancelled.items()
        if i in market_ids and _decode(world, "OrderCancelled", lg)["reason"] == expired
    }
    feed = world.prices.book.feeds[ETH]
    wrong_price = sum(
        1
        for i, t in market_ids.items()
        if i in settled
        and _decode(world, "OrderSettled", settled[i])["publishTime"] != feed.at_or_after(t + delay)[0].publish_time  # type: ignore[index]
    )
    # The stops' triggers are transactions of the work too (they fill a delay later).
    triggers = [
        lg
        for lg in _logs(world, "OrderBook", "OrderTriggered", first_block, world.addresses.order_book)
        if int.from_bytes(bytes(lg["topics"][1]), "big") in stop_ids
    ]
    transactions, gas = _gas_of(world, [*logs.values(), *triggers])
    limit = int(node.w3.eth.get_block("latest")["gasLimit"])
    forced = math.ceil(gas / limit)
    # A triggered stop fills at the first price published a delay after its trigger: at least
    # that many blocks (and one to see the price) come between the two, whatever the gas.
    two_step = math.ceil(delay / BLOCK_SECONDS) + 1 if triggers else 0
    last = max((int(lg["blockNumber"]) for lg in logs.values()), default=due_block)
    out: dict[str, Any] = {
        "accounts": len(world.accounts),
        "pending": len(pending),
        "market": len(market_ids),
        "conditional": len(stop_ids),
        "settled": len(settled),
        "missed": len(pending) - len(logs),
        "settled_after_window": len(late),
        "cancelled_otherwise": len(cancelled) - len(late),
        "not_at_first_eligible_price": wrong_price,
        "transactions": transactions,
        "gas_used": gas,
        "gas_per_order": gas // max(1, len(logs)),
        "triggered": len(triggers),
        "gas_limit_batches": forced,
        "blocks_to_settle": last - due_block,
        "blocks_to_settle_bound": forced + 1 + two_step,
        # each transaction that settled or cancelled some: (block after the due block, orders)
        "transactions_by_block": _by_transaction(logs.values(), due_block),
        "seconds_to_settle": round(seconds, 2),
        "finished": finished,
        "idle_rpc_per_block": idle,
        "hydrate_seconds": round(hydrate_seconds, 1),
        "reverted_transactions": _reverted(world, runner.keeper.address, first_block),
    }
    out["targets"] = {
        "settled": target(out["settled"], "==", out["pending"]),
        "missed": target(out["missed"], "==", 0),
        "settled_after_window": target(out["settled_after_window"], "==", 0),
        "not_at_first_eligible_price": target(wrong_price, "==", 0),
        "blocks_to_settle": target(out["blocks_to_settle"], "<=", forced + 1 + two_step),
        "idle_rpc_per_block": target(idle, "<=", 5),
        "reverted_transactions": target(out["reverted_transactions"], "==", 0),
    }
    return out


def _order_logs(world: World, from_block: int) -> dict[int, Any]:
    """Order id -> its `OrderSettled` or `OrderCancelled` log since `from_block`."""
    out = {}
    for event in ("OrderSettled", "OrderCancelled"):
        for lg in _logs(world, "OrderBook", event, from_block, world.addresses.order_book):
            out[int.from_bytes(bytes(lg["topics"][1]), "big")] = lg
    return out


def _by_transaction(logs: Iterable[Any], due_block: int) -> list[tuple[int, int]]:
    """(block - `due_block`, logs) of each transaction that emitted `logs`, in order."""
    found: dict[bytes, list[int]] = {}
    for lg in logs:
        entry = found.setdefault(bytes(lg["transactionHash"]), [int(lg["blockNumber"]) - due_block, 0])
        entry[1] += 1
    return sorted((block, count) for block, count in found.values())


def _first_block_at(world: World, t: int) -> int:
    """The first block whose timestamp is at least `t` (waits for it)."""
    w3 = world.chain.w3
    wait_until(lambda: int(w3.eth.get_block("latest")["timestamp"]) >= t, 30, pause=0.05)
    number = int(w3.eth.block_number)
    while number > 0 and int(w3.eth.get_block(number - 1)["timestamp"]) >= t:
        number -= 1
    return number


def _decode(world: World, event: str, log: Any) -> dict[str, Any]:
    return dict(getattr(world.reader.order_book.events, event)().process_log(log)["args"])


# --------------------------------------------------------------------------- main


def main() -> None:
    from ape import accounts, project
    from ape.logging import logger

    logger.set_level("WARNING")  # not a line per seeding transaction
    world = seed(project, accounts)
    # After the price service started: uvicorn's logging set-up closes every handler there was.
    OUT.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(LOG, mode="w")
    handler.setFormatter(JsonFormatter())
    logging.getLogger("lever").handlers[:] = [handler]
    logging.getLogger("lever").setLevel(logging.INFO)
    Publisher(world.prices).start()
    key = str(accounts.test_accounts[KEEPER_KEY_INDEX].private_key)
    snapshot = world.chain.snapshot()
    saved = world.save_prices()
    report: dict[str, Any] = {
        "accounts": len(world.accounts),
        "block_seconds": BLOCK_SECONDS,
        "keeper_poll_seconds": POLL_SECONDS,
        "seeding": world.seeding,
    }
    scenes = (
        ("liquidations", lambda: liquidations(world, key, naive=False)),
        ("naive", lambda: liquidations(world, key, naive=True)),
        ("orders", lambda: orders(world, key)),
    )
    for name, run in scenes:
        if name not in SCENES:
            continue
        world.chain.revert(snapshot)
        snapshot = world.chain.snapshot()
        world.restore_prices(saved)
        _catch_up_clock(world)
        print(f"{name}: running", flush=True)
        report[name] = run()
        print(f"{name}: {json.dumps(report[name])}", flush=True)
    if "liquidations" in report and "naive" in report:
        lever, naive = report["liquidations"], report.pop("naive")
        lever["naive"] = naive
        lever["speedup_vs_naive"] = round(naive["seconds_to_clear"] / max(lever["seconds_to_clear"], 0.01), 1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    missed = [
        f"{section}.{key}"
        for section in ("liquidations", "orders")
        if section in report
        for key, t in report[section]["targets"].items()
        if not t["met"]
    ]
    print(f"wrote {OUT}" + (f"; targets missed: {', '.join(missed)}" if missed else "; every target met"))


def _catch_up_clock(world: World) -> None:
    """After a revert the node's clock may trail what the price service already published: mine a
    block past the latest publication so no price is in the chain's future."""
    latest = max((f.latest().publish_time for f in world.prices.book.feeds.values() if f.latest()), default=0)
    _, now = world.chain.head()
    if now <= latest:
        world.chain.mine(latest + 1)
