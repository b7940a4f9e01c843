"""Indexer and dashboard benchmark: 10,000 accounts' history on Anvil, indexed into a fresh
SQLite file (events/s), then every page of the dashboard over that index (p95 latency).
Writes build/bench/index.json.

    make bench-index      (an Anvil of its own, then: ape run bench_index --network http://127.0.0.1:8547)

The history is made with raw signed transactions sent in JSON-RPC batches while Anvil's
automine is off: each round opens 1,000 accounts (create, deposit, commit a market order) in
one block and settles their orders at the price published after the delay in the next, on both
markets, long and short at several leverages. A price move and a round of liquidations follow.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import requests
from ape import accounts, chain, project
from eth_account import Account

from lever.artifacts import artifacts
from lever.config import load_network_config
from lever.dashboard.app import Settings, create_app
from lever.deploy import deploy_protocol, deployment_record
from lever.indexer import Indexer, open_engine
from lever.pyth import PriceBook

OUT = Path("build/bench/index.json")
ACCOUNTS = int(os.environ.get("LEVER_BENCH_ACCOUNTS", "10000"))
ROUND = 1_000
SETTLE_BATCH = 100
USDC = 10**6
WAD = 10**18
LEVERAGE = (1, 2, 4, 8, 18)
REQUESTS_PER_PAGE = int(os.environ.get("LEVER_BENCH_REQUESTS", "40"))


class Sender:
    """Raw-signed transactions from one key, sent as JSON-RPC batches."""

    def __init__(self, url: str, key: str, chain_id: int):
        self.url, self.account, self.chain_id = url, Account.from_key(key), chain_id
        self.session = requests.Session()
        self.nonce = int(self.rpc("eth_getTransactionCount", [self.account.address, "pending"]), 16)
        self.pending: list[str] = []

    def rpc(self, method: str, params: list[Any]) -> Any:
        reply = self.session.post(self.url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).json()
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def queue(self, contract: Any, fn: str, args: list[Any], gas: int, value: int = 0) -> None:
        data = contract.encode_abi(fn, args=args)
        tx = {
            "to": contract.address,
            "data": data,
            "gas": gas,
            "nonce": self.nonce,
            "chainId": self.chain_id,
            "maxFeePerGas": 10**10,
            "maxPriorityFeePerGas": 1,
            "value": value,
            "type": 2,
        }
        self.pending.append("0x" + self.account.sign_transaction(tx).raw_transaction.hex().removeprefix("0x"))
        self.nonce += 1

    def flush(self) -> None:
        for i in range(0, len(self.pending), 500):
            batch = [
                {"jsonrpc": "2.0", "id": j, "method": "eth_sendRawTransaction", "params": [raw]}
                for j, raw in enumerate(self.pending[i : i + 500])
            ]
            for reply in self.session.post(self.url, json=batch).json():
                if "error" in reply:
                    raise RuntimeError(f"eth_sendRawTransaction: {reply['error']}")
        self.pending.clear()


def mine(timestamp: int) -> None:
    """A block at `timestamp` (raw: ape's plain HTTP provider has no test methods)."""
    w3 = chain.provider.web3
    w3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])
    w3.provider.make_request("evm_mine", [])


