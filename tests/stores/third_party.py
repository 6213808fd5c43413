"""DictStore: a complete store written only against sessio's public base classes.

It stands for a store written outside the project (tests/stores/test_contract.py runs the
public kit, :mod:`sessio.testing`, over it): every record is one JSON text in a mapping of
text to text, the way a store over a plain key-value cache would keep it. A lock makes each
save one atomic step; the principal index is a scan, which a real store would keep instead.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import MutableMapping

from sessio.errors import RecordCorrupt
from sessio.stores.base import (
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

__all__ = ["DictStore", "corrupt_dict_store"]


def _encode(record: Record) -> str:
    fields = dict(record.fields)
    return json.dumps({"f": fields, "e": record.expires_at, "p": record.principal})


def _decode(key: str, text: str) -> Record:
    try:
        data = json.loads(text)
        fields, expires_at, principal = data["f"], float(data["e"]), data["p"]
    except (ValueError, TypeError, KeyError, RecursionError):
        raise RecordCorrupt("stored text is not a record") from None
    if not isinstance(fields, dict) or not all(
        isinstance(n, str) and isinstance(v, str) for n, v in fields.items()
    ):
        raise RecordCorrupt("stored fields are not a map of text")
    if principal is not None and not isinstance(principal, str):
        raise RecordCorrupt("stored principal is not text")
    return Record(key, fields, expires_at, principal)


class DictStore(LocalStore):
    """Sessions as JSON texts in ``blobs`` (a dict unless another mapping is given)."""

    def __init__(
        self, blobs: MutableMapping[str, str] | None = None, *, clock: Clock = time.time
    ) -> None:
        super().__init__(clock=clock)
        #: The backing map, key to JSON text: public, as a cache client would be.
        self.blobs: MutableMapping[str, str] = {} if blobs is None else blobs
        self._lock = threading.RLock()

    def _get(self, key: str) -> Record | None:
        """The live record under ``key``; garbage counts as none for writers."""
        try:
            return self._load(key)
        except RecordCorrupt:
            return None

    def _load(self, key: str) -> Record | None:
        text = self.blobs.get(key)
        if text is None:
            return None
        record = _decode(key, text)
        return record if record.expires_at > self.clock() else None

    def _live(self) -> list[Record]:
        return [r for r in map(self._get, list(self.blobs)) if r is not None]

    def _of(self, principal: str) -> list[Record]:
        return [r for r in self._live() if r.principal == principal]

    def load_sync(self, key: str) -> Record | None:
        with self._lock:
            return self._load(key)

    def save_sync(self, key: str, write: Write) -> Saved:
        ensure_storable(key, write)
        with self._lock:
            target = write.supersedes if isinstance(write, Rotate) else key
            current = self._get(target)
            if isinstance(write, Create):
                if current is not None:
                    return Saved(SaveOutcome.EXISTS)
            elif current is None:
                return Saved(SaveOutcome.MISSING)
            fields = dict(write.fields)
            if isinstance(write, Update) and current is not None:
                fields = {**current.fields, **write.fields}
                for name in write.removed:
                    fields.pop(name, None)
            evicted: tuple[str, ...] = ()
            if write.limit is not None and write.principal is not None:
                mine = {key, target}
                others = [r for r in self._of(write.principal) if r.key not in mine]
                others.sort(key=lambda r: r.expires_at)
                excess = len(others) - write.limit.max_sessions + 1
                if excess > 0 and write.limit.on_limit == "reject":
                    return Saved(SaveOutcome.REJECTED)
                evicted = tuple(r.key for r in others[: max(excess, 0)])
            for victim in evicted:
                del self.blobs[victim]
            if isinstance(write, Rotate):
                self.blobs.pop(write.supersedes, None)
                if (stone := write.tombstone) is not None:
                    self.blobs[stone.key] = _encode(
                        Record(stone.key, stone.fields, stone.expires_at)
                    )
            self.blobs[key] = _encode(Record(key, fields, write.expires_at, write.principal))
            return Saved(SaveOutcome.APPLIED, evicted)

    def delete_sync(self, key: str) -> bool:
        with self._lock:
            return self.blobs.pop(key, None) is not None

    def principal_records_sync(self, principal: str) -> list[Record]:
        with self._lock:
            return self._of(principal)

    def delete_principal_records_sync(self, principal: str, keep: str | None = None) -> list[str]:
        with self._lock:  # the lock every save takes: no rotation lands half-way through
            doomed = [r.key for r in self._of(principal) if r.key != keep]
            for key in doomed:
                del self.blobs[key]
            return doomed

    def page_sync(self, cursor: str | None = None, limit: int = 100) -> Page:
        with self._lock:
            records = sorted(self._live(), key=lambda r: r.key)
        records = [r for r in records if cursor is None or r.key > cursor]
        chosen = records[:limit]
        return Page(chosen, chosen[-1].key if len(records) > limit else None)

    def exists_sync(self, key: str) -> bool:
        with self._lock:
            return self._get(key) is not None

    def count_sync(self) -> int:
        with self._lock:
            return len(self._live())

    def clear_sync(self) -> int:
        with self._lock:
            n = len(self.blobs)
            self.blobs.clear()
            return n

    def cleanup_sync(self) -> int:
        with self._lock:
            dead = [k for k in list(self.blobs) if self._get(k) is None]
            for key in dead:
                del self.blobs[key]
            return len(dead)


def corrupt_dict_store(store: DictStore, key: str) -> None:
    """Put text that is no record under ``key``."""
    store.blobs[key] = "\x00{ not a record"
