"""Gas used by each user operation in a standard scenario; writes build/bench/gas.json.

    ape run bench_gas --network ethereum:local:foundry      (or: make bench-gas)

Scenario: the protocol deployed with config/local.toml, a $1M pool, a background trader holding
an ETH short (so market slots are warm in the sense of non-zero), then one new trader who creates
an account, deposits margin into it (first deposit), withdraws part of it, opens a 1 ETH long,
increases it, decreases it, closes it; and a new LP who deposits and redeems.
"""

from __future__ import annotations

import json
from pathlib import Path

from ape import accounts, project
from rich.console import Console
from rich.table import Table

from lever.config import load_network_config
from lever.deploy import create_account, deploy_protocol

USDC = 10**6
WAD = 10**18
OUT = Path("build/bench/gas.json")

# Targets from the issues: a benchmark, not a test.
TARGETS = {"deposit": 80_000, "withdraw": 80_000, "open": 160_000, "close": 130_000}


def main() -> None:
    deployer, trader, background, lp, new_lp = accounts.test_accounts[:5]
    protocol = deploy_protocol(project, deployer, load_network_config("local"))
    token, vault, engine = protocol.token, protocol.vault, protocol.engine
    eth = protocol.markets["ETH-USD"]

    def fund(who, amount):
        token.mint(who, amount, sender=who)
        token.approve(vault, amount, sender=who)

    fund(lp, 1_000_000 * USDC)
    vault.deposit(1_000_000 * USDC, lp, sender=lp)
    fund(background, 100_000 * USDC)
    other = create_account(engine, background)
    vault.depositMargin(other, 100_000 * USDC, sender=background)
    engine.modifyPosition(other, eth, -10 * WAD, 0, sender=background)

    gas: dict[str, int] = {}
    fund(trader, 10_000 * USDC)
    account = create_account(engine, trader)
    gas["create_account"] = engine.createAccount(sender=trader).gas_used  # a second one, same cost
    gas["deposit"] = vault.depositMargin(account, 10_000 * USDC, sender=trader).gas_used
    gas["withdraw"] = vault.withdrawMargin(account, 1_000 * USDC, trader, sender=trader).gas_used
    gas["open"] = engine.modifyPosition(account, eth, WAD, 0, sender=trader).gas_used
    gas["increase"] = engine.modifyPosition(account, eth, WAD, 0, sender=trader).gas_used
    gas["decrease"] = engine.modifyPosition(account, eth, -WAD // 2, 0, sender=trader).gas_used
    gas["close"] = engine.closePosition(account, eth, 0, sender=trader).gas_used
    gas["withdraw_with_position"] = _withdraw_with_position(engine, vault, account, eth, trader)
    fund(new_lp, 50_000 * USDC)
    gas["lp_deposit"] = vault.deposit(50_000 * USDC, new_lp, sender=new_lp).gas_used
    gas["lp_redeem"] = vault.redeem(vault.balanceOf(new_lp) // 2, new_lp, new_lp, sender=new_lp).gas_used

    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(gas, indent=2) + "\n")
    table = Table(title="Gas per operation (standard scenario)")
    table.add_column("operation")
    table.add_column("gas", justify="right")
    table.add_column("target", justify="right")
    for name, used in gas.items():
        target = TARGETS.get(name)
        mark = "" if target is None else (f"<= {target:,} ok" if used <= target else f"<= {target:,} MISSED")
        table.add_row(name, f"{used:,}", mark)
    Console().print(table)
    print(f"wrote {OUT}")


def _withdraw_with_position(engine, vault, account, market, trader) -> int:
    engine.modifyPosition(account, market, WAD, 0, sender=trader)
    used = vault.withdrawMargin(account, 100 * USDC, trader, sender=trader).gas_used
    engine.closePosition(account, market, 0, sender=trader)
    return int(used)
