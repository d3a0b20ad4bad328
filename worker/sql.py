"""The small SQL interface the store runs on.

Two engines satisfy it: the Durable Object's SQL API (``ctx.storage.sql.exec``
with ``ctx.storage.transactionSync``, adapted in ``worker.entry``) and
CPython's ``sqlite3`` (``SqliteSql`` below, with ``BEGIN IMMEDIATE``). The
Durable Object rejects ``BEGIN`` and ``SAVEPOINT`` in SQL text, so callers
never write them: they pass a function to ``transaction`` instead.

Both engines are SQLite, so the store's statements (including ``json_each``
for bulk writes) are the same in both places.
This module is imported by the Worker, so ``sqlite3`` is imported only when a
``SqliteSql`` is made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

__all__ = ["Row", "Rows", "Sql", "SqliteSql"]

T = TypeVar("T")
Row = Sequence[Any]
Rows = Sequence[Row]


class Sql(Protocol):
    """Statements and transactions; nothing else."""

    def execute(self, query: str, *params: object) -> Rows:
        """Run one statement and return every row it produced."""
        ...

    def transaction(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` atomically: all of its statements commit, or none do."""
        ...


class SqliteSql:
    """``Sql`` over a SQLite file (or ``:memory:``) for CPython.

    One connection, guarded by a lock so the dev server's threads and its
    event loop can share it. Writers take the database lock up front with
    ``BEGIN IMMEDIATE``, so two processes (``flagedge dev`` and a manual
    ``flagedge sync``) serialise instead of failing halfway.
    """

    def __init__(self, path: str | Path = ":memory:", *, timeout_s: float = 30.0) -> None:
        import sqlite3  # not at module level: the Worker's Pyodide lacks it

        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            str(path), timeout=timeout_s, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._lock = threading.RLock()
        self._depth = 0

    def execute(self, query: str, *params: object) -> Rows:
        with self._lock:
            return self._db.execute(query, params).fetchall()

    def transaction(self, fn: Callable[[], T]) -> T:
        with self._lock:
            if self._depth:
                # Nested call: already inside the outer transaction.
                return fn()
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                result = fn()
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._depth = 0
            return result

    def close(self) -> None:
        with self._lock:
            self._db.close()