def main() -> None:
    url = chain.provider.uri
    w3 = chain.provider.web3
    cfg = load_network_config("local")
    deployer, lp, trader, keeper = (accounts.test_accounts[i] for i in (0, 1, 2, 8))
    protocol = deploy_protocol(project, deployer, cfg)
    deployment = deployment_record(protocol, int(chain.provider.chain_id), "local", cfg)
    token, vault = protocol.token, protocol.vault
    arts = artifacts()
    raw = {
        name: w3.eth.contract(address=c.address, abi=arts.abi(kind))
        for name, c, kind in (
            ("engine", protocol.engine, "PerpEngine"),
            ("vault", vault, "LeverVault"),
            ("book", protocol.order_book, "OrderBook"),
        )
    }
    book = PriceBook.for_markets(protocol.price_ids)
    prices = {name: m.initial_price for name, m in cfg.markets.items()}

    # The pool: one LP deposit of $50M through the asynchronous flow.
    pool = 50_000_000 * USDC
    fee = int(vault.lpParams().executorFee)
    token.mint(lp, pool + fee, sender=lp)
    token.approve(vault, 2**256 - 1, sender=lp)
    t = vault.requestDeposit(pool, lp, lp, sender=lp).timestamp
    mine(t + cfg.lp.settlement_delay + cfg.lp.liquidation_grace)
    vault.settleDeposit(lp, [], sender=keeper)
    vault.deposit(pool, lp, sender=lp)

    started = time.monotonic()
    chain_id = int(chain.provider.chain_id)
    margin = 1_000 * USDC
    token.mint(trader, ACCOUNTS * (margin + USDC), sender=trader)
    token.approve(vault, 2**256 - 1, sender=trader)
    traders = Sender(url, trader.private_key, chain_id)
    keepers = Sender(url, keeper.private_key, chain_id)
    traders.rpc("evm_setAutomine", [False])
    executor_fee = 5 * USDC // 100 * 2  # $0.10
    markets = list(protocol.markets.items())
    first_id = int(protocol.engine.accountCount()) + 1
    now = int(chain.blocks.head.timestamp)
    update_fee = int(protocol.oracle.updateFee())
    for start in range(0, ACCOUNTS, ROUND):
        ids = list(range(first_id + start, first_id + min(start + ROUND, ACCOUNTS)))
        orders: dict[int, list[int]] = {mk: [] for _, mk in markets}
        for account in ids:
            name, mk = markets[account // 2 % len(markets)]
            leverage = LEVERAGE[account % len(LEVERAGE)]
            size = leverage * 1_000 * WAD // int(prices[name]) * (1 if account % 2 else -1)
            traders.queue(raw["engine"], "createAccount", [], 150_000)
            traders.queue(raw["vault"], "depositMargin", [account, margin], 150_000)
            traders.queue(raw["book"], "commitOrder", [account, mk, size, 0, executor_fee], 300_000)
            orders[mk].append(account * 8)
        now += 1
        traders.rpc("evm_setNextBlockTimestamp", [now])
        t0 = time.monotonic()
        traders.flush()
        t1 = time.monotonic()
        traders.rpc("evm_mine", [])
        print(f"round {start}: sent in {t1 - t0:.1f} s, mined in {time.monotonic() - t1:.1f} s")
        due = now + cfg.orders.settlement_delay
        for name, mk in markets:
            book.publish(name, prices[name], due)
            blob = book.feeds[name].update_at_or_after(due)
            ids_m = orders[mk]
            for i in range(0, len(ids_m), SETTLE_BATCH):
                chunk = ids_m[i : i + SETTLE_BATCH]
                keepers.queue(
                    raw["book"],
                    "settleOrders",
                    [chunk, [blob] + [b""] * (len(chunk) - 1), []],
                    30_000_000,
                    value=update_fee,
                )
        now = due
        traders.rpc("evm_setNextBlockTimestamp", [now])
        keepers.flush()
        traders.rpc("evm_mine", [])
    traders.rpc("evm_setAutomine", [True])
    # ETH falls 4%: the 14x ETH longs become liquidatable; the keeper liquidates them in batches.
    name, mk = markets[0]
    prices[name] = prices[name] * 96 / 100
    feed = protocol.feeds[name]
    feed.setPrice(int(prices[name] * 10 ** int(feed.decimals())), sender=deployer)
    now = int(chain.blocks.head.timestamp) + 1
    mine(now)
    book.publish(name, prices[name], now)
    updates = [(mk, book.feeds[name].latest_update())]
    risky = [
        a
        for a in range(first_id, first_id + ACCOUNTS)
        if a // 2 % len(markets) == mk and LEVERAGE[a % len(LEVERAGE)] == LEVERAGE[-1] and a % 2
    ]
    liquidated = 0
    for i in range(0, len(risky), 150):
        receipt = protocol.liquidator.liquidateBatch(
            risky[i : i + 150], updates, sender=keeper, value=update_fee, gas=29_000_000
        )
        liquidated += len(list(receipt.events.filter(protocol.liquidator.Liquidation)))
    seeded = time.monotonic() - started
    head = int(chain.blocks.head.number)
    print(f"seeded {ACCOUNTS} accounts, {liquidated} liquidations, up to block {head} in {seeded:.0f} s")

    with tempfile.TemporaryDirectory() as tmp:
        engine = open_engine(f"sqlite:///{tmp}/bench.sqlite")
        indexer = Indexer(engine, w3, deployment, batch_blocks=10_000)
        t0 = time.perf_counter()
        if os.environ.get("LEVER_BENCH_PROFILE"):
            import cProfile
            import pstats

            with cProfile.Profile() as prof:
                report = indexer.sync(snapshot=False)
            pstats.Stats(prof).sort_stats("cumulative").print_stats(35)
        else:
            report = indexer.sync(snapshot=False)
        t_events = time.perf_counter() - t0
        t1 = time.perf_counter()
        indexer.snapshot(indexer.cursor_block)
        t_snapshot = time.perf_counter() - t1
        print(
            f"indexed {report.events} events in {t_events:.1f} s; snapshot and risk of {ACCOUNTS} accounts "
            f"in {t_snapshot:.1f} s"
        )
        pages = _pages(engine)
    result = {
        "accounts": ACCOUNTS,
        "liquidations": liquidated,
        "blocks": head,
        "events": report.events,
        "index_seconds": round(t_events, 3),
        "events_per_s": round(report.events / t_events),
        "snapshot_and_risk_seconds": round(t_snapshot, 3),
        "events_per_s_with_snapshot": round(report.events / (t_events + t_snapshot)),
        "page_p95_ms": max(p["p95_ms"] for p in pages.values()),
        "pages": pages,
        "requests_per_page": REQUESTS_PER_PAGE,
        "seed_seconds": round(seeded, 1),
        "backend": "sqlite",
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "pages"}, indent=2))


def _pages(engine: Any) -> dict[str, dict[str, float]]:
    """Each page (and its live fragment) through uvicorn on loopback, sequential requests."""
    import uvicorn

    from lever.dashboard.serve import free_port

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(engine, Settings(token_decimals=6)),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    paths = [
        "/",
        "/markets",
        "/pool",
        "/accounts",
        "/accounts?sort=health&dir=desc&page=100",
        "/accounts?sort=notional&dir=desc&fragment=1",
        "/liquidation-map?market=0",
        "/liquidation-map?market=1",
        "/activity",
        "/activity?fragment=1",
    ]
    out = {}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        for path in paths:
            client.get(path).raise_for_status()  # warm
            samples = []
            for _ in range(REQUESTS_PER_PAGE):
                t = time.perf_counter()
                client.get(path).raise_for_status()
                samples.append((time.perf_counter() - t) * 1000)
            samples.sort()
            out[path] = {
                "p50_ms": round(statistics.median(samples), 1),
                "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 1),
            }
    server.should_exit = True
    thread.join(timeout=5)
    return out
