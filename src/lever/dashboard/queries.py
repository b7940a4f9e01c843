"""What each page shows, read from the index (SQLAlchemy Core; no node calls). Amounts come out
as floats in USD (or base units for sizes): the index keeps the exact integers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, func, select

from lever.indexer import schema as s
from lever.math import pool as pool_math
from lever.math.orders import Kind

WAD = 1e18
PAGE = 50
SORTS = {
    "health": s.accounts.c.health_f,
    "equity": s.accounts.c.equity_f,
    "notional": s.accounts.c.notional_f,
    "id": s.accounts.c.account_id,
}


@dataclass(frozen=True)
class Units:
    token_decimals: int  # the collateral token's decimals (USD units)

    def usd(self, token_amount: int | None) -> float:
        return 0.0 if token_amount is None else token_amount / 10**self.token_decimals

    @property
    def share_decimals(self) -> int:
        return self.token_decimals + 6  # LeverVault.decimals()


def status(conn: Connection) -> dict[str, Any]:
    row = conn.execute(select(s.cursor.c.block)).first()
    snap = conn.execute(select(func.max(s.pool_snapshots.c.block))).scalar()
    return {"block": int(row[0]) if row else None, "snapshot": int(snap) if snap is not None else None}


def market_names(conn: Connection) -> dict[int, str]:
    return {int(r.market_id): r.name for r in conn.execute(select(s.markets.c.market_id, s.markets.c.name))}


def markets(conn: Connection) -> list[dict[str, Any]]:
    """Each market's latest snapshot: price, open interest, skew, funding and borrowing rates."""
    names = market_names(conn)
    latest = (
        select(s.market_snapshots.c.market_id, func.max(s.market_snapshots.c.block).label("block"))
        .group_by(s.market_snapshots.c.market_id)
        .subquery()
    )
    rows = (
        conn.execute(
            select(s.market_snapshots)
            .join(
                latest,
                (s.market_snapshots.c.market_id == latest.c.market_id) & (s.market_snapshots.c.block == latest.c.block),
            )
            .order_by(s.market_snapshots.c.market_id)
        )
        .mappings()
        .all()
    )
    out = []
    for r in rows:
        price = r["price"] / WAD
        out.append(
            {
                "id": int(r["market_id"]),
                "name": names.get(int(r["market_id"]), str(r["market_id"])),
                "price": price,
                "long_oi": r["long_oi"] / WAD,
                "short_oi": r["short_oi"] / WAD,
                "skew": (r["long_oi"] - r["short_oi"]) / WAD,
                "oi_usd": (r["long_oi"] + r["short_oi"]) / WAD * price,
                "funding_day": r["funding_rate_day"] / WAD,
                "long_borrow_day": r["long_borrow_day"] / WAD,
                "short_borrow_day": r["short_borrow_day"] / WAD,
                "reserve": r["reserve"] / WAD,
                "block": int(r["block"]),
            }
        )
    return out


def price_series(conn: Connection, market_id: int, limit: int = 300) -> list[tuple[int, float]]:
    rows = conn.execute(
        select(s.market_snapshots.c.timestamp, s.market_snapshots.c.price_f)
        .where(s.market_snapshots.c.market_id == market_id)
        .order_by(s.market_snapshots.c.block.desc())
        .limit(limit)
    ).all()
    return [(int(t), float(p)) for t, p in reversed(rows)]


def _pool_row(r: Any, u: Units) -> dict[str, Any]:
    supply, value = r["share_supply"], r["pool_value"]
    one_share = 10**u.share_decimals
    return {
        "block": int(r["block"]),
        "timestamp": int(r["timestamp"]),
        "pool_value": u.usd(value),
        "pool_assets": u.usd(r["pool_assets"]),
        "share_price": u.usd(pool_math.to_assets_down(one_share, value, supply)),
        "reserve": r["reserve_wad"] / WAD,
        "free_assets": u.usd(r["free_assets"]),
        "insurance": u.usd(r["insurance"]),
        "protocol_fees": u.usd(r["protocol_fees"]),
        "shares": supply / one_share,
    }


