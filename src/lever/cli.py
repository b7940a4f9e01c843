"""The `lever` command line. A user's mistake is one line on stderr and a non-zero exit."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NamedTuple

import click
from web3 import Web3

from lever.errors import ConfigError, LeverError

DEFAULT_NETWORK = "ethereum:local:foundry"


class AmountType(click.ParamType):
    """A non-negative decimal number, kept exact."""

    name = "amount"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Decimal:
        if isinstance(value, Decimal):
            return value
        try:
            number = Decimal(str(value).replace("_", ""))
        except InvalidOperation:
            self.fail(f"not a number: {value!r}", param, ctx)
        if not number.is_finite() or number < 0:
            self.fail(f"must be a non-negative number: {value!r}", param, ctx)
        return number


AMOUNT = AmountType()


def network_option(fn: Any) -> Any:
    return click.option(
        "--network", default=DEFAULT_NETWORK, show_default=True, envvar="LEVER_NETWORK",
        help="ape network choice (ecosystem:network:provider) or an RPC URL",
    )(fn)


def account_option(fn: Any) -> Any:
    return click.option(
        "--account", help="signer: an ape account alias, or test:N (ape's N-th test account, local chains; default test:0)"
    )(fn)


class LeverError1Line(click.ClickException):
    """A user's mistake: printed as one `error: ...` line, exit code 1."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class _Group(click.Group):
    """Every `LeverError` raised under this group becomes one line and exit code 1 — also under
    click's CliRunner, which runs the same code path as the console script."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LeverError as exc:
            raise LeverError1Line(str(exc)) from None
        except click.UsageError as exc:  # a bad argument: one line too, exit code 2
            error = LeverError1Line(exc.format_message())
            error.exit_code = 2
            raise error from None


@click.group(cls=_Group)
def cli() -> None:
    """Lever: leveraged perpetuals — deploy, inspect, trade, keep."""
    from ape.logging import logger

    logger.set_level("WARNING")  # ape's per-transaction INFO lines would drown the output


# --------------------------------------------------------------------------- deploy


@cli.command()
@network_option
@account_option
@click.option("--params", type=click.Path(path_type=Path), help="parameter file (default: config/<network>.toml)")
@click.option("--feed", "feeds", multiple=True, metavar="MARKET=ADDRESS", help="use an existing Chainlink feed")
@click.option("--fresh", is_flag=True, help="deploy even if a deployment is recorded for this chain")
def deploy(network: str, account: str | None, params: Path | None, feeds: tuple[str, ...], fresh: bool) -> None:
    """Deploy the protocol and record it in deployments/<chain id>.json."""
    from lever import app
    from lever.status import read_status, render_status

    with app.connected(network) as provider:
        config = _with_feeds(app.config_for(provider, params), feeds)
        deployer = app.signer(account, provider)
        with _progress("deploying") as step:
            protocol, path, note = app.deploy(provider, deployer, config, fresh=fresh, progress=step)
        if note:
            click.echo(note)
        click.echo(f"deployed to chain {provider.chain_id} at block {protocol.deploy_block}; recorded in {path}")
        render_status(read_status(protocol))


def _with_feeds(config: Any, feeds: tuple[str, ...]) -> Any:
    markets = dict(config.markets)
    for item in feeds:
        name, _, address = item.partition("=")
        if name not in markets:
            raise ConfigError(f"--feed {item!r}: no market {name!r} in the parameter file")
        if not Web3.is_address(address):
            raise ConfigError(f"--feed {item!r}: {address!r} is not an address")
        markets[name] = markets[name].model_copy(update={"feed": Web3.to_checksum_address(address)})
    return config.model_copy(update={"markets": markets})


# --------------------------------------------------------------------------- status


@cli.command()
@network_option
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of tables")
def status(network: str, as_json: bool) -> None:
    """Markets, pool, insurance fund, solvency, and every account with a position."""
    from lever import app
    from lever.status import read_status, render_status

    with app.connected(network) as provider:
        protocol, _ = app.protocol_from_record(provider)
        state = read_status(protocol)
    if as_json:
        click.echo(json.dumps(state.to_dict(), indent=2, default=str))
    else:
        render_status(state)


# --------------------------------------------------------------------------- price, token


@cli.group()
def price() -> None:
    """The mock price feeds (local chains)."""


@price.command("set")
@click.argument("market")
@click.argument("value", type=AMOUNT)
@network_option
@account_option
def price_set(market: str, value: Decimal, network: str, account: str | None) -> None:
    """Set MARKET's mock feed to VALUE (USD), e.g. `lever price set ETH-USD 2500`."""
    from lever import app

    with _session(network, account) as (_, protocol, sender, _):
        app.market_id(protocol, market)
        feed = protocol.feeds[market]
        answer = _scaled(value, int(feed.decimals()), "price")
        if answer == 0:
            raise ConfigError("the price must be above zero")
        app.send(f"setting {market}", feed.setPrice, answer, sender=sender)
        click.echo(f"{market} set to {value} USD (feed answer {answer})")


