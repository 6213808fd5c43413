"""``store_from_url``: build any store from one configuration string.

Every failure to build a store from a URL is a :class:`~sessio.errors.ConfigurationError`
(a missing extra stays :class:`~sessio.errors.MissingDependency`), and no message shows the
URL's secrets: see :func:`redact_url`.
"""

from __future__ import annotations

import importlib
import re
from typing import Any
from urllib.parse import parse_qsl, unquote, unquote_plus, urlsplit

from ..errors import ConfigurationError, MissingDependency, SessionError
from .base import Store

__all__ = ["SCHEMES", "redact_url", "store_from_url"]

# userinfo (up to the netloc's last '@', as urlsplit reads it) and query parameters that carry
# secrets. Plain regular expressions, so even a URL urlsplit() refuses ("redis://:pw@[") is
# redacted.
_USERINFO = re.compile(r"//([^/?#]*)@")
_QUERY_SECRET = re.compile(
    r"([?&;](?:[a-z_]*password|passwd|pass|pwd|secret|token|auth|key)=)[^&#;]*", re.I
)

#: URL scheme -> "module:Class" (imported lazily, so optional extras stay optional).
SCHEMES: dict[str, str] = {
    "memory": "sessio.stores.memory:MemoryStore",
    "file": "sessio.stores.file:FileStore",
    "sqlite": "sessio.stores.sqlite:SQLiteStore",
    "redis": "sessio.stores.redis:RedisStore",
    "rediss": "sessio.stores.redis:RedisStore",
    "unix": "sessio.stores.redis:RedisStore",
    "redis+cluster": "sessio.stores.redis:RedisStore",
    "rediss+cluster": "sessio.stores.redis:RedisStore",
    "redis+sentinel": "sessio.stores.redis:RedisStore",
    "rediss+sentinel": "sessio.stores.redis:RedisStore",
    "postgres": "sessio.stores.postgres:PostgresStore",
    "postgresql": "sessio.stores.postgres:PostgresStore",
}


def _load(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def redact_url(url: str) -> str:
    """``url`` with its password and secret query parameters shown as ``***``; never raises."""
    if not isinstance(url, str):
        return f"<{type(url).__name__}>"
    return _QUERY_SECRET.sub(r"\1***", _USERINFO.sub(_hide_password, url, count=1))


def _hide_password(match: re.Match[str]) -> str:
    user, colon, _ = match.group(1).partition(":")
    return f"//{user}{colon}***@" if colon else match.group(0)


def _secrets(url: str) -> list[str]:
    """The secret substrings of ``url`` (as written and percent-decoded), longest first."""
    found = []
    userinfo = _USERINFO.search(url)
    if userinfo is not None:
        found.append(userinfo.group(1).partition(":")[2])
    found += [m.group(0)[len(m.group(1)) :] for m in _QUERY_SECRET.finditer(url)]
    found += [unquote(s) for s in found] + [unquote_plus(s) for s in found]
    return sorted({s for s in found if s}, key=len, reverse=True)


def _redacted(text: str, url: str) -> str:
    for secret in _secrets(url):
        text = text.replace(secret, "***")
    return text


def store_from_url(url: str, **options: Any) -> Store:
    """The store a URL names; ``options`` go to the store's constructor.

    ============================================  ==============================================
    ``memory://`` (``?max_sessions=N``)           :class:`~sessio.stores.MemoryStore`
    ``file:///var/lib/app/sessions``              :class:`~sessio.stores.FileStore`
    ``sqlite:///sessions.db`` (relative path)     :class:`~sessio.stores.SQLiteStore`
    ``sqlite:////var/lib/app/sessions.db``        (absolute path; ``sqlite://:memory:`` too)
    ``redis://host:6379/0``, ``rediss://``        ``RedisStore`` (``pip install 'sessio[redis]'``)
    ``redis+cluster://host:7000``                 ``RedisStore`` on a Redis Cluster
    ``rediss+cluster://host:7000``                (the same, over TLS)
    ``redis+sentinel://h1:26379,h2/mymaster/0``   ``RedisStore`` on the master Sentinel names
    ``rediss+sentinel://...``                     (the same, over TLS; see ``RedisStore``)
    ``postgresql://user@host/db``                 ``PostgresStore`` (``'sessio[postgres]'``)
    ============================================  ==============================================

    Raises :class:`~sessio.errors.ConfigurationError` for anything that does not build a
    store (``"redis://["``, a bad port, an unwritable path...), with secrets redacted.
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"a store URL is text, got {type(url).__name__}")
    try:
        return _build(url, options)
    except MissingDependency:
        raise
    except ConfigurationError as exc:
        if _redacted(exc.message, url) == exc.message:
            raise
        raise ConfigurationError(_redacted(exc.message, url)) from None
    except (SessionError, ValueError, TypeError, LookupError, OSError) as exc:
        message = exc.message if isinstance(exc, SessionError) else str(exc)
        raise ConfigurationError(
            f"cannot build a store from {redact_url(url)!r}: {type(exc).__name__}: "
            f"{_redacted(message, url)}"
        ) from None


def _build(url: str, options: dict[str, Any]) -> Store:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        known = ", ".join(sorted(SCHEMES))
        raise ConfigurationError(
            f"unknown store URL scheme {scheme!r} in {redact_url(url)!r}; known: {known}"
        )
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    store_class = _load(SCHEMES[scheme])
    if scheme == "memory":
        if "max_sessions" in query:
            max_sessions = query.pop("max_sessions")
            options.setdefault("max_sessions", _max_sessions(max_sessions, url))
        _reject_unknown(query, url)
        return store_class(**options)  # type: ignore[no-any-return]
    if scheme == "file":
        _reject_unknown(query, url)
        path = unquote(parts.netloc + parts.path)
        if not path:
            raise ConfigurationError(f"file store URL needs a directory: {redact_url(url)!r}")
        return store_class(path, **options)  # type: ignore[no-any-return]
    if scheme == "sqlite":
        _reject_unknown(query, url)
        if parts.netloc == ":memory:" or parts.path in ("/:memory:", ""):
            return store_class(":memory:", **options)  # type: ignore[no-any-return]
        # sqlite:///rel.db -> "rel.db"; sqlite:////abs.db -> "/abs.db" (SQLAlchemy's convention)
        return store_class(unquote(parts.path[1:]), **options)  # type: ignore[no-any-return]
    if scheme.endswith("+sentinel"):  # several hosts: RedisStore checks each address
        return store_class.from_url(url, **options)  # type: ignore[no-any-return]
    _ = parts.port  # a server URL: raises ValueError for a port that is no number in 0-65535
    if scheme in ("redis", "rediss") and parts.path not in ("", "/"):
        database = parts.path[1:]
        if not (database.isascii() and database.isdigit()):
            raise ConfigurationError(
                f"a Redis URL's path is a database number: {redact_url(url)!r}"
            )
    return store_class.from_url(url, **options)  # type: ignore[no-any-return]


def _max_sessions(text: str, url: str) -> int | None:
    if text.lower() in ("", "none"):
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigurationError(
            f"max_sessions must be a number or 'none' in {redact_url(url)!r}"
        ) from None


def _reject_unknown(query: dict[str, str], url: str) -> None:
    if query:
        raise ConfigurationError(
            f"unknown store URL option(s) {sorted(query)} in {redact_url(url)!r}"
        )
