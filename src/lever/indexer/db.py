"""Opening the index's database: a URL (SQLite by default, PostgreSQL through psycopg), the
schema brought to Alembic's head, and one-line errors for a user's mistakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError

from lever.errors import LeverError
from lever.paths import REPO

DEFAULT_DB = REPO / "build" / "index.sqlite"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class IndexDatabaseError(LeverError):
    """A database URL that cannot be used (malformed, unknown driver, unreachable server)."""


def default_url(path: Path = DEFAULT_DB) -> str:
    return f"sqlite:///{path}"


def _normalise(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3 (the driver this project installs)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def open_engine(url: str | None = None, *, migrate: bool = True) -> Engine:
    """An engine on `url` (default: build/index.sqlite), migrated to the latest schema."""
    raw = _normalise(url or default_url())
    try:
        parsed = make_url(raw)
    except ArgumentError:
        raise IndexDatabaseError(
            f"not a database URL: {url!r} (e.g. sqlite:///index.sqlite or postgresql://user@host/db)"
        ) from None
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise IndexDatabaseError(f"unsupported database {backend!r} in {url!r}: use sqlite or postgresql")
    kwargs: dict[str, Any] = {}
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
        kwargs["connect_args"] = {"connect_timeout": 5}
    try:
        engine = create_engine(parsed, **kwargs)
    except (NoSuchModuleError, ImportError) as exc:
        raise IndexDatabaseError(f"no driver for {url!r}: {exc}") from None
    if backend == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        with engine.connect() as conn:
            conn.execute(text("select 1"))
    except OperationalError as exc:
        raise IndexDatabaseError(
            f"cannot open the database {parsed.render_as_string(hide_password=True)}: "
            f"{str(exc.orig).strip().splitlines()[0]}"
        ) from None
    if migrate:
        upgrade(engine)
    return engine


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL: the dashboard reads while the indexer writes; NORMAL sync is durable at checkpoints.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def alembic_config(engine: Engine | None = None) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine) -> None:
    """Alembic's `upgrade head` on this engine."""
    from alembic import command

    try:
        command.upgrade(alembic_config(engine), "head")
    except SQLAlchemyError as exc:
        raise IndexDatabaseError(f"cannot migrate the index database: {exc}") from None
