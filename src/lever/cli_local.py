"""`lever price` and `lever token`: the local chains' stand-ins (reference feeds, the price
service, the mock collateral token)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import click

from lever import actions, priceservice
from lever.actions import Session
from lever.clitools import AMOUNT, Group, on_chain

price = Group("price", help="Prices on local chains: the reference feeds and the price service.")


@on_chain(price, "set")
@click.argument("market")
@click.argument("value", type=AMOUNT)
def price_set(s: Session, market: str, value: Decimal) -> None:
    """Set MARKET's price to VALUE (USD): a reference round and a price-service publication."""
    r = actions.set_price(s, market, value)
    where = f"published at {r.publish_time}" if r.publish_time else f"price service {s.prices_url} not reachable"
    click.echo(f"{r.market} set to {r.usd} USD (reference answer {r.reference_answer}; {where})")


@price.command("serve")
@click.option("--port", type=int, default=8547, show_default=True)
@click.option(
    "--rpc-url",
    default="http://127.0.0.1:8545",
    show_default=True,
    help="the node whose clock it follows",
)
@click.option(
    "--deployment",
    type=click.Path(path_type=Path),
    help="deployment record (default: the node's chain id)",
)
def price_serve(port: int, rpc_url: str, deployment: Path | None) -> None:
    """Run a Hermes-shaped price service for a local deployment (foreground)."""
    priceservice.serve(rpc_url, port, deployment)


token = Group("token", help="The mock collateral token (local chains).")


@on_chain(token, "mint")
@click.argument("amount", type=AMOUNT)
@click.option("--to", help="recipient address (default: the signer)")
def token_mint(s: Session, amount: Decimal, to: str | None) -> None:
    """Mint AMOUNT of the mock collateral token."""
    r = actions.mint(s, amount, to)
    click.echo(f"minted {r.amount} {r.symbol} to {r.recipient}")
