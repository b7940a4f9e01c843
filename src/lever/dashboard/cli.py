"""`lever index` and `lever dashboard` (registered in the main `lever` command line)."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

import click

from lever.errors import LeverError

RPC = click.option(
    "--rpc-url",
    default="http://127.0.0.1:8545",
    show_default=True,
    envvar="LEVER_RPC_URL",
    help="the node's JSON-RPC URL",
)
DEPLOYMENT = click.option(
    "--deployment",
    "deployment_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="deployment record (default: deployments/<chain id>.json)",
)
DB = click.option(
    "--db",
    "db_url",
    envvar="LEVER_INDEX_DB",
    help="database URL: sqlite:///file.sqlite (default: build/index/<chain>-<engine>.sqlite) "
    "or postgresql://user@host/db",
)
CONFIRMATIONS = click.option(
    "--confirmations",
    type=click.IntRange(min=0),
    help="blocks to stay behind the head (default: 0 on local chains, 12 elsewhere)",
)


class OneLine(click.ClickException):
    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _deployment(rpc_url: str, path: Path | None) -> Any:
    from web3 import Web3

    from lever.dashboard.serve import deployment_from

    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 5}))
    try:
        chain_id = int(w3.eth.chain_id)
    except Exception as exc:  # noqa: BLE001 - any transport failure is the same mistake to the user
        raise LeverError(f"cannot reach the node at {rpc_url} ({type(exc).__name__})") from None
    return w3, deployment_from(path, chain_id)


def _stop_on_signals(stop: threading.Event) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())


@click.command("index")
@RPC
@DEPLOYMENT
@DB
@CONFIRMATIONS
@click.option("--follow/--once", default=True, show_default=True, help="keep following the head, or sync once")
@click.option("--interval", type=float, default=1.0, show_default=True, help="seconds between polls")
def index(
    rpc_url: str,
    deployment_path: Path | None,
    db_url: str | None,
    confirmations: int | None,
    follow: bool,
    interval: float,
) -> None:
    """Follow the protocol's events into SQLite or PostgreSQL."""
    from lever.dashboard.serve import default_db
    from lever.indexer import Indexer, open_engine

    try:
        w3, deployment = _deployment(rpc_url, deployment_path)
        indexer = Indexer(open_engine(db_url or default_db(deployment)), w3, deployment, confirmations=confirmations)
        report = indexer.sync()
        click.echo(
            f"indexed blocks {report.first_block}-{report.last_block}: {report.events} events in {report.seconds:.1f} s"
        )
        if follow:
            logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
            stop = threading.Event()
            _stop_on_signals(stop)
            indexer.follow(stop, interval)
    except LeverError as exc:
        raise OneLine(str(exc)) from None


@click.command("dashboard")
@RPC
@DEPLOYMENT
@DB
@CONFIRMATIONS
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8050, show_default=True)
@click.option(
    "--keeper-url", envvar="LEVER_KEEPER_URL", help="the keeper's /health and /metrics, e.g. http://127.0.0.1:9102"
)
@click.option("--interval", type=float, default=0.5, show_default=True, help="seconds between index polls")
def dashboard(
    rpc_url: str,
    deployment_path: Path | None,
    db_url: str | None,
    confirmations: int | None,
    host: str,
    port: int,
    keeper_url: str | None,
    interval: float,
) -> None:
    """Serve the live dashboard (and run the indexer) until interrupted."""
    from lever.dashboard.serve import alongside

    try:
        _, deployment = _deployment(rpc_url, deployment_path)
        with alongside(
            rpc_url,
            deployment,
            db_url=db_url,
            host=host,
            port=port,
            keeper_url=keeper_url,
            interval=interval,
            confirmations=confirmations,
        ) as running:
            click.echo(f"dashboard on {running.url} (Ctrl-C to stop)")
            stop = threading.Event()
            _stop_on_signals(stop)
            stop.wait()
    except LeverError as exc:
        raise OneLine(str(exc)) from None
