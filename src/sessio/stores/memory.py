"""MemoryStore: records in this process's memory, with LRU eviction and statistics."""

from __future__ import annotations

import threading
import time
from typing import Any

from ..errors import ConfigurationError
from .base import (
    APPLIED,
    EXISTS,
    MISSING,
    REJECTED,
    Clock,
    Create,
    LocalStore,
    Page,
    Record,
    Rotate,
    Saved,
    SaveOutcome,
    Update,
    Write,
    ensure_storable,
)

__all__ = ["MemoryStore"]


class MemoryStore(LocalStore):
    """Sessions in a dict: for tests, development and single-process apps.

    ``max_sessions`` bounds memory: past it, the least recently used *anonymous* record (no
    principal) is evicted, and a signed-in session only when no anonymous one is left, so a
    flood of cookieless visitors cannot push signed-in users out. Evictions are counted in
    :meth:`stats`. Thread-safe, so one store serves a threaded WSGI server too. Everything is
    lost when the process exits.
    """

    def __init__(self, *, max_sessions: int | None = 10_000, clock: Clock = time.time) -> None:
        super().__init__(clock=clock)
        if max_sessions is not None and (
            isinstance(max_sessions, bool) or not isinstance(max_sessions, int) or max_sessions < 1
        ):
            raise ConfigurationError("max_sessions must be >= 1 or None (unbounded)")
        self.max_sessions = max_sessions
        # Plain dicts, least recently used first: a use re-inserts the key at the end. An
        # OrderedDict keeps the same order at ~90 B an entry against a dict's ~38 B.
        self._records: dict[str, Record] = {}
        # The anonymous keys in the same order, which only eviction reads: kept only when capped.
        self._anonymous: dict[str, None] = {}
        self._index: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._hits = self._misses = self._evictions = self._expirations = 0

    def stats(self) -> dict[str, Any]:
        """Counters: ``sessions``, ``max_sessions``, ``hits``, ``misses``, ``evictions``,
        ``expirations`` and ``principals`` (distinct principals indexed)."""
        with self._lock:
            return {
                "sessions": len(self._records),
                "max_sessions": self.max_sessions,
                "hits": self._hits,
                "misses": self._misses,
                "evictions": self._evictions,
                "expirations": self._expirations,
                "principals": len(self._index),
            }

    # Every helper below runs with the lock held.

    def _live(self, key: str) -> Record | None:
        record = self._records.get(key)
        if record is not None and not record.expires_at > self.clock():
            self._drop(key)
            self._expirations += 1
            return None
        return record

    def _drop(self, key: str) -> Record | None:
        record = self._records.pop(key, None)
        if record is None:
            return None
        if record.principal is None:
            self._anonymous.pop(key, None)
        else:
            keys = self._index.get(record.principal)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._index[record.principal]
        return record

    def _put(self, record: Record) -> None:
        old = self._records.get(record.key)
        if old is not None and old.principal != record.principal:
            self._drop(record.key)
        self._records.pop(record.key, None)  # re-inserted last: the most recently used
        self._records[record.key] = record
        if record.principal is None:
            if self.max_sessions is not None:
                self._anonymous.pop(record.key, None)
                self._anonymous[record.key] = None
        else:
            self._index.setdefault(record.principal, set()).add(record.key)
        if self.max_sessions is not None:
            while len(self._records) > self.max_sessions:
                # Anonymous records go first (even the one just written): only when none is
                # left does a signed-in session make room.
                pool = self._anonymous if self._anonymous else self._records
                self._drop(next(iter(pool)))
                self._evictions += 1

    def _make_room(self, key: str, write: Write) -> Saved | tuple[str, ...]:
        """Enforce ``write.limit``: the keys evicted, or REJECTED."""
        limit, principal = write.limit, write.principal
        if limit is None or principal is None:
            return ()
        mine = (key, write.supersedes) if isinstance(write, Rotate) else (key,)
        others = [
            record
            for record in (self._live(k) for k in list(self._index.get(principal, ())))
            if record is not None and record.key not in mine
        ]
        excess = len(others) - limit.max_sessions + 1
        if excess <= 0:
            return ()
        if limit.on_limit == "reject":
            return REJECTED
        others.sort(key=lambda r: r.expires_at)
        evicted = tuple(r.key for r in others[:excess])
        for victim in evicted:
            self._drop(victim)
        return evicted

    # -- contract ---------------------------------------------------------------------------------

    def load_sync(self, key: str) -> Record | None:
        with self._lock:
            record = self._live(key)
            if record is None:
                self._misses += 1
                return None
            self._hits += 1
            self._records[key] = self._records.pop(key)
            if record.principal is None and self.max_sessions is not None:
                self._anonymous[key] = self._anonymous.pop(key, None)
            return record

    def save_sync(self, key: str, write: Write) -> Saved:
        ensure_storable(key, write)  # a value no other store could hold is refused here too
        with self._lock:
            if isinstance(write, Update):
                current = self._live(key)
                if current is None:
                    return MISSING  # a session that is gone stays gone
                fields = dict(current.fields)
                fields.update(write.fields)
                for name in write.removed:
                    fields.pop(name, None)
            elif isinstance(write, Create):
                if self._live(key) is not None:
                    return EXISTS
                fields = dict(write.fields)
            else:  # Rotate needs the superseded record, Rewrite its own
                target = write.supersedes if isinstance(write, Rotate) else key
                if self._live(target) is None:
                    return MISSING
                fields = dict(write.fields)
            evicted = () if write.limit is None else self._make_room(key, write)
            if isinstance(evicted, Saved):
                return evicted
            if isinstance(write, Rotate):
                self._drop(write.supersedes)
                if write.tombstone is not None:
                    stone = write.tombstone
                    self._put(Record(stone.key, dict(stone.fields), stone.expires_at, None))
            self._put(Record(key, fields, write.expires_at, write.principal))
            return Saved(SaveOutcome.APPLIED, evicted) if evicted else APPLIED

    def delete_sync(self, key: str) -> bool:
        with self._lock:
            return self._drop(key) is not None

    def principal_records_sync(self, principal: str) -> list[Record]:
        with self._lock:
            keys = list(self._index.get(principal, ()))
            return [r for r in (self._live(k) for k in keys) if r is not None]

    def delete_principal_records_sync(self, principal: str, keep: str | None = None) -> list[str]:
        # Under the lock that every save takes: no rotation can land half-way through.
        with self._lock:
            removed = []
            for key in list(self._index.get(principal, ())):
                if key != keep and self._live(key) is not None:
                    self._drop(key)
                    removed.append(key)
            return removed

    def page_sync(self, cursor: str | None = None, limit: int = 100) -> Page:
        # Key order, not LRU order: a load between two pages must not move a record past the
        # walk. The cursor is the last key handed out.
        now = self.clock()
        with self._lock:
            keys = sorted(
                k
                for k, r in self._records.items()
                if (cursor is None or k > cursor) and r.expires_at > now
            )
            chosen = keys[:limit]
            records = [self._records[k] for k in chosen]
        more = len(keys) > limit
        return Page(records, chosen[-1] if more and chosen else None)

    def exists_sync(self, key: str) -> bool:
        with self._lock:
            return self._live(key) is not None

    def count_sync(self) -> int:
        now = self.clock()
        with self._lock:
            return sum(1 for r in self._records.values() if r.expires_at > now)

    def clear_sync(self) -> int:
        with self._lock:
            n = len(self._records)
            self._records.clear()
            self._anonymous.clear()
            self._index.clear()
            return n

    def cleanup_sync(self) -> int:
        now = self.clock()
        with self._lock:
            expired = [k for k, r in self._records.items() if not r.expires_at > now]
            for key in expired:
                self._drop(key)
            self._expirations += len(expired)
            return len(expired)
