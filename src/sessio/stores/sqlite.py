"""SQLiteStore: the embedded default; one file, WAL, indexed expiry and principal."""

from __future__ import annotations

import math
import os
import sqlite3
import sys
import threading
import time
from pathlib import Path

from ..errors import ConfigurationError, StoreUnavailable, ValueNotSerializable
from ._offloop import Busy, InlineFirstStore
from ._sqlite_db import WAL_LIMIT, Handle, connect
from ._sqlite_rows import ENCODER, encode, record, valid_records
from .base import (
    APPLIED,
    EXISTS,
    MISSING,
    REJECTED,
    Clock,
    Create,
    Page,
    Record,
    Rewrite,
    Rotate,
    Saved,
    SaveOutcome,
    Update,
    Write,
)

__all__ = ["SQLiteStore"]

_CLEANUP_BATCH = 1000
#: Writes between two looks at the size of the write-ahead log (one stat() call).
_WAL_CHECK_EVERY = 64
#: The largest finite expiry: only damaged rows lie beyond it.
_LARGEST = sys.float_info.max
#: Writes before the next look when a checkpoint could not finish.
_WAL_RETRY_AFTER = 4
#: How long a checkpoint may wait for other connections' reads to finish (milliseconds).
_CHECKPOINT_WAIT_MS = 20


