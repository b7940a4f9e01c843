"""Deploys the whole protocol with the network's parameter file and records it.

    ape run deploy --network ethereum:local:foundry      (also :hardhat, :test)
    ape run deploy --network ethereum:local:foundry --fresh

Same as `lever deploy` (which also takes --params); then prints the status tables.
"""

from __future__ import annotations

import click
from ape.cli import ConnectedProviderCommand

from lever import app
from lever.chain import Addresses, ProtocolReader
from lever.errors import LeverError
from lever.status import read_status, render_status


@click.command(cls=ConnectedProviderCommand)
@click.option("--account", help=app.ACCOUNT_HELP + " (default on local chains: test:0)")
@click.option("--fresh", is_flag=True, help="deploy even if a deployment is recorded for this chain")
def cli(provider, account: str | None, fresh: bool) -> None:
    try:
        deployer = app.signer(account, provider)
        protocol, path, note = app.deploy(provider, deployer, app.config_for(provider), fresh=fresh)
        _, deployment = app.protocol_from_record(provider, path)
    except LeverError as exc:
        raise click.ClickException(str(exc)) from None
    if note:
        click.echo(note)
    click.echo(f"deployed to chain {provider.chain_id} at block {protocol.deploy_block}; recorded in {path}")
    render_status(read_status(ProtocolReader(provider.web3, Addresses.from_deployment(deployment))))
