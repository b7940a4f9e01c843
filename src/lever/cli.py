"""The `lever` command line. A user's mistake is one line on stderr and a non-zero exit."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from web3 import Web3

from lever.errors import ConfigError, LeverError


@click.group()
def cli() -> None:
    """Lever: leveraged perpetuals — deploy, inspect, trade, keep."""


@cli.group()
def keeper() -> None:
    """The liquidation keeper."""


@keeper.command("run")
@click.option("--network", help="ape network choice, e.g. ethereum:local:foundry")
@click.option("--rpc-url", help="connect straight to this RPC instead of through ape")
@click.option("--deployment", type=click.Path(path_type=Path), help="deployment record (default: deployments/<chain id>.json)")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="TOML file of keeper settings")
@click.option("--account", help="signer: `test:N` for ape's N-th test account; else LEVER_PRIVATE_KEY")
@click.option("--dry-run", is_flag=True, default=None, help="log what would be sent, send nothing")
@click.option("--poll-interval", type=float)
@click.option("--max-batch", type=int)
@click.option("--metrics-port", type=int, help="serve /metrics and /health on 127.0.0.1 (0: off)")
@click.option("--max-steps", type=int, hidden=True)
def keeper_run(config_file: Path | None, account: str | None, max_steps: int | None, **flags: Any) -> None:
    """Watch every account and liquidate the unhealthy ones."""
    from lever.keeper.service import KeeperService, configure_logging
    from lever.keeper.settings import load_settings
    from lever.keeper.wiring import build_keeper

    settings = load_settings(flags, config_file)
    configure_logging(settings.log_json)
    with _web3(settings.network, settings.rpc_url) as w3:
        private_key = _private_key(account, settings.private_key.get_secret_value() if settings.private_key else None)
        keeper_ = build_keeper(w3, settings, private_key)
        service = KeeperService(
            keeper_,
            poll_interval=settings.poll_interval,
            max_consecutive_errors=settings.max_consecutive_errors,
            breaker_cooldown=settings.breaker_cooldown,
            metrics_port=settings.metrics_port,
        )
        service.install_signal_handlers()
        sys.exit(service.run(max_steps=max_steps))


def _private_key(account: str | None, from_settings: str | None) -> str | None:
    if account is None:
        return from_settings
    if account.startswith("test:") and account[5:].isdigit():
        from ape import accounts

        return str(accounts.test_accounts[int(account[5:])].private_key)
    raise ConfigError(f"unknown --account {account!r}: use test:N, or set LEVER_PRIVATE_KEY")


@contextlib.contextmanager
def _web3(network: str, rpc_url: str | None) -> Iterator[Web3]:
    if rpc_url:
        # web3's own retries are off: the keeper service retries with its own backoff and breaker.
        w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 10}, exception_retry_configuration=None))
        if not w3.is_connected():
            raise LeverError(f"cannot reach the RPC at {rpc_url}")
        yield w3
        return
    from ape import networks
    from ape.exceptions import ApeException

    try:
        context = networks.parse_network_choice(network)
    except ApeException as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"unknown network {network!r}: {first_line}") from None
    with context as provider:
        yield provider.web3


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except LeverError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
