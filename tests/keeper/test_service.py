"""`lever keeper run` as an operator runs it: a process against the node and the price service,
with Prometheus metrics that move with the work done, a clean exit on SIGTERM, and one clear
line (no traceback) for a bad setting."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import Harness
from keeper_helpers import eventually, free_port

from lever.deploy import deployment_record
from lever.deployments import save_deployment

ETH = "ETH-USD"
KEEPER = [sys.executable, "-m", "lever.cli", "keeper", "run"]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()
    except (urllib.error.URLError, ConnectionError):
        return 0, b""  # not listening yet


def metric(base: str, name: str) -> float:
    """A sample's value from /metrics (0 if absent)."""
    for line in _get(f"{base}/metrics")[1].decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0


@pytest.fixture
def record(h: Harness, config: Any, tmp_path: Path) -> Path:
    return save_deployment(deployment_record(h.p, int(h.chain.chain_id), "local", config), directory=tmp_path)


@pytest.fixture
def running_keeper(node_uri: str, record: Path, price_service: Any, bot: Any) -> Iterator[tuple[Any, str]]:
    port = free_port()
    env = dict(os.environ, LEVER_PRIVATE_KEY=str(bot.private_key))
    process = subprocess.Popen(
        [
            *KEEPER,
            "--rpc-url",
            node_uri,
            "--deployment",
            str(record),
            "--price-service",
            price_service.url,
            "--poll-interval",
            "0.2",
            "--metrics-port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    yield process, f"http://127.0.0.1:{port}"
    if process.poll() is None:
        process.kill()
        process.wait()


def test_the_keeper_process_does_its_work_counts_it_in_its_metrics_and_exits_zero_on_sigterm(
    h: Harness, alice: Any, bob: Any, running_keeper: tuple[Any, str]
) -> None:
    process, base = running_keeper
    risky = h.open_account(alice, 1_000)
    h.trade(alice, risky, ETH, "6")
    trader = h.open_account(bob, 10_000)
    order, _ = h.commit(bob, trader, ETH, "1")
    assert eventually(lambda: _get(f"{base}/health")[0] == 200 or process.poll() is not None, timeout=60)
    assert process.poll() is None, process.stdout.read()
    # after its first step
    assert eventually(lambda: metric(base, "lever_keeper_orders_pending") == 1)
    assert metric(base, "lever_keeper_orders_settled_total") == 0
    assert metric(base, "lever_keeper_liquidations_won_total") == 0
    h.advance(h.delay)
    h.set_price(ETH, 2_860)  # the order's price, and a fall that makes `risky` liquidatable
    assert eventually(lambda: int(h.p.order_book.order(order).updatedAt) == 0 and h.margin(risky) < 1_000 * 10**6)
    # The process counts each after reading its receipt: wait for the counters.
    assert eventually(lambda: metric(base, "lever_keeper_liquidations_won_total") == 1)
    assert eventually(lambda: metric(base, "lever_keeper_orders_settled_total") == 1)
    assert metric(base, "lever_keeper_gas_spent_total") > 0
    assert metric(base, "lever_keeper_orders_pending") == 0
    with_positions = sum(1 for a in (risky, trader) if int(h.p.engine.accountMarketMask(a)) != 0)
    assert eventually(lambda: metric(base, "lever_keeper_accounts_tracked") == with_positions)
    assert metric(base, "lever_keeper_loop_seconds_count") > 1
    assert metric(base, "lever_keeper_errors_total") == 0
    health = json.loads(_get(f"{base}/health")[1])
    assert health["status"] == "ok" and health["accounts"] == with_positions and health["orders"] == 0
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    lines = [json.loads(line) for line in process.stdout.read().splitlines() if line.startswith("{")]
    assert lines[-1]["msg"] == "stopped"
    assert any(line["msg"] == "liquidated" for line in lines)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--poll-interval", "0"], {}, "error: invalid keeper setting poll_interval: "),
        ([], {"LEVER_MAX_BATCH": "lots"}, "error: invalid keeper setting max_batch: "),
        (
            ["--config", "/nonexistent/keeper.toml"],
            {},
            "error: keeper config file not found: /nonexistent/keeper.toml",
        ),
    ],
    ids=["flag", "environment", "config-file"],
)
def test_a_bad_setting_is_one_error_line_and_a_nonzero_exit(args: list[str], env: dict[str, str], message: str) -> None:
    result = subprocess.run(
        [*KEEPER, "--rpc-url", "http://127.0.0.1:9", *args],
        env=dict(os.environ, **env),
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(message), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr + result.stdout


def test_a_malformed_deployment_record_is_one_error_line(node_uri: str, tmp_path: Path) -> None:
    bad = tmp_path / "31337.json"
    bad.write_text("{not json")
    result = subprocess.run(
        [*KEEPER, "--rpc-url", node_uri, "--deployment", str(bad)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: malformed deployment record {bad}: "), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr + result.stdout
