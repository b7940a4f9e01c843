"""`lever demo`: a market crash played out on a real local chain, through the same paths an
operator's deployment takes.

Deploys the protocol; runs the price service (Hermes-shaped, `lever price serve`'s) and the keeper
(`lever keeper run`'s, stepped after every action). LPs request deposits; traders commit market
orders (long and short, 2x to near each market's maximum); the keeper settles every request and
every order at the first price published after its delay. Funding accrues for hours, then the
oracle walks down a crash and part of the way back up, and the keeper liquidates what became
unhealthy. Afterwards every block of the run is read back (at that block) to measure how long each
account stayed liquidatable and whether the solvency identity ever broke; the result is
`report.json` and `report.png`.

The plan (traders, price path) is pure and seeded; `run` is the I/O.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import signal
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from lever.errors import ConfigError, LeverError
from lever.units import from_wad

WAD = 10**18


# --------------------------------------------------------------------------- the plan (pure)


@dataclass(frozen=True)
class Plan:
    seed: int = 7
    traders: int = 60
    crash: Decimal = Decimal("0.35")  # the fall from the start price, at the bottom
    recovery: Decimal = Decimal("0.4")  # share of the fall regained afterwards
    btc_beta: Decimal = Decimal("0.6")  # BTC falls this share of ETH's move
    lps: int = 3
    pool_per_lp: int = 400_000  # USD
    warmup_ticks: int = 12  # 50 minutes apart (under the feeds' 1-hour staleness limit): funding accrues for 10 h
    crash_ticks: int = 5
    hold_ticks: int = 3
    recovery_ticks: int = 6

    def check(self) -> None:
        if not 1 <= self.traders <= 500:
            raise ConfigError("--traders must be between 1 and 500")
        if not Decimal(0) < self.crash < Decimal("0.95"):
            raise ConfigError("--crash must be a share between 0 and 0.95, e.g. 0.35")


@dataclass(frozen=True)
class Tick:
    phase: str  # warmup, crash, hold, recovery
    seconds: int  # time advanced before this tick's prices
    prices: dict[str, Decimal]  # market -> USD


@dataclass(frozen=True)
class TraderPlan:
    index: int
    market: str
    long: bool
    notional: int  # USD
    leverage: Decimal


def price_path(plan: Plan, start: dict[str, Decimal]) -> list[Tick]:
    """Warm-up (small moves, 50 minutes apart), a crash over `crash_ticks` blocks, a hold, then a
    partial recovery. ETH carries the crash; BTC follows with `btc_beta`."""
    rng = random.Random(plan.seed)
    ticks = []
    move = Decimal(1)
    for _ in range(plan.warmup_ticks):
        move *= 1 + Decimal(rng.uniform(-0.004, 0.004)).quantize(Decimal("0.0001"))
        ticks.append(("warmup", 3000, move))
    top = move
    bottom = top * (1 - plan.crash)
    for i in range(1, plan.crash_ticks + 1):
        ticks.append(("crash", 12, top + (bottom - top) * i / plan.crash_ticks))
    for _ in range(plan.hold_ticks):
        ticks.append(("hold", 12, bottom))
    back = bottom + (top - bottom) * plan.recovery
    for i in range(1, plan.recovery_ticks + 1):
        ticks.append(("recovery", 12, bottom + (back - bottom) * i / plan.recovery_ticks))
    out = []
    for phase, seconds, eth_move in ticks:
        btc_move = 1 + (eth_move - 1) * plan.btc_beta
        out.append(
            Tick(
                phase,
                seconds,
                {
                    "ETH-USD": (start["ETH-USD"] * eth_move).quantize(Decimal("0.01")),
                    "BTC-USD": (start["BTC-USD"] * btc_move).quantize(Decimal("0.01")),
                },
            )
        )
    return out


def trader_book(plan: Plan, max_leverage: dict[str, int]) -> list[TraderPlan]:
    """Traders spread over both markets (3 in 4 on ETH), 3 in 5 long, leverage from 2x to 88% of
    the maximum, notional $2k-$20k."""
    rng = random.Random(plan.seed * 7919 + 1)
    book = []
    for i in range(plan.traders):
        market = "ETH-USD" if i % 4 else "BTC-USD"
        top = Decimal(max_leverage[market]) * Decimal("0.88")
        leverage = (2 + (top - 2) * Decimal(i % 10) / 9).quantize(Decimal("0.1"))
        book.append(TraderPlan(i, market, i % 5 < 3, rng.randrange(2_000, 20_001, 500), leverage))
    return book


# --------------------------------------------------------------------------- the report (pure)


@dataclass
class BlockRow:
    block: int
    prices: dict[str, int]  # WAD (the stored latest pull prices)
    pool_value: int  # token units: pool assets net of traders' PnL
    insurance: int
    solvent: bool
    liquidatable: set[int]


@dataclass(frozen=True)
class LiquidationRow:
    block: int
    account: int
    full: bool
    reward: int
    penalty: int
    bad_debt: int


@dataclass
class Report:
    traders: int
    lps: int
    seed: int
    crash: str
    orders: dict[str, int]
    liquidations: dict[str, int]
    liquidated_accounts: int
    bad_debt: str
    keeper_rewards: str
    max_blocks_unhealthy: int
    median_blocks_unhealthy: float
    unhealthy_at_end: int
    insurance_before: str
    insurance_after: str
    pool_before: str
    pool_after: str
    solvent_every_block: bool
    blocks_checked: int
    blocks: int
    seconds: float
    phases: dict[str, int] = field(default_factory=dict)  # phase -> first block

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def blocks_unhealthy(rows: list[BlockRow], liquidations: list[LiquidationRow]) -> list[int]:
    """For each liquidation: blocks from the first block of the account's unbroken liquidatable
    run up to the liquidation's block (the keeper acting in the next block counts 1)."""
    by_block = {row.block: row for row in rows}
    out = []
    for liq in liquidations:
        first = liq.block
        while (row := by_block.get(first - 1)) is not None and liq.account in row.liquidatable:
            first -= 1
        out.append(liq.block - first)
    return out


