"""Deployment on each local chain ape offers, and a short demo whose report must agree with the chain."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import free_port, start_anvil
from web3 import Web3

from lever.keeper.chain import load_abis

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(args: list[str], tmp_path: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "LEVER_DEPLOYMENTS_DIR": str(tmp_path)}
    return subprocess.run(args, check=False, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("network", ["ethereum:local:hardhat", "ethereum:local:test"])
def test_ape_run_deploy_records_the_deployment(network, tmp_path):
    result = _run([str(BIN / "ape"), "run", "deploy", "--network", network], tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    (path,) = tmp_path.glob("*.json")  # Hardhat: 31337; the in-process chain: 1337
    record = json.loads(path.read_text())
    assert record["network"].startswith(network) and set(record["markets"]) == {"ETH-USD", "BTC-USD"}
    assert "solvency identity" in result.stdout


def test_short_demo_report_agrees_with_the_chain(tmp_path):
    port = free_port()
    node = start_anvil(port)
    try:
        out = tmp_path / "demo"
        result = _run([str(BIN / "lever"), "demo", "--traders", "8", "--seed", "3", "--out", str(out),
                       "--network", f"http://127.0.0.1:{port}"], tmp_path)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
        report = json.loads((out / "report.json").read_text())
        assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        record = json.loads((out / "31337.json").read_text())
        w3 = Web3(Web3.HTTPProvider(f"http://127.0.0.1:{port}"))
        abis = load_abis()
        vault = w3.eth.contract(address=record["contracts"]["vault"], abi=abis["LeverVault"])
        liquidator = w3.eth.contract(address=record["contracts"]["liquidator"], abi=abis["Liquidator"])
        engine = w3.eth.contract(address=record["contracts"]["engine"], abi=abis["PerpEngine"])
        logs = liquidator.events.Liquidation().get_logs(from_block=record["block"], to_block="latest")
        scale = 10 ** 6

        def usd(amount: int) -> str:
            return f"{amount / scale:.2f}"

        assert report["traders"] == 8 == engine.functions.accountCount().call()
        assert report["liquidations"]["total"] == len(logs) > 0
        assert report["liquidations"]["full"] == sum(1 for log in logs if log["args"]["full"])
        assert report["bad_debt"] == usd(sum(log["args"]["badDebtToken"] for log in logs))
        assert report["keeper_rewards"] == usd(sum(log["args"]["rewardToken"] for log in logs))
        assert report["insurance_after"] == usd(vault.functions.insuranceFund().call())
        assert report["pool_after"] == usd(vault.functions.totalAssets().call())
        assert report["solvent_every_block"] is True and vault.functions.solvency().call()[2]
        assert report["max_blocks_unhealthy"] >= 1 and report["unhealthy_at_end"] == 0
    finally:
        node.terminate()
        node.wait(10)
