"""Session stores behind one contract (:class:`Store`), client-side stores, :func:`store_from_url`.

``RedisStore`` and ``PostgresStore`` are imported on first use, so ``import sessio.stores``
imports neither redis nor psycopg.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import Record, Store, Write
from .client import ClientSideStore
from .encrypted import EncryptedStore
from .encrypted_cookie import EncryptedCookieStore
from .file import FileStore
from .jwt import JWTStore
from .memory import MemoryStore
from .signed import SignedCookieStore
from .sqlite import SQLiteStore
from .url import store_from_url

if TYPE_CHECKING:
    from .postgres import PostgresStore
    from .redis import RedisStore

__all__ = [
    "ClientSideStore",
    "EncryptedCookieStore",
    "EncryptedStore",
    "FileStore",
    "JWTStore",
    "MemoryStore",
    "PostgresStore",
    "Record",
    "RedisStore",
    "SQLiteStore",
    "SignedCookieStore",
    "Store",
    "Write",
    "store_from_url",
]

#: Stores whose driver is an optional dependency: name -> the module that defines it.
_LAZY = {"PostgresStore": ".postgres", "RedisStore": ".redis"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
