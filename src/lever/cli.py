"""The `lever` command line: options and rendering around one call to `lever.actions` (or the
keeper, the demo, the price service). A user's mistake is one line on stderr and a non-zero exit."""

from __future__ import annotations

import json
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click

from lever.errors import ConfigError, LeverError
from lever.keeper.settings import DEFAULT_NETWORK, DEFAULT_PRICE_SERVICE


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


def common(fn: Any) -> Any:
    """--network, --account and --price-service, shared by every command that talks to a chain."""
    fn = click.option("--network", default=DEFAULT_NETWORK, show_default=True, envvar="LEVER_NETWORK",
                      help="ape network choice (ecosystem:network:provider) or an RPC URL")(fn)
    fn = click.option("--account", help="signer: an ape account alias, or test:N (local chains; default test:0)")(fn)
    return click.option("--price-service", default=DEFAULT_PRICE_SERVICE, show_default=True,
                        envvar="LEVER_PRICE_SERVICE", help="Hermes-shaped price service")(fn)


def order_options(fn: Any) -> Any:
    fn = click.option("--account-id", type=int, help="Lever account (default: the signer's first)")(fn)
    fn = click.option("--acceptable-price", type=AMOUNT, help="cancel the order if it would fill worse than this")(fn)
    return click.option("--executor-fee", type=AMOUNT, default="0.5", show_default=True,
                        help="paid to whoever settles the order")(fn)


class OneLine(click.ClickException):
    """A user's mistake: printed as one `error: ...` line."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class _Group(click.Group):
    """Every `LeverError` raised below becomes one line and exit code 1 (a usage error: 2)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LeverError as exc:
            raise OneLine(str(exc)) from None
        except click.UsageError as exc:
            error = OneLine(exc.format_message())
            error.exit_code = 2
            raise error from None


@click.group(cls=_Group)
def cli() -> None:
    """Lever: leveraged perpetuals — deploy, inspect, trade, provide liquidity, keep."""
    from ape.logging import logger

    logger.set_level("WARNING")  # ape's per-transaction INFO lines would drown the output


def _session(network: str, account: str | None, price_service: str) -> Any:
    from lever import actions

    return actions.session(network, account, price_service)


# --------------------------------------------------------------------------- deploy, status


@cli.command()
@common
@click.option("--params", type=click.Path(path_type=Path), help="parameter file (default: config/<network>.toml)")
@click.option("--fresh", is_flag=True, help="deploy even if a deployment is recorded for this chain")
def deploy(network: str, account: str | None, price_service: str, params: Path | None, fresh: bool) -> None:
    """Deploy the protocol and record it in deployments/<chain id>.json."""
    from lever import app

    with app.connected(network) as provider:
        protocol, path, note = app.deploy(provider, app.signer(account, provider), app.config_for(provider, params),
                                          fresh=fresh)
        click.echo(note or f"deployed to chain {provider.chain_id} at block {protocol.deploy_block}; recorded in {path}")


@cli.command()
@common
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of tables")
def status(network: str, account: str | None, price_service: str, as_json: bool) -> None:
    """Markets, pool, insurance fund, solvency, and every account with a position."""
    from lever.status import read_status, render_status

    with _session(network, account, price_service) as s:
        state = read_status(s.reader)
    click.echo(json.dumps(state.to_dict(), indent=2, default=str)) if as_json else render_status(state)


# --------------------------------------------------------------------------- prices, token


@cli.group()
def price() -> None:
    """Prices on local chains: the reference feeds and the price service."""


@price.command("set")
@click.argument("market")
@click.argument("value", type=AMOUNT)
@common
def price_set(market: str, value: Decimal, network: str, account: str | None, price_service: str) -> None:
    """Set MARKET's price to VALUE (USD): a reference round and a price-service publication."""
    from lever import actions

    with _session(network, account, price_service) as s:
        r = actions.set_price(s, market, value)
    where = f"published at {r.publish_time}" if r.publish_time else f"[price service {price_service} not reachable]"
    click.echo(f"{market} set to {value} USD (reference answer {r.reference_answer}; {where})")


@price.command("serve")
@click.option("--port", type=int, default=8547, show_default=True)
@click.option("--rpc-url", default="http://127.0.0.1:8545", show_default=True, help="the node whose clock it follows")
@click.option("--deployment", type=click.Path(path_type=Path), help="deployment record (default: the node's chain id)")
def price_serve(port: int, rpc_url: str, deployment: Path | None) -> None:
    """Run a Hermes-shaped price service for a local deployment (foreground)."""
    from lever import priceservice

    priceservice.serve(rpc_url, port, deployment)


@cli.group()
def token() -> None:
    """The mock collateral token (local chains)."""


