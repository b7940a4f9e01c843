"""Running the indexer and the web app in background threads (`alongside`), for `lever
dashboard` and `lever demo --dashboard`."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from sqlalchemy import Engine
from web3 import Web3

from lever.dashboard.app import Settings, create_app
from lever.deployments import Deployment
from lever.errors import LeverError
from lever.indexer import Indexer, open_engine
from lever.indexer.db import default_url
from lever.paths import REPO

log = logging.getLogger("lever.dashboard")


@dataclass
class Running:
    url: str  # the dashboard's address
    engine: Engine
    indexer: Indexer
    stop: threading.Event

    def wait_indexed(self, block: int, timeout: float = 30.0) -> None:
        """Blocks until the index (and its snapshots) reached `block`."""
        deadline = time.monotonic() + timeout
        while self.indexer.snapshot_block < block:
            if time.monotonic() > deadline:
                raise LeverError(f"the index did not reach block {block} within {timeout:.0f} s")
            time.sleep(0.05)


def default_db(deployment: Deployment) -> str:
    """One SQLite file per deployment: build/index/<chain>-<engine>.sqlite."""
    return default_url(
        REPO / "build" / "index" / f"{deployment.chain_id}-{deployment.contracts['engine'].lower()}.sqlite"
    )


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def alongside(
    rpc_url: str,
    deployment: Deployment,
    *,
    db_url: str | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    keeper_url: str | None = None,
    interval: float = 0.5,
    confirmations: int | None = None,
) -> Iterator[Running]:
    """Serves the dashboard on http://host:port (port 0: a free one) and follows the chain into
    the index every `interval` seconds, both in daemon threads, until the block exits."""
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 10}))
    engine = open_engine(db_url or default_db(deployment))
    indexer = Indexer(engine, w3, deployment, confirmations=confirmations)
    decimals = 18 - (len(str(indexer.scale)) - 1)
    app = create_app(
        engine,
        Settings(token_decimals=decimals, keeper_url=keeper_url, chain_id=deployment.chain_id, poll=min(interval, 0.5)),
    )
    port = port or free_port(host)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))
    stop = threading.Event()
    follower = threading.Thread(target=indexer.follow, args=(stop, interval), name="lever-indexer", daemon=True)
    web = threading.Thread(target=server.run, name="lever-dashboard", daemon=True)
    follower.start()
    web.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not web.is_alive() or time.monotonic() > deadline:
            stop.set()
            raise LeverError(f"the dashboard could not listen on {host}:{port}")
        time.sleep(0.02)
    url = f"http://{host}:{port}"
    log.info("dashboard on %s", url)
    try:
        yield Running(url, engine, indexer, stop)
    finally:
        stop.set()
        server.should_exit = True
        web.join(timeout=10)
        follower.join(timeout=10)
        engine.dispose()


def deployment_from(path: Path | None, chain_id: int) -> Deployment:
    from lever.deployments import load_deployment

    if path is not None:
        return load_deployment(chain_id, path=path)
    return load_deployment(chain_id)
