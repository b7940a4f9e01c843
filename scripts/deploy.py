"""Deploys the whole protocol with the network's parameter file and records it.

    ape run deploy --network ethereum:local:foundry      (also :hardhat, :test)
    ape run deploy --network ethereum:local:foundry --fresh

Same as `lever deploy` (which also takes --params and --feed MARKET=ADDRESS).
"""

from __future__ import annotations

import click
from ape.cli import ConnectedProviderCommand

from lever import app
from lever.errors import LeverError
from lever.status import read_status, render_status


@click.command(cls=ConnectedProviderCommand)
@click.option("--account", help="deployer: an ape account alias, or test:N (local chains; default test:0)")
@click.option("--fresh", is_flag=True, help="deploy even if a deployment is recorded for this chain")
def cli(provider, account: str | None, fresh: bool) -> None:
    try:
        deployer = app.signer(account, provider)
        protocol, path, note = app.deploy(provider, deployer, app.config_for(provider), fresh=fresh)
    except LeverError as exc:
        raise click.ClickException(str(exc)) from None
    if note:
        click.echo(note)
    click.echo(f"deployed to chain {provider.chain_id} at block {protocol.deploy_block}; recorded in {path}")
    render_status(read_status(protocol))
