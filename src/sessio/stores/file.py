"""FileStore: one JSON file per session in a directory, written atomically."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ..errors import ConfigurationError, RecordCorrupt, StoreUnavailable
from ._file_lock import DirectoryLock
from ._file_record import FileRecord, decode, encode
from ._offloop import InlineFirstStore
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

__all__ = ["FileStore"]

_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
_SUFFIX = ".json"


def _filename(name: str) -> str:
    """A file name that cannot escape the directory, whatever ``name`` holds."""
    if _SAFE_NAME.fullmatch(name):
        return name
    return "h-" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()


class FileStore(InlineFirstStore):
    """Sessions as files under ``directory``: readable with ``cat``, for development and small sites.

    Layout: ``<directory>/sessions/<key>.json`` holds ``{"fields", "expires_at", "principal"}``;
    ``<directory>/principals/<hash>/<key>`` are empty marker files that index sessions per
    principal. Each file is written to a temporary file, flushed to disk and renamed over the
    old one, so readers see a whole record or the previous one. Every write runs under one lock
    (a thread lock and ``flock`` on ``<directory>/.lock``, so processes share it), which makes
    a rotation, its tombstone and the principal limit one step; a rotation writes the new
    record before it removes the old one, so a failure never leaves the user with neither.
    Async writers that find the lock held wait for it in a thread, at most ``timeout`` seconds.
    File names are derived from keys checked against ``[A-Za-z0-9_-]``, anything else hashed:
    no key can reach outside. :meth:`cleanup` reads every file; use SQLite or a server store
    for large session counts.
    """

    def __init__(
        self, directory: str | os.PathLike[str], *, clock: Clock = time.time, timeout: float = 5.0
    ) -> None:
        super().__init__(clock=clock)
        if not timeout > 0:
            raise ConfigurationError(f"timeout must be a positive number of seconds: {timeout!r}")
        self.directory = Path(directory)
        self._sessions = self.directory / "sessions"
        self._principals = self.directory / "principals"
        try:
            self._sessions.mkdir(parents=True, exist_ok=True)
            self._principals.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(
                f"cannot create session directory {self.directory}: {exc}"
            ) from exc
        self.timeout = timeout
        self._lock = DirectoryLock(self.directory / ".lock", timeout)

    def __repr__(self) -> str:
        return f"FileStore({str(self.directory)!r})"

    @contextlib.contextmanager
    def _locked(self, wait: bool) -> Iterator[None]:
        with self._lock.hold(wait):
            try:
                yield
            except OSError as exc:
                raise StoreUnavailable(f"file store I/O error in {self.directory}: {exc}") from exc

    def _path(self, key: str) -> Path:
        return self._sessions / (_filename(key) + _SUFFIX)

    def _marker(self, principal: str, key: str) -> Path:
        return self._principals / _filename(principal) / _filename(key)

    # -- records on disk --------------------------------------------------------------------------

    def _read(self, name: str) -> FileRecord | None:
        """The file for ``name`` (a key or a file stem), or None; RecordCorrupt for garbage."""
        try:
            raw = self._path(name).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreUnavailable(f"cannot read session file: {exc}") from exc
        return decode(raw)

    def _live(self, key: str, now: float) -> FileRecord | None:
        """The live record written for ``key``; garbage counts as none (for writers)."""
        try:
            data = self._read(key)
        except RecordCorrupt:
            return None
        return data if data is not None and _owned(key, data) and data.expires_at > now else None

    def _put(self, key: str, raw: bytes, principal: str | None) -> None:
        """Replace the file for ``key`` by ``raw``, durably, and move its principal marker."""
        try:
            before = self._read(key)
        except RecordCorrupt:
            before = None
        fd, tmp = tempfile.mkstemp(dir=self._sessions, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
                fh.flush()
                os.fsync(fh.fileno())  # the rename must never point at a file not yet on disk
            os.replace(tmp, self._path(key))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if before is not None and before.principal not in (None, principal):
            self._marker(before.principal, key).unlink(missing_ok=True)
        if principal is not None:
            marker = self._marker(principal, key)
            marker.parent.mkdir(exist_ok=True)
            marker.touch()

    def _remove(self, key: str) -> bool:
        """Delete the file for ``key`` and its marker; whether a record was there."""
        try:
            data = self._read(key)
        except RecordCorrupt:
            data = None
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        if data is not None and data.principal is not None:
            self._marker(data.principal, key).unlink(missing_ok=True)
        return True

    def _filed(self, principal: str, now: float) -> list[Record]:
        """The live records filed under ``principal``, found through its markers."""
        records = []
        with contextlib.suppress(FileNotFoundError):
            for marker in (self._principals / _filename(principal)).iterdir():
                try:
                    data = self._read(marker.name)  # the marker is named like the session file
                except RecordCorrupt:
                    continue  # listing skips garbage; loading that key reports it
                if data is not None and data.principal == principal and data.expires_at > now:
                    key = marker.name if data.key is None else data.key
                    records.append(Record(key, data.fields, data.expires_at, principal))
        return records

    # -- writes -----------------------------------------------------------------------------------

    def _save(self, wait: bool, key: str, write: Write) -> Saved:
        # Encoded before the lock and before any file changes: a bad value changes nothing.
        grave = write.tombstone if isinstance(write, Rotate) else None
        grave_raw = (
            None if grave is None else encode(grave.key, grave.fields, grave.expires_at, None)
        )
        with self._locked(wait):
            now = self.clock()
            current = self._live(key, now)
            match write:
                case Create():
                    if current is not None:
                        return EXISTS
                    fields = dict(write.fields)
                case Update():
                    if current is None:
                        return MISSING
                    fields = {**current.fields, **write.fields}
                    for name in write.removed:
                        fields.pop(name, None)
                case Rewrite():
                    if current is None:
                        return MISSING
                    fields = dict(write.fields)
                case Rotate(supersedes=old):
                    if self._live(old, now) is None:
                        return MISSING  # revoked, evicted or expired meanwhile: stays gone
                    fields = dict(write.fields)
            raw = encode(key, fields, write.expires_at, write.principal)
            evicted: tuple[str, ...] = ()
            limit = write.limit
            if limit is not None and write.principal is not None:
                skip = {key, write.supersedes} if isinstance(write, Rotate) else {key}
                others = sorted(
                    (r for r in self._filed(write.principal, now) if r.key not in skip),
                    key=lambda r: (r.expires_at, r.key),
                )
                excess = len(others) - limit.max_sessions + 1
                if excess > 0:
                    if limit.on_limit == "reject":
                        return REJECTED
                    evicted = tuple(r.key for r in others[:excess])
            # The new record first: until it is on disk, the old one stays where it was.
            self._put(key, raw, write.principal)
            if grave is not None and grave_raw is not None:
                self._put(grave.key, grave_raw, None)
            if isinstance(write, Rotate) and write.supersedes != key:
                self._remove(write.supersedes)
            for gone in evicted:
                self._remove(gone)
        return Saved(SaveOutcome.APPLIED, evicted) if evicted else APPLIED

    def _delete(self, wait: bool, key: str) -> bool:
        with self._locked(wait):
            return self._remove(key)

    def _delete_principal_records(self, wait: bool, principal: str, keep: str | None) -> list[str]:
        # Under the lock every save takes (threads and processes): a rotation lands before,
        # and its marker is found here, or after, and finds its superseded file gone.
        with self._locked(wait):
            removed = []
            for record in self._filed(principal, self.clock()):
                if record.key != keep and self._remove(record.key):
                    removed.append(record.key)
            return removed

    def _clear(self, wait: bool) -> int:
        with self._locked(wait):
            names = self._names()
            for name in names:
                self._remove(name)
            return len(names)

    def _cleanup(self, wait: bool) -> int:
        removed = 0
        with self._locked(wait):
            now = self.clock()
            for name in self._names():
                try:
                    data = self._read(name)
                except RecordCorrupt:
                    data = None  # garbage never loads: it only takes space
                if data is None or data.expires_at <= now:
                    removed += self._remove(name)
            self._sweep_markers()
        return removed

    def _sweep_markers(self) -> None:
        """Remove markers whose session file is gone (a damaged file kept its marker)."""
        for folder in self._principals.iterdir():
            if not folder.is_dir():
                continue
            for marker in folder.iterdir():
                if not self._path(marker.name).exists():
                    marker.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty

    # -- reads ------------------------------------------------------------------------------------

    def _names(self) -> list[str]:
        """The stems of the session files, sorted (temporary files start with a dot)."""
        return sorted(
            name[: -len(_SUFFIX)]
            for name in os.listdir(self._sessions)
            if name.endswith(_SUFFIX) and not name.startswith(".")
        )

    def _load(self, wait: bool, key: str) -> Record | None:
        # No lock: every file is replaced whole by a rename, so a read sees one version.
        data = self._read(key)
        if data is None or not _owned(key, data) or data.expires_at <= self.clock():
            return None
        return Record(key, data.fields, data.expires_at, data.principal)

    def _exists(self, wait: bool, key: str) -> bool:
        return self._live(key, self.clock()) is not None

    def _count(self, wait: bool) -> int:
        now = self.clock()
        return sum(1 for name in self._names() if self._live_file(name, now) is not None)

    def _live_file(self, name: str, now: float) -> Record | None:
        try:
            data = self._read(name)
        except RecordCorrupt:
            return None
        if data is None or data.expires_at <= now:
            return None
        return Record(
            name if data.key is None else data.key, data.fields, data.expires_at, data.principal
        )

    def _principal_records(self, wait: bool, principal: str) -> list[Record]:
        return self._filed(principal, self.clock())

    def _page(self, wait: bool, cursor: str | None, limit: int) -> Page:
        if limit < 1:
            raise ConfigurationError(f"a page holds at least one record, not {limit!r}")
        # By sorted file name: the cursor is the last name looked at, so a page never repeats
        # one, whatever was written or removed since.
        names = [n for n in self._names() if cursor is None or n > cursor]
        now = self.clock()
        records: list[Record] = []
        for index, name in enumerate(names):
            record = self._live_file(name, now)
            if record is None:
                continue
            records.append(record)
            if len(records) == limit:
                return Page(records, name if index + 1 < len(names) else None)
        return Page(records, None)

    def close_sync(self) -> None:
        """Nothing to release: every file is opened and closed within one call."""


def _owned(key: str, data: FileRecord) -> bool:
    # A file records the key it was written for: a key that is not a safe file name is
    # hashed, so this is what listings report, and a key that happens to equal another key's
    # hashed name ("h-<sha256>") is not handed that other session.
    return data.key is None or data.key == key
