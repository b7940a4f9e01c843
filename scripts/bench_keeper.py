"""Keeper benchmark: 10,000 accounts, a crash that makes >= 1,000 unhealthy, this keeper against a
naive one that asks the contract about every account every block. Writes build/bench/keeper.json.

    ape run bench_keeper --network ethereum:local:foundry      (or: make bench-keeper)

Both keepers start from the same chain snapshot (taken after seeding, before the crash) and send
the same kind of transactions (`liquidateBatch`, up to 450 accounts, which fits a 30M-gas block).
`make bench-keeper` runs it on an Anvil of its own (ape's launcher turns on step tracing, which
makes large batches many times slower and would measure the tracer, not the keepers).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from ape import accounts, chain, project
from web3 import Web3

from lever.config import load_network_config
from lever.deploy import deploy_protocol
from lever.keeper.chain import Addresses, ChainClient
from lever.keeper.runner import Keeper, KeeperConfig

OUT = Path("build/bench/keeper.json")
USDC = 10**6
WAD = 10**18
ACCOUNTS = int(os.environ.get("LEVER_BENCH_ACCOUNTS", "10000"))
RISKY_SHARE = 0.15  # 18x longs; the rest 2x
PER_SEED_TX = 90
BATCH = 450


def main() -> None:
    deployer, lp, keeper_signer = accounts.test_accounts[0], accounts.test_accounts[1], accounts.test_accounts[8]
    protocol = deploy_protocol(project, deployer, load_network_config("local"))
    token, vault = protocol.token, protocol.vault
    token.mint(lp, 20_000_000 * USDC, sender=lp)
    token.approve(vault, 20_000_000 * USDC, sender=lp)
    vault.deposit(20_000_000 * USDC, lp, sender=lp)

    seeder = project.BulkSeeder.deploy(sender=deployer)
    risky = int(ACCOUNTS * RISKY_SHARE)
    started = time.monotonic()
    for count, margin, size in ((risky, 100 * USDC, 6 * WAD // 10), (ACCOUNTS - risky, 300 * USDC, 2 * WAD // 10)):
        for done in range(0, count, PER_SEED_TX):
            n = min(PER_SEED_TX, count - done)
            token.mint(seeder, n * margin, sender=deployer)
            seeder.seed(protocol.engine, vault, token, 0, n, margin, size, sender=deployer, gas=29_000_000)
    print(f"seeded {ACCOUNTS} accounts in {time.monotonic() - started:.0f}s")

    w3 = chain.provider.web3
    addresses = Addresses(
        vault=vault.address, engine=protocol.engine.address, liquidator=protocol.liquidator.address,
        oracle=protocol.oracle.address,
        feeds={protocol.markets[name]: feed.address for name, feed in protocol.feeds.items()},
    )
    ids = list(range(1, ACCOUNTS + 1))
    # Anvil's own snapshots (ape does not offer them on a plain node connection).
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    results = {}
    for name, run in (("lever", _run_lever), ("naive", _run_naive)):
        w3.provider.make_request("evm_revert", [snapshot])
        snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
        results[name] = run(w3, addresses, protocol, keeper_signer.private_key, ids)
        print(name, json.dumps(results[name]))
    report = {**results["lever"], "naive": results["naive"]}
    report["speedup_vs_naive"] = round(results["naive"]["seconds_to_clear"] / results["lever"]["seconds_to_clear"], 1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {OUT}")


def _crash(protocol, ids: list[int]) -> tuple[int, set[int]]:
    """Drops ETH 5% (no shock); returns the crash block and the accounts it made unhealthy."""
    receipt = protocol.feeds["ETH-USD"].setPrice(2_850 * 10**8, sender=protocol.deployer, gas=200_000)
    unhealthy = set()
    for i in range(0, len(ids), 400):
        unhealthy |= {int(h.accountId) for h in protocol.liquidator.healthOf(ids[i : i + 400]) if h.liquidatable}
    return receipt.block_number, unhealthy


def _outcome(protocol, crash_block: int, unhealthy: set[int], seconds: float, idle_rpc: float) -> dict:
    logs = list(protocol.liquidator.Liquidation.range(crash_block, chain.blocks.head.number + 1))
    liquidated = [int(log.accountId) for log in logs]
    last = max((log.block_number for log in logs), default=crash_block)
    return {
        "accounts": ACCOUNTS,
        "unhealthy": len(unhealthy),
        "liquidated": len(set(liquidated)),
        "missed": len(unhealthy - set(liquidated)),
        "wrongly_liquidated": len(set(liquidated) - unhealthy),
        "liquidated_twice": len(liquidated) - len(set(liquidated)),
        "blocks_to_clear": last - crash_block,
        "gas_limit_batches": -(-sum(_gas(log.transaction_hash) for log in _unique_txs(logs)) // 30_000_000),
        "seconds_to_clear": round(seconds, 2),
        "idle_rpc_per_block": idle_rpc,
    }


def _unique_txs(logs):
    seen = {}
    for log in logs:
        seen.setdefault(log.transaction_hash, log)
    return list(seen.values())


def _gas(tx_hash) -> int:
    return int(chain.provider.web3.eth.get_transaction_receipt(tx_hash)["gasUsed"])


def _run_lever(w3: Web3, addresses: Addresses, protocol, key: str, ids: list[int]) -> dict:
    client = ChainClient(w3, addresses)
    keeper = Keeper(client, key, KeeperConfig(max_batch=BATCH))
    keeper.hydrate()
    keeper.step()
    calls = client.calls
    for _ in range(5):
        w3.provider.make_request("evm_mine", [])
        keeper.step()
    idle = (client.calls - calls) / 5
    crash_block, unhealthy = _crash(protocol, ids)
    started = time.monotonic()
    cleared_at = None
    while time.monotonic() - started < 600:
        step_started = time.monotonic()
        done = keeper.step()
        if os.environ.get("LEVER_BENCH_DEBUG"):
            print(f"step liquidated {done} in {time.monotonic() - step_started:.2f}s")
        if _covered(protocol, crash_block, unhealthy):
            cleared_at = time.monotonic()
            break
    return _outcome(protocol, crash_block, unhealthy, (cleared_at or time.monotonic()) - started, idle)


def _covered(protocol, crash_block: int, unhealthy: set[int]) -> bool:
    """Harness check (not the keeper's work): has every unhealthy account been liquidated?
    One raw eth_getLogs on the Liquidation topic (accountId is its first indexed argument)."""
    w3 = chain.provider.web3
    topic = w3.keccak(text=_LIQUIDATION_SIGNATURE)
    logs = w3.eth.get_logs({"fromBlock": crash_block, "toBlock": "latest", "address": protocol.liquidator.address,
                            "topics": [topic]})
    return unhealthy <= {int.from_bytes(bytes(log["topics"][1]), "big") for log in logs}


_LIQUIDATION_SIGNATURE = (
    "Liquidation(uint256,address,bool,uint256,uint256,uint256,uint256,uint256,int256,uint256)"
)


def _run_naive(w3: Web3, addresses: Addresses, protocol, key: str, ids: list[int]) -> dict:
    """Every block: ask the contract about every account (one request each), liquidate what is unhealthy."""
    client = ChainClient(w3, addresses)
    keeper = Keeper(client, key, KeeperConfig(max_batch=BATCH))  # used only to send batches
    liquidator = client.liquidator

    def scan() -> list[int]:
        found = []
        for account in ids:
            client.calls += 1
            row = liquidator.functions.healthOf([account]).call()[0]
            if row[5]:
                found.append(account)
        return found

    calls = client.calls
    w3.provider.make_request("evm_mine", [])
    scan()
    idle = float(client.calls - calls)
    crash_block, unhealthy = _crash(protocol, ids)
    started = time.monotonic()
    cleared_at = None
    while cleared_at is None and time.monotonic() - started < 1200:
        found = scan()
        for i in range(0, len(found), BATCH):
            keeper._send(found[i : i + BATCH])
        if _covered(protocol, crash_block, unhealthy):
            cleared_at = time.monotonic()
    return _outcome(protocol, crash_block, unhealthy, (cleared_at or time.monotonic()) - started, idle)
