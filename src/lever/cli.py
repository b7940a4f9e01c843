"""The `lever` command line: options and rendering around one call each to `lever.actions` (or the
keeper, the demo, the price service, governance). Every `LeverError` becomes one `error:` line and
a non-zero exit (`lever.clitools`); every number shown is a field of an action's typed result."""

from __future__ import annotations

import importlib
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from lever import actions, app
from lever import demo as scenario
from lever.actions import Session
from lever.clitools import (
    AMOUNT,
    Group,
    OneLine,
    network_options,
    on_chain,
    order_options,
    wait_options,
)
from lever.keeper.settings import DEFAULT_NETWORK
from lever.status import read_status, render_status

# Command groups that live in their own modules, loaded on first use: name -> "module:attribute".
GROUPS = {
    "price": "lever.cli_local:price",
    "token": "lever.cli_local:token",
    "admin": "lever.cli_admin:admin",
    "keeper": "lever.keeper.cli:keeper",
    "stress": "lever.stress.cli:stress",
    "index": "lever.dashboard.cli:index",
    "dashboard": "lever.dashboard.cli:dashboard",
}


class _Lever(Group):
    """The top group; the groups in `GROUPS` load on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *GROUPS})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in GROUPS and name not in self.commands:
            module, _, attribute = GROUPS[name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), name)
        return super().get_command(ctx, name)


@click.group(cls=_Lever)
def cli() -> None:
    """Lever: leveraged perpetuals — deploy, inspect, trade, provide liquidity, keep."""
    from ape.logging import logger

    logger.set_level("WARNING")  # ape's per-transaction INFO lines would drown the output


@cli.command()
@click.option(
    "--params",
    type=click.Path(path_type=Path),
    help="parameter file (default: config/<network>.toml)",
)
@click.option("--fresh", is_flag=True, help="deploy even if a deployment is recorded for this chain")
@network_options
def deploy(params: Path | None, fresh: bool, network: str, account: str | None) -> None:
    """Deploy the protocol and record it in deployments/<chain id>.json."""
    with app.connected(network) as provider:
        config, deployer = app.config_for(provider, params), app.signer(account, provider)
        protocol, path, note = app.deploy(provider, deployer, config, fresh=fresh)
        click.echo(
            note or f"deployed to chain {provider.chain_id} at block {protocol.deploy_block}; recorded in {path}"
        )


@on_chain(cli)
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of tables")
def status(s: Session, as_json: bool) -> None:
    """Markets, pool, insurance fund, solvency, and every account with a position."""
    state = read_status(s.reader)
    if as_json:
        click.echo(json.dumps(state.to_dict(), indent=2, default=str))
    else:
        render_status(state)


margin = Group("margin", help="Collateral in a Lever account.")
cli.add_command(margin)


@on_chain(margin, "deposit")
@click.argument("amount", type=AMOUNT)
@click.option("--account-id", type=int, help="Lever account (default: the signer's first; created if none)")
def margin_deposit(s: Session, amount: Decimal, account_id: int | None) -> None:
    """Deposit AMOUNT of collateral into a Lever account."""
    r = actions.deposit_margin(s, amount, account_id)
    click.echo(("created " if r.created else "") + f"account {r.account_id}: deposited {r.amount}")


@on_chain(margin, "withdraw")
@click.argument("amount", type=AMOUNT)
@click.option("--account-id", type=int, help="Lever account (default: the signer's first)")
@click.option("--to", help="recipient address (default: the signer)")
def margin_withdraw(s: Session, amount: Decimal, account_id: int | None, to: str | None) -> None:
    """Withdraw AMOUNT of collateral from a Lever account."""
    r = actions.withdraw_margin(s, amount, account_id, to)
    click.echo(f"account {r.account_id}: withdrew {r.amount}")


trade = Group(
    "trade",
    help="Market orders: commit, then a keeper (or you, --settle) settles at the next price.",
)
cli.add_command(trade)


@on_chain(trade, "open")
@click.argument("market")
@click.argument("side", type=click.Choice(["long", "short"]))
@click.argument("size", type=AMOUNT)
@click.option("--margin", type=AMOUNT, help="deposit this much collateral first")
@click.option("--leverage", type=AMOUNT, help="deposit the margin for this leverage first")
@order_options(wait=True)
def trade_open(s: Session, market: str, side: str, size: Decimal, settle: bool, wait: float, **order: Any) -> None:
    """Open or increase a SIDE position of SIZE (base units) in MARKET."""
    c = _show_commit(actions.open_trade(s, market, side, size, **order))
    _show_fill(actions.await_fill(s, c.order_id, settle, wait, c.block))


@on_chain(trade, "close")
@click.argument("market")
@order_options(wait=True)
def trade_close(s: Session, market: str, settle: bool, wait: float, **order: Any) -> None:
    """Close the whole position in MARKET."""
    c = _show_commit(actions.close_trade(s, market, **order))
    _show_fill(actions.await_fill(s, c.order_id, settle, wait, c.block))


def _show_commit(c: actions.Committed) -> actions.Committed:
    pre = (f"created account {c.account_id}; " if c.created else "") + (
        f"deposited {c.deposited}; " if c.deposited else ""
    )
    click.echo(
        f"{pre}order {c.order_id}: {c.market} {c.size:+f} on account {c.account_id}, executor fee {c.executor_fee}"
        f" (from the {'wallet' if c.fee_from_wallet else 'margin'}); fills at the first price published at or"
        f" after {c.due_time}, expires after {c.expiry}"
    )
    return c


def _show_fill(f: actions.Fill) -> None:
    if f.status == "pending":
        click.echo(f"order {f.order_id} is pending: a keeper settles it, or `lever order settle {f.order_id}`")
        return
    click.echo(
        f"order {f.order_id} filled: {f.market} {f.size:+f} at {f.fill_price:,.4f}; trade fee {f.trade_fee},"
        f" realised {f.realised}, executor fee {f.executor_fee} to {f.settled_by}"
    )
    if (p := f.position) is None:
        click.echo(f"no position in {f.market} any more")
    else:
        health = "-" if p.health is None else f"{p.health:.3f}"
        liq = "-" if p.liquidation_price is None else f"{p.liquidation_price:,.2f}"
        click.echo(
            f"position {p.market} {p.size:+f} at {p.entry_price:,.2f}; account {p.account_id}: margin {p.margin:,f},"
            f" equity {p.equity:,.2f}, health {health}, liquidation price {liq}"
        )


order = Group("order", help="Pending orders: list, cancel, settle; limit, stop-loss and take-profit orders.")
cli.add_command(order)


@on_chain(order, "list")
@click.option("--account-id", type=int, help="one account (default: every account of the signer)")
def order_list(s: Session, account_id: int | None) -> None:
    """The signer's pending orders."""
    rows = actions.list_orders(s, account_id)
    for o in rows:
        trigger, expiry = (
            f" trigger {o.trigger:,f}" if o.trigger else "",
            f", expires after {o.expiry}" if o.expiry else "",
        )
        click.echo(
            f"{o.order_id}: account {o.account_id} {o.kind}{' (triggered)' if o.triggered else ''} {o.market}"
            f" {o.size:+f}{trigger} (executor fee"
            f" {o.executor_fee}, {'triggered' if o.triggered else 'placed'} at {o.placed_at}{expiry})"
        )
    if not rows:
        click.echo("no pending orders")


