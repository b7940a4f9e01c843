"""Gas used by each user operation in a standard scenario; writes build/bench/gas.json.

    ape run bench_gas --network ethereum:local:foundry      (or: make bench-gas)

Scenario: the protocol deployed with config/local.toml, a $1M pool, a background trader holding
an ETH short for a while (so open interest and funding indices are already non-zero, as on a live
market), then one new trader who creates
an account, deposits margin into it (first deposit), withdraws part of it, opens a 1 ETH long,
increases it, decreases it, closes it; and a new LP who deposits and redeems.

Liquidations: accounts of $1,000 margin holding 6 ETH long at $3,000; the price drops to $2,850
(deeply underwater: full liquidation); the keeper already holds some tokens. `liquidate` is one
account with the new round already recorded by the adapter; `liquidate_records_round` is the
same when the liquidation is the first transaction to see the new round (it records it);
`liquidate_batch_per_account` is a batch of 50 such accounts, divided by 50.

Every measured transaction is mined 12 seconds after the previous block, as on mainnet, so each
one accrues funding: the figures do not depend on how fast the script runs.
"""

from __future__ import annotations

import json
from pathlib import Path

from ape import accounts, chain, project
from rich.console import Console
from rich.table import Table

from lever.config import load_network_config
from lever.deploy import create_account, deploy_protocol

USDC = 10**6
WAD = 10**18
OUT = Path("build/bench/gas.json")

# Targets from the issues: a benchmark, not a test.
TARGETS = {
    "deposit": 80_000,
    "withdraw": 80_000,
    "open": 160_000,
    "close": 130_000,
    "liquidate": 150_000,
    "liquidate_batch_per_account": 80_000,
}
BATCH = 50


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

    _next_block()
    engine.accrueFunding(eth, sender=background)  # funding indices are non-zero from here on

    gas: dict[str, int] = {}
    fund(trader, 10_000 * USDC)
    account = create_account(engine, trader)
    _next_block()
    gas["create_account"] = engine.createAccount(sender=trader).gas_used  # a second one, same cost
    _next_block()
    gas["deposit"] = vault.depositMargin(account, 10_000 * USDC, sender=trader).gas_used
    _next_block()
    gas["withdraw"] = vault.withdrawMargin(account, 1_000 * USDC, trader, sender=trader).gas_used
    _next_block()
    gas["open"] = engine.modifyPosition(account, eth, WAD, 0, sender=trader).gas_used
    _next_block()
    gas["increase"] = engine.modifyPosition(account, eth, WAD, 0, sender=trader).gas_used
    _next_block()
    gas["decrease"] = engine.modifyPosition(account, eth, -WAD // 2, 0, sender=trader).gas_used
    _next_block()
    gas["close"] = engine.closePosition(account, eth, 0, sender=trader).gas_used
    gas["withdraw_with_position"] = _withdraw_with_position(engine, vault, account, eth, trader)
    fund(new_lp, 50_000 * USDC)
    _next_block()
    gas["lp_deposit"] = vault.deposit(50_000 * USDC, new_lp, sender=new_lp).gas_used
    _next_block()
    gas["lp_redeem"] = vault.redeem(vault.balanceOf(new_lp) // 2, new_lp, new_lp, sender=new_lp).gas_used

    gas.update(_liquidations(protocol, deployer, accounts.test_accounts[5], accounts.test_accounts[6], fund))

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


def _next_block() -> None:
    chain.pending_timestamp = chain.blocks.head.timestamp + 12


def _withdraw_with_position(engine, vault, account, market, trader) -> int:
    engine.modifyPosition(account, market, WAD, 0, sender=trader)
    _next_block()
    used = vault.withdrawMargin(account, 100 * USDC, trader, sender=trader).gas_used
    engine.closePosition(account, market, 0, sender=trader)
    return int(used)


def _liquidations(protocol, deployer, trader, keeper, fund) -> dict[str, int]:
    engine, vault, liquidator, oracle = protocol.engine, protocol.vault, protocol.liquidator, protocol.oracle
    eth = protocol.markets["ETH-USD"]
    feed = protocol.feeds["ETH-USD"]
    fund(trader, (BATCH + 2) * 1_000 * USDC)
    ids = []
    for _ in range(BATCH + 2):
        account = create_account(engine, trader)
        vault.depositMargin(account, 1_000 * USDC, sender=trader)
        engine.modifyPosition(account, eth, 6 * WAD, 0, sender=trader)
        ids.append(account)
    fund(keeper, 1)  # a working keeper already holds the token
    _next_block()
    feed.setPrice(2_850 * 10**8, sender=deployer)
    _next_block()
    first = liquidator.liquidate(ids[0], sender=keeper).gas_used  # records the new round
    _next_block()
    oracle.update(feed, sender=deployer)
    _next_block()
    single = liquidator.liquidate(ids[1], sender=keeper).gas_used
    _next_block()
    batch = liquidator.liquidateBatch(ids[2:], sender=keeper)
    assert len(batch.events.filter(liquidator.Liquidation)) == BATCH
    return {
        "liquidate": int(single),
        "liquidate_records_round": int(first),
        "liquidate_batch_per_account": int(batch.gas_used) // BATCH,
    }
