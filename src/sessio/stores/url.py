"""``store_from_url``: build any store from one configuration string."""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ..errors import ConfigurationError
from .base import Store

__all__ = ["SCHEMES", "store_from_url"]

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
    "postgres": "sessio.stores.postgres:PostgresStore",
    "postgresql": "sessio.stores.postgres:PostgresStore",
}


def _load(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


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
    ``postgresql://user@host/db``                 ``PostgresStore`` (``'sessio[postgres]'``)
    ============================================  ==============================================
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        known = ", ".join(sorted(SCHEMES))
        raise ConfigurationError(f"unknown store URL scheme {scheme!r} in {url!r}; known: {known}")
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
            raise ConfigurationError(f"file store URL needs a directory: {url!r}")
        return store_class(path, **options)  # type: ignore[no-any-return]
    if scheme == "sqlite":
        _reject_unknown(query, url)
        if parts.netloc == ":memory:" or parts.path in ("/:memory:", ""):
            return store_class(":memory:", **options)  # type: ignore[no-any-return]
        # sqlite:///rel.db -> "rel.db"; sqlite:////abs.db -> "/abs.db" (SQLAlchemy's convention)
        return store_class(unquote(parts.path[1:]), **options)  # type: ignore[no-any-return]
    return store_class.from_url(url, **options)  # type: ignore[no-any-return]


def _max_sessions(text: str, url: str) -> int | None:
    if text.lower() in ("", "none"):
        return None
    try:
        return int(text)
    except ValueError:
        raise ConfigurationError(f"max_sessions must be a number or 'none' in {url!r}") from None


def _reject_unknown(query: dict[str, str], url: str) -> None:
    if query:
        raise ConfigurationError(f"unknown store URL option(s) {sorted(query)} in {url!r}")