@token.command("mint")
@click.argument("amount", type=AMOUNT)
@click.option("--to", "recipient", help="recipient (default: the signer)")
@common
def token_mint(amount: Decimal, recipient: str | None, network: str, account: str | None, price_service: str) -> None:
    """Mint AMOUNT of the mock collateral token."""
    from lever import actions

    with _session(network, account, price_service) as s:
        click.echo(f"minted {amount} to {actions.mint(s, amount, recipient)}")


# --------------------------------------------------------------------------- margin, trades, orders


@cli.group("margin")
def margin_group() -> None:
    """Collateral in a Lever account."""


@margin_group.command("deposit")
@click.argument("amount", type=AMOUNT)
@click.option("--account-id", type=int, help="Lever account (default: the signer's first; created if none)")
@common
def margin_deposit(amount: Decimal, account_id: int | None, network: str, account: str | None, price_service: str) -> None:
    """Deposit AMOUNT of collateral into a Lever account."""
    from lever import actions

    with _session(network, account, price_service) as s:
        target, _ = actions.account_for(s, account_id)
        actions.deposit_margin(s, target, actions.scaled(amount, s.decimals, "amount"))
    click.echo(f"deposited {amount} into account {target}")


@margin_group.command("withdraw")
@click.argument("amount", type=AMOUNT)
@click.option("--account-id", type=int, help="Lever account (default: the signer's first)")
@common
def margin_withdraw(amount: Decimal, account_id: int | None, network: str, account: str | None, price_service: str) -> None:
    """Withdraw AMOUNT of collateral from a Lever account to the signer."""
    from lever import actions

    with _session(network, account, price_service) as s:
        target, _ = actions.account_for(s, account_id, create=False)
        actions.withdraw_margin(s, target, actions.scaled(amount, s.decimals, "amount"))
    click.echo(f"withdrew {amount} from account {target}")


@cli.group()
def trade() -> None:
    """Open and close positions: commit an order, then a keeper (or you, --settle) settles it."""


@trade.command("open")
@click.argument("market")
@click.argument("side", type=click.Choice(["long", "short"]))
@click.argument("size", type=AMOUNT)
@click.option("--margin", type=AMOUNT, help="deposit this much collateral first")
@click.option("--leverage", type=AMOUNT, help="deposit notional / leverage + fees first")
@click.option("--settle", is_flag=True, help="settle it yourself once its price is published")
@click.option("--wait", type=float, default=60.0, show_default=True, help="seconds to wait for the fill")
@order_options
@common
def trade_open(market: str, side: str, size: Decimal, margin: Decimal | None, leverage: Decimal | None, settle: bool,
               wait: float, account_id: int | None, acceptable_price: Decimal | None, executor_fee: Decimal,
               network: str, account: str | None, price_service: str) -> None:
    """Open or increase a SIDE position of SIZE (base units) in MARKET."""
    from lever import actions

    if margin is not None and leverage is not None:
        raise ConfigError("pass --margin or --leverage, not both")
    if size == 0 or (leverage is not None and leverage <= 0):
        raise ConfigError("the size and the leverage must be above zero")
    with _session(network, account, price_service) as s:
        signed = size if side == "long" else -size
        fee = actions.scaled(executor_fee, s.decimals, "executor fee")
        deposit = actions.scaled(margin, s.decimals, "margin") if margin is not None else 0
        if leverage is not None:
            deposit = actions.margin_for_leverage(s, market, actions.scaled(size, 18, "size"), leverage, fee)
        committed = actions.commit(s, market, signed, account_id, acceptable_price, executor_fee, deposit)
        _report(s, committed, settle, wait)


@trade.command("close")
@click.argument("market")
@click.option("--settle", is_flag=True, help="settle it yourself once its price is published")
@click.option("--wait", type=float, default=60.0, show_default=True, help="seconds to wait for the fill")
@order_options
@common
def trade_close(market: str, settle: bool, wait: float, account_id: int | None, acceptable_price: Decimal | None,
                executor_fee: Decimal, network: str, account: str | None, price_service: str) -> None:
    """Close the whole position in MARKET."""
    from lever import actions

    with _session(network, account, price_service) as s:
        _report(s, actions.close(s, market, account_id, acceptable_price, executor_fee), settle, wait)


def _report(s: Any, c: Any, settle: bool, wait: float) -> None:
    from lever import actions

    click.echo(f"order {c.order_id}: {c.market} {c.size:+,f} on account {c.account_id}; fills at the first price"
               f" published at or after {c.due_time} (expires {c.expiry})")
    fill = actions.settle_order(s, c.order_id, wait) if settle else actions.wait_for_order(s, c.order_id, wait)
    if fill.status == "pending":
        click.echo(f"order {c.order_id} is pending: a keeper settles it, or `lever order settle {c.order_id}`")
        return
    if fill.status == "cancelled":
        raise LeverError(f"order {c.order_id} was cancelled: {fill.reason}")
    pos = actions.position_summary(s, c.account_id, c.market)
    line = f"filled at {fill.fill_price:,.4f}"
    if pos is not None:
        liq = f"{pos.liquidation_price:,.2f}" if pos.liquidation_price else "-"
        health = f"{pos.health:.3f}" if pos.health is not None else "-"
        line += f"; position {pos.size:+,f} at {pos.entry_price:,.2f}, equity {pos.equity:,.2f}, health {health}, liquidation price {liq}"
    click.echo(line)


