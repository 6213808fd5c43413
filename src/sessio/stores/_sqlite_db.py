"""SQLite plumbing for SQLiteStore: opening a file many processes open at once, and errors.

Opening a fresh database sets it to WAL mode and creates the table. When several processes
do that at the same moment, SQLite answers "database is locked" without calling the busy
handler (switching the journal mode takes an exclusive lock that is not waited for), so
:func:`connect` retries the whole setup, with backoff, until the store's timeout has passed.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import suppress

from ..errors import RecordCorrupt, StoreUnavailable, ValueNotSerializable
from ._offloop import Busy

__all__ = ["WAL_LIMIT", "Handle", "connect", "is_busy"]

#: The size past which the store checkpoints and truncates the write-ahead log, in bytes.
#: SQLite's automatic checkpoints are off on the store's connections: with several busy
#: processes they run after every commit, always hold the checkpoint lock, and never reset a
#: log that some reader is always using, so it grew by gigabytes an hour. Instead the store
#: looks at the log's size every few writes and, past this size, runs one
#: ``wal_checkpoint(TRUNCATE)`` that waits briefly for the reads in progress. The log so stays
#: under four times this size (16 MiB; four processes writing flat out for 30 s peaked at
#: 7 MB), unless another program keeps a read transaction open, which no checkpoint can pass.
WAL_LIMIT = 4 * 1024 * 1024

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

#: SQLITE_BUSY and SQLITE_LOCKED, the primary result codes (extended codes add high bits).
_BUSY_CODES = frozenset({5, 6})


def is_busy(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` says another connection holds a lock (``SQLITE_BUSY``/``SQLITE_LOCKED``)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in _BUSY_CODES
    return "locked" in str(exc)  # pragma: no cover - errors raised outside the library


def _setup(db: sqlite3.Connection, table: str, *, first: bool) -> None:
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
    db.execute("PRAGMA wal_autocheckpoint=0")  # see WAL_LIMIT
    if not first:
        return
    if db.execute("PRAGMA journal_mode").fetchone()[0] not in ("wal", "memory"):
        db.execute("PRAGMA journal_mode=WAL")
    # Create only what is missing: opening a database that has it then takes no write lock.
    found = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    if found is None:
        db.executescript(_SCHEMA.format(table=table))


def connect(path: str, table: str, timeout: float, *, first: bool) -> sqlite3.Connection:
    """A connection to ``path`` whose busy handler waits ``timeout`` seconds, set up.

    ``first`` also switches the file to WAL mode and creates the table; that setup is retried
    while other processes hold the locks it needs, until ``timeout`` (at least one second).
    """
    deadline = time.monotonic() + max(timeout, 1.0)
    delay = 0.002
    while True:
        db: sqlite3.Connection | None = None
        try:
            db = sqlite3.connect(
                path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            _setup(db, table, first=first)
            return db
        except sqlite3.Error as exc:
            if db is not None:
                db.close()
            if not is_busy(exc) or time.monotonic() + delay > deadline:
                raise StoreUnavailable(f"cannot open SQLite database {path!r}: {exc}") from exc
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


class Handle:
    """One connection under its thread lock, as a reusable ``with``, errors translated.

    ``wait=False`` takes the lock without blocking and raises :class:`Busy` where it would have
    to wait (its connection has a zero busy timeout); ``wait=True`` waits up to ``timeout``.
    Leaving the block on any exception rolls back the transaction in progress, so a bad value
    never leaves the shared connection inside ``BEGIN IMMEDIATE`` holding the file's write lock.

    A class rather than ``@contextmanager``: a generator per statement costs more than the
    statement itself takes to run on a small row.
    """

    __slots__ = ("db", "lock", "path", "timeout", "wait")

    def __init__(
        self, db: sqlite3.Connection, lock: threading.Lock, *, wait: bool, timeout: float, path: str
    ) -> None:
        self.db = db
        self.lock = lock
        self.wait = wait
        self.timeout = timeout
        self.path = path

    def __enter__(self) -> sqlite3.Connection:
        if self.wait:
            if not self.lock.acquire(timeout=self.timeout):
                raise StoreUnavailable(f"SQLite database {self.path!r} busy in this process")
        elif not self.lock.acquire(False):  # (positional: cheaper than blocking=False)
            raise Busy
        return self.db

    def __exit__(self, kind: object, exc: BaseException | None, tb: object) -> None:
        try:
            if exc is not None:
                # A closed connection fails even at in_transaction: the error below says so.
                with suppress(sqlite3.Error):
                    if self.db.in_transaction:
                        self.db.execute("ROLLBACK")
                error = self._translate(exc)
                if error is not None:
                    raise error from exc
        finally:
            self.lock.release()

    def _translate(self, exc: BaseException) -> Exception | None:
        """The sessio error for ``exc``, or ``None`` to let it pass as it is."""
        if isinstance(exc, UnicodeEncodeError | OverflowError | sqlite3.IntegrityError):
            # A lone surrogate cannot be bound as UTF-8; a NaN expiry binds as NULL.
            return ValueNotSerializable(f"SQLite cannot hold a value of this write: {exc}")
        if not isinstance(exc, sqlite3.DatabaseError):
            return None
        if is_busy(exc):
            if not self.wait:
                return Busy()
            return StoreUnavailable(
                f"SQLite database {self.path!r} stayed locked for {self.timeout:g} s: {exc}"
            )
        if "malformed JSON" in str(exc):
            return RecordCorrupt("a stored record is not valid JSON")
        if isinstance(exc, sqlite3.ProgrammingError) and "binding" in str(exc):
            return ValueNotSerializable(f"SQLite cannot hold a value of this write: {exc}")
        return StoreUnavailable(f"SQLite error on {self.path!r}: {exc}")