def build_report(
    plan: Plan,
    rows: list[BlockRow],
    liquidations: list[LiquidationRow],
    orders: dict[str, int],
    decimals: int,
    before: BlockRow,
    after: BlockRow,
    seconds: float,
    phases: dict[str, int],
) -> Report:
    waits = blocks_unhealthy(rows, liquidations)

    def usd(amount: int) -> str:
        return f"{Decimal(amount).scaleb(-decimals):.2f}"

    full = sum(1 for liq in liquidations if liq.full)
    return Report(
        traders=plan.traders,
        lps=plan.lps,
        seed=plan.seed,
        crash=str(plan.crash),
        orders=orders,
        liquidations={"total": len(liquidations), "partial": len(liquidations) - full, "full": full},
        liquidated_accounts=len({liq.account for liq in liquidations}),
        bad_debt=usd(sum(liq.bad_debt for liq in liquidations)),
        keeper_rewards=usd(sum(liq.reward for liq in liquidations)),
        max_blocks_unhealthy=max(waits, default=0),
        median_blocks_unhealthy=float(statistics.median(waits)) if waits else 0.0,
        unhealthy_at_end=len(after.liquidatable),
        insurance_before=usd(before.insurance),
        insurance_after=usd(after.insurance),
        pool_before=usd(before.pool_value),
        pool_after=usd(after.pool_value),
        solvent_every_block=all(row.solvent for row in rows),
        blocks_checked=len(rows),
        blocks=after.block - before.block,
        seconds=round(seconds, 1),
        phases=phases,
    )