class SQLiteStore(InlineFirstStore):
    """Sessions in one SQLite file: no server to run, safe across processes on one machine.

    The table (``sessio_sessions`` by default) holds one row per session: ``key`` (the SHA-256 of
    the session ID), ``fields`` (a JSON object of encoded fields), ``expires_at`` (epoch seconds,
    indexed, so :meth:`cleanup` costs what expired, not what exists) and ``principal`` (indexed,
    for per-user listing and revocation). A write without a principal limit is one statement;
    a rotation, or a write with a limit, is one ``BEGIN IMMEDIATE`` transaction that holds the
    database's write lock across processes, so the count and the write cannot interleave.

    The database runs in WAL mode, so readers never wait for a writer, and the log is kept
    near ``WAL_LIMIT`` bytes (see :mod:`sessio.stores._sqlite_db`). Two connections serve the
    store: async calls use one with no busy wait, inline on the event loop, and go to a thread
    on the other (which waits up to ``timeout`` seconds, then raises ``StoreUnavailable``) only
    when another process holds the lock. Sync calls use the waiting one.
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
        if not (math.isfinite(timeout) and timeout > 0):
            raise ConfigurationError(f"timeout must be a positive number of seconds: {timeout!r}")
        self.path = str(path)
        self.table = table
        self.timeout = timeout
        memory = self.path == ":memory:"
        if not memory:
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailable(f"cannot create the directory of {self.path!r}") from exc
        self._db = connect(self.path, table, timeout, first=True)
        lock = threading.Lock()
        try:
            # One in-memory database is one connection: both handles share it, and its lock.
            fast = self._db if memory else connect(self.path, table, 0.0, first=False)
        except BaseException:
            self._db.close()
            raise
        self._handles = (
            Handle(
                fast, lock if memory else threading.Lock(), wait=False, timeout=0, path=self.path
            ),
            Handle(self._db, lock, wait=True, timeout=timeout, path=self.path),
        )
        self._wal = None if memory else self.path + "-wal"
        self._writes = 0
        t = table
        self._sql_load = (
            f"SELECT fields, expires_at, principal FROM {t} WHERE key = ? AND expires_at > ?"
        )
        self._sql_create = (
            f"INSERT INTO {t} (key, fields, expires_at, principal) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET fields = excluded.fields, "
            f"expires_at = excluded.expires_at, principal = excluded.principal "
            f"WHERE {t}.expires_at <= ?"
        )
        self._sql_put = (
            f"INSERT INTO {t} (key, fields, expires_at, principal) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET fields = excluded.fields, "
            "expires_at = excluded.expires_at, principal = excluded.principal"
        )
        self._sql_take = f"DELETE FROM {t} WHERE key = ? AND expires_at > ?"
        self._sql_patch = (
            f"UPDATE {t} SET fields = json_patch(fields, ?), expires_at = ?, principal = ? "
            "WHERE key = ? AND expires_at > ?"
        )
        self._sql_rewrite = (
            f"UPDATE {t} SET fields = ?, expires_at = ?, principal = ? "
            "WHERE key = ? AND expires_at > ?"
        )
        self._sql_others = (
            f"SELECT key FROM {t} WHERE principal = ? AND expires_at > ? AND key != ? "
            "ORDER BY expires_at, key"
        )

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r}, table={self.table!r})"

    # -- writes -----------------------------------------------------------------------------------

    def _save(self, wait: bool, key: str, write: Write) -> Saved:
        expires_at = write.expires_at
        if not math.isfinite(expires_at):
            raise ValueNotSerializable(f"an expiry must be a finite time: {expires_at!r}")
        if type(write) is Update and (write.limit is None or write.principal is None):
            # The commit of nearly every request: one statement, atomic on its own.
            patch: dict[str, str | None] = dict(write.fields)
            patch.update(dict.fromkeys(write.removed))
            try:
                text = ENCODER.encode(patch)  # (not encode(): one call less on the hot path)
            except (TypeError, ValueError, RecursionError) as exc:
                raise ValueNotSerializable(f"a field of this write is not text: {exc}") from None
            args = (text, expires_at, write.principal, key, self.clock())
            with self._handles[wait] as db:
                if not db.execute(self._sql_patch, args).rowcount:
                    return MISSING
            saved = APPLIED
        else:
            saved = self._save_other(wait, key, write)
            if saved.outcome is not SaveOutcome.APPLIED:
                return saved
        self._writes += 1
        if self._writes >= _WAL_CHECK_EVERY:
            self._bound_wal()
        return saved

    def _save_other(self, wait: bool, key: str, write: Write) -> Saved:
        """Every write but a plain Update: a Create, Rewrite, Rotate, or one with a limit."""
        if isinstance(write, Update):
            patch: dict[str, str | None] = dict(write.fields)
            patch.update(dict.fromkeys(write.removed))
            text = encode(patch)
        else:
            text = encode(dict(write.fields))
        now = self.clock()
        with self._handles[wait] as db:
            if isinstance(write, Rotate) or (
                write.limit is not None and write.principal is not None
            ):
                db.execute("BEGIN IMMEDIATE")
                saved = self._in_transaction(db, key, write, text, now)
                db.execute("COMMIT" if saved.outcome is SaveOutcome.APPLIED else "ROLLBACK")
                return saved
            if self._apply(db, key, write, text, now):
                return APPLIED  # one statement, atomic on its own
        return EXISTS if isinstance(write, Create) else MISSING

    def _apply(self, db: sqlite3.Connection, key: str, write: Write, text: str, now: float) -> bool:
        """Run ``write``'s statements; whether its target was there (or, for Create, was not)."""
        principal = write.principal
        args: tuple[object, ...]
        match write:
            case Update():
                sql, args = self._sql_patch, (text, write.expires_at, principal, key, now)
            case Rewrite():
                sql, args = self._sql_rewrite, (text, write.expires_at, principal, key, now)
            case Create():
                sql, args = self._sql_create, (key, text, write.expires_at, principal, now)
            case Rotate(supersedes=old, tombstone=tombstone):
                if db.execute(self._sql_take, (old, now)).rowcount == 0:
                    return False  # revoked, evicted or expired meanwhile: stays gone
                if tombstone is not None:
                    if not math.isfinite(tombstone.expires_at):
                        raise ValueNotSerializable("a tombstone's expiry must be a finite time")
                    grave = (tombstone.key, encode(dict(tombstone.fields)), tombstone.expires_at)
                    db.execute(self._sql_put, (*grave, None))
                sql, args = self._sql_put, (key, text, write.expires_at, principal)
        return bool(db.execute(sql, args).rowcount > 0)

    def _in_transaction(
        self, db: sqlite3.Connection, key: str, write: Write, text: str, now: float
    ) -> Saved:
        """``write`` and its principal limit, inside the caller's ``BEGIN IMMEDIATE``."""
        if not self._apply(db, key, write, text, now):
            return EXISTS if isinstance(write, Create) else MISSING
        limit = write.limit
        if limit is None or write.principal is None:
            return APPLIED
        # Counted after the write, which already removed the superseded row: "others" leaves out
        # key and supersedes, as the contract says.
        others = [k for (k,) in db.execute(self._sql_others, (write.principal, now, key))]
        excess = len(others) - limit.max_sessions + 1
        if excess <= 0:
            return APPLIED
        if limit.on_limit == "reject":
            return REJECTED  # the caller rolls the write back
        evicted = tuple(others[:excess])
        db.executemany(f"DELETE FROM {self.table} WHERE key = ?", [(k,) for k in evicted])
        return Saved(SaveOutcome.APPLIED, evicted)

    def _bound_wal(self) -> None:
        """Truncate the write-ahead log if it grew past ``WAL_LIMIT`` (readers held it open)."""
        self._writes = 0
        if self._wal is None:
            return
        try:
            if os.stat(self._wal).st_size <= WAL_LIMIT:
                return
            # See WAL_LIMIT. The checkpoint waits for the reads in progress (microseconds each),
            # on the connection that never waits for locks, given a short wait here only: a
            # write that already committed must not wait long after the fact.
            with self._handles[False] as db:
                db.execute(f"PRAGMA busy_timeout = {_CHECKPOINT_WAIT_MS}")
                try:
                    (busy, _, _) = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                finally:
                    db.execute("PRAGMA busy_timeout = 0")
        except (OSError, Busy, StoreUnavailable):
            busy = 1  # the commit stands
        if busy:
            # Another checkpoint, or a reader that outlived the wait: look again soon.
            self._writes = _WAL_CHECK_EVERY - _WAL_RETRY_AFTER

    def _delete(self, wait: bool, key: str) -> bool:
        with self._handles[wait] as db:
            return bool(db.execute(f"DELETE FROM {self.table} WHERE key = ?", (key,)).rowcount > 0)

    def _delete_principal_records(self, wait: bool, principal: str, keep: str | None) -> list[str]:
        # One write transaction (BEGIN IMMEDIATE holds the database's write lock, across
        # processes too), so no rotation lands between finding the keys and deleting them.
        # Not DELETE ... RETURNING: SQLite has it only since 3.35, older than some distributions.
        t = self.table
        with self._handles[wait] as db:
            db.execute("BEGIN IMMEDIATE")
            rows = db.execute(
                f"SELECT key FROM {t} WHERE principal = ? AND key IS NOT ? AND expires_at > ?",
                (principal, keep, self.clock()),
            ).fetchall()
            db.execute(f"DELETE FROM {t} WHERE principal = ? AND key IS NOT ?", (principal, keep))
            db.execute("COMMIT")
        return [key for (key,) in rows]

    def _clear(self, wait: bool) -> int:
        with self._handles[wait] as db:
            return int(db.execute(f"DELETE FROM {self.table}").rowcount)

    def _cleanup(self, wait: bool) -> int:
        removed = 0
        now = self.clock()
        t = self.table
        # Expired rows, then rows whose expiry is damaged: SQL sorts text and BLOBs after every
        # number, so with +inf they are the far end of the same index (and would otherwise look
        # live for ever; -inf is expired, NULL refused). Both are ranges of the expiry index.
        batches = (
            (f"SELECT key FROM {t} WHERE expires_at <= ? LIMIT ?", (now, _CLEANUP_BATCH)),
            (f"SELECT key FROM {t} WHERE expires_at > ? LIMIT ?", (_LARGEST, _CLEANUP_BATCH)),
        )
        for select, args in batches:
            while True:
                # Short batches keep each write transaction brief, so requests never wait long.
                with self._handles[wait] as db:
                    n = int(db.execute(f"DELETE FROM {t} WHERE key IN ({select})", args).rowcount)
                removed += n
                if n < _CLEANUP_BATCH:
                    break
        return removed

    # -- reads ------------------------------------------------------------------------------------

    def _load(self, wait: bool, key: str) -> Record | None:
        with self._handles[wait] as db:
            row = db.execute(self._sql_load, (key, self.clock())).fetchone()
        return None if row is None else record(key, *row)

    def _exists(self, wait: bool, key: str) -> bool:
        with self._handles[wait] as db:
            row = db.execute(
                f"SELECT 1 FROM {self.table} WHERE key = ? AND expires_at > ?",
                (key, self.clock()),
            ).fetchone()
        return row is not None

    def _count(self, wait: bool) -> int:
        with self._handles[wait] as db:
            (n,) = db.execute(
                f"SELECT count(*) FROM {self.table} WHERE expires_at > ?", (self.clock(),)
            ).fetchone()
        return int(n)

    def _principal_records(self, wait: bool, principal: str) -> list[Record]:
        with self._handles[wait] as db:
            rows = db.execute(
                f"SELECT key, fields, expires_at, principal FROM {self.table} "
                "WHERE principal = ? AND expires_at > ?",
                (principal, self.clock()),
            ).fetchall()
        return valid_records(rows)

    def _page(self, wait: bool, cursor: str | None, limit: int) -> Page:
        if limit < 1:
            raise ConfigurationError(f"a page holds at least one record, not {limit!r}")
        # Keyset pagination by the primary key: each page is one index range, whatever came
        # before, and a write between pages moves no record into a page already returned.
        with self._handles[wait] as db:
            rows = db.execute(
                f"SELECT key, fields, expires_at, principal FROM {self.table} "
                "WHERE key > ? AND expires_at > ? ORDER BY key LIMIT ?",
                ("" if cursor is None else cursor, self.clock(), limit + 1),
            ).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(valid_records(rows), rows[-1][0] if more else None)

    def close_sync(self) -> None:
        fast, patient = self._handles
        with patient.lock:
            patient.db.close()
        if fast.db is not patient.db:  # an in-memory database has one connection, one lock
            with fast.lock:
                fast.db.close()
