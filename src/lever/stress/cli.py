"""`lever stress`: run a sweep and its report, replay a cell on Anvil, recommend parameters.

The click group `stress` (registered by the main `lever` CLI). A user's mistake is one
`error: ...` line and exit code 1 (a usage error: 2)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from lever.errors import LeverError
from lever.stress.errors import StressError

DEFAULT_OUT = Path("build/stress")


class _OneLine(click.ClickException):
    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LeverError as exc:
            raise _OneLine(str(exc)) from None


@click.group(name="stress", cls=_Group)
def stress() -> None:
    """The stress lab: scenario sweeps, risk reports, chain replays, parameter recommendations."""


@stress.command("run")
@click.option("--name", default="default", show_default=True, help="the report's folder: build/stress/NAME")
@click.option("--scenario", "scenarios", multiple=True, help="a scenario (repeatable; default: five crashes)")
@click.option("--seeds", type=int, default=None, help="seeds per scenario and parameter set [default: 4]")
@click.option(
    "--grid",
    "grid",
    multiple=True,
    metavar="NAME=V1,V2,...",
    help="a swept parameter (repeatable; the first two make the heatmap)",
)
@click.option(
    "--random",
    "random_points",
    type=int,
    default=0,
    help="random search: this many points between each --grid parameter's first and last value",
)
@click.option("--accounts", type=int, default=None, help="trader accounts per cell [default: 300]")
@click.option("--steps", type=int, default=None, help="blocks per cell [default: 300]")
@click.option("--engine", type=click.Choice(["vector", "exact"]), default="vector", show_default=True)
@click.option("--scheduler", help="a Dask scheduler (tcp://host:port); default: local processes")
@click.option("--workers", type=int, default=None, help="local worker processes (0: in this process)")
@click.option("--impact-depth", type=float, default=None, help="market impact: USD of liquidations per 100%% move")
@click.option("--keeper-latency", type=int, default=None, help="blocks before the keeper acts")
@click.option("--keeper-capacity", type=int, default=None, help="liquidations per block (0: from the gas limit)")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_OUT, show_default=True)
@click.option("--pictures", type=click.Path(path_type=Path), help="also save the report's pictures as PNGs here")
@click.option("--list", "list_", is_flag=True, help="list the scenario library and exit")
def run_cmd(
    name: str,
    scenarios: tuple[str, ...],
    seeds: int | None,
    grid: tuple[str, ...],
    random_points: int,
    accounts: int | None,
    steps: int | None,
    engine: str,
    scheduler: str | None,
    workers: int | None,
    impact_depth: float | None,
    keeper_latency: int | None,
    keeper_capacity: int | None,
    out: Path,
    pictures: Path | None,
    list_: bool,
) -> None:
    """Run a sweep (parameters x scenarios x seeds) and write its report."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from lever.stress import report as report_
    from lever.stress.scenarios import describe, load_library
    from lever.stress.sweep import SweepSpec, parse_grid, run_sweep

    console = Console()
    if list_:
        for n, family, text in describe(load_library()):
            console.print(f"[bold]{n}[/] ({family}): {text}")
        return
    if not name or "/" in name or name.startswith("."):
        raise StressError(f"--name {name!r}: a plain folder name, e.g. default")
    spec = SweepSpec(name=name)
    changes: dict[str, Any] = {}
    if scenarios:
        changes["scenarios"] = tuple(scenarios)
    if seeds is not None:
        changes["seeds"] = seeds
    if grid:
        changes["grid"] = parse_grid(grid)
    if random_points:
        changes["random"] = random_points
    if accounts is not None:
        changes["accounts"] = accounts
    if steps is not None:
        changes["steps"] = steps
    agents = spec.agents
    if impact_depth is not None:
        agents = replace(agents, impact_depth_usd=impact_depth)
    if keeper_latency is not None:
        agents = replace(agents, keeper_latency=keeper_latency)
    if keeper_capacity is not None:
        agents = replace(agents, keeper_capacity=keeper_capacity)
    spec = replace(spec, engine=engine, agents=agents, **changes)
    if spec.accounts < 1 or spec.steps < 10:
        raise StressError("--accounts must be at least 1 and --steps at least 10")
    total = len(spec.cells())
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    ) as bar:
        task = bar.add_task(f"sweep {name}: {total} cells", total=total)
        result = run_sweep(
            spec, scheduler=scheduler, workers=workers, progress=lambda done, _: bar.update(task, completed=done)
        )
        bar.update(task, description=f"report {name}")
        json_path, html_path = report_.write(result, out / name)
    _summary(console, result)
    console.print(f"wrote {json_path} and {html_path}")
    if pictures is not None:
        for path in report_.save_pictures(result, pictures):
            console.print(f"wrote {path}")


def _summary(console: Any, result: Any) -> None:
    from rich.table import Table

    table = Table(
        title=f"{len(result.runs)} cells in {result.seconds:.1f} s "
        f"({result.account_steps / max(result.seconds, 1e-9):,.0f} account-steps/s)"
    )
    for col in ("scenario", "parameters", "bad debt ES99", "P(dry)", "LP dd p99", "liquidations"):
        table.add_column(col, justify="right" if col != "parameters" else "left")
    for c in sorted(result.cells(), key=lambda c: (-c.bad_debt_es99, c.scenario))[:12]:
        knobs = ", ".join(f"{k}={v}" for k, v in sorted(c.knobs.items())) or "shipped"
        table.add_row(
            c.scenario,
            knobs,
            f"${c.bad_debt_es99:,.0f}",
            f"{c.insurance_dry_probability:.0%}",
            f"{c.lp_drawdown_p99:.2%}",
            f"{c.liquidations_mean:,.1f}",
        )
    console.print(table)


