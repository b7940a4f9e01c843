"""The indexer's I/O shell: logs from the node in block ranges, the projection, one database
transaction per range; reorgs detected by block hash and rolled back; snapshots of the pool and
the markets, and every account's risk (the mirror), once caught up with the head.

Safety across reorgs: the indexer stays `confirmations` blocks behind the head, remembers the
hash of every block it took events from (and of each range's last block), and before each range
checks the hash of the last block it indexed. On a mismatch it walks back to the newest block
whose hash still matches, deletes everything after it and replays its stored events up to it.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from requests.exceptions import RequestException
from sqlalchemy import Connection, Engine, Table, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from web3 import Web3

from lever import math as m
from lever.artifacts import Artifacts, artifacts
from lever.chain import Addresses, ProtocolReader
from lever.deployments import Deployment
from lever.errors import LeverError
from lever.indexer import schema as s
from lever.indexer.decode import Decoder, RawLog
from lever.indexer.project import Account, Projection, Small
from lever.math import perp

log = logging.getLogger("lever.indexer")

LOCAL_CHAINS = (31337, 1337)
WAD_F = 1e18


class NodeError(LeverError):
    """The node cannot be reached or does not serve what the indexer needs."""


def default_confirmations(chain_id: int) -> int:
    """0 on a local chain (instant, and reorgs are still rolled back), 12 elsewhere."""
    return 0 if chain_id in LOCAL_CHAINS else 12


@dataclass
class SyncReport:
    first_block: int
    last_block: int
    events: int
    seconds: float
    rollbacks: int


def upsert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert or update by primary key, on SQLite and PostgreSQL."""
    if not rows:
        return
    dialect = pg_dialect if conn.dialect.name == "postgresql" else sqlite_dialect
    stmt = dialect.insert(table)
    keys = [c.name for c in table.primary_key.columns]
    columns = [c for c in rows[0] if c not in keys]
    stmt = (
        stmt.on_conflict_do_update(index_elements=keys, set_={c: stmt.excluded[c] for c in columns})
        if columns
        else stmt.on_conflict_do_nothing(index_elements=keys)
    )
    conn.execute(stmt, rows)


def insert_many(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Plain inserts of many rows through the driver's executemany, each value through its
    column type's bind processor (SQLAlchemy's own executemany builds every row's parameters
    through the compiler: most of the indexer's time on a long history)."""
    if not rows:
        return
    names = list(rows[0])
    quote = conn.dialect.identifier_preparer.quote
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) "
        f"VALUES ({', '.join([mark] * len(names))})"
    )
    processors = [table.c[n].type.bind_processor(conn.dialect) for n in names]
    conn.exec_driver_sql(
        sql,
        [tuple(v if f is None else f(v) for f, v in zip(processors, (r[n] for n in names), strict=True)) for r in rows],
    )


