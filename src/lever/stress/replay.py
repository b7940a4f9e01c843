"""`lever stress replay CELL`: one cell on Anvil with the real contracts and the real keeper,
held to the exact engine to the wei.

The wiring is the demo's (`lever.demo.Stage`): `deploy_protocol`, the Hermes-shaped price service
(`lever.priceservice`), `lever.keeper.runner.Keeper` reading through `lever.chain.ProtocolReader`.
What differs is the clock: every transaction of a step is mined at the step's timestamp (Anvil's
block-timestamp interval is 0 and each step starts with `evm_mine` at its time), and the price
service publishes exactly what the exact engine's oracles publish, at the same times, so that the
chain and the engine see the same moments. The exact engine runs one step ahead of the chain:
its recorded agent actions (margin, orders, LP requests) are sent as they are; the keeper decides
for itself. After every step the ledgers, margins, positions and market states are compared, and
at the end every liquidation event; the first difference raises `ReplayMismatch`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from lever import math as m
from lever.stress.errors import ReplayMismatch, StressError
from lever.stress.exact import Action, ExactEngine, LiquidationEvent, StepLog
from lever.stress.model import Cell, network_config

Progress = Callable[[str, int, int], None]
STEP_SECONDS = 12
# The two cells `make test` replays (scenario, seed), `REPLAY_STEPS` blocks each, with
# `model.REPLAY_AGENTS`: a crash with partial and full liquidations and bad debt; an oracle freeze
# then a jump (liquidations at the gap, stops, top-ups).
REPLAY_CELLS = (("replay-crash", 8), ("replay-freeze", 3))
REPLAY_STEPS = 16


@dataclass
class ReplayReport:
    cell: str
    steps: int
    accounts: int
    transactions: int
    liquidations: int
    bad_debt_token: int
    keeper_liquidations: int
    compared: int  # values compared to the wei
    mismatches: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.mismatches


class Driver:
    """Sends the agents' transactions from Anvil's unlocked accounts (raw web3: one RPC each)."""

    def __init__(self, w3: Any, reader: Any, owners: list[str], lp: str, deployer: str):
        self.w3, self.reader = w3, reader
        self.owners, self.lp, self.deployer = owners, lp, deployer
        self.sent = 0

    def send(self, what: str, fn: Any, sender: str) -> Any:
        tx_hash = fn.transact({"from": sender, "gas": 3_000_000})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash)
        self.sent += 1
        if receipt["status"] != 1:
            raise ReplayMismatch(f"{what}: the transaction reverted on chain (the exact engine accepted it)")
        return receipt

    def owner(self, account: int) -> str:
        return self.owners[(account - 1) % len(self.owners)]


def _rpc(w3: Any, method: str, params: list[Any]) -> Any:
    response = w3.provider.make_request(method, params)
    if "error" in response:
        raise StressError(f"the node refused {method}: {response['error'].get('message')}")
    return response.get("result")


def replay(
    cell: Cell, provider: Any, project: Any, test_accounts: Any, progress: Progress | None = None
) -> ReplayReport:
    """Replays `cell` on the connected Anvil (`provider`); raises `ReplayMismatch` on the first
    difference between the chain and the exact engine."""
    from lever.chain import Addresses, ProtocolReader
    from lever.deploy import create_account, deploy_protocol, deployment_record
    from lever.hermes import HermesClient
    from lever.keeper.core import KeeperConfig
    from lever.keeper.runner import Keeper
    from lever.priceservice import PriceState, Server
    from lever.pyth import PriceBook

    if not cell.replay:
        raise StressError("replay needs a cell built for the chain (make_cell(..., replay=True))")
    if "anvil" not in str(_rpc(provider.web3, "web3_clientVersion", [])).lower():
        raise StressError("lever stress replay runs on Anvil (--network ethereum:local:foundry)")
    tick = progress or (lambda what, done, total: None)
    started = time.monotonic()
    w3 = provider.web3
    cfg = network_config(cell.knobs)
    deployer = test_accounts[0]
    tick("deploying", 0, 1)
    protocol = deploy_protocol(project, deployer, cfg)
    record = deployment_record(protocol, int(provider.chain_id), "local", cfg)
    reader = ProtocolReader(w3, Addresses.from_deployment(record))
    owners = [str(test_accounts[i].address) for i in range(1, 8)]
    lp, keeper_account = str(test_accounts[8].address), test_accounts[9]
    driver = Driver(w3, reader, owners, lp, str(deployer.address))
    token, vault, engine, book = reader.token, reader.vault, reader.engine, reader.order_book
    names = {mk: name for name, mk in protocol.markets.items()}

    # Tokens for every owner (margins, top-ups, executor fees) and the LP; the pool and the fund.
    pop = cell.population
    need: dict[str, int] = {}
    for i in range(pop.count):
        owner = driver.owner(i + 1)
        need[owner] = (
            need.get(owner, 0) + int(pop.margin[i]) + int(pop.topup[i]) * cell.agents.max_topups + 4 * pop.executor_fee
        )
    for owner, amount in need.items():
        driver.send("mint", token.functions.mint(owner, amount), owner)
        driver.send("approve", token.functions.approve(vault.address, 2**256 - 1), owner)
    lp_fee = cell.params.lp_executor_fee
    driver.send("mint", token.functions.mint(lp, cell.pool + cell.insurance + 10 * lp_fee), lp)
    driver.send("approve", token.functions.approve(vault.address, 2**256 - 1), lp)
    driver.send("insurance", vault.functions.fundInsurance(cell.insurance), lp)
    receipt = driver.send("LP deposit request", vault.functions.requestDeposit(cell.pool, lp, lp), lp)
    due = int(w3.eth.get_block(receipt["blockNumber"])["timestamp"]) + cell.params.lp_delay + cell.params.lp_grace
    _rpc(w3, "evm_mine", [due])
    driver.send("LP deposit settlement", vault.functions.settleDeposit(lp, []), lp)
    driver.send("LP claim", vault.functions.deposit(cell.pool, lp), lp)

    # The price service, and the keeper, hydrated before the first step.
    book_ = PriceBook.for_markets(dict(protocol.price_ids))
    prices = PriceState(
        book_,
        {n: Decimal(cents) / 100 for n, cents in zip(protocol.markets, cell.params.initial_prices, strict=True)},
        lambda: 0,
    )
    server = Server(prices)
    url = server.start()
    head = w3.eth.get_block("latest")
    t0 = int(head["timestamp"]) + 60
    exact = ExactEngine(cell, t0)
    for mk in range(exact.chain.n_markets):  # the chain's own starting market and feed state
        exact.chain.market_state[mk] = m.MarketState.from_chain(engine.functions.marketState(mk).call())
        rid, answer, _, updated, _ = reader.feeds[mk].functions.latestRoundData().call()
        exact.chain.feed[mk] = (int(rid), int(answer), int(updated))
    keeper = Keeper(
        ProtocolReader(w3, Addresses.from_deployment(record)),
        HermesClient(url),
        str(keeper_account.private_key),
        KeeperConfig(start_block=protocol.deploy_block, gas_market=None, band_wad=m.WAD // 2, reindex_every_blocks=1),
    )
    keeper_address = str(keeper_account.address)
    keeper_before = int(token.functions.balanceOf(keeper_address).call())
    report = ReplayReport(cell.id, cell.steps, pop.count, 0, 0, 0, 0, 0)
    _rpc(w3, "anvil_setBlockTimestampInterval", [0])
    try:
        _rpc(w3, "evm_mine", [t0 - 1])
        keeper.hydrate()
        steps = exact.steps()
        for k in range(cell.steps + 1):
            next(steps)
            log = exact.trace.steps[k]
            _rpc(w3, "evm_mine", [log.time])
            _chain_step(log, driver, reader, prices, names, create_account, engine, book, vault, protocol)
            keeper.step()
            keeper.land()  # the engine's step includes the settlements it sends
            report.compared += _compare_step(
                k, exact, reader, str(provider.uri), pop.count, keeper_address, keeper_before
            )
            tick("replaying", k + 1, cell.steps + 1)
        for _ in steps:  # the engine's end-of-run figures
            pass
        report.compared += _compare_liquidations(exact.trace.liquidations, reader, protocol.deploy_block, t0)
    finally:
        _rpc(w3, "anvil_removeBlockTimestampInterval", [])
        server.stop()
    report.transactions = driver.sent
    report.liquidations = len(exact.trace.liquidations)
    report.bad_debt_token = exact.chain.ledgers["bad_debt"]
    report.keeper_liquidations = int(keeper.metrics.won._value.get())
    report.seconds = time.monotonic() - started
    return report


def _chain_step(
    log: StepLog,
    driver: Driver,
    reader: Any,
    prices: Any,
    names: dict[int, str],
    create_account: Any,
    engine: Any,
    book: Any,
    vault: Any,
    protocol: Any,
) -> None:
    """The step's oracle rounds and publications, then the agents' transactions."""
    if log.published:
        for mk, cents in enumerate(log.prices):
            driver.send(
                f"step {log.step}: reference round", reader.feeds[mk].functions.setPrice(cents * 10**6), driver.deployer
            )
            with prices.lock:
                prices.current[names[mk]] = Decimal(cents) / 100
                prices.book.publish(names[mk], Decimal(cents) / 100, log.time)
    for a in log.actions:
        _send_action(log.step, a, driver, engine, book, vault)


def _send_action(step: int, a: Action, driver: Driver, engine: Any, book: Any, vault: Any) -> None:
    where = f"step {step}: {a.kind} (account {a.account})"
    if a.kind == "deposit":
        owner = driver.owner(a.account)
        if int(engine.functions.accountCount().call()) < a.account:
            receipt = driver.send(where, engine.functions.createAccount(), owner)
            created = int.from_bytes(bytes(receipt["logs"][0]["topics"][1]), "big")
            if created != a.account:
                raise ReplayMismatch(f"{where}: the chain created account {created}")
        driver.send(where, vault.functions.depositMargin(a.account, a.amount), owner)
    elif a.kind == "commit":
        driver.send(
            where, book.functions.commitOrder(a.account, a.market, a.size, 0, a.amount), driver.owner(a.account)
        )
    elif a.kind == "place":
        driver.send(
            where,
            book.functions.placeOrder(a.account, a.market, a.order_kind, a.size, a.trigger, 0, a.amount),
            driver.owner(a.account),
        )
    elif a.kind == "redeem":
        driver.send(where, vault.functions.requestRedeem(a.size, driver.lp, driver.lp), driver.lp)
    else:
        raise StressError(f"unknown action {a.kind!r}")


def _check(where: str, name: str, chain: int, exact: int) -> None:
    if chain != exact:
        raise ReplayMismatch(f"{where}: {name}: chain {chain} != exact engine {exact} (diff {chain - exact})")


class Batch:
    """View calls sent as one JSON-RPC batch (web3's per-call formatting costs ~20 ms a call)."""

    def __init__(self, uri: str, block: int):
        import httpx

        self.http = httpx.Client(timeout=30.0)
        self.uri, self.block = uri, hex(block)
        self.calls: list[tuple[str, Any, str, tuple[Any, ...]]] = []  # (label, contract, function, arguments)

    def add(self, label: str, contract: Any, fn: str, *args: Any) -> None:
        self.calls.append((label, contract, fn, args))

    def run(self) -> dict[str, Any]:
        from eth_abi.abi import decode as abi_decode

        body = [
            {
                "jsonrpc": "2.0",
                "id": i,
                "method": "eth_call",
                "params": [{"to": c.address, "data": c.encode_abi(fn, args=list(args))}, self.block],
            }
            for i, (_, c, fn, args) in enumerate(self.calls)
        ]
        answers = {a["id"]: a for a in self.http.post(self.uri, json=body).json()}
        out = {}
        for i, (label, c, fn, _) in enumerate(self.calls):
            answer = answers[i]
            if "error" in answer:
                raise ReplayMismatch(f"reading {label}: {answer['error'].get('message')}")
            abi = next(item for item in c.abi if item.get("type") == "function" and item["name"] == fn)
            types = [_abi_type(o) for o in abi["outputs"]]
            values = abi_decode(types, bytes.fromhex(answer["result"][2:]))
            out[label] = values[0] if len(values) == 1 else values
        return out


def _abi_type(output: dict[str, Any]) -> str:
    if output["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in output["components"])
        return f"({inner})" + str(output["type"])[5:]
    return str(output["type"])


def _compare_step(
    k: int, exact: ExactEngine, reader: Any, uri: str, accounts: int, keeper: str, keeper_before: int
) -> int:
    """Every ledger, margin, position and market state after step `k` (read in one batch at the
    head block); returns how many values were compared."""
    led = exact.chain.ledgers
    batch = Batch(uri, int(reader.w3.eth.block_number))
    v, e = reader.vault, reader.engine
    wanted = {
        "pool assets": (v, "poolAssets", led["pool"]),
        "insurance fund": (v, "insuranceFund", led["insurance"]),
        "protocol fees": (v, "protocolFees", led["protocol_fees"]),
        "order escrow": (v, "orderEscrow", led["order_escrow"]),
        "LP escrow": (v, "lpEscrow", led["lp_escrow"]),
        "bad debt": (v, "badDebtTotal", led["bad_debt"]),
        "bad debt covered by insurance": (v, "badDebtCoveredByInsurance", led["bad_debt_by_insurance"]),
        "bad debt covered by the pool": (v, "badDebtCoveredByPool", led["bad_debt_by_pool"]),
        "LP share supply": (v, "totalSupply", led["supply"]),
        "total reserve": (e, "totalReserveWad", exact.chain.total_reserve),
    }
    for label, (c, fn, _) in wanted.items():
        batch.add(label, c, fn)
    batch.add("keeper balance", reader.token, "balanceOf", keeper)
    for mk in range(exact.chain.n_markets):
        batch.add(f"market {mk} state", e, "marketState", mk)
    count = min(accounts, exact.chain.accounts)
    for account in range(1, count + 1):
        batch.add(f"margin of account {account}", v, "marginOf", account)
        for mk in range(exact.chain.n_markets):
            batch.add(f"account {account} market {mk} position", e, "position", account, mk)
    got = batch.run()
    where = f"step {k}"
    n = 0
    for label, (_, _, value) in wanted.items():
        _check(where, label, int(got[label]), value)
        n += 1
    _check(where, "keeper's token income", int(got["keeper balance"]) - keeper_before, led["keeper"])
    n += 1
    for mk in range(exact.chain.n_markets):
        state = m.MarketState.from_chain(got[f"market {mk} state"])
        if state != exact.chain.market_state[mk]:
            raise ReplayMismatch(
                f"{where}: market {mk} state: chain {state} != exact engine {exact.chain.market_state[mk]}"
            )
        n += 10
    for account in range(1, count + 1):
        _check(
            where, f"margin of account {account}", int(got[f"margin of account {account}"]), exact.chain.margin[account]
        )
        n += 1
        for mk in range(exact.chain.n_markets):
            held = m.Position.from_chain(got[f"account {account} market {mk} position"])
            expected = exact.chain.positions.get((account, mk), m.Position())
            if held != expected:
                raise ReplayMismatch(
                    f"{where}: account {account} market {mk} position: chain {held} != exact engine {expected}"
                )
            n += 4
    return n


def _compare_liquidations(events: list[LiquidationEvent], reader: Any, from_block: int, t0: int) -> int:
    """Every `Liquidation` event against the engine's, in order: step, account, full, share,
    closed notional, reward, penalty, bad debt."""
    logs = reader.liquidator.events.Liquidation().get_logs(from_block=from_block)
    chain = []
    for log in logs:
        a = log["args"]
        ts = int(reader.w3.eth.get_block(log["blockNumber"])["timestamp"])
        chain.append(
            LiquidationEvent(
                (ts - t0) // STEP_SECONDS,
                int(a["accountId"]),
                bool(a["full"]),
                int(a["closeShareWad"]),
                int(a["closedNotionalWad"]),
                int(a["rewardToken"]),
                int(a["penaltyToken"]),
                int(a["badDebtToken"]),
            )
        )
    if len(chain) != len(events):
        raise ReplayMismatch(f"liquidations: chain {len(chain)} != exact engine {len(events)}")
    for i, (got, want) in enumerate(zip(chain, events, strict=True)):
        if got != want:
            raise ReplayMismatch(f"liquidation {i}: chain {got} != exact engine {want}")
    return 8 * len(events)