@on_chain(order, "cancel")
@click.argument("order_id", type=int)
def order_cancel(s: Session, order_id: int) -> None:
    """Cancel ORDER_ID: a conditional order until it triggers, a market or triggered order once expired."""
    r = actions.cancel_order(s, order_id)
    click.echo(f"cancelled order {r.order_id}; its executor fee {r.executor_fee} went to the {r.fee_to}")


@on_chain(order, "settle")
@click.argument("order_id", type=int)
@click.option("--wait", type=float, default=60.0, show_default=True, help="seconds to wait for its price")
def order_settle(s: Session, order_id: int, wait: float) -> None:
    """Settle a market order (or a triggered conditional one) yourself, with its price from the price service."""
    _show_fill(actions.settle_order(s, order_id, wait))


def _conditional(kind: str) -> None:
    @on_chain(order, kind)
    @click.argument("market")
    @click.argument("trigger", type=AMOUNT)
    @click.option(
        "--size",
        type=Decimal,
        help="signed size (default for stop/take-profit: the whole position)",
    )
    @order_options(wait=False)
    def command(s: Session, market: str, trigger: Decimal, size: Decimal | None, **order: Any) -> None:
        r = actions.place_conditional(s, kind, market, trigger, size, **order)
        click.echo(
            f"{r.kind} order {r.order_id}: {r.market} {r.size:+f} at {r.trigger} (executor fee {r.executor_fee}"
            f" from the {'wallet' if r.fee_from_wallet else 'margin'})"
        )

    command.help = f"Place a {kind} order on MARKET at TRIGGER (USD)."


