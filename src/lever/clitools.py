"""The command line's plumbing, shared by every click group (`lever.cli`'s and the groups it loads
from other modules): exact amounts, one error line, the session options, the order options.

A command declared with `on_chain` receives a connected `lever.actions.Session` as its first
argument; any `LeverError` it raises reaches `Group.invoke` and becomes one `error:` line with a
non-zero exit (click's own usage errors: exit code 2)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import click

from lever import actions
from lever.app import ACCOUNT_HELP
from lever.errors import LeverError
from lever.keeper.settings import DEFAULT_NETWORK, DEFAULT_PRICE_SERVICE

Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]


class AmountType(click.ParamType):
    """A non-negative decimal number, kept exact."""

    name = "amount"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Decimal:
        try:
            number = value if isinstance(value, Decimal) else Decimal(str(value).replace("_", ""))
        except InvalidOperation:
            self.fail(f"not a number: {value!r}", param, ctx)
        if not number.is_finite() or number < 0:
            self.fail(f"must be a non-negative number: {value!r}", param, ctx)
        return number


AMOUNT = AmountType()


class OneLine(click.ClickException):
    """A user's mistake: printed as one `error: ...` line."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class Group(click.Group):
    """A group whose subcommands' `LeverError`s become one line and exit code 1 (click's usage
    errors: one line and exit code 2)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LeverError as exc:
            raise OneLine(str(exc)) from None
        except click.UsageError as exc:
            error = OneLine(exc.format_message())
            error.exit_code = 2
            raise error from None


def network_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--network and --account."""
    fn = click.option(
        "--network",
        default=DEFAULT_NETWORK,
        show_default=True,
        envvar="LEVER_NETWORK",
        help="ape network choice (ecosystem:network:provider) or an RPC URL",
    )(fn)
    return click.option("--account", help=ACCOUNT_HELP + " (default on local chains: test:0)")(fn)


def on_chain(group: click.Group, name: str | None = None) -> Callable[[Callable[..., Any]], click.Command]:
    """A command of `group` that runs with a `Session` (its first argument), connected from
    --network, --account and --price-service."""

    def decorate(fn: Callable[..., Any]) -> click.Command:
        @functools.wraps(fn)
        def run(*args: Any, network: str, account: str | None, price_service: str, **kwargs: Any) -> None:
            with actions.session(network, account, price_service) as s:
                fn(s, *args, **kwargs)

        options = click.option(
            "--price-service",
            default=DEFAULT_PRICE_SERVICE,
            show_default=True,
            envvar="LEVER_PRICE_SERVICE",
            help="Hermes-shaped price service",
        )(network_options(run))
        command = group.command(name or fn.__name__)(options)
        chain = [p for p in command.params if p.name in ("network", "account", "price_service")]
        command.params = [p for p in command.params if p not in chain] + chain  # listed last in --help
        return command

    return decorate


def order_options(wait: bool) -> Decorator:
    """--account-id, --acceptable-price and --executor-fee, named as the actions' keywords
    (`account_id`, `acceptable`, `executor_fee`); with `wait`, --settle and --wait too."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = click.option("--account-id", type=int, help="Lever account (default: the signer's first)")(fn)
        fn = click.option(
            "--acceptable-price",
            "acceptable",
            type=AMOUNT,
            help="the worst fill: a market order is cancelled beyond it, a triggered conditional one waits again",
        )(fn)
        fn = click.option(
            "--executor-fee",
            type=AMOUNT,
            default=str(actions.DEFAULT_EXECUTOR_FEE),
            show_default=True,
            help="to whoever settles the order (from the margin, else the wallet)",
        )(fn)
        return wait_options(fn) if wait else fn

    return decorate


def wait_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """--settle (settle it yourself) and --wait (seconds)."""
    fn = click.option("--settle", is_flag=True, help="settle it yourself once its price is published")(fn)
    return click.option("--wait", type=float, default=60.0, show_default=True, help="seconds to wait for it")(fn)
