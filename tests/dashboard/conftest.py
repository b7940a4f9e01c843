"""Fixtures of the indexer and dashboard tests: the deployment record of the session's protocol,
the database backends (SQLite in a temp dir; PostgreSQL 15 started from Debian's binaries)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import Harness

from lever.deploy import deployment_record
from lever.deployments import Deployment

PG_BIN = Path(os.environ.get("LEVER_PG_BIN", "/usr/lib/postgresql/15/bin"))


@pytest.fixture
def deployment(h: Harness, chain: Any) -> Deployment:
    return deployment_record(h.p, int(chain.provider.chain_id), "local", h.config)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as(user: str | None, *argv: str) -> list[str]:
    """initdb refuses to run as root: run the server as an unprivileged user."""
    return ["runuser", "-u", user, "--", *argv] if user else list(argv)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A throwaway PostgreSQL server on a free loopback port, its data in a temp dir."""
    if not (PG_BIN / "initdb").is_file() or not (PG_BIN / "pg_ctl").is_file():
        pytest.skip(f"PostgreSQL binaries not found in {PG_BIN} (Debian: apt-get install postgresql-15)")
    user: str | None = None
    if os.geteuid() == 0:
        user = "postgres" if _user_exists("postgres") else "nobody"
    root = Path(tempfile.mkdtemp(prefix="lever-pg-"))
    data = root / "data"
    if user:
        shutil.chown(root, user)
    port = free_port()
    subprocess.run(
        _as(user, str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "lever", "--no-sync"),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    subprocess.run(
        _as(
            user,
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "-l",
            str(root / "server.log"),
            "start",
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql+psycopg://lever@127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as(user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


_DATABASES = iter(range(1, 10_000))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'index.sqlite'}"
    server = request.getfixturevalue("postgres_server")
    import psycopg

    name = f"index_{next(_DATABASES)}"
    with psycopg.connect(f"{server.replace('+psycopg', '')}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{server}/{name}"