@cli.group()
def token() -> None:
    """The mock collateral token (local chains)."""


@token.command("mint")
@click.argument("amount", type=AMOUNT)
@click.option("--to", "recipient", help="recipient (default: the signer)")
@network_option
@account_option
def token_mint(amount: Decimal, recipient: str | None, network: str, account: str | None) -> None:
    """Mint AMOUNT of the mock collateral token."""
    from lever import app

    with _session(network, account) as (provider, protocol, sender, decimals):
        if not app.is_local(provider):
            raise ConfigError("minting is for the mock token on local chains")
        to = recipient or sender.address
        if not Web3.is_address(to):
            raise ConfigError(f"--to {to!r} is not an address")
        app.send("minting", protocol.token.mint, to, _scaled(amount, decimals, "amount"), sender=sender)
        click.echo(f"minted {amount} {protocol.token.symbol()} to {to}")


# --------------------------------------------------------------------------- margin and trades


@cli.group()
def trade() -> None:
    """Open and close positions."""


@trade.command("open")
@click.argument("market")
@click.argument("side", type=click.Choice(["long", "short"]))
@click.argument("size", type=AMOUNT)
@click.option("--margin", type=AMOUNT, help="deposit this much collateral first")
@click.option("--leverage", type=AMOUNT, help="deposit notional / leverage (+ the fee) first")
@click.option("--account-id", type=int, help="Lever account (default: the signer's first; created if none)")
@click.option("--limit-price", type=AMOUNT, help="revert if the fill price is worse than this")
@network_option
@account_option
def trade_open(
    market: str, side: str, size: Decimal, margin: Decimal | None, leverage: Decimal | None,
    account_id: int | None, limit_price: Decimal | None, network: str, account: str | None,
) -> None:
    """Open or increase a SIDE position of SIZE (base units) in MARKET."""
    from lever import app
    from lever.units import to_wad

    if margin is not None and leverage is not None:
        raise ConfigError("pass --margin or --leverage, not both")
    if size == 0:
        raise ConfigError("the size must be above zero")
    with _session(network, account) as (_, protocol, sender, decimals):
        mid = app.market_id(protocol, market)
        size_wad = _scaled(size, 18, "size")
        deposit = None
        if leverage is not None:
            if leverage <= 0:
                raise ConfigError("the leverage must be above zero")
            price_wad = int(app.send("reading the price", protocol.oracle.priceWad, protocol.feeds[market]))
            fee_wad = int(protocol.engine.marketParams(mid).tradingFeeWad)
            notional = size_wad * price_wad // 10**18
            need_wad = notional * 10**18 // to_wad(leverage) + notional * fee_wad // 10**18
            deposit = -(-need_wad // 10 ** (18 - decimals))  # rounded up: never short of margin
        elif margin is not None:
            deposit = _scaled(margin, decimals, "margin")
        if deposit:
            _check_balance(protocol, sender, deposit, decimals)
        account_id = _account_for(protocol, sender, account_id)
        if deposit:
            _deposit(protocol, sender, account_id, deposit, decimals)
        delta = size_wad if side == "long" else -size_wad
        limit = _scaled(limit_price, 18, "limit price") if limit_price is not None else 0
        try:
            app.send(f"opening {side} {size} {market}", protocol.engine.modifyPosition, account_id, mid, delta, limit,
                     sender=sender, decimals=decimals)
        except LeverError as exc:
            kept = f" (the margin deposited stays in account {account_id}: `lever margin withdraw`)" if deposit else ""
            raise LeverError(f"{exc}{kept}") from None
        _print_position(protocol, account_id, mid, market)


@trade.command("close")
@click.argument("market")
@click.option("--account-id", type=int, help="Lever account (default: the signer's first)")
@click.option("--limit-price", type=AMOUNT, help="revert if the fill price is worse than this")
@click.option("--withdraw", is_flag=True, help="then withdraw all the margin left")
@network_option
@account_option
def trade_close(
    market: str, account_id: int | None, limit_price: Decimal | None, withdraw: bool, network: str, account: str | None
) -> None:
    """Close the position in MARKET."""
    from lever import app
    from lever.units import from_scaled

    with _session(network, account) as (_, protocol, sender, decimals):
        mid = app.market_id(protocol, market)
        account_id = _account_for(protocol, sender, account_id, create=False)
        limit = _scaled(limit_price, 18, "limit price") if limit_price is not None else 0
        app.send(f"closing {market}", protocol.engine.closePosition, account_id, mid, limit, sender=sender, decimals=decimals)
        margin = int(protocol.vault.marginOf(account_id))
        click.echo(f"closed {market} on account {account_id}; margin {from_scaled(margin, decimals):,f}")
        if withdraw and margin and list(protocol.engine.accountMarkets(account_id)):
            click.echo("other positions remain: the margin stays (see `lever margin withdraw`)")
        elif withdraw and margin:
            app.send("withdrawing", protocol.vault.withdrawMargin, account_id, margin, sender.address, sender=sender,
                     decimals=decimals)
            click.echo(f"withdrew {from_scaled(margin, decimals):,f} to {sender.address}")


@cli.group("margin")
def margin_group() -> None:
    """Collateral in a Lever account."""


@margin_group.command("deposit")
@click.argument("amount", type=AMOUNT)
@click.option("--account-id", type=int, help="Lever account (default: the signer's first; created if none)")
@network_option
@account_option
def margin_deposit(amount: Decimal, account_id: int | None, network: str, account: str | None) -> None:
    """Deposit AMOUNT of collateral into a Lever account."""

    with _session(network, account) as (_, protocol, sender, decimals):
        account_id = _account_for(protocol, sender, account_id)
        _deposit(protocol, sender, account_id, _scaled(amount, decimals, "amount"), decimals)
        click.echo(f"deposited {amount} into account {account_id}")


@margin_group.command("withdraw")
@click.argument("amount", type=AMOUNT)
@click.option("--account-id", type=int, help="Lever account (default: the signer's first)")
@network_option
@account_option
def margin_withdraw(amount: Decimal, account_id: int | None, network: str, account: str | None) -> None:
    """Withdraw AMOUNT of collateral from a Lever account to the signer."""
    from lever import app

    with _session(network, account) as (_, protocol, sender, decimals):
        account_id = _account_for(protocol, sender, account_id, create=False)
        app.send("withdrawing", protocol.vault.withdrawMargin, account_id, _scaled(amount, decimals, "amount"),
                 sender.address, sender=sender, decimals=decimals)
        click.echo(f"withdrew {amount} from account {account_id}")


# --------------------------------------------------------------------------- liquidity pool


@cli.group()
def lp() -> None:
    """The liquidity pool (ERC-4626 shares, lvLP)."""


@lp.command("deposit")
@click.argument("amount", type=AMOUNT)
@network_option
@account_option
def lp_deposit(amount: Decimal, network: str, account: str | None) -> None:
    """Deposit AMOUNT of collateral into the pool for shares."""
    from lever import app
    from lever.units import from_scaled

    with _session(network, account) as (_, protocol, sender, decimals):
        assets = _scaled(amount, decimals, "amount")
        if assets == 0:
            raise ConfigError("the amount must be above zero")
        _approve(protocol, sender, assets, decimals)
        before = int(protocol.vault.balanceOf(sender.address))
        app.send("depositing into the pool", protocol.vault.deposit, assets, sender.address, sender=sender,
                 decimals=decimals)
        shares = int(protocol.vault.balanceOf(sender.address)) - before
        click.echo(f"deposited {amount}; received {from_scaled(shares, int(protocol.vault.decimals())):,f} lvLP")


@lp.command("redeem")
@click.argument("shares")
@network_option
@account_option
def lp_redeem(shares: str, network: str, account: str | None) -> None:
    """Redeem SHARES of lvLP (a number, or `all`) for collateral."""
    from lever import app
    from lever.units import from_scaled

    with _session(network, account) as (_, protocol, sender, decimals):
        share_decimals = int(protocol.vault.decimals())
        held = int(protocol.vault.balanceOf(sender.address))
        amount = held if shares == "all" else _scaled(AMOUNT.convert(shares, None, None), share_decimals, "shares")
        if amount == 0:
            raise ConfigError(f"{sender.address} holds no lvLP shares to redeem" if held == 0 else "the amount is zero")
        before = int(protocol.token.balanceOf(sender.address))
        app.send("redeeming", protocol.vault.redeem, amount, sender.address, sender.address, sender=sender,
                 decimals=decimals)
        got = int(protocol.token.balanceOf(sender.address)) - before
        click.echo(f"redeemed {from_scaled(amount, share_decimals):,f} lvLP for {from_scaled(got, decimals):,f}")


# --------------------------------------------------------------------------- demo


@cli.command()
@click.option("--traders", type=int, default=60, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--crash", type=AMOUNT, default="0.35", show_default=True, help="ETH's fall at the bottom, as a share")
@click.option("--out", type=click.Path(path_type=Path), default=Path("build/demo"), show_default=True)
@network_option
def demo(traders: int, seed: int, crash: Decimal, out: Path, network: str) -> None:
    """A market crash on a local chain: LPs, traders, a crash, the keeper; writes a report."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from lever import app
    from lever import demo as scenario

    plan = scenario.Plan(seed=seed, traders=traders, crash=crash)
    plan.check()
    console = Console()
    with app.connected(network) as provider, Progress(
        TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=False,
    ) as bar:
        tasks: dict[str, Any] = {}

        def on_progress(phase: str, done: int, total: int) -> None:
            key = phase.split(":")[0]
            if key not in tasks:
                tasks[key] = bar.add_task(phase, total=total)
            bar.update(tasks[key], completed=done, description=phase)

        with app._quiet_traces():
            report = scenario.run(provider, plan, out, on_progress)
    _print_report(console, report, out)


def _print_report(console: Any, r: Any, out: Path) -> None:
    from rich.table import Table

    table = Table(title=f"Crash of {Decimal(r.crash) * 100:.0f}% with {r.traders} traders (seed {r.seed})")
    table.add_column("")
    table.add_column("", justify="right")
    rows = [
        ("liquidations (partial / full)", f"{r.liquidations['total']} ({r.liquidations['partial']} / {r.liquidations['full']})"),
        ("accounts liquidated", str(r.liquidated_accounts)),
        ("blocks unhealthy -> liquidated (max / median)", f"{r.max_blocks_unhealthy} / {r.median_blocks_unhealthy:g}"),
        ("still liquidatable at the end", str(r.unhealthy_at_end)),
        ("keeper rewards", f"${r.keeper_rewards}"),
        ("bad debt", f"${r.bad_debt}"),
        ("insurance fund before -> after", f"${Decimal(r.insurance_before):,} -> ${Decimal(r.insurance_after):,}"),
        ("pool value before -> after", f"${Decimal(r.pool_before):,} -> ${Decimal(r.pool_after):,}"),
        (f"solvency identity at every block ({r.blocks_checked})", "held" if r.solvent_every_block else "[bold red]BROKEN[/]"),
        ("wall time", f"{r.seconds:.0f} s"),
    ]
    for label, value in rows:
        table.add_row(label, value)
    console.print(table)
    console.print(f"wrote {out / 'report.json'} and {out / 'report.png'}")


# --------------------------------------------------------------------------- helpers


class _Session(NamedTuple):
    provider: Any
    protocol: Any
    sender: Any
    decimals: int  # the collateral token's


@contextlib.contextmanager
def _session(network: str, account: str | None) -> Iterator[_Session]:
    """Connected, with the recorded deployment and the signer: what every signing command needs."""
    from lever import app

    with app.connected(network) as provider:
        protocol, _ = app.protocol_from_record(provider)
        sender = app.signer(account, provider)
        yield _Session(provider, protocol, sender, int(protocol.token.decimals()))


def _scaled(value: Decimal, decimals: int, what: str) -> int:
    from lever.units import to_scaled

    try:
        return to_scaled(value, decimals)
    except ValueError as exc:
        raise ConfigError(f"bad {what}: {exc}") from None


def _account_for(protocol: Any, sender: Any, account_id: int | None, create: bool = True) -> int:
    from lever import app
    from lever.deploy import create_account

    if account_id is not None:
        if account_id < 1 or account_id > int(protocol.engine.accountCount()):
            raise ConfigError(f"account {account_id} does not exist")
        owner = str(protocol.engine.accountOwner(account_id))
        if owner.lower() != sender.address.lower():
            raise ConfigError(f"account {account_id} belongs to {owner}, not to {sender.address}")
        return account_id
    owned = app.accounts_of(protocol, sender.address)
    if owned:
        return owned[0]
    if not create:
        raise ConfigError(f"{sender.address} has no Lever account")
    account_id = app.send("creating an account", create_account, protocol.engine, sender)
    click.echo(f"created account {account_id} for {sender.address}")
    return int(account_id)


def _check_balance(protocol: Any, sender: Any, amount: int, decimals: int) -> None:
    from lever.units import from_scaled

    balance = int(protocol.token.balanceOf(sender.address))
    if balance < amount:
        raise ConfigError(
            f"{sender.address} holds {from_scaled(balance, decimals):,f} {protocol.token.symbol()}, needs "
            f"{from_scaled(amount, decimals):,f} (on a local chain: `lever token mint`)"
        )


def _approve(protocol: Any, sender: Any, amount: int, decimals: int) -> None:
    from lever import app

    _check_balance(protocol, sender, amount, decimals)
    if int(protocol.token.allowance(sender.address, protocol.vault.address)) < amount:
        app.send("approving the vault", protocol.token.approve, protocol.vault, amount, sender=sender)


def _deposit(protocol: Any, sender: Any, account_id: int, amount: int, decimals: int) -> None:
    from lever import app

    _approve(protocol, sender, amount, decimals)
    app.send("depositing margin", protocol.vault.depositMargin, account_id, amount, sender=sender, decimals=decimals)


def _print_position(protocol: Any, account_id: int, market_id: int, market: str) -> None:
    from lever.units import from_wad

    d = protocol.engine.positionDetails(account_id, market_id)
    state = protocol.engine.accountState(account_id)
    size, cost = int(d.sizeWad), int(d.costWad)
    entry = abs(cost) * 10**18 // abs(size) if size else 0
    liq = int(d.liquidationPriceWad)
    mm = int(state.maintenanceMarginWad)
    health = f"{from_wad(int(state.equityWad) * 10**18 // mm):.3f}" if mm else "-"
    click.echo(
        f"account {account_id}: {market} {from_wad(size):+,f} at {from_wad(entry):,.2f}; "
        f"equity {from_wad(int(state.equityWad)):,.2f}, health {health}, "
        f"liquidation price {'-' if not liq else f'{from_wad(liq):,.2f}'}"
    )


@contextlib.contextmanager
def _progress(title: str) -> Iterator[Any]:
    """A rich spinner with the current step (deployments take a few seconds)."""
    from rich.console import Console

    console = Console(stderr=True)
    with console.status(title) as status:
        yield lambda step: status.update(f"{title}: {step}")


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
    from lever import app

    with app.connected(network) as provider:
        yield provider.web3


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
