"""SQLiteStore: the embedded default; one file, WAL, indexed expiry and principal."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, RecordCorrupt, SessionError, StoreUnavailable
from .base import Clock, LocalStore, Record, Write

__all__ = ["SQLiteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {table} (
    key        TEXT PRIMARY KEY,
    fields     TEXT NOT NULL,
    expires_at REAL NOT NULL,
    principal  TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS {table}_expires_at ON {table} (expires_at);
CREATE INDEX IF NOT EXISTS {table}_principal ON {table} (principal) WHERE principal IS NOT NULL;
"""

_CLEANUP_BATCH = 1000

# Built once: json.dumps() with options builds an encoder per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_DECODER = json.JSONDecoder()


def _parse(text: str) -> Any:
    """``json.loads(text)``, minus its two whitespace scans when there is none (we write none)."""
    try:
        value, end = _DECODER.raw_decode(text)
    except ValueError:
        return json.loads(text)  # raises, or accepts what only the full path accepts
    return value if end == len(text) else json.loads(text)


class _Cursor:
    """The store's connection under its lock, SQLite errors translated (a reusable ``with``).

    A class rather than ``@contextmanager``: a generator per statement costs more than the
    statement itself takes to run on a small row.
    """

    __slots__ = ("_store",)

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store

    def __enter__(self) -> sqlite3.Connection:
        self._store._lock.acquire()
        return self._store._db

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        try:
            if isinstance(exc, sqlite3.DatabaseError):
                raise self._store._failed(exc) from exc
        finally:
            self._store._lock.release()


