"""MemoryStore: records in this process's memory, with LRU eviction and statistics."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from ..errors import ConfigurationError
from .base import Clock, LocalStore, Record, Write

__all__ = ["MemoryStore"]


class MemoryStore(LocalStore):
    """Sessions in a dict: for tests, development and single-process apps.

    ``max_sessions`` bounds memory: past it, the least recently used session is evicted (and
    counted in :meth:`stats`). Thread-safe, so one store serves a threaded WSGI server too.
    Everything is lost when the process exits.
    """

    def __init__(self, *, max_sessions: int | None = 10_000, clock: Clock = time.time) -> None:
        super().__init__(clock=clock)
        if max_sessions is not None and (
            isinstance(max_sessions, bool) or not isinstance(max_sessions, int) or max_sessions < 1
        ):
            raise ConfigurationError("max_sessions must be >= 1 or None (unbounded)")
        self.max_sessions = max_sessions
        self._records: OrderedDict[str, Record] = OrderedDict()
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
        if record is not None and record.expires_at <= self.clock():
            self._drop(key)
            self._expirations += 1
            return None
        return record

    def _drop(self, key: str) -> Record | None:
        record = self._records.pop(key, None)
        if record is not None and record.principal is not None:
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
        self._records[record.key] = record
        self._records.move_to_end(record.key)
        if record.principal is not None:
            self._index.setdefault(record.principal, set()).add(record.key)
        if self.max_sessions is not None:
            while len(self._records) > self.max_sessions:
                oldest = next(iter(self._records))
                self._drop(oldest)
                self._evictions += 1

    # -- contract ---------------------------------------------------------------------------------

    def load_sync(self, key: str) -> Record | None:
        with self._lock:
            record = self._live(key)
            if record is None:
                self._misses += 1
                return None
            self._hits += 1
            self._records.move_to_end(key)
            return record

    def save_sync(self, key: str, write: Write) -> bool:
        with self._lock:
            if write.replace:
                if write.supersedes is not None:
                    if self._live(write.supersedes) is None:
                        return False  # revoked, evicted or expired meanwhile: stays gone
                    self._drop(write.supersedes)
                fields = dict(write.fields)
            else:
                current = self._live(key)
                if current is None:
                    return False
                fields = dict(current.fields)
                fields.update(write.fields)
                for name in write.removed:
                    fields.pop(name, None)
            self._put(Record(key, fields, write.expires_at, write.principal))
            return True

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
            self._index.clear()
            return n

    def cleanup_sync(self) -> int:
        now = self.clock()
        with self._lock:
            expired = [k for k, r in self._records.items() if r.expires_at <= now]
            for key in expired:
                self._drop(key)
            self._expirations += len(expired)
            return len(expired)
