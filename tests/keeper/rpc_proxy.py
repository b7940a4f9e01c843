"""An HTTP proxy on loopback that refuses, errors, delays or loses a share of requests: between a
keeper and its node (JSON-RPC, POST) or its price service (GET), for the fault tests.

Faults, drawn per request from a seeded generator (`fail + drop + lose <= 1`):
- `fail`: answer 503 without forwarding (a gateway in trouble);
- `drop`: hang up without forwarding (a connection reset);
- `lose`: forward, then hang up without the answer (the request took effect, the client cannot know:
  a sent transaction must be re-sent as the same bytes, never as a second transaction);
- `delay`: seconds added before forwarding one request in five.
`down` refuses everything with 503 until cleared (an outage); `refuse` hangs up on everything.
"""

from __future__ import annotations

import random
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FaultyProxy:
    def __init__(
        self, upstream: str, fail: float = 0.0, drop: float = 0.0, lose: float = 0.0, delay: float = 0.0, seed: int = 7
    ):
        self.upstream = upstream.rstrip("/")
        self.fail, self.drop, self.lose, self.delay = fail, drop, lose, delay
        self.random = random.Random(seed)
        self.requests = 0
        self.faults = 0
        self.down = False
        self.refuse = False
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def _handle(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))) if method == "POST" else None
                with proxy._lock:
                    proxy.requests += 1
                    roll = proxy.random.random()
                    slow = proxy.random.random() < 0.2
                    fault = proxy.down or proxy.refuse or roll < proxy.fail + proxy.drop + proxy.lose
                    if fault:
                        proxy.faults += 1
                if proxy.refuse or (not proxy.down and proxy.fail <= roll < proxy.fail + proxy.drop):
                    self.close_connection = True  # hang up, nothing forwarded
                    return
                if proxy.down or roll < proxy.fail:
                    self._reply(503, b"unavailable\n", "text/plain")
                    return
                if slow and proxy.delay:
                    time.sleep(proxy.delay)
                headers = {"Content-Type": self.headers.get("Content-Type", "application/json")}
                request = urllib.request.Request(proxy.upstream + self.path, data=body, headers=headers, method=method)
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        status, payload = response.status, response.read()
                        kind = response.headers.get("Content-Type", "application/json")
                except urllib.error.HTTPError as error:
                    status, payload, kind = error.code, error.read(), error.headers.get("Content-Type", "text/plain")
                if roll < proxy.fail + proxy.drop + proxy.lose:
                    self.close_connection = True  # it happened upstream; the answer is lost
                    return
                self._reply(status, payload, kind)

            def _reply(self, status: int, payload: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:
                self._handle("POST")

            def do_GET(self) -> None:
                self._handle("GET")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultyProxy:  # noqa: PYI034
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
