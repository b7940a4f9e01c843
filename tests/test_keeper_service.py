"""`lever keeper run` as an operator runs it: a process against a real node, metrics, SIGTERM."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from helpers import eventually, free_port, wad, while_mining
from web3 import Web3

from lever.deploy import deployment_record
from lever.deployments import save_deployment


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except urllib.error.URLError:
        return 0, b""  # not listening yet


@pytest.fixture
def running_keeper(protocol, chain, accounts, config, tmp_path, node_uri):
    record = save_deployment(
        deployment_record(protocol, chain.chain_id, "ethereum:local:foundry", config), directory=tmp_path
    )
    port = free_port()
    env = dict(os.environ, LEVER_PRIVATE_KEY=accounts[8].private_key)
    process = subprocess.Popen(
        [sys.executable, "-m", "lever.cli", "keeper", "run", "--rpc-url", node_uri,
         "--deployment", str(record), "--poll-interval", "0.2", "--metrics-port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    yield process, f"http://127.0.0.1:{port}"
    if process.poll() is None:
        process.kill()
        process.wait()


def test_keeper_process_liquidates_serves_metrics_and_stops_cleanly_on_sigterm(
    protocol, engine, eth, alice, open_account, set_price, running_keeper
):
    process, base = running_keeper
    risky = open_account(alice, 1_000)
    engine.modifyPosition(risky, eth, wad(6), 0, sender=alice)
    safe = open_account(alice, 10_000)
    engine.modifyPosition(safe, eth, wad(1), 0, sender=alice)
    assert eventually(lambda: _get(f"{base}/health")[0] == 200 or process.poll() is not None)
    assert process.poll() is None, process.stdout.read()
    set_price("ETH-USD", 2_860)
    assert eventually(while_mining(
        lambda: engine.accountMarkets(risky) == [] or not protocol.liquidator.healthOf([risky])[0].liquidatable
    ))
    assert engine.accountMarkets(safe) == [eth]
    # The transaction is mined before the keeper has read its receipt: wait for the counter.
    assert eventually(lambda: b"lever_keeper_liquidations_won_total 1.0" in _get(f"{base}/metrics")[1])
    health = json.loads(_get(f"{base}/health")[1])
    assert health["status"] == "ok" and health["accounts"] >= 1
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    lines = [json.loads(line) for line in process.stdout.read().splitlines() if line.startswith("{")]
    assert lines[-1]["msg"] == "stopped"
    assert any(line["msg"] == "liquidated" for line in lines)


def test_keeper_with_a_malformed_deployment_record_says_so_in_one_line(tmp_path, node_uri):
    bad = tmp_path / "31337.json"
    bad.write_text("{not json")
    result = subprocess.run(
        [sys.executable, "-m", "lever.cli", "keeper", "run", "--rpc-url", node_uri, "--deployment", str(bad)],
        check=False, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: malformed deployment record")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_silverback_bot_liquidates_with_the_same_core(
    protocol, engine, eth, alice, open_account, set_price, chain, accounts, config, tmp_path, node_uri
):
    if not node_uri.endswith(":8545"):
        pytest.skip("silverback's ethereum:local:foundry connects to the node on the default port")
    record = save_deployment(
        deployment_record(protocol, chain.chain_id, "ethereum:local:foundry", config), directory=tmp_path
    )
    risky = open_account(alice, 1_000)
    engine.modifyPosition(risky, eth, wad(6), 0, sender=alice)
    env = dict(os.environ, LEVER_PRIVATE_KEY=accounts[8].private_key, LEVER_DEPLOYMENT=str(record))
    bot = subprocess.Popen(
        ["silverback", "run", "liquidator", "--network", "ethereum:local:foundry"],  # connects to the running node
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    # A dev chain only makes blocks on demand; silverback (through ape) gives up after 10 s
    # without one, so keep blocks coming as a live chain would.
    stop = threading.Event()
    miner = Web3(Web3.HTTPProvider(node_uri))
    ticker = threading.Thread(target=lambda: [miner.provider.make_request("evm_mine", []) for _ in iter(lambda: stop.wait(1), True)], daemon=True)
    ticker.start()
    try:
        time.sleep(8)  # silverback starts up and hydrates
        assert bot.poll() is None, bot.stdout.read()
        set_price("ETH-USD", 2_860)
        assert eventually(while_mining(lambda: not protocol.liquidator.healthOf([risky])[0].liquidatable), timeout=60)
    finally:
        stop.set()
        bot.send_signal(signal.SIGINT)
        try:
            bot.wait(timeout=20)
        except subprocess.TimeoutExpired:
            bot.kill()
