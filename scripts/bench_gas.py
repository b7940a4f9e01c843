"""Gas used by each user and keeper operation on a live market; writes build/bench/gas.json.

    ape run bench_gas --network ethereum:local:foundry      (or: make bench-gas)

Scenario (as on a live market): the protocol deployed with config/local.toml; a $1M pool funded
through the asynchronous (ERC-7540) flow; a background trader holding a 10 ETH short for ten
minutes and then adding 1 ETH to it, so open interest, the funding and borrowing indices, the
entry charges, the oracle's stored price and the reference round are all non-zero before
anything is measured. Every measured transaction is mined
12 seconds after the previous block, as on mainnet, so each one accrues funding and borrowing.
The keeper already holds some collateral (its balance is not a fresh slot) and the pull price of a
settlement is published at commit + delay, the earliest eligible second.

Variants (where they differ):
  cold   the account's storage is fresh: its first deposit, first order, a new position;
  warm   the account repeats the operation: a second deposit, an order on an existing position.
The market's storage is always live (non-zero) except in `order_settle.first_ever`, the very
first order a freshly deployed protocol settles (every market and oracle slot starts at zero).
A target applies to the variant named in `applies_to`: a mainnet user's typical settle finds the
market's storage warm and their own cold.

It also writes build/bench/gas-profile.json: for each measured transaction, where its gas goes per
contract (storage reads and writes, logs, calls, execution, from Anvil's struct logs) beside the
transaction's intrinsic gas, calldata and refund, and its access floor: the gas left when every
contract's execution and logs are taken away. gas.json gives each operation's floor beside its
target: a target below the floor cannot be met without removing storage accesses or calls.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from ape import accounts, chain, project
from rich.console import Console
from rich.table import Table

from lever.config import load_network_config
from lever.deploy import create_account, deploy_protocol
from lever.pyth import PriceBook

USDC = 10**6
WAD = 10**18
OUT = Path("build/bench/gas.json")
PROFILE_OUT = Path("build/bench/gas-profile.json")
ETH = "ETH-USD"
BLOCK = 12  # seconds between blocks, as on mainnet
BATCH = 50

# Targets (gas per transaction, or per order / account for the batch keys).
TARGETS = {
    "order_commit": 100_000,
    "order_settle": 200_000,
    "order_settle_batch_per_order": 120_000,
    "open": 160_000,
    "close": 130_000,
    "liquidate": 150_000,
    "liquidate_with_update": 170_000,
}

WHAT = {
    "deposit": "vault.depositMargin into a trading account",
    "withdraw": "vault.withdrawMargin from an account without a position (warm: with a 1 ETH position)",
    "order_commit": "orderBook.commitOrder: a 1 ETH market order with an acceptable price",
    "order_settle": "orderBook.settleOrders([one order], [its MockPyth update], []): the trader's opening "
    "order; first_ever: the first order on a freshly deployed protocol",
    "order_settle_batch_per_order": f"one settleOrders call of {BATCH} opening orders of {BATCH} new accounts "
    "committed in one block (one MockPyth update, the others reuse its proof), / "
    f"{BATCH}",
    "open": "settle of one opening order (= order_settle): cold a new position, warm an increase",
    "close": "settle of one order closing the whole position (its update included)",
    "order_place": "orderBook.placeOrder: a stop-loss on a 1 ETH long",
    "conditional_trigger": "orderBook.settleOrders([the stop], [empty], [the market's latest MockPyth update]): "
    "a 1.5% dip triggers it",
    "conditional_fill": "orderBook.settleOrders([the triggered stop], [its MockPyth update], []): it closes the "
    "position at the price published a delay after its trigger",
    "lp_commit": "vault.requestDeposit of $50,000 by a new LP (pays the LP executor fee)",
    "lp_settle": "vault.settleDeposit by a keeper with the ETH update (a market with open interest)",
    "lp_claim": "vault.deposit: the LP claims its shares",
    "lp_redeem_commit": "vault.requestRedeem of half the shares",
    "lp_redeem_settle": "vault.settleRedeem by a keeper with the ETH update",
    "liquidate": "liquidator.liquidate(account, []): the price already stored (< maxExecutionAge old)",
    "liquidate_with_update": "liquidator.liquidate(account, [a newer MockPyth update])",
    "liquidate_batch_per_account": f"liquidator.liquidateBatch of {BATCH} accounts with one update, / {BATCH}",
}


class Bench:
    def __init__(self) -> None:
        cfg = load_network_config("local")
        self.cfg = cfg
        (self.deployer, self.lp, self.background, self.trader, self.keeper, self.new_lp, self.crowd) = (
            accounts.test_accounts[:7]
        )
        self.p = deploy_protocol(project, self.deployer, cfg)
        self.eth = self.p.markets[ETH]
        self.book = PriceBook.for_markets(self.p.price_ids)
        self.price = Decimal(cfg.markets[ETH].initial_price)
        self.delay = cfg.orders.settlement_delay
        self.lp_delay = cfg.lp.settlement_delay
        self.fee = int(self.p.oracle.updateFee())
        self.gas: dict[str, dict[str, int]] = defaultdict(dict)
        self.txs: dict[str, str] = {}
        self.units: dict[str, int] = {}  # a batch transaction's orders or accounts (1 when absent)

    # ------------------------------------------------------------------ chain helpers

    def next_block(self) -> None:
        chain.pending_timestamp = chain.blocks.head.timestamp + BLOCK

    def measure(self, key: str, variant: str, receipt: Any) -> Any:
        assert not receipt.failed, (key, variant)
        self.gas[key][variant] = int(receipt.gas_used)
        self.txs[f"{key}.{variant}"] = str(receipt.txn_hash)
        return receipt

    def fund(self, who: Any, amount: int) -> None:
        self.p.token.mint(who, amount, sender=who)
        self.p.token.approve(self.p.vault, 2**256 - 1, sender=who)

    def publish(self, t: int, usd: Decimal | None = None) -> None:
        self.book.publish(ETH, self.price if usd is None else usd, t)

    def blob_at(self, t: int) -> bytes:
        blob = self.book.feeds[ETH].update_at_or_after(t)
        assert blob is not None
        return blob

    def latest_blob(self) -> bytes:
        blob = self.book.feeds[ETH].latest_update()
        assert blob is not None
        return blob

    def commit(self, owner: Any, account: int, size: Decimal, acceptable: int | None = None) -> tuple[int, int, Any]:
        """A market order; the acceptable price is 1% off the price unless given."""
        if acceptable is None:
            slip = Decimal("1.01") if size > 0 else Decimal("0.99")
            acceptable = int(self.price * slip * WAD)
        receipt = self.p.order_book.commitOrder(account, self.eth, int(size * WAD), acceptable, USDC, sender=owner)
        placed = receipt.events.filter(self.p.order_book.OrderPlaced)[0]
        return int(placed.orderId), int(receipt.timestamp), receipt

    def settle(self, order_ids: list[int], commit_time: int) -> Any:
        """Publishes the price at commit + delay, then settles 12 s after the head; the first order
        carries the update, the others reuse its proof (as the keeper does)."""
        due = commit_time + self.delay
        self.publish(due)
        blobs = [self.blob_at(due)] + [b""] * (len(order_ids) - 1)
        self.next_block()
        receipt = self.p.order_book.settleOrders(order_ids, blobs, [], sender=self.keeper, value=self.fee)
        settled = receipt.events.filter(self.p.order_book.OrderSettled)
        assert len(settled) == len(order_ids), (len(settled), receipt.events)
        return receipt

    def trade(self, owner: Any, account: int, size: Decimal) -> Any:
        order_id, t, _ = self.commit(owner, account, size)
        return self.settle([order_id], t)

    def heartbeat(self) -> None:
        """A reference round at the current price (Chainlink's heartbeat), recorded by a price update
        so that no measured transaction is the first to see it."""
        feed = self.p.feeds[ETH]
        feed.setPrice(int(self.price * 10 ** int(feed.decimals())), sender=self.deployer)
        t = int(chain.blocks.head.timestamp) + 1
        chain.pending_timestamp = t
        self.publish(t)
        self.p.oracle.updatePrices([(self.eth, self.latest_blob())], sender=self.keeper, value=self.fee)

    def commit_in_one_block(self, owner: Any, account_ids: list[int], size: Decimal) -> tuple[list[int], int]:
        """Commits one order per account, all mined in one block (automine off meanwhile)."""
        w3 = chain.provider.web3
        book = self.p.order_book
        acceptable = int(self.price * Decimal("1.01") * WAD)
        nonce = w3.eth.get_transaction_count(owner.address, "pending")
        gas_price = 2 * int(w3.eth.gas_price) + 1
        hashes = []
        w3.provider.make_request("evm_setAutomine", [False])
        try:
            for i, account in enumerate(account_ids):
                data = book.commitOrder.encode_input(account, self.eth, int(size * WAD), acceptable, USDC)
                tx = {
                    "from": owner.address,
                    "to": book.address,
                    "data": data,
                    "nonce": nonce + i,
                    "gas": 400_000,
                    "gasPrice": gas_price,
                    "chainId": w3.eth.chain_id,
                    "value": 0,
                }
                signed = w3.eth.account.sign_transaction(tx, owner.private_key)
                hashes.append(w3.eth.send_raw_transaction(signed.raw_transaction))
            t = int(chain.blocks.head.timestamp) + BLOCK
            w3.provider.make_request("evm_mine", [t])
        finally:
            w3.provider.make_request("evm_setAutomine", [True])
        for h in hashes:
            assert w3.eth.get_transaction_receipt(h)["status"] == 1
        ids = [a * 8 for a in account_ids]  # a fresh account's first order takes slot 0
        for order_id in ids:
            assert int(book.order(order_id).updatedAt) == t
        return ids, t

    # ------------------------------------------------------------------ the scenario

    def run(self) -> None:
        p = self.p
        # The very first order on the freshly deployed protocol (every slot starts at zero). The
        # pool must exist first: an LP deposit at zero open interest needs no price.
        self.fund(self.lp, 1_000_000 * USDC + USDC)
        receipt = p.vault.requestDeposit(1_000_000 * USDC, self.lp, self.lp, sender=self.lp)
        chain.pending_timestamp = int(receipt.timestamp) + self.lp_delay + self.cfg.lp.liquidation_grace
        p.vault.settleDeposit(self.lp, [], sender=self.keeper)
        p.vault.deposit(1_000_000 * USDC, self.lp, sender=self.lp)
        self.fund(self.keeper, USDC)  # a working keeper already holds the token
        self.fund(self.background, 100_000 * USDC)
        other = create_account(p.engine, self.background)
        p.vault.depositMargin(other, 100_000 * USDC, sender=self.background)
        order_id, t, _ = self.commit(self.background, other, Decimal(-10))
        self.measure("order_settle", "first_ever", self.settle([order_id], t))
        chain.mine(timestamp=int(chain.blocks.head.timestamp) + 600)  # holding the short a while
        self.heartbeat()
        # Adding to the short accrues ten minutes of funding and borrowing and makes the entry
        # charges non-zero: every slot of the market's state is live from here on.
        self.trade(self.background, other, Decimal(-1))
        self.heartbeat()

        self._trader()
        self._stop()
        self._lp()
        crowd = self._crowd()
        self._liquidations(crowd)

    def _trader(self) -> None:
        p, trader = self.p, self.trader
        self.fund(trader, 20_000 * USDC)
        account = self.trader_account = create_account(p.engine, trader)
        self.next_block()
        self.measure("deposit", "cold", p.vault.depositMargin(account, 10_000 * USDC, sender=trader))
        self.next_block()
        self.measure("deposit", "warm", p.vault.depositMargin(account, 1_000 * USDC, sender=trader))
        self.next_block()
        self.measure("withdraw", "no_position", p.vault.withdrawMargin(account, 1_000 * USDC, trader, sender=trader))

        # Open: the account's first order and first position.
        self.next_block()
        order_id, t, receipt = self.commit(trader, account, Decimal(1))
        self.measure("order_commit", "cold", receipt)
        receipt = self.settle([order_id], t)
        self.measure("order_settle", "cold", receipt)
        self.measure("open", "cold", receipt)
        # Increase: an order on an existing position.
        self.next_block()
        order_id, t, receipt = self.commit(trader, account, Decimal(1))
        self.measure("order_commit", "warm", receipt)
        receipt = self.settle([order_id], t)
        self.measure("order_settle", "warm", receipt)
        self.measure("open", "warm", receipt)
        self.next_block()
        self.measure("withdraw", "with_position", p.vault.withdrawMargin(account, 100 * USDC, trader, sender=trader))
        # Reduce, then close the rest.
        self.next_block()
        order_id, t, _ = self.commit(trader, account, Decimal("-0.5"))
        self.measure("close", "partial", self.settle([order_id], t))
        self.next_block()
        order_id, t, _ = self.commit(trader, account, Decimal("-1.5"))
        self.measure("close", "full", self.settle([order_id], t))

    def _stop(self) -> None:
        """A stop-loss on a 1 ETH long: placed, triggered by a 1.5% dip (the keeper brings the
        market's latest price), then filled a delay later at the price published then."""
        p, trader, account = self.p, self.trader, self.trader_account
        self.next_block()
        self.trade(trader, account, Decimal(1))
        self.next_block()
        trigger = int(self.price * Decimal("0.99") * WAD)
        receipt = p.order_book.placeOrder(account, self.eth, 2, -WAD, trigger, 0, USDC, sender=trader)
        self.measure("order_place", "stop", receipt)
        order_id = int(receipt.events.filter(p.order_book.OrderPlaced)[0].orderId)
        dip = self.price * Decimal("0.985")
        t = int(chain.blocks.head.timestamp) + BLOCK
        self.publish(t - 1, dip)
        chain.pending_timestamp = t
        latest = [(self.eth, self.latest_blob())]
        receipt = p.order_book.settleOrders([order_id], [b""], latest, sender=self.keeper, value=self.fee)
        assert receipt.events.filter(p.order_book.OrderTriggered), receipt.events
        self.measure("conditional_trigger", "stop", receipt)
        due = int(receipt.timestamp) + self.delay
        self.publish(due, dip)
        self.next_block()
        receipt = p.order_book.settleOrders([order_id], [self.blob_at(due)], [], sender=self.keeper, value=self.fee)
        assert receipt.events.filter(p.order_book.OrderSettled), receipt.events
        self.measure("conditional_fill", "stop", receipt)
        self.next_block()
        self.heartbeat()  # back to the scenario's price

    def _lp(self) -> None:
        p, lp = self.p, self.new_lp
        self.fund(lp, 50_000 * USDC + USDC)
        self.next_block()
        receipt = self.measure("lp_commit", "cold", p.vault.requestDeposit(50_000 * USDC, lp, lp, sender=lp))
        due = int(receipt.timestamp) + self.lp_delay
        self.publish(due)
        self.next_block()
        self.measure(
            "lp_settle",
            "cold",
            p.vault.settleDeposit(lp, [(self.eth, self.blob_at(due))], sender=self.keeper, value=self.fee),
        )
        self.next_block()
        self.measure("lp_claim", "cold", p.vault.deposit(50_000 * USDC, lp, sender=lp))
        self.next_block()
        shares = int(p.vault.balanceOf(lp)) // 2
        receipt = self.measure("lp_redeem_commit", "cold", p.vault.requestRedeem(shares, lp, lp, sender=lp))
        due = int(receipt.timestamp) + self.lp_delay
        self.publish(due)
        self.next_block()
        receipt = p.vault.settleRedeem(lp, [(self.eth, self.blob_at(due))], sender=self.keeper, value=self.fee)
        assert receipt.events.filter(p.vault.RedeemSettled), receipt.events
        self.measure("lp_redeem_settle", "cold", receipt)

    def _crowd(self) -> list[int]:
        """BATCH + 3 new accounts of $1,000 each open 6 ETH longs (18x): three settled apart, then the
        measured batch of BATCH."""
        p, owner = self.p, self.crowd
        n = BATCH + 3
        self.fund(owner, n * 1_000 * USDC)
        ids = []
        for _ in range(n):
            account = create_account(p.engine, owner)
            p.vault.depositMargin(account, 1_000 * USDC, sender=owner)
            ids.append(account)
        orders, t = self.commit_in_one_block(owner, ids[:3], Decimal(6))
        self.settle(orders, t)
        orders, t = self.commit_in_one_block(owner, ids[3:], Decimal(6))
        receipt = self.settle(orders, t)
        self.gas["order_settle_batch_per_order"]["cold"] = int(receipt.gas_used) // BATCH
        self.gas["order_settle_batch_per_order"]["total"] = int(receipt.gas_used)
        self.txs["order_settle_batch_per_order.cold"] = str(receipt.txn_hash)
        self.units["order_settle_batch_per_order.cold"] = BATCH
        return ids

    def _liquidations(self, ids: list[int]) -> None:
        """ETH drops 5% (reference round and pull price): every crowd account is deeply underwater
        (full liquidation)."""
        p = self.p
        self.heartbeat()
        self.price = Decimal(2850)
        feed = self.p.feeds[ETH]
        self.next_block()
        feed.setPrice(2850 * 10 ** int(feed.decimals()), sender=self.deployer)
        t = int(chain.blocks.head.timestamp) + BLOCK
        self.publish(t - 1)
        chain.pending_timestamp = t
        receipt = p.liquidator.liquidate(ids[0], [(self.eth, self.latest_blob())], sender=self.keeper, value=self.fee)
        self.measure("liquidate_with_update", "new_round", receipt)  # the first to see the crash round
        self.publish(t + BLOCK - 1)
        self.next_block()
        receipt = p.liquidator.liquidate(ids[1], [(self.eth, self.latest_blob())], sender=self.keeper, value=self.fee)
        self.measure("liquidate_with_update", "steady", receipt)
        self.next_block()
        self.measure("liquidate", "stored_price", p.liquidator.liquidate(ids[2], [], sender=self.keeper))
        self.publish(int(chain.blocks.head.timestamp) + BLOCK - 1)
        self.next_block()
        receipt = p.liquidator.liquidateBatch(
            ids[3:], [(self.eth, self.latest_blob())], sender=self.keeper, value=self.fee
        )
        done = len(receipt.events.filter(p.liquidator.Liquidation))
        assert done == len(ids) - 3, done
        self.gas["liquidate_batch_per_account"]["cold"] = int(receipt.gas_used) // done
        self.gas["liquidate_batch_per_account"]["total"] = int(receipt.gas_used)
        self.txs["liquidate_batch_per_account.cold"] = str(receipt.txn_hash)
        self.units["liquidate_batch_per_account.cold"] = done


# Which variant a key's figure (and target) is: "cold" where the account's storage is fresh.
APPLIES_TO = {
    "deposit": "cold",
    "withdraw": "no_position",
    "order_commit": "cold",
    "order_settle": "cold",
    "order_settle_batch_per_order": "cold",
    "open": "cold",
    "close": "full",
    "order_place": "stop",
    "conditional_trigger": "stop",
    "conditional_fill": "stop",
    "lp_commit": "cold",
    "lp_settle": "cold",
    "lp_claim": "cold",
    "lp_redeem_commit": "cold",
    "lp_redeem_settle": "cold",
    "liquidate": "stored_price",
    "liquidate_with_update": "steady",
    "liquidate_batch_per_account": "cold",
}


def report(bench: Bench, floors: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, what in WHAT.items():
        variants = bench.gas[key]
        applies = APPLIES_TO[key]
        gas = variants[applies]
        target = TARGETS.get(key)
        floor = floors.get(f"{key}.{applies}")
        out[key] = {
            "gas": gas,
            "target": target,
            "meets_target": None if target is None else gas <= target,
            "applies_to": applies,
            "variants": dict(variants),
            "access_floor": floor,
            "target_below_access_floor": None if target is None or floor is None else target < floor,
            "what": what,
        }
    return out


def main() -> None:
    bench = Bench()
    bench.run()
    traced = profile(bench)
    floors = {label: row["access_floor"] // bench.units.get(label, 1) for label, row in traced.items()}
    result = report(bench, floors)
    doc = {
        "scenario": __doc__.split("\n\n")[2].replace("\n", " ") if __doc__ else "",
        "block_seconds": BLOCK,
        "batch": BATCH,
        "gas": result,
        "pull_update": pull_update(bench, traced),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(doc, indent=2) + "\n")
    table = Table(title="Gas per operation (live market, 12 s blocks)")
    for col in ("operation", "gas", "variants", "target", "access floor"):
        table.add_column(col, justify="left" if col in ("operation", "variants") else "right")
    for key, row in result.items():
        variants = ", ".join(f"{k} {v:,}" for k, v in row["variants"].items() if k != row["applies_to"])
        target = row["target"]
        mark = "" if target is None else f"<= {target:,} {'ok' if row['meets_target'] else 'MISSED'}"
        floor = "" if row["access_floor"] is None else f"{row['access_floor']:,}"
        table.add_row(key, f"{row['gas']:,} ({row['applies_to']})", variants, mark, floor)
    Console().print(table)
    PROFILE_OUT.write_text(json.dumps(traced, indent=2) + "\n")
    print(f"wrote {OUT} and {PROFILE_OUT}")


def pull_update(bench: Bench, traced: dict[str, Any]) -> dict[str, Any]:
    """What the update costs inside the two single-transaction targets that include one."""
    with_update, without = traced["liquidate_with_update.steady"], traced["liquidate.stored_price"]
    calldata = with_update["transaction"]["calldata"] - without["transaction"]["calldata"]
    fee_call = VALUE_CALL if bench.fee else 0
    per_op = {}
    for key in ("order_settle", "liquidate_with_update"):
        label = f"{key}.{APPLIES_TO[key]}"
        mock = sum(traced[label]["contracts"]["pyth"].values())
        irreducible = mock + calldata + COLD_ACCOUNT + fee_call
        per_op[key] = {
            "mock_pyth": mock,
            "irreducible": irreducible,
            "target": TARGETS[key],
            "left_under_target": TARGETS[key] - irreducible,
        }
    return {
        "what": "the update's share of each target: MockPyth's gas, the update's calldata (the liquidation "
        "with an update less the one without), the first call to Pyth (2,600) and one call paying its fee "
        "(6,700); left_under_target is what the target leaves for everything else",
        "liquidate_marginal": bench.gas["liquidate_with_update"]["steady"] - bench.gas["liquidate"]["stored_price"],
        "calldata": calldata,
        "per_operation": per_op,
    }


# ---------------------------------------------------------------------- profiling

CALLS = ("CALL", "STATICCALL", "DELEGATECALL", "CALLCODE")
COLD_ACCOUNT = 2600  # EIP-2929: the first call to an account in a transaction
VALUE_CALL = 9000 - 2300  # a call carrying value, less the stipend the callee gets and gives back unused
PRECOMPILES = {f"0x{i:040x}" for i in range(1, 11)}


def profile(bench: Bench) -> dict[str, Any]:
    """Where each measured transaction's gas goes, from Anvil's struct logs: per contract, storage
    reads (cold 2,100 / warm 100) and writes (fresh slot 20,000 (+2,100 cold), update 2,900
    (+2,100), no-op or dirty 100), logs, calls (cold account 2,600, value 9,000 less the 2,300
    stipend the callee gets and gives back unused, the rest), and
    execution (everything else: arithmetic, memory, ABI coding); plus the transaction's intrinsic
    21,000, its calldata and the refund (cleared slots, at most a fifth of the gas)."""
    names = {
        str(getattr(bench.p, n).address).lower(): n
        for n in ("token", "pyth", "oracle", "vault", "engine", "order_book", "liquidator")
    }
    names[str(bench.p.feeds[ETH].address).lower()] = "eth_feed"
    w3 = chain.provider.web3
    out: dict[str, Any] = {}
    for label, tx in bench.txs.items():
        out[label] = _breakdown(w3, tx, names)
    return out


def _breakdown(w3: Any, tx: str, names: dict[str, str]) -> dict[str, Any]:
    t = w3.eth.get_transaction(tx)
    receipt = w3.eth.get_transaction_receipt(tx)
    data = bytes(t["input"])
    calldata = sum(16 if b else 4 for b in data)
    logs = w3.provider.make_request("debug_traceTransaction", [tx, {"disableStorage": True, "disableMemory": True}])[
        "result"
    ]["structLogs"]
    per: dict[str, Counter[str]] = defaultdict(Counter)
    slots: dict[str, list[str]] = defaultdict(list)  # each contract's cold slots, in the order first touched
    warm = {str(t["from"]).lower(), str(t["to"]).lower()} | PRECOMPILES
    stack = [str(t["to"]).lower()]
    total = 0
    for i, step in enumerate(logs):
        depth, op = step["depth"], step["op"]
        del stack[depth:]
        who = names.get(stack[-1], stack[-1][:10])
        cost = int(step["gasCost"])
        if op in CALLS and i + 1 < len(logs) and logs[i + 1]["depth"] == depth + 1:
            j = i + 1
            while j < len(logs) and logs[j]["depth"] > depth:
                j += 1
            last = logs[j - 1]
            callee = int(logs[i + 1]["gas"]) - (int(last["gas"]) - int(last["gasCost"]))
            cost = int(step["gas"]) - int(logs[j]["gas"]) - callee if j < len(logs) else cost
            target = ("0x" + step["stack"][-2][-40:]).lower()
            stack.append(stack[-1] if op == "DELEGATECALL" else target)
        elif op in CALLS:
            cost = int(step["gas"]) - int(logs[i + 1]["gas"]) if i + 1 < len(logs) else cost
            target = ("0x" + step["stack"][-2][-40:]).lower()
        total += cost
        if op in CALLS:
            if target not in warm:
                warm.add(target)
                per[who]["call: cold account"] += COLD_ACCOUNT
                cost -= COLD_ACCOUNT
            if op == "CALL" and int(step["stack"][-3], 16) != 0:
                per[who]["call: value transfer"] += VALUE_CALL
                cost -= VALUE_CALL
            per[who]["call: other"] += cost
        elif op in ("EXTCODESIZE", "EXTCODEHASH", "BALANCE", "EXTCODECOPY"):
            warm.add(("0x" + step["stack"][-1][-40:]).lower())
            per[who]["call: cold account" if cost >= COLD_ACCOUNT else "execution"] += cost
        elif op == "SLOAD":
            per[who]["storage read: cold" if cost >= 2100 else "storage read: warm"] += cost
            if cost >= 2100:
                slots[who].append(step["stack"][-1])
        elif op == "SSTORE":
            kind = "write: fresh slot" if cost >= 20000 else "write: update" if cost >= 2900 else "write: warm/no-op"
            per[who]["storage " + kind] += cost
            if cost in (22100, 5000):  # written without being read first: a cold slot too
                slots[who].append(step["stack"][-1])
        elif op.startswith("LOG"):
            per[who]["log"] += cost
        else:
            per[who]["execution"] += cost
    intrinsic = 21000
    refund = intrinsic + calldata + total - int(receipt["gasUsed"])
    instructions = sum(c["execution"] + c["log"] for c in per.values())
    return {
        "tx": tx,
        "gas_used": int(receipt["gasUsed"]),
        # What the transaction's storage, calls, calldata and intrinsic cost alone: the gas left if
        # every contract ran no instruction but its storage accesses and calls, and logged nothing.
        "access_floor": int(receipt["gasUsed"]) - instructions,
        "transaction": {"intrinsic": intrinsic, "calldata": calldata, "refund": -refund},
        "contracts": {
            who: dict(c.most_common()) for who, c in sorted(per.items(), key=lambda kv: -sum(kv[1].values()))
        },
        "cold_slots": {who: keys for who, keys in slots.items()},
    }
