"""Runs a keeper unattended: the block loop, retries, a circuit breaker, signals, metrics.

Lifecycle (after pymaker's): hydrate, then one `step()` per poll; a step that overruns simply
makes the next step cover several blocks (work is never queued). SIGINT/SIGTERM let the current
step finish (a sent transaction is waited for) and exit 0. RPC errors are retried with
exponential backoff; after `max_consecutive_errors` in a row the breaker opens: `/health`
reports 503, the keeper waits `breaker_cooldown` seconds, then re-hydrates from scratch.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from requests.exceptions import RequestException
from web3.exceptions import Web3Exception

from lever.hermes import PriceServiceError
from lever.keeper.runner import Keeper

log = logging.getLogger("lever.keeper")

RPC_ERRORS: tuple[type[BaseException], ...] = (
    RequestException,
    Web3Exception,
    OSError,
    TimeoutError,
    PriceServiceError,
)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key.startswith("kv_"):
                entry[key[3:]] = value
        return json.dumps(entry, default=str)


def configure_logging(json_lines: bool) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("lever")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


class KeeperService:
    def __init__(
        self,
        keeper: Keeper,
        poll_interval: float = 1.0,
        max_consecutive_errors: int = 5,
        breaker_cooldown: float = 30.0,
        metrics_port: int = 0,
    ):
        self.keeper = keeper
        self.poll_interval = poll_interval
        self.max_consecutive_errors = max_consecutive_errors
        self.breaker_cooldown = breaker_cooldown
        self.metrics_port = metrics_port
        self.stopping = threading.Event()
        self.breaker_open = False
        self.hydrated = False
        self._server: ThreadingHTTPServer | None = None

    # ------------------------------------------------------------------ lifecycle

    def install_signal_handlers(self) -> None:
        def _stop(signum: int, _frame: FrameType | None) -> None:
            log.info("signal %s: finishing the current step, then exiting", signal.Signals(signum).name)
            self.stopping.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)

    def run(self, max_steps: int | None = None) -> int:
        """Runs until stopped; returns the exit code (0)."""
        if self.metrics_port:
            self._serve_metrics()
        errors = 0
        steps = 0
        try:
            while not self.stopping.is_set() and (max_steps is None or steps < max_steps):
                started = time.monotonic()
                try:
                    if not self.hydrated:
                        self.keeper.hydrate()
                        self.hydrated = True
                        log.info(
                            "hydrated",
                            extra={
                                "kv_accounts": len(self.keeper.state.records),
                                "kv_block": self.keeper.state.last_block,
                            },
                        )
                    liquidated = self.keeper.step()
                    steps += 1
                    errors = 0
                    self.breaker_open = False
                    if liquidated:
                        log.info(
                            "liquidated", extra={"kv_accounts": liquidated, "kv_block": self.keeper.state.last_block}
                        )
                except RPC_ERRORS as exc:
                    errors += 1
                    self.keeper.metrics.errors.inc()
                    if errors >= self.max_consecutive_errors:
                        self.breaker_open = True
                        self.hydrated = False  # rebuild state from scratch once the node is back
                        log.error("circuit open after %d errors: %r", errors, exc, extra={"kv_errors": errors})
                        self.stopping.wait(self.breaker_cooldown)
                        continue
                    backoff = min(self.breaker_cooldown, self.poll_interval * 2**errors)
                    log.warning("rpc error, retrying: %r", exc, extra={"kv_errors": errors, "kv_backoff": backoff})
                    self.stopping.wait(backoff)
                    continue
                self.stopping.wait(max(0.0, self.poll_interval - (time.monotonic() - started)))
        finally:
            if self._server is not None:
                self._server.shutdown()
        log.info("stopped", extra={"kv_steps": steps})
        return 0

    # ------------------------------------------------------------------ metrics and health

    def health(self) -> tuple[int, dict[str, Any]]:
        ok = self.hydrated and not self.breaker_open
        return (200 if ok else 503), {
            "status": "ok" if ok else ("circuit-open" if self.breaker_open else "starting"),
            "last_block": self.keeper.state.last_block,
            "accounts": len(self.keeper.state.records),
            "orders": len(self.keeper.state.orders),
            "lp_requests": len(self.keeper.state.lp),
        }

    @contextlib.contextmanager
    def status_served(self) -> Iterator[str]:
        """`/health` and `/metrics` served (on `metrics_port`, or a free port if 0) while the block
        runs, for a keeper stepped by someone else (the demo); yields their base URL."""
        self._serve_metrics()
        assert self._server is not None
        try:
            yield f"http://127.0.0.1:{self._server.server_address[1]}"
        finally:
            self._server.shutdown()
            self._server = None

    def _serve_metrics(self) -> None:
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/health":
                    code, body = service.health()
                    payload, kind = json.dumps(body).encode(), "application/json"
                elif self.path == "/metrics":
                    code, payload, kind = 200, generate_latest(service.keeper.metrics.registry), CONTENT_TYPE_LATEST
                else:
                    code, payload, kind = 404, b"not found\n", "text/plain"
                self.send_response(code)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.metrics_port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        log.info("metrics and /health on 127.0.0.1", extra={"kv_port": self.metrics_port})


def run_keeper(flags: dict[str, Any], config_file: Any, account: str | None, max_steps: int | None) -> int:
    """`lever keeper run`: settings, a connection, the signer, then the service loop."""

    from lever import app
    from lever.errors import LeverError
    from lever.keeper.settings import load_settings
    from lever.keeper.wiring import build_keeper, connect

    settings = load_settings(flags, config_file)
    configure_logging(settings.log_json)
    with contextlib.ExitStack() as stack:
        if settings.rpc_url:
            w3 = connect(settings.rpc_url)
            if not w3.is_connected():
                raise LeverError(f"cannot reach the RPC at {settings.rpc_url}")
        else:
            w3 = stack.enter_context(app.connected(settings.network)).web3
        key = app.private_key(account) if account else None
        keeper = build_keeper(w3, settings, key)
        service = KeeperService(
            keeper,
            poll_interval=settings.poll_interval,
            max_consecutive_errors=settings.max_consecutive_errors,
            breaker_cooldown=settings.breaker_cooldown,
            metrics_port=settings.metrics_port,
        )
        service.install_signal_handlers()
        return service.run(max_steps=max_steps)