class SQLiteStore(LocalStore):
    """Sessions in one SQLite file: no server to run, safe across processes on one machine.

    The table (``sessio_sessions`` by default) holds one row per session: ``key`` (the SHA-256 of
    the session ID), ``fields`` (a JSON object of encoded fields), ``expires_at`` (epoch seconds,
    indexed, so :meth:`cleanup` costs what expired, not what exists) and ``principal`` (indexed,
    for per-user listing and revocation). Delta commits are one ``UPDATE`` with ``json_patch``;
    a rotation deletes the superseded row and writes the new one in one transaction, or neither.

    The database runs in WAL mode, so readers never wait for a writer. One connection is shared
    by the store's threads under a lock: each statement takes microseconds, which is less than a
    thread hop would.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = "sessio.db",
        *,
        table: str = "sessio_sessions",
        clock: Clock = time.time,
        timeout: float = 5.0,
    ) -> None:
        super().__init__(clock=clock)
        if not table.isidentifier():
            raise ConfigurationError(f"table must be a plain SQL identifier, got {table!r}")
        self.path = str(path)
        self.table = table
        self._lock = threading.Lock()
        self._cursor = _Cursor(self)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA.format(table=table))
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open SQLite database {self.path!r}: {exc}") from exc
        t = table
        self._sql_load = (
            f"SELECT fields, expires_at, principal FROM {t} WHERE key = ? AND expires_at > ?"
        )
        self._sql_upsert = (
            f"INSERT INTO {t} (key, fields, expires_at, principal) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET fields = excluded.fields, "
            "expires_at = excluded.expires_at, principal = excluded.principal"
        )
        self._sql_take = f"DELETE FROM {t} WHERE key = ? AND expires_at > ?"
        self._sql_patch = (
            f"UPDATE {t} SET fields = json_patch(fields, ?), expires_at = ?, principal = ? "
            "WHERE key = ? AND expires_at > ?"
        )

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r}, table={self.table!r})"

    def _failed(self, exc: sqlite3.DatabaseError) -> SessionError:
        """The sessio error for ``exc``, the transaction it interrupted rolled back."""
        # A closed connection fails even at in_transaction: it is an outage all the same.
        with suppress(sqlite3.Error):
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
        if "malformed JSON" in str(exc):
            return RecordCorrupt("a stored record is not valid JSON")
        return StoreUnavailable(f"SQLite error on {self.path!r}: {exc}")

    def _record(self, key: str, row: tuple[str, float, str | None]) -> Record:
        try:
            fields = _parse(row[0])
        except ValueError:
            raise RecordCorrupt("a stored record is not valid JSON") from None
        if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
            raise RecordCorrupt("a stored record is not a map of encoded fields")
        return Record(key, fields, row[1], row[2])

    # -- contract ---------------------------------------------------------------------------------

    def load_sync(self, key: str) -> Record | None:
        with self._cursor as db:
            row = db.execute(self._sql_load, (key, self.clock())).fetchone()
        return None if row is None else self._record(key, row)

    def save_sync(self, key: str, write: Write) -> bool:
        now = self.clock()
        with self._cursor as db:
            if not write.replace:
                # One statement, atomic on its own: it changes a live row or nothing.
                patch: dict[str, str | None] = dict(write.fields)
                patch.update(dict.fromkeys(write.removed))
                text = _ENCODER.encode(patch)
                cur = db.execute(
                    self._sql_patch, (text, write.expires_at, write.principal, key, now)
                )
                return cur.rowcount > 0
            fields = _ENCODER.encode(dict(write.fields))
            db.execute("BEGIN IMMEDIATE")
            if write.supersedes is not None:
                cur = db.execute(self._sql_take, (write.supersedes, now))
                if cur.rowcount == 0:
                    db.execute("ROLLBACK")
                    return False  # revoked, evicted or expired meanwhile: stays gone
            db.execute(self._sql_upsert, (key, fields, write.expires_at, write.principal))
            db.execute("COMMIT")
            return True

    def delete_sync(self, key: str) -> bool:
        with self._cursor as db:
            cur = db.execute(f"DELETE FROM {self.table} WHERE key = ?", (key,))
            return cur.rowcount > 0

    def principal_records_sync(self, principal: str) -> list[Record]:
        with self._cursor as db:
            rows = db.execute(
                f"SELECT key, fields, expires_at, principal FROM {self.table} "
                "WHERE principal = ? AND expires_at > ?",
                (principal, self.clock()),
            ).fetchall()
        records = []
        for key, *rest in rows:
            try:
                records.append(self._record(key, (rest[0], rest[1], rest[2])))
            except RecordCorrupt:
                continue  # listing skips garbage; loading that key reports it
        return records

    def delete_principal_records_sync(self, principal: str, keep: str | None = None) -> list[str]:
        # One write transaction (BEGIN IMMEDIATE holds the database's write lock, across
        # processes too), so no rotation lands between finding the keys and deleting them.
        # Not DELETE ... RETURNING: SQLite has it only since 3.35, older than some distributions.
        t = self.table
        with self._cursor as db:
            db.execute("BEGIN IMMEDIATE")
            rows = db.execute(
                f"SELECT key FROM {t} WHERE principal = ? AND key IS NOT ? AND expires_at > ?",
                (principal, keep, self.clock()),
            ).fetchall()
            db.execute(f"DELETE FROM {t} WHERE principal = ? AND key IS NOT ?", (principal, keep))
            db.execute("COMMIT")
        return [key for (key,) in rows]

    def exists_sync(self, key: str) -> bool:
        with self._cursor as db:
            row = db.execute(
                f"SELECT 1 FROM {self.table} WHERE key = ? AND expires_at > ?",
                (key, self.clock()),
            ).fetchone()
        return row is not None

    def count_sync(self) -> int:
        with self._cursor as db:
            (n,) = db.execute(
                f"SELECT count(*) FROM {self.table} WHERE expires_at > ?",
                (self.clock(),),
            ).fetchone()
        return int(n)

    def clear_sync(self) -> int:
        with self._cursor as db:
            return db.execute(f"DELETE FROM {self.table}").rowcount

    def cleanup_sync(self) -> int:
        removed = 0
        now = self.clock()
        sql = (
            f"DELETE FROM {self.table} WHERE key IN (SELECT key FROM {self.table} "
            "WHERE expires_at <= ? LIMIT ?)"
        )
        while True:
            # Short batches keep each write transaction brief, so requests never wait long.
            with self._cursor as db:
                n = db.execute(sql, (now, _CLEANUP_BATCH)).rowcount
            removed += n
            if n < _CLEANUP_BATCH:
                return removed

    def close_sync(self) -> None:
        with self._lock:
            self._db.close()
