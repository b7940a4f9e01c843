"""`lever keeper run`: the keeper's process (settings, connection, signer, service loop)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from lever.app import ACCOUNT_HELP
from lever.clitools import Group
from lever.keeper.service import run_keeper

keeper = Group("keeper", help="The keeper: liquidations, orders and LP requests.")


@keeper.command("run")
@click.option("--network", help="ape network choice, e.g. ethereum:local:foundry")
@click.option("--rpc-url", help="connect straight to this RPC instead of through ape")
@click.option("--price-service", help="Hermes-shaped price service URL")
@click.option(
    "--deployment",
    type=click.Path(path_type=Path),
    help="deployment record (default: deployments/<chain id>.json)",
)
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="TOML file of keeper settings")
@click.option("--account", help=ACCOUNT_HELP + " (default: LEVER_PRIVATE_KEY, else a dry run)")
@click.option("--dry-run", is_flag=True, default=None, help="log what would be sent, send nothing")
@click.option("--poll-interval", type=float)
@click.option("--max-batch", type=int)
@click.option("--metrics-port", type=int, help="serve /metrics and /health on 127.0.0.1 (0: off)")
@click.option("--max-steps", type=int, hidden=True)
def keeper_run(config_file: Path | None, account: str | None, max_steps: int | None, **flags: Any) -> None:
    """Watch every account and order; liquidate, settle, execute."""
    sys.exit(run_keeper(flags, config_file, account, max_steps))