class Indexer:
    def __init__(
        self,
        engine: Engine,
        w3: Web3,
        deployment: Deployment,
        *,
        confirmations: int | None = None,
        batch_blocks: int = 2_000,
        from_block: int | None = None,
        arts: Artifacts | None = None,
    ):
        self.engine = engine
        self.w3 = w3
        self.deployment = deployment
        self.arts = arts or artifacts()
        self.reader = ProtocolReader(w3, Addresses.from_deployment(deployment), self.arts, retries=2)
        self.decoder = Decoder(self.arts, deployment.contracts)
        self.batch_blocks = batch_blocks
        self.from_block = from_block
        try:
            self.chain_id = int(w3.eth.chain_id)
        except (RequestException, OSError, ValueError) as exc:
            raise NodeError(f"cannot reach the node at {_uri(w3)}: {type(exc).__name__}") from None
        if self.chain_id != deployment.chain_id:
            raise NodeError(f"the node is chain {self.chain_id}; the deployment is on chain {deployment.chain_id}")
        self.confirmations = default_confirmations(self.chain_id) if confirmations is None else confirmations
        self.scale = self.reader.token_scale()
        self.cursor_block = -1
        self.cursor_hash = ""
        self.snapshot_block = -1
        self.proj = self._projection()
        self._load()

    # ------------------------------------------------------------------ state

    def _projection(self) -> Projection:
        return Projection(
            self.scale,
            self.deployment.contracts["vault"],
            self.arts.error_name,
            self.arts.error_selector("RequestExpired"),
        )

    def _load(self) -> None:
        with self.engine.connect() as conn:
            row = conn.execute(select(s.cursor).where(s.cursor.c.id == 1)).mappings().first()
            if row is None:
                self.cursor_block = self._start_block() - 1
                return
            if row["chain_id"] != self.chain_id or row["engine"].lower() != self.deployment.contracts["engine"].lower():
                raise LeverError(
                    f"this database indexes engine {row['engine']} on chain {row['chain_id']}, "
                    f"not {self.deployment.contracts['engine']} on chain {self.chain_id}: "
                    "use another database"
                )
            self.cursor_block, self.cursor_hash = int(row["block"]), row["hash"]
            self.snapshot_block = int(conn.execute(select(func.max(s.pool_snapshots.c.block))).scalar() or -1)
            self._load_state(conn, Small.from_json(row["state"]))

    def _load_state(self, conn: Connection, small: Small) -> None:
        p = self.proj = self._projection()
        p.small = small
        for a in conn.execute(
            select(s.accounts.c.account_id, s.accounts.c.owner, s.accounts.c.margin, s.accounts.c.created_block)
        ):
            p.accounts[int(a.account_id)] = Account(a.owner, int(a.margin), int(a.created_block))
        for r in conn.execute(select(s.positions)).mappings():
            key = (int(r["account_id"]), int(r["market_id"]))
            p.positions[key] = m.Position(r["size"], r["cost"], r["entry_charge"], int(r["last_increase_time"]))
            p.account_markets.setdefault(key[0], set()).add(key[1])
        p.holders = {h.address: int(h.shares) for h in conn.execute(select(s.lp_holders))}
        for r in conn.execute(select(s.orders).where(s.orders.c.status.in_(s.OPEN_ORDER_STATUSES))).mappings():
            p.open_order_rows[(int(r["block"]), int(r["log_index"]))] = dict(r)

    def _start_block(self) -> int:
        """The first block holding one of the protocol's contracts. The deployment record's block
        is where deployment finished (after the constructors emitted the first parameters), so
        this finds each contract's creation block by bisection on `eth_getCode`."""
        if self.from_block is not None:
            return self.from_block
        head = int(self.w3.eth.block_number)
        first = self.deployment.block
        try:
            for address in self.decoder.addresses:
                lo, hi = 0, first
                target = Web3.to_checksum_address(address)
                while lo < hi:
                    mid = (lo + hi) // 2
                    if len(self.w3.eth.get_code(target, mid)) > 0:
                        hi = mid
                    else:
                        lo = mid + 1
                first = min(first, lo)
        except (ValueError, RequestException) as exc:  # a node without history: start at the record
            log.warning("cannot bisect contract creation (%s); starting at block %d", exc, first)
        return min(first, head)

    # ------------------------------------------------------------------ node

    def _rpc(self, method: str, params: list[Any]) -> Any:
        for attempt in range(4):
            try:
                response = self.w3.provider.make_request(method, params)  # type: ignore[arg-type]
            except (RequestException, OSError) as exc:
                if attempt == 3:
                    raise NodeError(f"cannot reach the node at {_uri(self.w3)}: {type(exc).__name__}") from None
                time.sleep(0.1 * 2**attempt)
                continue
            if "error" in response:
                raise NodeError(f"{method}: {response['error'].get('message', response['error'])}")
            return response["result"]
        raise AssertionError("unreachable")

    def _head(self) -> int:
        return int(self._rpc("eth_blockNumber", []), 16)

    def _block(self, number: int) -> tuple[str, int] | None:
        """(hash, timestamp) of a block, None if the chain has no such block (any more)."""
        b = self._rpc("eth_getBlockByNumber", [hex(number), False])
        return None if b is None else (b["hash"], int(b["timestamp"], 16))

    # ------------------------------------------------------------------ the loop

    def sync(self, snapshot: bool = True) -> SyncReport:
        """Indexes up to the safe head (head - confirmations); then, if anything moved, takes the
        snapshots and refreshes every account's risk."""
        started = time.perf_counter()
        first, events, rollbacks = self.cursor_block + 1, 0, 0
        while True:
            safe = self._head() - self.confirmations
            if self._reorged():
                rollbacks += 1
                first = min(first, self.cursor_block + 1)
            if self.cursor_block >= safe:
                break
            to = min(self.cursor_block + self.batch_blocks, safe)
            done = self._range(self.cursor_block + 1, to)
            if done is None:  # the chain moved under the range: check again
                continue
            events += done
        if snapshot and self.cursor_block >= 0 and self.cursor_block != self.snapshot_block:
            self.snapshot(self.cursor_block)
        return SyncReport(first, self.cursor_block, events, time.perf_counter() - started, rollbacks)

    def follow(self, stop: threading.Event, interval: float = 1.0) -> None:
        """Syncs every `interval` seconds until `stop` is set; node errors are logged and retried."""
        while not stop.is_set():
            try:
                report = self.sync()
                if report.events or report.rollbacks:
                    log.info(
                        "indexed blocks %d-%d: %d events, %d rollbacks",
                        report.first_block,
                        report.last_block,
                        report.events,
                        report.rollbacks,
                    )
            except NodeError as exc:
                log.warning("node error, retrying: %s", exc)
            stop.wait(interval)

    def _range(self, start: int, end: int) -> int | None:
        end_block = self._block(end)
        if end_block is None:
            return None
        raw = self._rpc(
            "eth_getLogs", [{"fromBlock": hex(start), "toBlock": hex(end), "address": self.decoder.addresses}]
        )
        if self._block(end) != end_block:
            return None
        logs = [RawLog.from_rpc(r) for r in raw if not r.get("removed")]
        stamps: dict[int, int] = {end: end_block[1]}
        hashes: dict[int, str] = {end: end_block[0]}
        for r, lg in zip(raw, logs, strict=False):
            hashes[lg.block] = lg.block_hash
            if "blockTimestamp" in r and r["blockTimestamp"] is not None:
                stamps[lg.block] = int(r["blockTimestamp"], 16)
        for number in {lg.block for lg in logs} - stamps.keys():
            b = self._block(number)
            if b is None or b[0] != hashes[number]:
                return None
            stamps[number] = b[1]
        event_rows = []
        for lg in logs:
            e = self.decoder.decode(lg, stamps[lg.block])
            event_rows.append(
                {
                    "block": lg.block,
                    "log_index": lg.log_index,
                    "tx_hash": lg.tx_hash,
                    "timestamp": stamps[lg.block],
                    "address": lg.address,
                    "name": self.decoder.name(lg),
                    "topics": ",".join(lg.topics),
                    "data": lg.data,
                }
            )
            if e is not None:
                self.proj.apply(e)
        block_rows = [{"number": n, "hash": hashes[n], "timestamp": stamps[n]} for n in sorted(hashes)]
        with self.engine.begin() as conn:
            insert_many(conn, s.events, event_rows)
            self._write(conn, block_rows)
            self._write_cursor(conn, end, end_block[0])
        self.cursor_block, self.cursor_hash = end, end_block[0]
        return len(logs)

    def _write(self, conn: Connection, block_rows: list[dict[str, Any]]) -> None:
        p, c = self.proj, self.proj.take_changes()
        for name, rows in c.rows.items():
            insert_many(conn, s.metadata.tables[name], rows)
        if c.markets:
            upsert(conn, s.markets, c.markets)
        upsert(conn, s.orders, list(c.orders.values()))
        upsert(
            conn,
            s.accounts,
            [
                {
                    "account_id": a,
                    "owner": p.accounts[a].owner,
                    "created_block": p.accounts[a].created_block,
                    "margin": p.accounts[a].margin,
                    "positions": len(p.account_markets.get(a, ())),
                }
                for a in sorted(c.accounts)
            ],
        )
        gone = [{"a": a, "mk": mk} for a, mk in c.positions if (a, mk) not in p.positions]
        if gone:
            conn.execute(
                delete(s.positions).where(
                    s.positions.c.account_id == bindparam("a"), s.positions.c.market_id == bindparam("mk")
                ),
                gone,
            )
        upsert(
            conn,
            s.positions,
            [_position_row(key, p.positions[key]) for key in sorted(c.positions) if key in p.positions],
        )
        upsert(conn, s.lp_holders, [{"address": h, "shares": p.holders[h]} for h in sorted(c.holders)])
        led = p.small.ledgers
        upsert(
            conn,
            s.ledgers,
            [
                {
                    "id": 1,
                    "block": block_rows[-1]["number"] if block_rows else self.cursor_block,
                    "pool": led.pool,
                    "insurance": led.insurance,
                    "protocol_fees": led.protocol_fees,
                    "order_escrow": led.order_escrow,
                    "lp_escrow": led.lp_escrow,
                    "share_supply": led.share_supply,
                    "total_margin": sum(a.margin for a in p.accounts.values()),
                }
            ],
        )
        upsert(conn, s.blocks, block_rows)

    def _write_cursor(self, conn: Connection, block: int, block_hash: str) -> None:
        upsert(
            conn,
            s.cursor,
            [
                {
                    "id": 1,
                    "chain_id": self.chain_id,
                    "engine": self.deployment.contracts["engine"],
                    "block": block,
                    "hash": block_hash,
                    "state": self.proj.small.to_json(),
                }
            ],
        )

    # ------------------------------------------------------------------ reorgs

    def _reorged(self) -> bool:
        """Rolls back to the newest stored block still on the chain if the cursor's block is not."""
        if not self.cursor_hash:
            return False
        current = self._block(self.cursor_block)
        if current is not None and current[0] == self.cursor_hash:
            return False
        ancestor: int | None = None
        with self.engine.connect() as conn:
            stored = conn.execute(
                select(s.blocks.c.number, s.blocks.c.hash)
                .where(s.blocks.c.number < self.cursor_block)
                .order_by(s.blocks.c.number.desc())
            ).all()
        for number, block_hash in stored:
            b = self._block(int(number))
            if b is not None and b[0] == block_hash:
                ancestor = int(number)
                break
        if ancestor is None:
            ancestor = self._first_event_block() - 1
        log.warning("reorg: block %d changed; rolling back to block %d", self.cursor_block, ancestor)
        self.rollback(ancestor)
        return True

    def _first_event_block(self) -> int:
        with self.engine.connect() as conn:
            first = conn.execute(select(func.min(s.blocks.c.number))).scalar()
        return int(first) if first is not None else self.cursor_block

    def rollback(self, ancestor: int) -> None:
        """Forgets every block after `ancestor` and rebuilds the state by replaying the stored events."""
        with self.engine.begin() as conn:
            for table in (s.events, *s.HISTORY, *s.SNAPSHOTS):
                conn.execute(delete(table).where(table.c.block > ancestor))
            conn.execute(delete(s.blocks).where(s.blocks.c.number > ancestor))
            for table in (*s.HISTORY, *s.STATE):
                conn.execute(delete(table))
            self.proj = self._projection()
            rows = conn.execute(select(s.events).order_by(s.events.c.block, s.events.c.log_index)).mappings().all()
            for r in rows:
                raw = RawLog(
                    int(r["block"]),
                    int(r["log_index"]),
                    r["tx_hash"],
                    "",
                    r["address"],
                    tuple(r["topics"].split(",")) if r["topics"] else (),
                    r["data"],
                )
                e = self.decoder.decode(raw, int(r["timestamp"]))
                if e is not None:
                    self.proj.apply(e)
            self._write(conn, [])
            ancestor_hash = conn.execute(select(s.blocks.c.hash).where(s.blocks.c.number == ancestor)).scalar()
            self._write_cursor(conn, ancestor, ancestor_hash or "")
        self.cursor_block, self.cursor_hash = ancestor, ancestor_hash or ""
        self.snapshot_block = -1

    # ------------------------------------------------------------------ snapshots and risk

    def snapshot(self, block: int) -> None:
        """The pool and every market at `block` (views pinned to it), and every account's health
        and liquidation prices through the mirror at that block's prices."""
        b = self._block(block)
        if b is None:
            return
        now = b[1]
        reader, v = self.reader, self.reader.vault.functions
        ledgers = reader.ledgers(block)
        pool_wad = ledgers.pool * self.scale
        cov = ledgers.coverage(self.scale)
        views: dict[int, m.MarketView] = {}
        market_rows = []
        for mk in range(reader.market_count(block)):
            if mk not in reader.addresses.feeds:
                continue
            view = reader.market(mk, block).view(now, pool_wad)
            views[mk] = view
            st, pa = view.state, view.params
            market_rows.append(
                {
                    "block": block,
                    "market_id": mk,
                    "timestamp": now,
                    "price": view.price.price,
                    "long_oi": st.long_oi,
                    "short_oi": st.short_oi,
                    "funding_rate_day": perp.funding_rate_per_day(
                        st.skew, pa.funding_scale, pa.max_funding_rate_per_day
                    ),
                    "long_borrow_day": perp.borrow_rate_per_day(
                        pa.borrow_rate_per_day, perp.reserve(st.long_cost, pa.max_profit_ratio), pool_wad
                    ),
                    "short_borrow_day": perp.borrow_rate_per_day(
                        pa.borrow_rate_per_day, perp.reserve(st.short_cost, pa.max_profit_ratio), pool_wad
                    ),
                    "reserve": m.market_reserve(st, pa),
                    "price_f": view.price.price / WAD_F,
                    "long_oi_f": st.long_oi / WAD_F,
                    "short_oi_f": st.short_oi / WAD_F,
                }
            )
        pool_row = {
            "block": block,
            "timestamp": now,
            "pool_assets": ledgers.pool,
            "pool_value": int(reader.call(v.totalAssets(), block)),
            "share_supply": int(reader.call(v.totalSupply(), block)),
            "reserve_wad": ledgers.total_reserve_wad,
            "free_assets": int(reader.call(v.freeAssets(), block)),
            "insurance": ledgers.insurance,
            "protocol_fees": ledgers.protocol_fees,
        }
        accounts, positions = self._risk(views, cov, block)
        with self.engine.begin() as conn:
            upsert(conn, s.market_snapshots, market_rows)
            upsert(conn, s.pool_snapshots, [pool_row])
            conn.execute(
                update(s.accounts)
                .where(s.accounts.c.positions == 0, s.accounts.c.health_f.is_not(None))
                .values(equity_f=None, maintenance_f=None, notional_f=None, health_f=None, risk_block=block)
            )
            if accounts:
                conn.execute(
                    update(s.accounts)
                    .where(s.accounts.c.account_id == bindparam("a"))
                    .values(
                        equity_f=bindparam("equity"),
                        maintenance_f=bindparam("mm"),
                        notional_f=bindparam("notional"),
                        health_f=bindparam("health"),
                        risk_block=bindparam("rb"),
                    ),
                    accounts,
                )
            if positions:
                conn.execute(
                    update(s.positions)
                    .where(s.positions.c.account_id == bindparam("a"), s.positions.c.market_id == bindparam("mk"))
                    .values(liquidation_price_f=bindparam("liq"), value_f=bindparam("value")),
                    positions,
                )
        self.snapshot_block = block

    def _risk(
        self, views: dict[int, m.MarketView], cov: m.Coverage, block: int
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        p = self.proj
        accounts, positions = [], []
        for account_id, markets in p.account_markets.items():
            if not markets or any(mk not in views for mk in markets):
                continue
            legs = [(p.positions[(account_id, mk)], views[mk]) for mk in sorted(markets)]
            margin = p.accounts[account_id].margin
            st = m.account_state(margin, self.scale, legs, cov)
            accounts.append(
                {
                    "a": account_id,
                    "equity": st.equity / WAD_F,
                    "mm": st.maintenance_margin / WAD_F,
                    "notional": st.notional / WAD_F,
                    "rb": block,
                    "health": st.equity / st.maintenance_margin if st.maintenance_margin else None,
                }
            )
            for pos, view in legs:
                liq = m.liquidation_price(margin, self.scale, legs, view.market_id, cov)
                positions.append(
                    {
                        "a": account_id,
                        "mk": view.market_id,
                        "liq": liq / WAD_F if liq else None,
                        "value": m.figures(pos, view, cov).value / WAD_F,
                    }
                )
        return accounts, positions


def _position_row(key: tuple[int, int], pos: m.Position) -> dict[str, Any]:
    return {
        "account_id": key[0],
        "market_id": key[1],
        "size": pos.size,
        "cost": pos.cost,
        "entry_charge": pos.entry_charge,
        "last_increase_time": pos.last_increase_time,
        "size_f": pos.size / WAD_F,
        "entry_price_f": abs(pos.cost / pos.size) if pos.size else 0.0,
    }


def _uri(w3: Web3) -> str:
    return str(getattr(w3.provider, "endpoint_uri", "") or w3.provider)