def plot(rows: list[BlockRow], liquidations: list[LiquidationRow], report: Report, decimals: int, path: Path) -> None:
    """Price path with liquidation markers; pool value and insurance fund below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    rows = [r for r in rows if all(r.prices.values())]
    blocks = [r.block for r in rows]
    index = {m: [Decimal(r.prices[m]) / Decimal(rows[0].prices[m]) * 100 for r in rows] for m in rows[0].prices}
    eth_at = dict(zip(blocks, index["ETH-USD"], strict=True))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True, height_ratios=[3, 2])
    top.plot(blocks, index["ETH-USD"], color="#3c6ee0", lw=2, label="ETH-USD")
    top.plot(blocks, index["BTC-USD"], color="#f2a900", lw=1.5, label="BTC-USD")
    for full, style in (
        (False, {"marker": "v", "color": "#e08a00", "label": "partial liquidation"}),
        (True, {"marker": "x", "color": "#d62728", "label": "full liquidation"}),
    ):
        hits = [liq for liq in liquidations if liq.full == full]
        if hits:
            top.scatter([h.block for h in hits], [eth_at.get(h.block, 0) for h in hits], s=40, zorder=3, **style)
    top.set_ylabel("price index (start = 100)")
    top.set_title(
        f"{report.traders} traders, ETH -{Decimal(report.crash) * 100:.0f}%: "
        f"{report.liquidations['total']} liquidations "
        f"({report.liquidations['partial']} partial, {report.liquidations['full']} full), bad debt ${report.bad_debt}, "
        f"solvent every block: {'yes' if report.solvent_every_block else 'NO'}",
        fontsize=10,
    )
    top.legend(loc="lower left", fontsize=8)
    dollars = matplotlib.ticker.FuncFormatter(lambda v, _: f"${v:,.0f}")
    top.grid(alpha=0.3)
    scale = Decimal(10) ** decimals
    bottom.plot(blocks, [Decimal(r.pool_value) / scale for r in rows], color="#2ca02c", lw=2, label="pool value (USD)")
    bottom.set_ylabel("pool value")
    bottom.yaxis.set_major_formatter(dollars)
    bottom.set_xlabel("block")
    bottom.grid(alpha=0.3)
    twin = bottom.twinx()
    twin.plot(blocks, [Decimal(r.insurance) / scale for r in rows], color="#9467bd", lw=2, label="insurance fund (USD)")
    twin.set_ylabel("insurance fund")
    twin.yaxis.set_major_formatter(dollars)
    lines = bottom.get_lines() + twin.get_lines()
    bottom.legend(lines, [str(line.get_label()) for line in lines], loc="upper left", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- the run (I/O)


Progress = Callable[[str, int, int], None]


class Stage:
    """The running pieces: chain, deployment, price service, keeper; and a session (`lever.actions`)
    through which every LP and trader acts, as they would from the command line."""

    def __init__(self, provider: Any, out: Path, dashboard_port: int | None = None):
        from ape import accounts

        from lever import actions, app
        from lever.chain import Addresses, ProtocolReader
        from lever.config import load_network_config
        from lever.deploy import deployment_record
        from lever.hermes import HermesClient
        from lever.keeper.core import KeeperConfig
        from lever.keeper.runner import Keeper
        from lever.priceservice import Publisher, Server, chain_clock, state_for

        if not app.is_local(provider):
            raise ConfigError("the demo runs on a local chain (ethereum:local:foundry or :hardhat)")
        self.provider = provider
        self.config = load_network_config("local")
        deployer = accounts.test_accounts[0]
        protocol, path, _ = app.deploy(provider, deployer, self.config, fresh=True, directory=out)
        record = deployment_record(protocol, int(provider.chain_id), "local", self.config)
        self.prices = state_for(record, chain_clock(provider.uri))
        self.prices.tick()
        self.publisher = Publisher(self.prices).start()
        self.server = Server(self.prices)
        self.url = self.server.start()
        self.session = actions.attach(provider, deployer, self.url, path)
        self.protocol, self.reader = self.session.protocol, self.session.reader
        keeper_key = accounts.test_accounts[9].private_key
        self.keeper = Keeper(
            ProtocolReader(provider.web3, Addresses.from_deployment(record)),
            HermesClient(self.url),
            keeper_key,
            KeeperConfig(start_block=record.block),
        )
        self.keeper_address = str(accounts.test_accounts[9].address)
        self.keeper.hydrate()
        self._extras = contextlib.ExitStack()
        self.dashboard_url: str | None = None
        if dashboard_port is not None:
            self.dashboard_url = self._serve_dashboard(record, out, dashboard_port)

    def _serve_dashboard(self, record: Any, out: Path, port: int) -> str:
        """The dashboard (indexer and web app) and the keeper's /health and /metrics, served
        while the demo runs; the index is a fresh SQLite file in `out`."""
        from lever.dashboard import alongside
        from lever.keeper.service import KeeperService

        service = KeeperService(self.keeper)
        service.hydrated = True
        keeper_url = self._extras.enter_context(service.status_served())
        db = (out / "index.sqlite").resolve()
        for stale in out.glob("index.sqlite*"):
            stale.unlink()
        running = self._extras.enter_context(
            alongside(self.provider.uri, record, db_url=f"sqlite:///{db}", port=port, keeper_url=keeper_url)
        )
        return running.url

    def close(self) -> None:
        self._extras.close()
        self.publisher.stop()
        self.server.stop()

    def keep(self, until: Callable[[], bool], what: str, timeout: float = 120.0) -> None:
        """Steps the keeper (the chain's clock moving with wall time) until `until()` holds."""
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                raise LeverError(f"demo: {what}: the keeper did not finish within {timeout:.0f} s")
            self.provider.web3.provider.make_request("evm_mine", [])
            self.prices.tick()
            self.keeper.step()
            time.sleep(0.2)


def run(
    provider: Any,
    plan: Plan,
    out: Path,
    on_progress: Progress | None = None,
    dashboard_port: int | None = None,
    on_report: Callable[[Report, str | None], None] | None = None,
) -> Report:
    """Plays the scenario on the connected local chain; writes report.json and report.png. With
    `dashboard_port` (0: a free port) the dashboard follows the run; `on_report(report, url)` is
    called before anything stops (the command line keeps the dashboard up in it)."""
    from ape import accounts, chain

    plan.check()
    progress = on_progress or (lambda phase, done, total: None)
    started = time.monotonic()
    out.mkdir(parents=True, exist_ok=True)
    _log_to(out / "keeper.log")
    stage = Stage(provider, out, dashboard_port)
    try:
        if stage.dashboard_url:
            progress(f"dashboard on {stage.dashboard_url}", 1, 1)
        report = _play(stage, plan, out, progress, started, accounts, chain)
        if on_report is not None:
            on_report(report, stage.dashboard_url)
        return report
    finally:
        stage.close()


def _play(stage: Stage, plan: Plan, out: Path, progress: Progress, started: float, accounts: Any, chain: Any) -> Report:
    from lever import actions
    from lever import math as m

    p, s = stage.protocol, stage.session
    decimals = s.decimals
    lp_fee = s.tokens(int(p.vault.lpParams().executorFee))

    # Liquidity providers request deposits; the keeper settles them; they claim.
    lps = [s.as_signer(accounts.test_accounts[1 + i]) for i in range(plan.lps)]
    for lp in lps:
        actions.mint(lp, Decimal(plan.pool_per_lp) + lp_fee)
        actions.lp_request(lp, True, str(plan.pool_per_lp))
    stage.keep(lambda: all(int(p.vault.maxDeposit(lp.me)) > 0 for lp in lps), "settling LP deposits")
    for i, lp in enumerate(lps):
        actions.lp_claim(lp)
        progress("liquidity providers fund the pool", i + 1, plan.lps)

    # Traders: Lever accounts of a few owners, each committing one market order with the margin
    # its leverage needs (`actions.margin_for_leverage`, the command line's `--leverage`).
    owners = [s.as_signer(accounts.test_accounts[4 + i]) for i in range(4)]
    book = trader_book(plan, {name: int(market.max_leverage) for name, market in stage.config.markets.items()})
    ids: list[int] = []
    orders: list[int] = []
    scale = stage.reader.token_scale()
    for n, trader in enumerate(book):
        owner = owners[n % len(owners)]
        mk = p.markets[trader.market]
        snap = stage.reader.market(mk)
        price = actions.latest_price(owner, mk)
        size = m.fixed.mul_div_down(trader.notional * WAD, WAD, price)
        deposit = actions.margin_for_leverage(size, price, snap.state.skew, snap.params, trader.leverage, scale)
        deposit += s.units(actions.DEFAULT_EXECUTOR_FEE)  # escrowed from the margin at the commit
        actions.mint(owner, s.tokens(deposit))
        account_id = actions.create_account(owner)
        signed = from_wad(size) if trader.long else -from_wad(size)
        committed = actions.commit(owner, trader.market, signed, account_id, deposit=deposit)
        orders.append(committed.order_id)
        ids.append(account_id)
        progress("traders commit orders", n + 1, len(book))
    stage.keep(lambda: all(not p.order_book.order(o).updatedAt for o in orders), "settling the traders' orders")
    head = int(chain.blocks.head.number) + 1
    settled = list(p.order_book.OrderSettled.range(p.deploy_block, head))
    cancelled = len(list(p.order_book.OrderCancelled.range(p.deploy_block, head)))
    by_keeper = sum(1 for log in settled if str(log.keeper) == stage.keeper_address)
    progress("the keeper settles every order", len(orders), len(orders))

    # The crash: each tick moves time, then both oracles; the keeper steps after every block.
    first_block = int(chain.blocks.head.number) + 1
    phases: dict[str, int] = {}
    path = price_path(plan, {n: Decimal(str(v)) for n, v in stage.prices.current.items()})
    for n, tick in enumerate(path):
        stage.provider.web3.provider.make_request("evm_increaseTime", [tick.seconds])
        for name, usd in tick.prices.items():
            actions.set_price(s, name, usd)
            phases.setdefault(tick.phase, int(chain.blocks.head.number))
        stage.provider.web3.provider.make_request("evm_mine", [])
        stage.keeper.step()
        progress(f"{tick.phase}: ETH {tick.prices['ETH-USD']:,.0f}", n + 1, len(path))
    for _ in range(3):  # a few more blocks for what the last price made liquidatable
        stage.provider.web3.provider.make_request("evm_mine", [])
        stage.keeper.step()
    stage.keeper.land()
    last_block = int(chain.blocks.head.number)

    # Read every block back.
    rows = []
    blocks = range(first_block, last_block + 1)
    for n, block in enumerate(blocks):
        rows.append(_block_row(stage.reader, ids, block))
        progress("checking every block", n + 1, len(blocks))
    solvent_before = all(_solvent(stage.reader, b) for b in range(p.deploy_block, first_block))
    liquidations = _liquidations(stage.reader, first_block, last_block)
    order_counts = {
        "committed": len(orders),
        "settled": len(settled),
        "settled_by_keeper": by_keeper,
        "cancelled": cancelled,
    }
    report = build_report(
        plan, rows, liquidations, order_counts, decimals, rows[0], rows[-1], time.monotonic() - started, phases
    )
    report.solvent_every_block = report.solvent_every_block and solvent_before
    report.blocks_checked = last_block - p.deploy_block + 1
    (out / "report.json").write_text(report.to_json())
    plot(rows, liquidations, report, decimals, out / "report.png")
    return report


def _log_to(path: Path) -> None:
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("lever")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    root.propagate = False


def _solvent(reader: Any, block: int) -> bool:
    return bool(reader.call(reader.vault.functions.solvency(), block)[2])


def _block_row(reader: Any, ids: list[int], block: int) -> BlockRow:
    v, o = reader.vault.functions, reader.oracle.functions
    names = reader.addresses.names
    prices = {names[mk]: int(reader.call(o.state(mk), block)[6]) for mk in names}
    health = reader.health(ids, block)
    return BlockRow(
        block=block,
        prices=prices,
        pool_value=int(reader.call(v.totalAssets(), block)),
        insurance=int(reader.call(v.insuranceFund(), block)),
        solvent=_solvent(reader, block),
        liquidatable={a for a, bad in health.items() if bad},
    )


def _liquidations(reader: Any, first: int, last: int) -> list[LiquidationRow]:
    rows = []
    for log in reader.liquidator.events.Liquidation().get_logs(from_block=first, to_block=last):
        a = log["args"]
        rows.append(
            LiquidationRow(
                int(log["blockNumber"]),
                int(a["accountId"]),
                bool(a["full"]),
                int(a["rewardToken"]),
                int(a["penaltyToken"]),
                int(a["badDebtToken"]),
            )
        )
    return rows


def main(plan: Plan, out: Path, network: str, dashboard_port: int | None = None) -> None:
    """`lever demo`: the run with progress bars, then the report as a table; with a dashboard port,
    the dashboard follows the run and stays up after it until Ctrl-C."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from lever import app

    plan.check()
    console = Console()
    with app.connected(network) as provider:
        bar = Progress(
            TextColumn("{task.description:<40}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        tasks: dict[str, Any] = {}

        def on_progress(phase: str, done: int, total: int) -> None:
            if phase.startswith("dashboard on "):
                console.print(f"{phase}: watch the crash there (the keeper's panel included)")
                return
            key = phase.split(":")[0]
            if key not in tasks:
                tasks[key] = bar.add_task(phase, total=total)
            bar.update(tasks[key], completed=done, description=phase)

        def on_report(r: Report, url: str | None) -> None:
            bar.stop()
            _print_report(console, r, out)
            if url is None:
                return
            # Until Ctrl-C (or SIGTERM), then a clean stop: ape's own SIGINT handler would exit 130.
            stop = threading.Event()
            previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                console.print(f"the dashboard stays up on {url}; Ctrl-C stops it", highlight=False)
                while not stop.wait(0.5):
                    pass
                console.print("stopped")
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

        with bar:
            run(provider, plan, out, on_progress, dashboard_port, on_report)


def _print_report(console: Any, r: Report, out: Path) -> None:
    from rich.table import Table

    table = Table(title=f"Crash of {Decimal(r.crash) * 100:.0f}% with {r.traders} traders (seed {r.seed})")
    table.add_column("")
    table.add_column("", justify="right")
    for label, value in (
        (
            "orders committed / settled (by the keeper) / cancelled",
            (
                f"{r.orders['committed']} / {r.orders['settled']} ({r.orders['settled_by_keeper']})"
                f" / {r.orders['cancelled']}"
            ),
        ),
        (
            "liquidations (partial / full)",
            f"{r.liquidations['total']} ({r.liquidations['partial']} / {r.liquidations['full']})",
        ),
        ("accounts liquidated", str(r.liquidated_accounts)),
        ("blocks unhealthy -> liquidated (max / median)", f"{r.max_blocks_unhealthy} / {r.median_blocks_unhealthy:g}"),
        ("still liquidatable at the end", str(r.unhealthy_at_end)),
        ("keeper rewards", f"${r.keeper_rewards}"),
        ("bad debt", f"${r.bad_debt}"),
        ("insurance fund before -> after", f"${Decimal(r.insurance_before):,} -> ${Decimal(r.insurance_after):,}"),
        ("pool value before -> after", f"${Decimal(r.pool_before):,} -> ${Decimal(r.pool_after):,}"),
        (
            f"solvency identity at every block ({r.blocks_checked})",
            "held" if r.solvent_every_block else "[bold red]BROKEN[/]",
        ),
        ("wall time", f"{r.seconds:.0f} s"),
    ):
        table.add_row(label, value)
    console.print(table)
    console.print(f"wrote {out / 'report.json'} and {out / 'report.png'}")
