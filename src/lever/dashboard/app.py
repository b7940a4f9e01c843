"""The web app: Starlette, server-rendered Jinja2 pages, live through server-sent events.

Every page is a shell around one fragment (`?fragment=1` renders the fragment alone). The
browser opens `/events`; each time the index moves to a new block the server sends it, and the
page fetches its fragment again. Read-only: the app only reads the index (and the keeper's
`/health` and `/metrics`); it never calls the node.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from lever.dashboard import charts, keeper, queries
from lever.dashboard.queries import Units

HERE = Path(__file__).resolve().parent
PAGES = (
    ("overview", "/", "Overview"),
    ("markets", "/markets", "Markets"),
    ("pool", "/pool", "Pool"),
    ("accounts", "/accounts", "Accounts"),
    ("liquidation_map", "/liquidation-map", "Liquidation map"),
    ("activity", "/activity", "Activity"),
    ("keeper", "/keeper", "Keeper"),
)


@dataclass(frozen=True)
class Settings:
    token_decimals: int = 6
    keeper_url: str | None = None
    chain_id: int | None = None
    poll: float = 0.5  # how often /events looks at the index


def _usd(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "–"
    sign = "-" if value < 0 else ""
    return f"{sign}${abs(value):,.{digits}f}"


def _num(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _pct(value: float | None, digits: int = 4) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f}%"


def _time(ts: int | None) -> str:
    return "–" if not ts else datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


def _short(address: str | None) -> str:
    return "–" if not address else f"{address[:6]}…{address[-4:]}"


def templates() -> Jinja2Templates:
    t = Jinja2Templates(directory=str(HERE / "templates"))
    t.env.filters.update(usd=_usd, num=_num, pct=_pct, time=_time, short=_short)
    t.env.globals.update(nav_pages=PAGES, charts=charts)
    return t


def create_app(engine: Engine, settings: Settings | None = None) -> Starlette:
    cfg = settings or Settings()
    units = Units(cfg.token_decimals)
    tpl = templates()

    def context(conn: Connection, page: str, request: Request) -> dict[str, Any]:
        base: dict[str, Any] = {"page": page, "status": queries.status(conn), "settings": cfg}
        if page == "overview":
            base.update(
                markets=queries.markets(conn),
                pool=queries.pool_latest(conn, units),
                counts=queries.counts(conn),
                liquidations=queries.recent_liquidations(conn, units, 5),
                trades=queries.recent_trades(conn, 8),
                keeper=keeper.fetch(cfg.keeper_url),
            )
        elif page == "markets":
            mks = queries.markets(conn)
            base.update(
                markets=mks,
                series={mk["id"]: charts.line([p for _, p in queries.price_series(conn, mk["id"])]) for mk in mks},
            )
        elif page == "pool":
            series = queries.pool_series(conn, units)
            keys = ("pool_value", "share_price", "pool_assets", "reserve", "free_assets", "insurance")
            base.update(
                pool=queries.pool_latest(conn, units),
                lines={k: charts.line([row[k] for row in series]) for k in keys},
                points=len(series),
            )
        elif page == "accounts":
            sort = request.query_params.get("sort", "health")
            descending = request.query_params.get("dir", "asc") == "desc"
            page_no = _int(request.query_params.get("page"), 1)
            rows, pages = queries.accounts(conn, units, sort, descending, page_no)
            base.update(
                accounts=rows,
                pages=pages,
                page_no=min(max(1, page_no), pages),
                sort=sort,
                descending=descending,
                counts=queries.counts(conn),
            )
        elif page == "liquidation_map":
            names = queries.market_names(conn)
            market = _int(request.query_params.get("market"), min(names, default=0))
            data = queries.liquidation_map(conn, market)
            base.update(
                names=names,
                market=market,
                map=data,
                bars=charts.histogram(data["bins"]),
                price_x=charts.x_of(data["price"] or 0.0, data["lo"], data["hi"]),
            )
        elif page == "activity":
            base.update(
                trades=queries.recent_trades(conn),
                orders=queries.recent_orders(conn),
                liquidations=queries.recent_liquidations(conn, units),
                lp_flows=queries.recent_lp_flows(conn, units),
            )
        elif page == "keeper":
            base.update(keeper=keeper.fetch(cfg.keeper_url))
        return base

    def view(page: str) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            def render() -> dict[str, Any]:
                with engine.connect() as conn:
                    return context(conn, page, request)

            ctx = await asyncio.to_thread(render)
            name = f"fragments/{page}.html" if request.query_params.get("fragment") else "page.html"
            return tpl.TemplateResponse(request, name, ctx)

        return endpoint

    async def events(request: Request) -> EventSourceResponse:
        async def stream() -> AsyncIterator[dict[str, str]]:
            last: dict[str, Any] | None = None
            while not await request.is_disconnected():
                now = await asyncio.to_thread(_status, engine)
                if now != last:
                    last = now
                    yield {"event": "index", "data": f"{now['block']}:{now['snapshot']}"}
                await asyncio.sleep(cfg.poll)

        return EventSourceResponse(stream(), ping=15)

    async def api_status(request: Request) -> JSONResponse:
        return JSONResponse({**await asyncio.to_thread(_status, engine), "time": time.time()})

    routes: list[Any] = [Route(path, view(page), name=page) for page, path, _ in PAGES]
    routes += [
        Route("/events", events),
        Route("/api/status", api_status),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    return Starlette(routes=routes)


def _status(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        return queries.status(conn)


def _int(text: str | None, default: int) -> int:
    try:
        return int(text) if text is not None else default
    except ValueError:
        return default
