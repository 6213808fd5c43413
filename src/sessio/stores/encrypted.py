"""EncryptedStore: any server-side store, with every field value encrypted at rest (AES-GCM).

Wrap any store -- ``EncryptedStore(SQLiteStore("s.db"), keys)`` -- and a dump of its database,
a backup or a replica yields no session data. Each value is sealed with AES-256-GCM under the
newest key; its associated data is the record's key and the field's name, so a value copied
into another session or another field does not decrypt. Keys rotate like every sessio key
list: add a new key (the last one encrypts) and every value still decrypts under the key its
own key ID names; drop an old key once the sessions written under it have expired.

What stays readable at rest: record keys (already hashes of session IDs), field *names* (the
session's key names, ``d:cart``), expiry times and principal keys (the per-principal index
needs them), and the length of each value. A value that fails to decrypt -- tampered, moved,
or sealed under a key no longer listed -- makes :meth:`load` raise
:class:`~sessio.errors.RecordCorrupt`, which the manager turns into a fresh session and a
``corrupt`` event; :meth:`principal_records` leaves such values out, so the session still
shows (and can be revoked) in a device list.

Random 96-bit nonces bound one key to about four billion values (NIST SP 800-38D), counting
every field of every write; add a new key well before that. Requires ``sessio[crypto]``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import struct
from collections.abc import Mapping

from ..errors import ConfigurationError, RecordCorrupt
from ..keys import SecretKeys
from ._aead import AEAD
from .base import Page, Record, Rotate, Saved, Store, Write, ensure_storable
from .client import b64encode

__all__ = ["EncryptedStore"]

_PURPOSE = "encrypted-store"


def _context(key: str, field: str) -> bytes:
    # Length-prefixed, so no (key, field) pair can spell another.
    encoded = key.encode("utf-8", "surrogatepass")
    return struct.pack(">I", len(encoded)) + encoded + field.encode("utf-8", "surrogatepass")


class EncryptedStore(Store):
    """Wraps ``inner`` (any :class:`~sessio.stores.Store`), encrypting every field value.

    ``keys`` are secrets of at least 32 bytes, oldest to newest; the AES-256 keys are derived
    from them for this purpose alone. The wrapper keeps the inner store's contract whole
    (delta writes, rotation, the principal index, expiry) and closes it when closed.
    """

    def __init__(self, inner: Store, keys: SecretKeys) -> None:
        if not isinstance(inner, Store):
            raise ConfigurationError(
                f"EncryptedStore wraps a server-side sessio Store, got {type(inner).__name__}"
            )
        super().__init__(clock=inner.clock)
        self.inner = inner
        self._aead = AEAD(keys, _PURPOSE)

    def __repr__(self) -> str:
        return f"EncryptedStore({self.inner!r})"

    # -- the transformation ----------------------------------------------------------------------

    def _seal_fields(self, key: str, fields: Mapping[str, str]) -> dict[str, str]:
        return {
            name: b64encode(self._aead.encrypt(text.encode("utf-8"), _context(key, name)))
            for name, text in fields.items()
        }

    def _seal(self, key: str, write: Write) -> Write:
        # Refused before encryption: sealed, a lone surrogate would be base64 any store takes.
        ensure_storable(key, write)
        sealed = dataclasses.replace(write, fields=self._seal_fields(key, write.fields))
        if isinstance(sealed, Rotate) and sealed.tombstone is not None:
            stone = sealed.tombstone
            stone = dataclasses.replace(stone, fields=self._seal_fields(stone.key, stone.fields))
            sealed = dataclasses.replace(sealed, tombstone=stone)
        return sealed

    def _value(self, key: str, name: str, sealed: str) -> str | None:
        try:
            blob = _b64decode(sealed)
        except ValueError:
            return None
        plain = self._aead.decrypt(blob, _context(key, name))
        if plain is None:
            return None
        try:
            return plain.decode("utf-8", "surrogatepass")
        except UnicodeDecodeError:
            return None

    def _open(self, record: Record | None) -> Record | None:
        if record is None:
            return None
        fields = {}
        for name, sealed in record.fields.items():
            text = self._value(record.key, name, sealed)
            if text is None:
                raise RecordCorrupt(
                    f"field {name!r} does not decrypt (tampered, moved, or its key was dropped)",
                    field=name,
                )
            fields[name] = text
        return Record(record.key, fields, record.expires_at, record.principal)

    def _open_listed(self, records: list[Record]) -> list[Record]:
        out = []
        for record in records:
            fields = {}
            for name, sealed in record.fields.items():
                text = self._value(record.key, name, sealed)
                if text is not None:
                    fields[name] = text
            out.append(Record(record.key, fields, record.expires_at, record.principal))
        return out

    # -- async --------------------------------------------------------------------------------------

    async def load(self, key: str) -> Record | None:
        return self._open(await self.inner.load(key))

    async def save(self, key: str, write: Write) -> Saved:
        return await self.inner.save(key, self._seal(key, write))

    async def delete(self, key: str) -> bool:
        return await self.inner.delete(key)

    async def principal_records(self, principal: str) -> list[Record]:
        return self._open_listed(await self.inner.principal_records(principal))

    async def delete_principal_records(self, principal: str, keep: str | None = None) -> list[str]:
        return await self.inner.delete_principal_records(principal, keep)

    async def exists(self, key: str) -> bool:
        return await self.inner.exists(key)

    async def count(self) -> int:
        return await self.inner.count()

    async def clear(self) -> int:
        return await self.inner.clear()

    async def cleanup(self) -> int:
        return await self.inner.cleanup()

    async def page(self, cursor: str | None = None, limit: int = 100) -> Page:
        page = await self.inner.page(cursor, limit)
        return Page(self._open_listed(page.records), page.cursor)

    async def close(self) -> None:
        await self.inner.close()

    # -- sync ---------------------------------------------------------------------------------------

    def load_sync(self, key: str) -> Record | None:
        return self._open(self.inner.load_sync(key))

    def save_sync(self, key: str, write: Write) -> Saved:
        return self.inner.save_sync(key, self._seal(key, write))

    def delete_sync(self, key: str) -> bool:
        return self.inner.delete_sync(key)

    def principal_records_sync(self, principal: str) -> list[Record]:
        return self._open_listed(self.inner.principal_records_sync(principal))

    def delete_principal_records_sync(self, principal: str, keep: str | None = None) -> list[str]:
        return self.inner.delete_principal_records_sync(principal, keep)

    def exists_sync(self, key: str) -> bool:
        return self.inner.exists_sync(key)

    def count_sync(self) -> int:
        return self.inner.count_sync()

    def clear_sync(self) -> int:
        return self.inner.clear_sync()

    def cleanup_sync(self) -> int:
        return self.inner.cleanup_sync()

    def page_sync(self, cursor: str | None = None, limit: int = 100) -> Page:
        page = self.inner.page_sync(cursor, limit)
        return Page(self._open_listed(page.records), page.cursor)

    def close_sync(self) -> None:
        self.inner.close_sync()


def _b64decode(text: str) -> bytes:
    # Lenient decoding is fine here: AES-GCM authenticates the bytes, whatever their spelling.
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
