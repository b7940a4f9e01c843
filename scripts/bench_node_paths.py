"""What one transaction and one view cost on Anvil through ape's contract objects and through the
fuzz suite's node backend (raw JSON-RPC on ape's provider); writes build/bench/node-paths.json.

    ape run bench_node_paths --network ethereum:local:foundry      (make bench-fuzz runs it)

The same `setPrice` transaction and `latestRoundData` view on a mock feed, 200 of each per path.
The fuzz suite's Anvil rate, and so the in-process backend's ratio to it, depends on this path.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ape import accounts, chain, project
from ape.logging import logger

OUT = Path("build/bench/node-paths.json")
N = 200


def _ms_each(action: Callable[[int], object]) -> float:
    """Milliseconds per call of `action(i)`, over N calls."""
    started = time.perf_counter()
    for i in range(N):
        action(i)
    return round((time.perf_counter() - started) / N * 1e3, 3)


def main() -> None:
    sys.path.insert(0, str(Path("tests/fuzz").resolve()))
    from fuzz_chain import NodeChain, calldata, selector

    logger.set_level("WARNING")  # no "Confirmed ..." line per transaction: ape's path at its quietest
    admin = accounts.test_accounts[0]
    feed = project.MockPriceFeed.deploy(8, "ETH / USD", 2_000 * 10**8, admin, sender=admin)
    set_price, latest = selector("setPrice(int256)"), selector("latestRoundData()")

    ape_tx = _ms_each(lambda i: feed.setPrice(2_000 * 10**8 + i, sender=admin))
    node = NodeChain(chain.provider.web3)  # its clock: the latest block's
    raw_tx = _ms_each(lambda i: node.transact(admin.address, feed.address, calldata(set_price, 2_000 * 10**8 + i)))
    ape_view = _ms_each(lambda _: feed.latestRoundData())
    raw_view = _ms_each(lambda _: node.call(feed.address, latest))

    report = {
        "transactions": N,
        "ape_contract_tx_ms": ape_tx,
        "fuzz_node_tx_ms": raw_tx,
        "ape_contract_view_ms": ape_view,
        "fuzz_node_view_ms": raw_view,
        "tx_ratio": round(ape_tx / raw_tx, 1),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
