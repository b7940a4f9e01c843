"""`lever demo`: a market crash played out on a real local chain.

Deploys the protocol, funds the pool from a few LPs, opens positions for many traders (long and
short, 2x to near each market's maximum), lets funding accrue for a day, then walks the oracle
down a crash and part of the way back up. A keeper runs after every price update and liquidates
what became unhealthy. Afterwards every block of the run is read back (at that block) to measure
how long each account stayed liquidatable and whether the solvency identity ever broke; the
result is `report.json` and `report.png`.

The plan (traders, price path) is pure and seeded; `run` is the I/O.
"""

from __future__ import annotations

import json
import logging
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_utils.crypto import keccak

from lever.errors import ConfigError, LeverError
from lever.revert import explain

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
        out.append(Tick(phase, seconds, {
            "ETH-USD": (start["ETH-USD"] * eth_move).quantize(Decimal("0.01")),
            "BTC-USD": (start["BTC-USD"] * btc_move).quantize(Decimal("0.01")),
        }))
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
    prices: dict[str, int]  # WAD
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
    plan: Plan, rows: list[BlockRow], liquidations: list[LiquidationRow], decimals: int,
    before: BlockRow, after: BlockRow, seconds: float, phases: dict[str, int],
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

    blocks = [r.block for r in rows]
    index = {m: [Decimal(r.prices[m]) / Decimal(rows[0].prices[m]) * 100 for r in rows] for m in rows[0].prices}
    eth_at = dict(zip(blocks, index["ETH-USD"], strict=True))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True, height_ratios=[3, 2])
    top.plot(blocks, index["ETH-USD"], color="#3c6ee0", lw=2, label="ETH-USD")
    top.plot(blocks, index["BTC-USD"], color="#f2a900", lw=1.5, label="BTC-USD")
    for full, style in ((False, {"marker": "v", "color": "#e08a00", "label": "partial liquidation"}),
                        (True, {"marker": "x", "color": "#d62728", "label": "full liquidation"})):
        hits = [liq for liq in liquidations if liq.full == full]
        if hits:
            top.scatter([h.block for h in hits], [eth_at.get(h.block, 0) for h in hits], s=40, zorder=3, **style)
    top.set_ylabel("price index (start = 100)")
    top.set_title(
        f"{report.traders} traders, ETH -{Decimal(report.crash) * 100:.0f}%: {report.liquidations['total']} liquidations "
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


class _Wallet:
    """Signs and sends for many demo keys through web3 (faster than ape for hundreds of
    transactions); every transaction is simulated first, so a failure names its reason."""

    def __init__(self, w3: Any):
        self.w3 = w3
        self.nonces: dict[str, int] = {}
        self.chain_id = int(w3.eth.chain_id)

    def send(self, key: bytes, fn: Any, what: str) -> Any:
        account = Account.from_key(key)
        try:
            fn.call({"from": account.address})
        except Exception as exc:  # noqa: BLE001 - any failure: name it, stop the demo
            raise LeverError(f"demo: {what}: {explain(exc)}") from None
        tx = fn.build_transaction({
            "from": account.address, "nonce": self._nonce(account.address), "gas": 1_500_000,
            "chainId": self.chain_id, "maxFeePerGas": 100 * 10**9, "maxPriorityFeePerGas": 10**9,
        })
        tx.pop("gasPrice", None)  # ape's web3 adds one; this is an EIP-1559 transaction
        tx_hash = self.w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        return self._mined(tx_hash, what)

    def fund(self, key: bytes, to: str, value: int) -> Any:
        account = Account.from_key(key)
        tx = {"to": to, "value": value, "nonce": self._nonce(account.address), "gas": 21_000, "chainId": self.chain_id,
              "maxFeePerGas": 100 * 10**9, "maxPriorityFeePerGas": 10**9}
        return self._mined(self.w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction), "funding")

    def _nonce(self, address: str) -> int:
        """The next nonce, counted here after the node's first answer (one sender at a time)."""
        nonce = self.nonces.get(address)
        if nonce is None:
            nonce = int(self.w3.eth.get_transaction_count(address))
        self.nonces[address] = nonce + 1
        return nonce

    def _mined(self, tx_hash: Any, what: str) -> Any:
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
        if receipt["status"] != 1:
            raise LeverError(f"demo: {what}: the transaction failed")
        return receipt


def trader_key(seed: int, index: int) -> bytes:
    return keccak(text=f"lever-demo-trader-{seed}-{index}")


