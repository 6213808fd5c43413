"""The store contract: what every session store, present and future, must implement.

A store knows nothing of the web, of policies or of session IDs. It keeps *records* under
opaque *keys* (SHA-256 hashes of session IDs, see :mod:`sessio.ids`). A record is a flat map of
field names to encoded text, an absolute expiry (epoch seconds) and an optional principal key.

What a store must implement, async and sync (the sync twin carries a ``_sync`` suffix):

``load(key)``
    The live record, or ``None`` for a miss, an expired record or one that cannot be decoded.
    One round trip on network stores.
``save(key, write)``
    Apply a :class:`Write` atomically, in one round trip, and return whether it applied. No
    write may bring back a session that was revoked, evicted, destroyed or expired meanwhile:

    * a *delta* (``write.replace`` false) sets ``write.fields`` and drops ``write.removed`` on
      the live record under ``key``; if there is none, nothing is written and ``False`` is
      returned;
    * a *replace* that names ``write.supersedes`` applies only if the live record under
      ``supersedes`` still exists: that record is deleted and ``key`` becomes exactly
      ``write.fields``, in one atomic step; otherwise nothing is written and ``False`` is
      returned. ``supersedes`` is the previous key on ID rotation, or ``key`` itself for a
      forced rewrite of a stored session ("rewrite it only if it is still there");
    * a *replace* without ``supersedes`` is a plain create (a new session): it always applies.

    ``supersedes`` means nothing in a delta, and stores ignore it there. The principal index
    follows ``write.principal``.
``delete(key)``
    Remove the record and its index entry; ``True`` if it existed.
``principal_records(principal)``
    The live records filed under a principal key (the per-principal index).
``delete_principal_records(principal, keep=None)``
    Remove every record filed under a principal key but the one under ``keep``, and return
    the keys of the live records it removed (expired ones may go too, unreported). Atomic with
    respect to :meth:`~Store.save`: a rotation of one of those sessions either lands first,
    and its new record is removed too, or lands after and finds its superseded record gone,
    so it writes nothing. This is what makes "log out everywhere" airtight; a list followed
    by deletes lets a rotation between the two slip through with a key the list never saw.
    The base class provides exactly that list-then-delete as a default, so a third-party store
    keeps working, but every sessio store overrides it atomically.
``exists(key)``, ``count()``, ``clear()``
    Housekeeping: presence, number of live records, remove everything (returns the count).
``cleanup()``
    Remove expired records (cost proportional to what expired where the store allows it);
    returns how many were removed. Stores with native TTL may return 0.
``close()``
    Release connections.

A store signals an outage by raising :class:`~sessio.errors.StoreUnavailable`, never by
returning a miss. The contract is proven by ``tests/stores/test_contract.py``.
"""

from __future__ import annotations

import abc
import dataclasses
import time
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["Clock", "Record", "Store", "Write"]

Clock = Callable[[], float]


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
    """One stored session: its key, encoded fields, expiry and principal key."""

    key: str
    fields: Mapping[str, str]
    expires_at: float
    principal: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Write:
    """One commit, as a store applies it in a single atomic operation.

    A delta (``replace=False``) changes a record only if it exists; a replace creates one, or,
    naming ``supersedes``, takes over a record only if it exists (see :meth:`Store.save`).
    """

    fields: Mapping[str, str]
    expires_at: float
    principal: str | None = None
    removed: Collection[str] = ()
    replace: bool = False
    supersedes: str | None = None