def pool_latest(conn: Connection, u: Units) -> dict[str, Any] | None:
    r = conn.execute(select(s.pool_snapshots).order_by(s.pool_snapshots.c.block.desc()).limit(1)).mappings().first()
    return _pool_row(r, u) if r else None


def pool_series(conn: Connection, u: Units, limit: int = 300) -> list[dict[str, Any]]:
    rows = conn.execute(select(s.pool_snapshots).order_by(s.pool_snapshots.c.block.desc()).limit(limit)).mappings()
    return [_pool_row(r, u) for r in reversed(list(rows))]


def counts(conn: Connection) -> dict[str, int]:
    a = s.accounts.c
    return {
        "accounts": conn.execute(select(func.count()).select_from(s.accounts)).scalar_one(),
        "with_positions": conn.execute(select(func.count()).where(a.positions > 0)).scalar_one(),
        "liquidatable": conn.execute(select(func.count()).where(a.health_f < 1)).scalar_one(),
        "pending_orders": conn.execute(
            select(func.count()).where(s.orders.c.status.in_(s.OPEN_ORDER_STATUSES))
        ).scalar_one(),
        "liquidations": conn.execute(select(func.count()).select_from(s.liquidations)).scalar_one(),
    }


def accounts(
    conn: Connection, u: Units, sort: str = "health", descending: bool = False, page: int = 1
) -> tuple[list[dict[str, Any]], int]:
    """One page of accounts with positions, sorted (accounts without a health last), and the
    number of pages."""
    a = s.accounts.c
    sort = sort if sort in SORTS else "health"
    column = SORTS[sort]
    order = column.desc() if descending else column.asc()
    total = conn.execute(select(func.count()).where(a.positions > 0)).scalar_one()
    pages = max(1, -(-total // PAGE))
    page = min(max(1, page), pages)
    rows = (
        conn.execute(
            select(s.accounts)
            .where(a.positions > 0)
            .order_by(order.nulls_last(), a.account_id)
            .limit(PAGE)
            .offset((page - 1) * PAGE)
        )
        .mappings()
        .all()
    )
    ids = [int(r["account_id"]) for r in rows]
    names = market_names(conn)
    legs: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    if ids:
        for p in conn.execute(
            select(s.positions).where(s.positions.c.account_id.in_(ids)).order_by(s.positions.c.market_id)
        ).mappings():
            legs[int(p["account_id"])].append(
                {
                    "market": names.get(int(p["market_id"]), str(p["market_id"])),
                    "size": p["size_f"],
                    "entry": p["entry_price_f"],
                    "liq": p["liquidation_price_f"],
                    "value": p["value_f"],
                }
            )
    out = [
        {
            "id": int(r["account_id"]),
            "owner": r["owner"],
            "margin": u.usd(r["margin"]),
            "equity": r["equity_f"],
            "maintenance": r["maintenance_f"],
            "notional": r["notional_f"],
            "health": r["health_f"],
            "positions": legs[int(r["account_id"])],
        }
        for r in rows
    ]
    return out, pages


def liquidation_map(conn: Connection, market_id: int, bins: int = 40) -> dict[str, Any]:
    """Open interest by liquidation price around the current price: longs liquidate below it,
    shorts above. Bins span the liquidation prices within ±50% of the price."""
    price = conn.execute(
        select(s.market_snapshots.c.price_f)
        .where(s.market_snapshots.c.market_id == market_id)
        .order_by(s.market_snapshots.c.block.desc())
        .limit(1)
    ).scalar()
    rows = conn.execute(
        select(s.positions.c.liquidation_price_f, s.positions.c.size_f, s.positions.c.account_id).where(
            s.positions.c.market_id == market_id, s.positions.c.liquidation_price_f.is_not(None)
        )
    ).all()
    result: dict[str, Any] = {"price": price, "bins": [], "nearest": [], "positions": len(rows), "lo": 0.0, "hi": 0.0}
    if price is None or not rows:
        return result
    lo, hi = price * 0.5, price * 1.5
    width = (hi - lo) / bins
    longs, shorts = [0.0] * bins, [0.0] * bins
    for liq, size, _ in rows:
        if lo <= liq < hi:
            i = int((liq - lo) / width)
            (longs if size > 0 else shorts)[i] += abs(size) * liq
    result.update(
        lo=lo,
        hi=hi,
        bins=[
            {"lo": lo + i * width, "hi": lo + (i + 1) * width, "longs": longs[i], "shorts": shorts[i]}
            for i in range(bins)
        ],
    )
    nearest = sorted(rows, key=lambda r: abs(r[0] - price))[:15]
    result["nearest"] = [
        {"account": int(acct), "liq": liq, "size": size, "distance": (liq - price) / price}
        for liq, size, acct in nearest
    ]
    return result


def recent_trades(conn: Connection, limit: int = 25) -> list[dict[str, Any]]:
    names = market_names(conn)
    t = s.trades.c
    rows = conn.execute(select(s.trades).order_by(t.block.desc(), t.log_index.desc()).limit(limit)).mappings()
    return [
        {
            "block": int(r["block"]),
            "time": int(r["timestamp"]),
            "account": int(r["account_id"]),
            "market": names.get(int(r["market_id"]), ""),
            "size": r["size_delta"] / WAD,
            "after": r["size_after"] / WAD,
            "fill": r["fill_price"] / WAD,
            "fee": r["fee"] / WAD,
            "realised": r["realised"] / WAD,
            "liquidation": bool(r["liquidation"]),
        }
        for r in rows
    ]


def recent_orders(conn: Connection, limit: int = 25) -> list[dict[str, Any]]:
    names = market_names(conn)
    o = s.orders.c
    rows = conn.execute(select(s.orders).order_by(o.block.desc(), o.log_index.desc()).limit(limit)).mappings()
    return [
        {
            "block": int(r["block"]),
            "time": int(r["timestamp"]),
            "order": int(r["order_id"]),
            "account": int(r["account_id"]),
            "market": names.get(int(r["market_id"]), ""),
            "kind": Kind(int(r["kind"])).name.replace("_", " ").lower(),
            "size": r["size_delta"] / WAD,
            "trigger": r["trigger_price"] / WAD,
            "status": r["status"],
            "fill": r["fill_price"] / WAD if r["fill_price"] is not None else None,
            "reason": r["reason"],
        }
        for r in rows
    ]


def recent_liquidations(conn: Connection, u: Units, limit: int = 25) -> list[dict[str, Any]]:
    q = s.liquidations.c
    rows = conn.execute(select(s.liquidations).order_by(q.block.desc(), q.log_index.desc()).limit(limit)).mappings()
    return [
        {
            "block": int(r["block"]),
            "time": int(r["timestamp"]),
            "account": int(r["account_id"]),
            "keeper": r["keeper"],
            "full": bool(r["full"]),
            "share": r["close_share"] / WAD,
            "notional": r["closed_notional"] / WAD,
            "reward": u.usd(r["reward"]),
            "penalty": u.usd(r["penalty"]),
            "bad_debt": u.usd(r["bad_debt"]),
        }
        for r in rows
    ]


def recent_lp_flows(conn: Connection, u: Units, limit: int = 15) -> list[dict[str, Any]]:
    f = s.lp_flows.c
    rows = conn.execute(select(s.lp_flows).order_by(f.block.desc(), f.log_index.desc()).limit(limit)).mappings()
    return [
        {
            "block": int(r["block"]),
            "kind": r["kind"],
            "controller": r["controller"],
            "assets": u.usd(r["assets"]),
            "shares": r["shares"] / 10**u.share_decimals,
            "reason": r["reason"],
        }
        for r in rows
    ]
