"""Processes the command-line tests run beside ape's own node: an Anvil of their own (on a free
port, never 8545), and `lever` commands in the background (the price service, the keeper)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ANVIL = REPO / "tools" / "bin" / "anvil"  # no block states left on disk


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(ready: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready within {timeout:.0f} s")
        time.sleep(0.2)


@contextmanager
def anvil(*args: str) -> Iterator[str]:
    """An Anvil of its own on a free port; yields its URL."""
    from web3 import Web3

    port = free_port()
    process = subprocess.Popen([str(ANVIL), "--port", str(port), "--silent", *args])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(Web3(Web3.HTTPProvider(url)).is_connected, f"anvil on {port}")
        yield url
    finally:
        process.terminate()
        process.wait(10)


@contextmanager
def background(args: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """`lever ARGS` in the background (output to `log`), stopped with SIGTERM at the end."""
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(BIN / "lever"), *args],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
