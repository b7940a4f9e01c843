"""`lever price serve`: a local price service with the Hermes HTTP shape, for local chains.

It holds every market's publication history (`lever.pyth.PriceBook`) and republishes each
market's current price once a second of *chain* time (it follows the node's clock, which the
demo and tests move forward), as Pyth's publishers do continuously. `lever price set` (and the
demo's price path) post new prices to it; keepers read updates from it exactly as they read
Pyth's Hermes: `/v2/updates/price/latest` and `/v2/updates/price/{publish_time}` (the earliest
publication at or after that time, as its update blob and parsed).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from lever.deployments import Deployment, load_deployment
from lever.errors import LeverError
from lever.pyth import FeedHistory, PriceBook, Publication, decode_update, encode_update

log = logging.getLogger(__name__)

Clock = Callable[[], int]


class PriceState:
    """The book, its current prices, and a lock (the HTTP handlers and the publisher share it)."""

    def __init__(self, book: PriceBook, current: dict[str, Decimal], clock: Clock):
        self.book = book
        self.current = dict(current)
        self.clock = clock
        self.lock = threading.Lock()

    def set(self, market: str, usd: Decimal) -> Publication:
        with self.lock:
            self.current[market] = usd
            return self.book.publish(market, usd, self.clock())

    def tick(self) -> None:
        """Republishes every current price at the clock's time (once a second at most)."""
        now = self.clock()
        with self.lock:
            for market, usd in self.current.items():
                latest = self.book.feeds[market].latest()
                if latest is None or latest.publish_time < now:
                    self.book.publish(market, usd, now)


def _ids(request: Request) -> list[bytes]:
    return [bytes.fromhex(v.removeprefix("0x")) for v in request.query_params.getlist("ids[]")]


def _answer(found: list[tuple[FeedHistory, Publication, int]]) -> JSONResponse:
    data, parsed = [], []
    for feed, pub, prev in found:
        blob = encode_update(feed.price_id, pub, prev)
        price = {"price": str(pub.price), "conf": str(pub.conf), "expo": pub.expo, "publish_time": pub.publish_time}
        data.append(blob.hex())
        parsed.append(
            {"id": feed.price_id.hex(), "price": price, "ema_price": price, "metadata": {"prev_publish_time": prev}}
        )
    return JSONResponse({"binary": {"encoding": "hex", "data": data}, "parsed": parsed})


def app(state: PriceState) -> Starlette:
    def feed_of(pid: bytes) -> FeedHistory | None:
        return state.book.by_id(pid)

    async def latest(request: Request) -> JSONResponse:
        found = []
        with state.lock:
            for pid in _ids(request):
                feed = feed_of(pid)
                if feed is None or (blob := feed.latest_update()) is None:
                    return JSONResponse({"error": f"unknown price id 0x{pid.hex()}"}, status_code=404)
                _, pub, prev = decode_update(blob)
                found.append((feed, pub, prev))
        return _answer(found)

    async def at_time(request: Request) -> JSONResponse:
        t = int(request.path_params["publish_time"])
        found = []
        with state.lock:
            for pid in _ids(request):
                feed = feed_of(pid)
                if feed is None:
                    return JSONResponse({"error": f"unknown price id 0x{pid.hex()}"}, status_code=404)
                hit = feed.at_or_after(t)
                if hit is not None:
                    found.append((feed, hit[0], hit[1]))
        if not found:
            return JSONResponse({"error": f"no update at or after {t} yet"}, status_code=404)
        return _answer(found)

    async def post_price(request: Request) -> JSONResponse:
        body: dict[str, Any] = await request.json()
        market = str(body.get("market", ""))
        if market not in state.book.feeds:
            return JSONResponse({"error": f"unknown market {market!r}"}, status_code=404)
        try:
            usd = Decimal(str(body["price"]))
        except (KeyError, InvalidOperation):
            return JSONResponse({"error": "price must be a number"}, status_code=400)
        if not usd.is_finite() or usd <= 0:
            return JSONResponse({"error": "price must be above zero"}, status_code=400)
        pub = state.set(market, usd)
        return JSONResponse({"market": market, "publish_time": pub.publish_time, "price": str(usd)})

    async def feeds(request: Request) -> JSONResponse:
        with state.lock:
            out = {
                m: {
                    "id": f.price_id.hex(),
                    "price": str(state.current.get(m)),
                    "publish_time": (last.publish_time if (last := f.latest()) else None),
                }
                for m, f in state.book.feeds.items()
            }
        return JSONResponse(out)

    return Starlette(
        routes=[
            Route("/v2/updates/price/latest", latest),
            Route("/v2/updates/price/{publish_time:int}", at_time),
            Route("/lever/prices", post_price, methods=["POST"]),
            Route("/lever/feeds", feeds),
        ]
    )


def chain_clock(rpc_url: str) -> Clock:
    """The node's clock: wall time plus the offset of its latest block, re-read at most every
    half second (the demo and tests move the chain's time forward)."""
    import httpx

    client = httpx.Client(timeout=5.0)
    offset: dict[str, float] = {"value": 0, "read": 0.0}

    def now() -> int:
        wall = time.time()
        if wall - offset["read"] > 0.5:
            try:
                block = client.post(
                    rpc_url,
                    json={"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["latest", False]},
                ).json()["result"]
                offset["value"] = max(0, int(block["timestamp"], 16) - int(wall))
                offset["read"] = wall
            except Exception as exc:  # noqa: BLE001 - a node hiccup: keep the last offset
                log.debug("chain clock: %s (keeping the last offset)", exc)
        return int(wall) + int(offset["value"])

    return now


class Publisher:
    """Republishes current prices once a second, in a thread."""

    def __init__(self, state: PriceState, interval: float = 1.0):
        self.state, self.interval = state, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Publisher:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.state.tick()

    def stop(self) -> None:
        self._stop.set()


class Server:
    """The service on uvicorn, in a thread (the CLI runs it in the foreground instead)."""

    def __init__(self, state: PriceState, host: str = "127.0.0.1", port: int = 0):
        import uvicorn

        self.config = uvicorn.Config(app(state), host=host, port=port, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(self.config)
        self._thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> str:
        self._thread.start()
        while not self.server.started:
            time.sleep(0.01)
        sock = self.server.servers[0].sockets[0]
        host, port = sock.getsockname()[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=5)


def state_for(deployment: Deployment, clock: Clock) -> PriceState:
    """A price state for a deployment: its markets' ids, each starting at its configured price."""
    book = PriceBook.for_markets(
        {name: bytes.fromhex(pid.removeprefix("0x")) for name, pid in deployment.price_ids.items()}
    )
    markets = deployment.parameters.get("markets", {})
    current = {name: Decimal(str(markets.get(name, {}).get("initial_price", "1"))) for name in deployment.markets}
    return PriceState(book, current, clock)


def serve(rpc_url: str, port: int, record: Path | None = None) -> None:
    """`lever price serve`: the service for the deployment on `rpc_url`, in the foreground."""
    import httpx
    import uvicorn

    try:
        chain_id = int(
            httpx.post(
                rpc_url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=5
            ).json()["result"],
            16,
        )
    except (httpx.HTTPError, KeyError, ValueError):
        raise LeverError(f"cannot reach the node at {rpc_url}") from None
    state = state_for(load_deployment(chain_id, path=record), chain_clock(rpc_url))
    state.tick()
    Publisher(state).start()
    print(f"price service for chain {chain_id} on http://127.0.0.1:{port} (Hermes: /v2/updates/price/...)", flush=True)
    uvicorn.run(app(state), host="127.0.0.1", port=port, log_level="warning")
