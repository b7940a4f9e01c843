"""`lever index`: the protocol's events into SQLite or PostgreSQL (SQLAlchemy 2, Alembic).

- `decode`: raw logs to events (pure); `project`: events to ledgers, accounts, positions (pure,
  through the mirror); `schema`: the tables; `db`: opening and migrating a database;
  `sync`: the node, reorgs and snapshots (I/O).
"""

from lever.indexer.db import IndexDatabaseError, open_engine
from lever.indexer.sync import Indexer, NodeError, SyncReport

__all__ = ["IndexDatabaseError", "Indexer", "NodeError", "SyncReport", "open_engine"]