@cli.group()
def order() -> None:
    """Pending orders: list, cancel, settle; limit, stop-loss and take-profit orders."""


@order.command("list")
@click.option("--account-id", type=int)
@common
def order_list(account_id: int | None, network: str, account: str | None, price_service: str) -> None:
    """The signer's pending orders."""
    from lever import actions

    with _session(network, account, price_service) as s:
        names = {v: k for k, v in s.protocol.markets.items()}
        for o in actions.list_orders(s, account_id):
            trigger = f" trigger {Decimal(o.trigger_price) / 10**18:,f}" if o.trigger_price else ""
            click.echo(f"{o.order_id}: account {o.account} {o.kind.name.lower()} {names[o.market_id]}"
                       f" {Decimal(o.size_delta) / 10**18:+,f}{trigger} (placed {o.updated_at})")


@order.command("cancel")
@click.argument("order_id", type=int)
@common
def order_cancel(order_id: int, network: str, account: str | None, price_service: str) -> None:
    """Cancel ORDER_ID (a market order only once it expired)."""
    from lever import actions

    with _session(network, account, price_service) as s:
        actions.cancel_order(s, order_id)
    click.echo(f"cancelled order {order_id}")


@order.command("settle")
@click.argument("order_id", type=int)
@click.option("--wait", type=float, default=60.0, show_default=True)
@common
def order_settle(order_id: int, wait: float, network: str, account: str | None, price_service: str) -> None:
    """Settle a market order yourself, with its price from the price service."""
    from lever import actions

    with _session(network, account, price_service) as s:
        fill = actions.settle_order(s, order_id, wait)
    click.echo(f"order {order_id}: {fill.status}" + (f" at {fill.fill_price:,.4f}" if fill.fill_price else f" ({fill.reason})"))


def _conditional(kind: str) -> Any:
    @click.argument("market")
    @click.argument("trigger", type=AMOUNT)
    @click.option("--size", type=Decimal, help="signed size (default for stop/take-profit: the whole position)")
    @order_options
    @common
    def command(market: str, trigger: Decimal, size: Decimal | None, account_id: int | None,
                acceptable_price: Decimal | None, executor_fee: Decimal, network: str, account: str | None,
                price_service: str) -> None:
        from lever import actions

        if kind == "limit" and size is None:
            raise ConfigError("a limit order needs --size (positive buys, negative sells)")
        with _session(network, account, price_service) as s:
            order_id = actions.place_conditional(s, kind, market, size, trigger, account_id, acceptable_price, executor_fee)
        click.echo(f"{kind} order {order_id} on {market} at {trigger}")

    command.__doc__ = f"Place a {kind} order on MARKET at TRIGGER (USD)."
    return command


for _kind in ("limit", "stop", "take-profit"):
    order.command(_kind)(_conditional(_kind))


# --------------------------------------------------------------------------- liquidity pool


@cli.group()
def lp() -> None:
    """The liquidity pool (ERC-7540: request, then settle, then claim)."""


def _lp(deposit: bool, amount: str, settle: bool, wait: float, network: str, account: str | None, price_service: str) -> None:
    from lever import actions

    with _session(network, account, price_service) as s:
        v = s.protocol.vault
        if deposit:
            units = actions.scaled(AMOUNT.convert(amount, None, None), s.decimals, "amount")
        else:
            held = int(v.balanceOf(s.signer.address))
            units = held if amount == "all" else actions.scaled(AMOUNT.convert(amount, None, None), s.decimals + 6, "shares")
        r = actions.lp_request(s, deposit, units)
        click.echo(f"requested; settles at prices published from {r.due_time - s.reader.lp_params()[2]}")
        if settle:
            actions.lp_settle(s, deposit, wait)
        elif not actions.lp_wait(s, deposit, wait):
            click.echo("pending: a keeper settles it (or `--settle`), then `lever lp claim`")
            return
        claimed = actions.lp_claim(s, deposit)
    click.echo(f"claimed {claimed.shares / Decimal(10 ** (s.decimals + 6)):,f} lvLP for {s.tokens(claimed.assets):,f}")


