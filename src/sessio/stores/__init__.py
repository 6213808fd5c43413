"""Session stores behind one contract (:class:`Store`), and :func:`store_from_url`."""

from __future__ import annotations

from .base import Record, Store, Write
from .file import FileStore
from .memory import MemoryStore
from .sqlite import SQLiteStore
from .url import store_from_url

__all__ = [
    "FileStore",
    "MemoryStore",
    "Record",
    "SQLiteStore",
    "Store",
    "Write",
    "store_from_url",
]
