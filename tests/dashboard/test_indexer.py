"""The indexer against Anvil, on SQLite and on PostgreSQL: the index equals the chain after a
run, a reorg rolls back, a restart resumes without duplicates, and a user's mistakes are one line."""

from __future__ import annotations

from typing import Any

import pytest
from harness import Harness
from history import ETH, assert_index_equals_chain, make_history
from sqlalchemy import func, select

from lever.deployments import Deployment
from lever.indexer import IndexDatabaseError, Indexer, open_engine
from lever.indexer import schema as s


def count(engine: Any, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def chain_log_count(h: Harness, indexer: Indexer, upto: int) -> int:
    logs = h.reader.w3.eth.get_logs(
        {
            "fromBlock": 0,
            "toBlock": upto,
            "address": [h.reader.w3.to_checksum_address(a) for a in indexer.decoder.addresses],
        }
    )
    return len(logs)


def test_sync_after_trades_liquidations_and_lp_flows_index_equals_chain(
    h: Harness, chain: Any, deployment: Deployment, db_url: str, alice: Any, bob: Any, lp: Any
) -> None:
    made = make_history(h, alice, bob, lp)
    engine = open_engine(db_url)
    indexer = Indexer(engine, chain.provider.web3, deployment)
    report = indexer.sync()
    assert report.events == chain_log_count(h, indexer, report.last_block) > 50
    assert_index_equals_chain(engine, h)
    with engine.connect() as conn:
        liquidations = conn.execute(select(s.liquidations).order_by(s.liquidations.c.block)).mappings().all()
        orders = {(o["order_id"], o["status"]) for o in conn.execute(select(s.orders)).mappings()}
        liq_trades = conn.execute(select(func.count()).where(s.trades.c.liquidation)).scalar_one()
        health = conn.execute(
            select(s.accounts.c.health_f).where(s.accounts.c.account_id == made["steady"])
        ).scalar_one()
        snapshot = (
            conn.execute(
                select(s.market_snapshots)
                .where(s.market_snapshots.c.market_id == 0)
                .order_by(s.market_snapshots.c.block.desc())
            )
            .mappings()
            .first()
        )
    assert [(int(q["account_id"]), bool(q["full"]), q["bad_debt"] > 0) for q in liquidations] == [
        (made["partial"], False, False),
        (made["underwater"], True, True),
    ]
    assert liq_trades == 2
    assert (made["limit"], "pending") in orders and sum(1 for _, st in orders if st == "cancelled") == 1
    assert (made["stop"], "triggered") in orders
    assert health is not None and health > 1
    assert snapshot is not None and snapshot["price"] == 2_800 * 10**18


def test_reorg_after_indexing_a_trade_rolls_it_back(
    h: Harness, chain: Any, deployment: Deployment, db_url: str, alice: Any
) -> None:
    account = h.open_account(alice, 5_000)
    engine = open_engine(db_url)
    indexer = Indexer(engine, chain.provider.web3, deployment)
    indexer.sync()
    trades_before = count(engine, s.trades)
    h.trade(alice, account, ETH, "1")
    indexer.sync()
    assert count(engine, s.trades) == trades_before + 1
    depth = chain.blocks.head.number - indexer.cursor_block + 3  # the trade's blocks and a few more
    w3 = chain.provider.web3
    w3.provider.make_request("anvil_reorg", [depth, []])
    report = indexer.sync()
    assert report.rollbacks == 1
    assert count(engine, s.trades) == trades_before
    assert_index_equals_chain(engine, h)
    assert count(engine, s.events) == chain_log_count(h, indexer, indexer.cursor_block)


def test_restart_after_more_history_resumes_without_duplicates(
    h: Harness, chain: Any, deployment: Deployment, db_url: str, alice: Any, bob: Any, lp: Any
) -> None:
    w3 = chain.provider.web3
    account = h.open_account(alice, 5_000)
    h.trade(alice, account, ETH, "1")
    engine = open_engine(db_url)
    Indexer(engine, w3, deployment).sync()
    make_history(h, alice, bob, lp)
    engine.dispose()
    engine = open_engine(db_url)  # a new process: state from the database, not memory
    indexer = Indexer(engine, w3, deployment)
    indexer.sync()
    assert count(engine, s.events) == chain_log_count(h, indexer, indexer.cursor_block)
    assert_index_equals_chain(engine, h)


def test_open_engine_with_a_malformed_url_is_one_line_error() -> None:
    with pytest.raises(IndexDatabaseError, match="not a database URL"):
        open_engine("not a url")
    with pytest.raises(IndexDatabaseError, match="unsupported database 'mysql'"):
        open_engine("mysql://u@localhost/x")


def test_open_engine_on_an_unreachable_server_is_one_line_error() -> None:
    from nodes import free_port  # tests/nodes.py: `conftest` may name another directory's module

    with pytest.raises(IndexDatabaseError, match="cannot open the database") as err:
        open_engine(f"postgresql://nobody@127.0.0.1:{free_port()}/none")
    assert "\n" not in str(err.value)


def test_decode_of_every_history_log_matches_eth_abi(
    h: Harness, chain: Any, deployment: Deployment, alice: Any, bob: Any, lp: Any
) -> None:
    from lever.artifacts import artifacts
    from lever.indexer.decode import Decoder, RawLog

    make_history(h, alice, bob, lp)
    decoder = Decoder(artifacts(), deployment.contracts)
    raw = chain.provider.web3.provider.make_request(
        "eth_getLogs", [{"fromBlock": "0x0", "toBlock": "latest", "address": decoder.addresses}]
    )["result"]
    names = set()
    for entry in raw:
        log = RawLog.from_rpc(entry)
        fast, generic = decoder.decode(log, 0), decoder.decode(log, 0, generic=True)
        assert fast == generic
        assert fast is not None
        names.add(fast.name)
    assert {"PositionChanged", "Liquidation", "OrderPlaced", "LiquidationParamsSet", "Transfer"} <= names


def test_index_command_with_an_unreachable_node_is_one_line_error() -> None:
    from click.testing import CliRunner
    from nodes import free_port  # tests/nodes.py: `conftest` may name another directory's module

    from lever.dashboard.cli import index

    result = CliRunner().invoke(index, ["--rpc-url", f"http://127.0.0.1:{free_port()}", "--once"])
    assert result.exit_code == 1
    assert result.output.startswith("error: cannot reach the node") and result.output.count("\n") == 1
