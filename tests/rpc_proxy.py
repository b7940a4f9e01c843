"""A JSON-RPC proxy on loopback that drops, delays and fails a share of requests (fault tests)."""

from __future__ import annotations

import random
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FaultyProxy:
    def __init__(self, upstream: str, fail: float = 0.0, drop: float = 0.0, delay: float = 0.0, seed: int = 7):
        self.upstream = upstream
        self.fail, self.drop, self.delay = fail, drop, delay
        self.random = random.Random(seed)
        self.requests = 0
        self.faults = 0
        self.down = False  # refuse everything (a node outage)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with proxy._lock:
                    proxy.requests += 1
                    roll = proxy.random.random()
                if proxy.down or roll < proxy.fail:
                    with proxy._lock:
                        proxy.faults += 1
                    self.send_response(503)
                    self.end_headers()
                    return
                if roll < proxy.fail + proxy.drop:
                    with proxy._lock:
                        proxy.faults += 1
                    self.close_connection = True  # hang up without an answer
                    return
                if roll < proxy.fail + proxy.drop + 0.2 and proxy.delay:
                    time.sleep(proxy.delay)
                request = urllib.request.Request(proxy.upstream, data=body, headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=30) as response:
                    payload = response.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultyProxy:  # noqa: PYI034
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