@stress.command("replay")
@click.argument("cell")
@click.option("--accounts", type=int, default=10, show_default=True)
@click.option("--steps", type=int, default=16, show_default=True)
@click.option("--network", default="ethereum:local:foundry", show_default=True, help="an Anvil (ape network choice)")
def replay_cmd(cell: str, accounts: int, steps: int, network: str) -> None:
    """Replay CELL (scenario/seed[/name=value,...]) on Anvil with the real contracts and keeper,
    and check that the chain's outcome equals the exact engine's to the wei."""
    from rich.console import Console

    from lever.stress.model import REPLAY_AGENTS, make_cell

    scenario, seed, knobs = parse_cell(cell)
    built = make_cell(scenario, seed, steps, knobs, replace(REPLAY_AGENTS, accounts=accounts), replay=True)
    from lever import app
    from lever.stress.replay import replay

    console = Console()
    with app.connected(network) as provider, app._quiet_traces():
        from ape import accounts as ape_accounts

        report = replay(built, provider, app.project(), ape_accounts.test_accounts)
    console.print(
        f"{report.cell}: {report.steps + 1} blocks, {report.accounts} accounts, {report.transactions} agent "
        f"transactions, {report.liquidations} liquidations (all by the keeper: "
        f"{report.keeper_liquidations}), bad debt {report.bad_debt_token / 10**6:,.6f} USDC"
    )
    console.print(
        f"[green]chain == exact engine[/]: {report.compared:,} values compared to the wei, 0 mismatches "
        f"({report.seconds:.1f} s)"
    )


def parse_cell(text: str) -> tuple[str, int, dict[str, str]]:
    parts = text.split("/")
    if not 1 <= len(parts) <= 3 or not parts[0]:
        raise StressError(f"cell {text!r}: expected scenario/seed[/name=value,...], e.g. replay-crash/8")
    seed = 1
    if len(parts) > 1:
        if not parts[1].isdigit():
            raise StressError(f"cell {text!r}: the seed must be a whole number")
        seed = int(parts[1])
    knobs: dict[str, str] = {}
    if len(parts) == 3 and parts[2]:
        for item in parts[2].split(","):
            if "=" not in item:
                raise StressError(f"cell {text!r}: parameter {item!r} is not name=value")
            k, v = item.split("=", 1)
            knobs[k.strip()] = v.strip()
    return parts[0], seed, knobs


@stress.command("recommend")
@click.option(
    "--budget",
    default="es99<=insurance",
    show_default=True,
    help="conditions metric<=value joined by commas (metrics: es99, var99, mean, dry, drawdown, "
    "drawdown99, saturated, unpaid; value: a number or `insurance`)",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(path_type=Path),
    default=DEFAULT_OUT / "default" / "report.json",
    show_default=True,
)
@click.option("--require", is_flag=True, help="exit with code 3 when no parameter set meets the budget")
def recommend_cmd(budget: str, report_path: Path, require: bool) -> None:
    """Print the swept parameter set that meets the budget in every scenario with the lowest margin
    requirement."""
    from rich.console import Console
    from rich.table import Table

    from lever.stress.recommend import load_report, parse_budget, recommend

    conditions = parse_budget(budget)
    data = load_report(report_path)
    found = recommend(data, conditions)
    console = Console()
    if found is None:
        console.print(
            f"[bold red]no parameter set[/] in {report_path} meets {budget} in every scenario: sweep "
            "stricter parameters (higher margins, lower maximum leverage) or relax the budget"
        )
        _closest(console, data, conditions)
        if require:
            raise SystemExit(3)
        return
    knobs = ", ".join(f"{k}={v}" for k, v in sorted(found.knobs.items())) or "the shipped parameters"
    console.print(f"[bold]recommended[/]: {knobs}")
    console.print(
        f"maintenance margin ratio {found.maintenance_margin_ratio}, initial {found.initial_margin_ratio} "
        f"({found.meeting} of {found.candidates} parameter sets meet {budget})"
    )
    table = Table()
    for col in ("scenario", "bad debt ES99", "insurance", "P(dry)", "LP dd p99"):
        table.add_column(col, justify="right")
    for f in found.figures:
        table.add_row(
            f["scenario"],
            f"${f['bad_debt_es99']:,.0f}",
            f"${f['insurance_start']:,.0f}",
            f"{f['insurance_dry_probability']:.0%}",
            f"{f['lp_drawdown_p99']:.2%}",
        )
    console.print(table)


def _closest(console: Any, data: dict[str, Any], conditions: list[Any]) -> None:
    """The parameter sets that break the budget in the fewest scenarios."""
    from rich.table import Table

    groups: dict[str, list[dict[str, Any]]] = {}
    for f in data.get("figures", []):
        groups.setdefault(", ".join(f"{k}={v}" for k, v in sorted(f["knobs"].items())) or "shipped", []).append(f)
    table = Table(title="closest parameter sets")
    for col in ("parameters", "scenarios breaking the budget", "worst bad debt ES99"):
        table.add_column(col)
    ranked = sorted(
        groups.items(),
        key=lambda kv: (
            sum(not all(c.holds(f) for c in conditions) for f in kv[1]),
            max(f["bad_debt_es99"] for f in kv[1]),
        ),
    )
    for knobs, figs in ranked[:5]:
        broken = [f["scenario"] for f in figs if not all(c.holds(f) for c in conditions)]
        table.add_row(knobs, ", ".join(broken), f"${max(f['bad_debt_es99'] for f in figs):,.0f}")
    console.print(table)


if __name__ == "__main__":
    stress()