def run(provider: Any, plan: Plan, out: Path, on_progress: Callable[[str, int, int], None] | None = None) -> Report:
    """Plays the scenario on the connected local chain; writes report.json and report.png."""
    from ape import accounts, chain

    from lever import app
    from lever.config import load_network_config
    from lever.keeper.chain import Addresses, ChainClient, load_abis
    from lever.keeper.runner import Keeper, KeeperConfig

    plan.check()
    if not app.is_local(provider):
        raise ConfigError("the demo runs on a local chain (ethereum:local:foundry or :hardhat)")
    progress = on_progress or (lambda phase, done, total: None)
    started = time.monotonic()
    w3 = provider.web3
    config = load_network_config("local")
    deployer = accounts.test_accounts[0]
    protocol, _, _ = app.deploy(provider, deployer, config, fresh=True, directory=out)
    token, vault, engine = protocol.token, protocol.vault, protocol.engine
    decimals = int(token.decimals())
    unit = 10**decimals
    client = ChainClient(w3, Addresses(
        vault=vault.address, engine=engine.address, liquidator=protocol.liquidator.address,
        oracle=protocol.oracle.address, feeds={protocol.markets[n]: f.address for n, f in protocol.feeds.items()},
    ))
    wallet = _Wallet(w3)
    abis = load_abis()
    c_token = w3.eth.contract(address=token.address, abi=abis["MockToken"])
    c_feed = {n: w3.eth.contract(address=f.address, abi=abis["MockPriceFeed"]) for n, f in protocol.feeds.items()}

    oracle_key = bytes.fromhex(deployer.private_key[2:])  # the deployer holds the oracle role

    # Liquidity providers.
    lp_keys = [bytes.fromhex(accounts.test_accounts[1 + i].private_key[2:]) for i in range(plan.lps)]
    for i, key in enumerate(lp_keys):
        address = Account.from_key(key).address
        amount = plan.pool_per_lp * unit
        wallet.send(key, c_token.functions.mint(address, amount), "minting for an LP")
        wallet.send(key, c_token.functions.approve(vault.address, amount), "LP approval")
        wallet.send(key, client.vault.functions.deposit(amount, address), "LP deposit")
        progress("liquidity providers fund the pool", i + 1, plan.lps)

    # Traders: keys from the seed, gas from the node.
    max_leverage = {name: int(m.max_leverage) for name, m in config.markets.items()}
    book = trader_book(plan, max_leverage)
    ids: list[int] = []
    for n, trader in enumerate(book):
        key = trader_key(plan.seed, trader.index)
        address = Account.from_key(key).address
        wallet.fund(oracle_key, address, 10**18)  # gas money, from the deployer
        market_id = protocol.markets[trader.market]
        price = int(client.oracle.functions.priceWad(c_feed[trader.market].address).call())
        size = trader.notional * WAD * WAD // price
        fee = trader.notional * int(config.markets[trader.market].trading_fee * 10**6) // 10**6
        margin = int(Decimal(trader.notional) / trader.leverage * unit) + 2 * fee * unit
        wallet.send(key, c_token.functions.mint(address, margin), "minting for a trader")
        wallet.send(key, c_token.functions.approve(vault.address, margin), "trader approval")
        receipt = wallet.send(key, client.engine.functions.createAccount(), "creating an account")
        account_id = int(receipt["logs"][0]["topics"][1].hex(), 16)
        wallet.send(key, client.vault.functions.depositMargin(account_id, margin), "depositing margin")
        delta = size if trader.long else -size
        wallet.send(key, client.engine.functions.modifyPosition(account_id, market_id, delta, 0),
                    f"opening {trader.leverage}x {'long' if trader.long else 'short'} {trader.market}")
        ids.append(account_id)
        progress("traders open positions", n + 1, len(book))

    # The keeper, hydrated from the chain like an operator's; its log goes to <out>/keeper.log.
    out.mkdir(parents=True, exist_ok=True)
    _log_to(out / "keeper.log")
    keeper_key = accounts.test_accounts[9].private_key
    keeper = Keeper(ChainClient(w3, client.addresses), keeper_key, KeeperConfig())
    keeper.hydrate()
    start_prices = {n: Decimal(int(c_feed[n].functions.latestRoundData().call()[1])).scaleb(-8) for n in c_feed}
    first_block = int(chain.blocks.head.number)
    phases: dict[str, int] = {}
    path = price_path(plan, start_prices)
    for n, tick in enumerate(path):
        w3.provider.make_request("evm_increaseTime", [tick.seconds])  # Anvil and Hardhat both take it
        for name, usd in tick.prices.items():
            answer = int(usd * 10 ** int(c_feed[name].functions.decimals().call()))
            receipt = wallet.send(oracle_key, c_feed[name].functions.setPrice(answer), f"setting {name}")
            phases.setdefault(tick.phase, int(receipt["blockNumber"]))
            keeper.step()  # the keeper sees every new block, as it would polling a live chain
        progress(f"{tick.phase}: ETH {tick.prices['ETH-USD']:,.0f}", n + 1, len(path))
    last_block = int(chain.blocks.head.number)

    # Read every block back: the solvency identity from deployment on, everything else from the
    # first price update.
    rows, solvent = [], []
    blocks = range(protocol.deploy_block, last_block + 1)
    for n, block in enumerate(blocks):
        if block >= first_block:
            rows.append(_block_row(client, c_feed, ids, block))
            solvent.append(rows[-1].solvent)
        else:
            solvent.append(bool(client.vault.functions.solvency().call(block_identifier=block)[2]))
        progress("checking every block", n + 1, len(blocks))
    liquidations = _liquidations(client, first_block, last_block)
    report = build_report(plan, rows, liquidations, decimals, rows[0], rows[-1], time.monotonic() - started, phases)
    report.solvent_every_block = all(solvent)
    report.blocks_checked = len(solvent)
    out.mkdir(parents=True, exist_ok=True)
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


def _block_row(client: Any, feeds: dict[str, Any], ids: list[int], block: int) -> BlockRow:
    vault, oracle = client.vault.functions, client.oracle.functions
    _, _, solvent = vault.solvency().call(block_identifier=block)
    health = client.health(ids, block)
    return BlockRow(
        block=block,
        prices={n: int(oracle.priceWad(f.address).call(block_identifier=block)) for n, f in feeds.items()},
        pool_value=int(vault.totalAssets().call(block_identifier=block)),
        insurance=int(vault.insuranceFund().call(block_identifier=block)),
        solvent=bool(solvent),
        liquidatable={a for a, bad in health.items() if bad},
    )


def _liquidations(client: Any, first: int, last: int) -> list[LiquidationRow]:
    rows = []
    for log in client.liquidator.events.Liquidation().get_logs(from_block=first, to_block=last):
        a = log["args"]
        rows.append(LiquidationRow(
            int(log["blockNumber"]), int(a["accountId"]), bool(a["full"]), int(a["rewardToken"]),
            int(a["penaltyToken"]), int(a["badDebtToken"]),
        ))
    return rows
