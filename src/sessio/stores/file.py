"""FileStore: one JSON file per session in a directory, written atomically."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import RecordCorrupt, StoreUnavailable
from .base import Clock, LocalStore, Record, Write

try:  # POSIX: serialise writers across processes too
    import fcntl
except ImportError:  # pragma: no cover - Windows: one process per directory
    fcntl = None  # type: ignore[assignment]

__all__ = ["FileStore"]

_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")


def _filename(name: str) -> str:
    """A file name that cannot escape the directory, whatever ``name`` holds."""
    if _SAFE_NAME.fullmatch(name):
        return name
    return "h-" + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()


class FileStore(LocalStore):
    """Sessions as files under ``directory``: readable with ``cat``, for development and small sites.

    Layout: ``<directory>/sessions/<key>.json`` holds ``{"fields", "expires_at", "principal"}``;
    ``<directory>/principals/<hash>/<key>`` are empty marker files that index sessions per
    principal. Writes go to a temporary file that replaces the old one atomically, under a lock
    that also holds between processes (``fcntl``). File names are derived from store keys that
    are checked against ``[A-Za-z0-9_-]``, anything else hashed: no key can reach outside.
    :meth:`cleanup` reads every file; use SQLite or a server store for large session counts.
    """

    def __init__(self, directory: str | os.PathLike[str], *, clock: Clock = time.time) -> None:
        super().__init__(clock=clock)
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
        self._lock_path = self.directory / ".lock"
        self._thread_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FileStore({str(self.directory)!r})"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            try:
                with open(self._lock_path, "a+b") as lock:
                    if fcntl is not None:
                        fcntl.flock(lock, fcntl.LOCK_EX)
                    yield
            except OSError as exc:
                raise StoreUnavailable(f"file store I/O error in {self.directory}: {exc}") from exc

    def _path(self, key: str) -> Path:
        return self._sessions / (_filename(key) + ".json")

    def _marker(self, principal: str, key: str) -> Path:
        return self._principals / _filename(principal) / _filename(key)

    def _read(self, key: str) -> dict[str, Any] | None:
        try:
            text = self._path(key).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreUnavailable(f"cannot read session file: {exc}") from exc
        try:
            raw = json.loads(text)
            fields = raw["fields"]
            if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
                raise TypeError("fields")
            data = {
                "fields": fields,
                "expires_at": float(raw["expires_at"]),
                "principal": raw.get("principal"),
                "key": raw.get("key"),
            }
        except (ValueError, TypeError, KeyError) as exc:
            raise RecordCorrupt(
                f"session file is not a sessio record ({exc.__class__.__name__})"
            ) from None
        return data

    def _live(self, key: str) -> dict[str, Any] | None:
        data = self._read(key)
        if data is None or data["expires_at"] <= self.clock():
            return None
        return data

    def _own(self, key: str, data: dict[str, Any] | None) -> dict[str, Any] | None:
        # A file records the key it was written for: a key that is not a safe file name is
        # hashed, so this is what principal listings report, and a key that happens to equal
        # another key's hashed name ("h-<sha256>") is not handed that other session.
        if data is not None and data["key"] not in (None, key):
            return None
        return data

    def _write(self, key: str, data: dict[str, Any], old_principal: str | None) -> None:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        fd, tmp = tempfile.mkstemp(dir=self._sessions, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, self._path(key))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        if old_principal is not None and old_principal != data["principal"]:
            self._marker(old_principal, key).unlink(missing_ok=True)
        if data["principal"] is not None:
            marker = self._marker(data["principal"], key)
            marker.parent.mkdir(exist_ok=True)
            marker.touch()

    def _remove(self, key: str) -> bool:
        try:
            data = self._read(key)
        except RecordCorrupt:
            data = {"principal": None}
        try:
            self._path(key).unlink()
        except FileNotFoundError:
            return False
        if data is not None and data["principal"] is not None:
            self._marker(data["principal"], key).unlink(missing_ok=True)
        return data is not None

    # -- contract ---------------------------------------------------------------------------------

    def load_sync(self, key: str) -> Record | None:
        data = self._own(key, self._live(key))
        return (
            None
            if data is None
            else Record(key, data["fields"], data["expires_at"], data["principal"])
        )

    def save_sync(self, key: str, write: Write) -> bool:
        with self._locked():
            old = write.supersedes if write.replace else None
            if old is not None:
                if not self.exists_sync(old):
                    return False  # revoked, evicted or expired meanwhile: stays gone
                if old != key:
                    self._remove(old)
            try:
                current = self._own(key, self._read(key))
            except RecordCorrupt:
                current = None
            if write.replace:
                fields = dict(write.fields)
            else:
                if current is None or current["expires_at"] <= self.clock():
                    return False
                fields = dict(current["fields"])
                fields.update(write.fields)
                for name in write.removed:
                    fields.pop(name, None)
            data = {
                "fields": fields,
                "expires_at": write.expires_at,
                "principal": write.principal,
                "key": key,
            }
            self._write(key, data, None if current is None else current["principal"])
            return True

    def delete_sync(self, key: str) -> bool:
        with self._locked():
            return self._remove(key)

    def principal_records_sync(self, principal: str) -> list[Record]:
        folder = self._principals / _filename(principal)
        records = []
        with contextlib.suppress(FileNotFoundError):
            for marker in folder.iterdir():
                try:
                    data = self._live(marker.name)  # the marker is named like the session file
                except RecordCorrupt:
                    continue
                if data is not None and data["principal"] == principal:
                    key = marker.name if data["key"] is None else data["key"]
                    records.append(Record(key, data["fields"], data["expires_at"], principal))
        return records

    def delete_principal_records_sync(self, principal: str, keep: str | None = None) -> list[str]:
        # Under the lock every save takes (threads and processes): a rotation lands before,
        # and its marker is found here, or after, and finds its superseded file gone.
        with self._locked():
            folder = self._principals / _filename(principal)
            removed = []
            with contextlib.suppress(FileNotFoundError):
                for marker in list(folder.iterdir()):
                    try:
                        data = self._live(marker.name)
                    except RecordCorrupt:
                        continue  # loading that key discards it; listing never showed it
                    if data is None or data["principal"] != principal:
                        continue
                    key = marker.name if data["key"] is None else data["key"]
                    if key != keep and self._remove(key):
                        removed.append(key)
            return removed

    def exists_sync(self, key: str) -> bool:
        try:
            return self._own(key, self._live(key)) is not None
        except RecordCorrupt:
            return False

    def _keys(self) -> list[str]:
        return [p.name[: -len(".json")] for p in self._sessions.glob("*.json")]

    def count_sync(self) -> int:
        return sum(1 for name in self._keys() if self._is_live_file(name))

    def _is_live_file(self, name: str) -> bool:
        try:
            return self._live(name) is not None
        except RecordCorrupt:
            return False

    def clear_sync(self) -> int:
        with self._locked():
            keys = self._keys()
            for key in keys:
                self._remove(key)
            return len(keys)

    def cleanup_sync(self) -> int:
        removed = 0
        now = self.clock()
        with self._locked():
            for key in self._keys():
                try:
                    data = self._read(key)
                except RecordCorrupt:
                    continue  # left for an operator to inspect; load treats it as missing
                if data is not None and data["expires_at"] <= now:
                    removed += self._remove(key)
        return removed
