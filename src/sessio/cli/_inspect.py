"""What the ``sessio`` command reads from a store, as plain data: no terminal, no click.

Each function takes an open :class:`~sessio.stores.Store` and returns dictionaries that the
command renders as a table or prints as JSON, so the command's output and its ``--json`` form
say the same thing. Nothing here writes to the store.
"""

from __future__ import annotations

import collections
import datetime as dt
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ..codec import default_codec
from ..errors import ConfigurationError, RecordCorrupt
from ..fields import META, decode
from ..stores.base import Record, Store

__all__ = [
    "PAGE_SIZE",
    "check_readable",
    "describe",
    "find",
    "iter_records",
    "masked",
    "stats",
    "summary",
]

#: Records fetched per store call while walking a store.
PAGE_SIZE = 500

# Data keys whose values a terminal should not show: credentials and tokens by their usual names.
_SECRET_NAME = re.compile(r"pass|secret|token|csrf|key|auth|otp|pin|cred|cookie", re.IGNORECASE)
MASK = "********"


def check_readable(url: str) -> None:
    """Refuse a store URL that a read-only command would have to *create* to open.

    Opening a SQLite or file store creates its file or directory; a read-only command must not,
    so a missing one is an error here (with the path as the store would have resolved it).
    """
    if not url.strip():
        raise ConfigurationError("the store URL is empty: pass --store URL or set SESSIO_STORE_URL")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        if parts.netloc == ":memory:" or parts.path == "/:memory:":
            return
        path = unquote(parts.path[1:])
        if not path:
            raise ConfigurationError(
                f"{url!r} names no database file: sqlite:///relative.db or sqlite:////absolute.db"
            )
        if not Path(path).is_file():
            where = "" if Path(path).is_absolute() else " (relative to the current directory)"
            raise ConfigurationError(
                f"no SQLite database at {path}{where}; "
                "sqlite:///name.db is relative, sqlite:////path/name.db absolute"
            )
    elif scheme == "file":
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise ConfigurationError(f"{url!r} names no directory")
        if not Path(path).is_dir():
            raise ConfigurationError(f"no file store directory at {path}")


def iter_records(store: Store, *, limit: int | None = None) -> Iterator[Record]:
    """Every live session record in ``store`` (tombstones of rotations left out), page by page."""
    cursor: str | None = None
    seen = 0
    while True:
        page = store.page_sync(cursor, PAGE_SIZE)
        for record in page.records:
            if META not in record.fields:
                continue  # a rotation's short-lived tombstone, not a session
            yield record
            seen += 1
            if limit is not None and seen >= limit:
                return
        cursor = page.cursor
        if cursor is None:
            return


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    try:
        return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat(timespec="seconds")
    except (OverflowError, OSError, ValueError):
        return None


def summary(record: Record) -> dict[str, Any]:
    """One line of ``sessio list``: the record's hash, principal, times, address and agent."""
    row: dict[str, Any] = {
        "hash": record.key,
        "principal": record.principal,
        "created": None,
        "last_seen": None,
        "expires": _iso(record.expires_at),
        "ip": None,
        "user_agent": None,
        "corrupt": False,
    }
    try:
        meta = decode(default_codec, record.fields).meta
    except (RecordCorrupt, KeyError):
        row["corrupt"] = True
        return row
    row.update(
        created=_iso(meta.created_at),
        last_seen=_iso(meta.last_seen),
        ip=meta.ip,
        user_agent=meta.user_agent,
    )
    return row


def masked(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with the values of secret-looking keys (password, token, ...) masked."""
    return {k: MASK if _SECRET_NAME.search(k) else v for k, v in data.items()}


def describe(record: Record) -> dict[str, Any]:
    """What ``sessio show`` prints: the summary, the data (secrets masked) and the flashes."""
    row = summary(record)
    if row["corrupt"]:
        row["data"] = None
        return row
    loaded = decode(default_codec, record.fields)
    row["authenticated_at"] = _iso(loaded.meta.authenticated_at)
    row["roles"] = sorted(loaded.principal.roles) if loaded.principal is not None else []
    row["data"] = masked({k: _plain(v) for k, v in loaded.values.items()})
    row["flash_messages"] = len(loaded.flashes)
    row["undecodable_keys"] = sorted(loaded.corrupt)
    return row


def _plain(value: Any) -> Any:
    """A JSON-friendly form of a decoded value (sets, tuples, bytes and dates become text)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=repr) if isinstance(value, (set, frozenset)) else value
        return [_plain(v) for v in items]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def find(store: Store, prefix: str) -> list[Record]:
    """The live records whose hash starts with ``prefix`` (a whole hash is one direct load)."""
    prefix = prefix.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{6,64}", prefix):
        raise ConfigurationError(
            f"{prefix!r} is not a session hash: give at least 6 hex digits, as `sessio list` shows"
        )
    if len(prefix) == 64:
        record = store.load_sync(prefix)
        return [record] if record is not None and META in record.fields else []
    return [r for r in iter_records(store) if r.key.startswith(prefix)]


def stats(store: Store, *, top: int = 10, soon: float = 3600.0) -> dict[str, Any]:
    """Live sessions, anonymous vs authenticated, the principals with most sessions, and how
    many expire within ``soon`` seconds."""
    now = time.time()
    live = authenticated = expiring = corrupt = 0
    by_principal: collections.Counter[str] = collections.Counter()
    for record in iter_records(store):
        live += 1
        if record.principal is not None:
            authenticated += 1
            by_principal[record.principal] += 1
        if record.expires_at - now <= soon:
            expiring += 1
        if summary(record)["corrupt"]:
            corrupt += 1
    return {
        "store": repr(store),
        "live": live,
        "anonymous": live - authenticated,
        "authenticated": authenticated,
        "principals": len(by_principal),
        "top_principals": [
            {"principal": p, "sessions": n} for p, n in by_principal.most_common(top)
        ],
        "expiring_within_seconds": soon,
        "expiring": expiring,
        "corrupt": corrupt,
        "size_bytes": _size(store),
    }


def _size(store: Store) -> int | None:
    """Bytes on disk for the embedded stores (SQLite file with its WAL, file store directory)."""
    path = getattr(store, "path", None)
    if isinstance(path, str) and path != ":memory:":
        files = [Path(path), Path(path + "-wal"), Path(path + "-shm")]
        return sum(f.stat().st_size for f in files if f.is_file())
    directory = getattr(store, "directory", None)
    if isinstance(directory, Path) and directory.is_dir():
        return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
    return None