class Store(abc.ABC):
    """Base class of every store. Subclasses implement both the async and the ``_sync`` methods.

    ``clock`` is the time source for expiry decisions the store makes itself; stores with native
    TTL (Redis) use the server's clock and ignore it.
    """

    def __init__(self, *, clock: Clock = time.time) -> None:
        self.clock = clock

    # -- async ------------------------------------------------------------------------------------

    @abc.abstractmethod
    async def load(self, key: str) -> Record | None:
        """The live record under ``key``, or ``None``."""

    @abc.abstractmethod
    async def save(self, key: str, write: Write) -> bool:
        """Apply ``write`` to the record under ``key``, atomically; whether it applied."""

    @abc.abstractmethod
    async def delete(self, key: str) -> bool:
        """Remove the record under ``key``; whether it existed."""

    @abc.abstractmethod
    async def principal_records(self, principal: str) -> list[Record]:
        """The live records filed under ``principal``."""

    async def delete_principal_records(self, principal: str, keep: str | None = None) -> list[str]:
        """Remove every record filed under ``principal`` but ``keep``; the live keys removed.

        A default for stores written before this operation: it lists, then deletes, so it is
        *not* atomic (a rotation between the two escapes). Override it with one atomic step.
        """
        removed = []
        for record in await self.principal_records(principal):
            if record.key != keep and await self.delete(record.key):
                removed.append(record.key)
        return removed

    @abc.abstractmethod
    async def exists(self, key: str) -> bool:
        """Whether a live record is stored under ``key``."""

    @abc.abstractmethod
    async def count(self) -> int:
        """How many live records the store holds."""

    @abc.abstractmethod
    async def clear(self) -> int:
        """Remove every record; how many there were."""

    @abc.abstractmethod
    async def cleanup(self) -> int:
        """Remove expired records; how many were removed."""

    async def close(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Release connections and files."""

    # -- sync twins -----------------------------------------------------------------------------

    @abc.abstractmethod
    def load_sync(self, key: str) -> Record | None:
        """Sync twin of :meth:`load`."""

    @abc.abstractmethod
    def save_sync(self, key: str, write: Write) -> bool:
        """Sync twin of :meth:`save`."""

    @abc.abstractmethod
    def delete_sync(self, key: str) -> bool:
        """Sync twin of :meth:`delete`."""

    @abc.abstractmethod
    def principal_records_sync(self, principal: str) -> list[Record]:
        """Sync twin of :meth:`principal_records`."""

    def delete_principal_records_sync(self, principal: str, keep: str | None = None) -> list[str]:
        """Sync twin of :meth:`delete_principal_records` (the same non-atomic default)."""
        removed = []
        for record in self.principal_records_sync(principal):
            if record.key != keep and self.delete_sync(record.key):
                removed.append(record.key)
        return removed

    @abc.abstractmethod
    def exists_sync(self, key: str) -> bool:
        """Sync twin of :meth:`exists`."""

    @abc.abstractmethod
    def count_sync(self) -> int:
        """Sync twin of :meth:`count`."""

    @abc.abstractmethod
    def clear_sync(self) -> int:
        """Sync twin of :meth:`clear`."""

    @abc.abstractmethod
    def cleanup_sync(self) -> int:
        """Sync twin of :meth:`cleanup`."""

    def close_sync(self) -> None:  # noqa: B027
        """Sync twin of :meth:`close`."""

    # -- context managers -----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_sync()


class LocalStore(Store):
    """A store whose I/O is local and sub-millisecond (memory, file, SQLite).

    Its async methods run the sync ones directly on the event loop: a thread hop would cost more
    than the work. Subclasses implement only the ``_sync`` methods.
    """

    async def load(self, key: str) -> Record | None:
        return self.load_sync(key)

    async def save(self, key: str, write: Write) -> bool:
        return self.save_sync(key, write)

    async def delete(self, key: str) -> bool:
        return self.delete_sync(key)

    async def principal_records(self, principal: str) -> list[Record]:
        return self.principal_records_sync(principal)

    async def delete_principal_records(self, principal: str, keep: str | None = None) -> list[str]:
        return self.delete_principal_records_sync(principal, keep)

    async def exists(self, key: str) -> bool:
        return self.exists_sync(key)

    async def count(self) -> int:
        return self.count_sync()

    async def clear(self) -> int:
        return self.clear_sync()

    async def cleanup(self) -> int:
        return self.cleanup_sync()

    async def close(self) -> None:
        self.close_sync()