@lp.command("deposit")
@click.argument("amount")
@click.option("--settle", is_flag=True, help="settle it yourself")
@click.option("--wait", type=float, default=60.0, show_default=True)
@common
def lp_deposit(amount: str, settle: bool, wait: float, network: str, account: str | None, price_service: str) -> None:
    """Request a deposit of AMOUNT collateral, and claim the shares once settled."""
    _lp(True, amount, settle, wait, network, account, price_service)


@lp.command("redeem")
@click.argument("shares")
@click.option("--settle", is_flag=True, help="settle it yourself")
@click.option("--wait", type=float, default=60.0, show_default=True)
@common
def lp_redeem(shares: str, settle: bool, wait: float, network: str, account: str | None, price_service: str) -> None:
    """Request a redemption of SHARES lvLP (a number, or `all`), and claim the assets once settled."""
    _lp(False, shares, settle, wait, network, account, price_service)


# --------------------------------------------------------------------------- governance


@cli.group()
def admin() -> None:
    """Parameter changes through the timelock."""


@admin.command("schedule")
@click.argument("what", type=click.Choice(["market", "liquidation"]))
@click.argument("target_or_assignment")
@click.argument("assignments", nargs=-1)
@click.option("--delay", type=int, help="seconds (default: the timelock's minimum)")
@common
def admin_schedule(what: str, target_or_assignment: str, assignments: tuple[str, ...], delay: int | None,
                   network: str, account: str | None, price_service: str) -> None:
    """Schedule a change: `market ETH-USD taker_fee=0.0006 ...` or `liquidation penalty_ratio=0.01`."""
    from lever import governance as g

    with _session(network, account, price_service) as s:
        if what == "market":
            change = g.market_params_change(s.protocol, target_or_assignment, g.parse_assignments(assignments))
        else:
            change = g.liquidation_params_change(s.protocol, g.parse_assignments((target_or_assignment, *assignments)))
        op = g.schedule(s.protocol, s.signer, change, delay)
    click.echo(f"scheduled 0x{op.id.hex()} ({change.description}); {op.state}, ready at {op.ready_at}")


@admin.command("execute")
@click.argument("operation")
@common
def admin_execute(operation: str, network: str, account: str | None, price_service: str) -> None:
    """Execute a scheduled OPERATION (its id) once its delay has passed."""
    from lever import governance as g

    with _session(network, account, price_service) as s:
        op = g.execute(s.protocol, s.signer, bytes.fromhex(operation.removeprefix("0x")))
    click.echo(f"executed 0x{op.id.hex()} on {op.module}")


@admin.command("status")
@common
def admin_status(network: str, account: str | None, price_service: str) -> None:
    """Every scheduled operation and its state."""
    from lever import governance as g

    with _session(network, account, price_service) as s:
        for op in g.status(s.protocol):
            click.echo(f"0x{op.id.hex()} {op.module}: {op.state} (ready at {op.ready_at})")


# --------------------------------------------------------------------------- keeper, demo


@cli.group()
def keeper() -> None:
    """The keeper: liquidations, orders and LP requests."""


@keeper.command("run")
@click.option("--network", help="ape network choice, e.g. ethereum:local:foundry")
@click.option("--rpc-url", help="connect straight to this RPC instead of through ape")
@click.option("--price-service", help="Hermes-shaped price service URL")
@click.option("--deployment", type=click.Path(path_type=Path), help="deployment record (default: deployments/<chain id>.json)")
@click.option("--config", "config_file", type=click.Path(path_type=Path), help="TOML file of keeper settings")
@click.option("--account", help="signer: `test:N` for ape's N-th test account; else LEVER_PRIVATE_KEY")
@click.option("--dry-run", is_flag=True, default=None, help="log what would be sent, send nothing")
@click.option("--poll-interval", type=float)
@click.option("--max-batch", type=int)
@click.option("--metrics-port", type=int, help="serve /metrics and /health on 127.0.0.1 (0: off)")
@click.option("--max-steps", type=int, hidden=True)
def keeper_run(config_file: Path | None, account: str | None, max_steps: int | None, **flags: Any) -> None:
    """Watch every account and order; liquidate, settle, execute."""
    from lever.keeper.service import run_keeper

    sys.exit(run_keeper(flags, config_file, account, max_steps))


@cli.command()
@click.option("--traders", type=int, default=60, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--crash", type=AMOUNT, default="0.35", show_default=True, help="ETH's fall at the bottom, as a share")
@click.option("--out", type=click.Path(path_type=Path), default=Path("build/demo"), show_default=True)
@click.option("--network", default=DEFAULT_NETWORK, show_default=True)
def demo(traders: int, seed: int, crash: Decimal, out: Path, network: str) -> None:
    """A market crash on a local chain: LPs, traders, a crash, the keeper; writes a report."""
    from lever import demo as scenario

    scenario.main(scenario.Plan(seed=seed, traders=traders, crash=crash), out, network)


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
