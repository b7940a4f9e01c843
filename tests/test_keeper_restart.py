"""The keeper while its node is killed and restarted (Anvil persisting its state to disk)."""

import json
import subprocess
import threading
from pathlib import Path

import pytest
from helpers import eventually, free_port, start_anvil, while_mining
from web3 import Web3

from lever.deploy import create_address, market_key
from lever.keeper.chain import BUILD, TRANSPORT_ERRORS, Addresses, ChainClient
from lever.keeper.runner import Keeper, KeeperConfig
from lever.keeper.service import KeeperService

USDC = 10**6
WAD = 10**18


def _start_anvil(port: int, state: Path) -> subprocess.Popen:
    return start_anvil(port, "--state", str(state))


def _deploy(w3: Web3, config) -> tuple[Addresses, dict]:
    """The protocol deployed with plain web3 (Anvil's unlocked dev accounts sign)."""
    types = json.loads(BUILD.read_text())["contractTypes"]
    deployer = w3.eth.accounts[0]

    def send(fn):
        receipt = w3.eth.wait_for_transaction_receipt(fn.transact({"from": deployer}))
        assert receipt["status"] == 1
        return receipt

    def deploy(name, *args):
        factory = w3.eth.contract(abi=types[name]["abi"], bytecode=types[name]["deploymentBytecode"]["bytecode"])
        return w3.eth.contract(address=send(factory.constructor(*args))["contractAddress"], abi=types[name]["abi"])

    token = deploy("MockToken", "USD", "USD", 6)
    oracle = deploy("OracleAdapter", deployer)
    nonce = w3.eth.get_transaction_count(deployer)
    vault = deploy("LeverVault", token.address, deployer, 0, create_address(deployer, nonce + 1))
    engine = deploy("PerpEngine", vault.address, oracle.address, create_address(deployer, nonce + 2), deployer)
    liquidator = deploy("Liquidator", engine.address, deployer, config.liquidation.params())
    feed = deploy("MockPriceFeed", 8, "ETH-USD", 3000 * 10**8, deployer)
    send(oracle.functions.setFeed(feed.address, config.oracle.feed_params()))
    send(engine.functions.createMarket(market_key("ETH-USD"), config.markets["ETH-USD"].params(feed.address)))
    send(token.functions.mint(deployer, 2_000_000 * USDC))
    send(token.functions.approve(vault.address, 2_000_000 * USDC))
    send(vault.functions.deposit(1_000_000 * USDC, deployer))
    ids = []
    for margin in (1_000, 3_000, 1_000):
        send(engine.functions.createAccount())
        account = engine.functions.accountCount().call()
        send(vault.functions.depositMargin(account, margin * USDC))
        send(engine.functions.modifyPosition(account, 0, 6 * WAD, 0))
        ids.append(account)
    addresses = Addresses(vault.address, engine.address, liquidator.address, oracle.address, {0: feed.address})
    return addresses, {"feed": feed, "liquidator": liquidator, "engine": engine, "deployer": deployer, "ids": ids}


@pytest.mark.usefixtures("node_uri")  # Anvil runs: the in-process chain has no processes to kill
def test_keeper_survives_its_node_being_killed_and_restarted(config, accounts, tmp_path):
    port, state = free_port(), tmp_path / "anvil-state.json"
    anvil = _start_anvil(port, state)
    try:
        uri = f"http://127.0.0.1:{port}"
        w3 = Web3(Web3.HTTPProvider(uri))
        addresses, c = _deploy(w3, config)
        keeper_w3 = Web3(Web3.HTTPProvider(uri, request_kwargs={"timeout": 2}, exception_retry_configuration=None))
        keeper = Keeper(ChainClient(keeper_w3, addresses, retries=1), accounts[8].private_key, KeeperConfig())
        service = KeeperService(keeper, poll_interval=0.1, max_consecutive_errors=3, breaker_cooldown=0.5)
        thread = threading.Thread(target=service.run, daemon=True)
        thread.start()
        assert eventually(lambda: service.hydrated, ignore=TRANSPORT_ERRORS)

        anvil.terminate()  # Anvil writes its state to disk on the way out
        anvil.wait(timeout=20)
        assert eventually(lambda: service.breaker_open, ignore=TRANSPORT_ERRORS)
        anvil = _start_anvil(port, state)  # back, with the chain as it was

        w3 = Web3(Web3.HTTPProvider(uri))
        assert w3.eth.get_code(addresses.engine) != b""
        c["feed"].w3 = w3
        tx = c["feed"].functions.setPrice(2_850 * 10**8).transact({"from": c["deployer"]})
        w3.eth.wait_for_transaction_receipt(tx)
        liquidator = w3.eth.contract(address=addresses.liquidator, abi=c["liquidator"].abi)
        risky = [c["ids"][0], c["ids"][2]]
        assert all(row[5] for row in liquidator.functions.healthOf(risky).call())
        healthy = while_mining(lambda: not any(row[5] for row in liquidator.functions.healthOf(c["ids"]).call()))
        assert eventually(healthy, timeout=60, ignore=TRANSPORT_ERRORS)
        assert service.health()[0] == 200
        service.stopping.set()
        thread.join(timeout=30)
        assert not thread.is_alive()
    finally:
        anvil.terminate()
        anvil.wait(timeout=20)


