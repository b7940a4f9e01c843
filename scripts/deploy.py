"""Deploys the whole protocol with the network's parameter file and prints its state.

    ape run deploy --network ethereum:local:foundry
"""

from __future__ import annotations

from ape import accounts, networks, project

from lever.config import load_network_config
from lever.deploy import deploy_protocol, deployment_record
from lever.deployments import save_deployment
from lever.status import read_status, render_status

USDC = 10**6


def main() -> None:
    network = networks.provider.network.name
    config = load_network_config("local" if network in ("local", "test") else network)
    deployer = accounts.test_accounts[0]
    protocol = deploy_protocol(project, deployer, config)
    lp = accounts.test_accounts[1]
    # Seed the pool so the state shows something (local chains only: the token is the mock).
    amount = 1_000_000 * 10 ** int(protocol.token.decimals())
    protocol.token.mint(lp, amount, sender=lp)
    protocol.token.approve(protocol.vault, amount, sender=lp)
    protocol.vault.deposit(amount, lp, sender=lp)
    chain_id = networks.provider.chain_id
    path = save_deployment(deployment_record(protocol, chain_id, networks.provider.network_choice, config))
    print(f"vault  {protocol.vault.address}\nengine {protocol.engine.address}\noracle {protocol.oracle.address}")
    print(f"recorded in {path}")
    render_status(read_status(protocol))
