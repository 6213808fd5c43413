"""Session stores behind one contract (:class:`Store`), client-side stores, :func:`store_from_url`."""

from __future__ import annotations

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

__all__ = [
    "ClientSideStore",
    "EncryptedCookieStore",
    "EncryptedStore",
    "FileStore",
    "JWTStore",
    "MemoryStore",
    "Record",
    "SQLiteStore",
    "SignedCookieStore",
    "Store",
    "Write",
    "store_from_url",
]
