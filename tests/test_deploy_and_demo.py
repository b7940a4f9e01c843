"""The deploy script on the local chains ape offers, and `lever demo` with a few traders on an Anvil
of its own: it runs to completion, the keeper settled every trader's order, and the report agrees
with the chain."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from nodes import BIN, REPO, anvil
from web3 import Web3

from lever.app import resolve_signer
from lever.artifacts import artifacts


def _run(args: list[str], records: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LEVER_DEPLOYMENTS_DIR": str(records), "APE_FOUNDRY_HOST": "auto"}
    return subprocess.run(args, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def anvil_session(chain: Any) -> None:
    if chain.provider.name != "foundry":
        pytest.skip("runs in the Anvil session (its processes start nodes of their own either way)")


@pytest.mark.parametrize("network", ["ethereum:local:test", "ethereum:local:foundry"])
def test_ape_run_deploy_records_the_deployment(anvil_session: None, network: str, tmp_path: Path) -> None:
    result = _run([str(BIN / "ape"), "run", "deploy", "--network", network], tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (path,) = tmp_path.glob("*.json")  # Anvil: 31337; the in-process chain: 1337
    record = json.loads(path.read_text())
    assert record["network"].startswith(network) and set(record["markets"]) == {"ETH-USD", "BTC-USD"}
    assert set(record["contracts"]) == {
        "token",
        "pyth",
        "oracle",
        "vault",
        "engine",
        "order_book",
        "liquidator",
        "timelock",
    }
    assert record["parameters"]["markets"]["ETH-USD"]["max_leverage"] == 25
    assert f"deployed to chain {path.stem} at block {record['block']}" in result.stdout
    assert "solvent" in result.stdout and "no open positions" in result.stdout


def test_a_short_demo_runs_to_completion_and_the_keeper_settles_every_trade(
    anvil_session: None, tmp_path: Path
) -> None:
    with anvil() as node:
        out = tmp_path / "demo"
        result = _run(
            [str(BIN / "lever"), "demo", "--traders", "8", "--seed", "3", "--out", str(out), "--network", node],
            tmp_path,
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        report = json.loads((out / "report.json").read_text())
        assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        record = json.loads((out / "31337.json").read_text())
        w3 = Web3(Web3.HTTPProvider(node))
        arts = artifacts()

        def contract(name: str, key: str) -> Any:
            return w3.eth.contract(address=record["contracts"][key], abi=arts.abi(name))

        vault, engine = contract("LeverVault", "vault"), contract("PerpEngine", "engine")
        book, liquidator = contract("OrderBook", "order_book"), contract("Liquidator", "liquidator")
        settled = book.events.OrderSettled().get_logs(from_block=record["block"], to_block="latest")
        cancelled = book.events.OrderCancelled().get_logs(from_block=record["block"], to_block="latest")
        liquidations = liquidator.events.Liquidation().get_logs(from_block=record["block"], to_block="latest")
        accounts, insurance = engine.functions.accountCount().call(), vault.functions.insuranceFund().call()
        solvent = vault.functions.solvency().call()[2]

    keeper = resolve_signer("test:9").address  # the demo's keeper signs as ape's test account 9
    assert report["traders"] == 8 == accounts
    assert report["orders"] == {"committed": 8, "settled": 8, "settled_by_keeper": 8, "cancelled": 0}
    assert len(settled) == 8 and {log["args"]["keeper"] for log in settled} == {keeper} and cancelled == []

    def usd(amount: int) -> str:
        return f"{amount / 10**6:.2f}"

    assert report["liquidations"]["total"] == len(liquidations)
    assert report["liquidations"]["full"] == sum(1 for log in liquidations if log["args"]["full"])
    assert report["bad_debt"] == usd(sum(log["args"]["badDebtToken"] for log in liquidations))
    assert report["keeper_rewards"] == usd(sum(log["args"]["rewardToken"] for log in liquidations))
    assert report["insurance_after"] == usd(insurance)
    assert report["solvent_every_block"] is True and solvent and report["unhealthy_at_end"] == 0
    assert "solvency identity at every block" in result.stdout and "held" in result.stdout


def test_demo_with_the_dashboard_serves_it_during_the_crash_and_until_ctrl_c(
    anvil_session: None, tmp_path: Path
) -> None:
    import queue
    import signal
    import threading

    import httpx
    import sqlalchemy as sa
    from nodes import free_port

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with anvil() as node:
        out = tmp_path / "demo"
        env = {**os.environ, "LEVER_DEPLOYMENTS_DIR": str(tmp_path), "APE_FOUNDRY_HOST": "auto"}
        process = subprocess.Popen(
            [
                str(BIN / "lever"),
                "demo",
                "--traders",
                "4",
                "--seed",
                "5",
                "--out",
                str(out),
                "--network",
                node,
                "--dashboard",
                "--dashboard-port",
                str(port),
            ],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        lines: queue.Queue[str] = queue.Queue()
        assert process.stdout is not None
        stdout = process.stdout
        threading.Thread(target=lambda: [lines.put(line) for line in stdout], daemon=True).start()
        seen, blocks_during_run = [], set()
        try:
            deadline = time.monotonic() + 900
            while not any("stays up on" in line for line in seen):
                assert time.monotonic() < deadline and process.poll() is None, "".join(seen)[-3000:]
                try:
                    seen.append(lines.get(timeout=0.5))
                except queue.Empty:
                    pass
                if any(line.startswith("dashboard on ") for line in seen):
                    block = httpx.get(f"{url}/api/status", timeout=5).json()["block"]
                    blocks_during_run.add(block)
            assert f"dashboard on {url}" in "".join(seen)
            # The page followed the chain while the demo ran: it showed more than one block.
            assert len(blocks_during_run - {None}) > 1, blocks_during_run
            head = Web3(Web3.HTTPProvider(node)).eth.block_number
            wait_for_block = time.monotonic() + 30
            while httpx.get(f"{url}/api/status", timeout=5).json()["block"] < head:
                assert time.monotonic() < wait_for_block, "the index did not reach the head"
                time.sleep(0.2)
            report = json.loads((out / "report.json").read_text())
            for page in ("/", "/markets", "/pool", "/accounts", "/activity", "/keeper"):
                assert httpx.get(url + page, timeout=10).status_code == 200, page
            keeper_page = httpx.get(url + "/keeper", timeout=10).text
            assert "lever_keeper" in keeper_page  # the demo's keeper serves its metrics to the panel
            engine = sa.create_engine(f"sqlite:///{out / 'index.sqlite'}")
            with engine.connect() as conn:
                indexed = conn.execute(sa.text("select count(*) from liquidations")).scalar()
                traded = conn.execute(sa.text("select count(distinct account_id) from trades")).scalar()
            engine.dispose()
            assert indexed == report["liquidations"]["total"]
            assert traded == report["traders"] == 4
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=60) == 0
        finally:
            if process.poll() is None:
                process.kill()