for _kind in actions.KINDS:
    _conditional(_kind)


lp = Group(
    "lp",
    help="The liquidity pool (ERC-7540: request, then a settlement at the next prices, then claim).",
)
cli.add_command(lp)


def _lp_request(deposit: bool) -> None:
    @on_chain(lp, "deposit" if deposit else "redeem")
    @click.argument("amount")
    @wait_options
    def command(s: Session, amount: str, settle: bool, wait: float) -> None:
        r = actions.lp_request(s, deposit, amount)
        click.echo(
            f"requested {'a deposit' if r.deposit else 'a redemption'} of {r.amount} (executor fee"
            f" {r.executor_fee}); settles at prices published from {r.price_from}, after {r.due_time}"
        )
        if (claim := actions.lp_complete(s, r, settle, wait)) is not None:
            _show_claim(claim)
        else:
            click.echo("pending: a keeper settles it (or --settle), then `lever lp claim`")

    command.help = (
        "Request a deposit of AMOUNT collateral; claim the shares once settled."
        if deposit
        else "Request a redemption of AMOUNT lvLP (a number, or `all`); claim the assets once settled."
    )


_lp_request(True)
_lp_request(False)


@on_chain(lp, "claim")
def lp_claim(s: Session) -> None:
    """Claim what settled requests left claimable (shares of deposits, assets of redemptions)."""
    for claim in actions.lp_claim(s):
        _show_claim(claim)


def _show_claim(c: actions.LpClaim) -> None:
    click.echo(f"claimed: {'deposited' if c.deposit else 'redeemed'} {c.assets:,f} for {c.shares:,f} lvLP")


@cli.command()
@click.option("--traders", type=int, default=60, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option(
    "--crash",
    type=AMOUNT,
    default="0.35",
    show_default=True,
    help="ETH's fall at the bottom, as a share",
)
@click.option("--out", type=click.Path(path_type=Path), default=Path("build/demo"), show_default=True)
@click.option("--network", default=DEFAULT_NETWORK, show_default=True)
@click.option(
    "--dashboard",
    is_flag=True,
    help="serve the dashboard during the crash (and after it, until Ctrl-C)",
)
@click.option(
    "--dashboard-port",
    type=click.IntRange(0, 65535),
    default=8050,
    show_default=True,
    help="0: a free port",
)
def demo(
    traders: int,
    seed: int,
    crash: Decimal,
    out: Path,
    network: str,
    dashboard: bool,
    dashboard_port: int,
) -> None:
    """A market crash on a local chain: LPs, traders, a crash, the keeper; writes a report."""
    plan = scenario.Plan(seed=seed, traders=traders, crash=crash)
    scenario.main(plan, out, network, dashboard_port if dashboard else None)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        OneLine(exc.format_message()).show()
        sys.exit(exc.exit_code)


if __name__ == "__main__":  # python -m lever.cli (the keeper tests run the process this way)
    main()
