"""`lever admin`: parameter changes through the timelock (schedule, execute, status)."""

from __future__ import annotations

import click

from lever import governance as g
from lever.actions import Session
from lever.clitools import Group, on_chain

admin = Group("admin", help="Parameter changes through the timelock.")


@on_chain(admin, "schedule")
@click.argument("what", type=click.Choice(["market", "liquidation"]))
@click.argument("assignments", nargs=-1, required=True)
@click.option("--delay", type=int, help="seconds (default: the timelock's minimum)")
def admin_schedule(s: Session, what: str, assignments: tuple[str, ...], delay: int | None) -> None:
    """Schedule a change: `market ETH-USD taker_fee=0.0006 ...` or `liquidation penalty_ratio=0.01`."""
    op = g.schedule_change(s.protocol, s.signer, what, assignments, delay)
    click.echo(f"scheduled 0x{op.id.hex()} on {op.module}; {op.state}, ready at {op.ready_at}")


@on_chain(admin, "execute")
@click.argument("operation")
def admin_execute(s: Session, operation: str) -> None:
    """Execute a scheduled OPERATION (its id) once its delay has passed."""
    op = g.execute(s.protocol, s.signer, g.operation_id(operation))
    click.echo(f"executed 0x{op.id.hex()} on {op.module}")


@on_chain(admin, "status")
def admin_status(s: Session) -> None:
    """Every scheduled operation and its state."""
    for op in g.status(s.protocol):
        click.echo(f"0x{op.id.hex()} {op.module}: {op.state} (ready at {op.ready_at})")
