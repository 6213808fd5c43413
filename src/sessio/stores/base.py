"""The store contract: what every session store, present and future, must implement.

A store knows nothing of the web, of policies or of session IDs. It keeps *records* under
opaque *keys* (SHA-256 hashes of session IDs, see :mod:`sessio.ids`). A record is a flat map of
field names to encoded text, an absolute expiry (epoch seconds) and an optional principal key.

What a store must implement, async and sync (the sync twin carries a ``_sync`` suffix):

``load(key)``
    The live record, or ``None`` for a miss, an expired record or one that cannot be decoded.
    One round trip on network stores.
``save(key, write)``
    Apply a :data:`Write` atomically, in one round trip, and return a :class:`Saved`. No write
    may bring back a session that was revoked, evicted, destroyed or expired meanwhile:

    * :class:`Create` -- a new record; :attr:`SaveOutcome.EXISTS` if ``key`` is live (no
      upsert);
    * :class:`Update` -- a delta on the live record under ``key``; :attr:`SaveOutcome.MISSING`
      if there is none;
    * :class:`Rotate` -- delete the live record under ``write.supersedes``, create ``key``
      and write the tombstone, in one step; ``MISSING`` (nothing written) if ``supersedes``
      is not live;
    * :class:`Rewrite` -- replace the live record under ``key``; ``MISSING`` if there is none.

    Every write files the record under ``write.principal`` in the per-principal index and
    enforces ``write.limit`` (:class:`PrincipalLimit`) in the same atomic step. A value the
    store cannot hold raises :class:`~sessio.errors.ValueNotSerializable` (a data error,
    never ``StoreUnavailable``) and leaves everything as it was.
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
``page(cursor=None, limit=100)``
    Housekeeping: one :class:`Page` of live records (at most ``limit``) and the cursor of the
    next; start with ``None``. Every live record appears in exactly one page of a full walk
    that no write disturbs; the order is the store's own.
``exists(key)``, ``count()``, ``clear()``
    Housekeeping: presence, number of live records, remove everything (returns the count).
``cleanup()``
    Remove expired records (cost proportional to what expired where the store allows it);
    returns how many were removed. Stores with native TTL may return 0.
``close()``
    Release connections.

A store signals an outage by raising :class:`~sessio.errors.StoreUnavailable`, never by
returning a miss. The contract is proven by :class:`sessio.testing.StoreContract`, which every store passes.
"""

from __future__ import annotations

import abc
import asyncio
import dataclasses
import enum
import time
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Literal

from ._storable import ensure_storable

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "Clock",
    "Create",
    "Page",
    "PrincipalLimit",
    "Record",
    "Rewrite",
    "Rotate",
    "SaveOutcome",
    "Saved",
    "Store",
    "Tombstone",
    "Update",
    "Write",
    "ensure_storable",
]

Clock = Callable[[], float]


@dataclasses.dataclass(frozen=True, slots=True)
class Record:
    """One stored session: its key, encoded fields, expiry and principal key."""

    key: str
    fields: Mapping[str, str]
    expires_at: float
    principal: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class PrincipalLimit:
    """At most ``max_sessions`` live records per principal, enforced by the store in the write.

    The count is taken inside the write's atomic step and leaves out the written key and the
    key a rotation supersedes. When the others already number ``max_sessions`` or more,
    ``"reject"`` writes nothing (:attr:`SaveOutcome.REJECTED`) and ``"evict_oldest"`` deletes
    the ``others - max_sessions + 1`` records of that principal with the earliest
    ``expires_at`` (the least recently active) in the same step, reporting their keys in
    :attr:`Saved.evicted`.
    """

    max_sessions: int
    on_limit: Literal["evict_oldest", "reject"] = "evict_oldest"


@dataclasses.dataclass(frozen=True, slots=True)
class Tombstone:
    """A short-lived record a rotation leaves behind so requests still in flight can follow it.

    It is a plain record (no principal index) under its own ``key``, which only the holder of
    the superseded session ID can compute (:func:`sessio.ids.successor_key`); the store
    treats it like any other record: ``load`` returns it, it expires at ``expires_at``.
    """

    key: str
    fields: Mapping[str, str]
    expires_at: float


@dataclasses.dataclass(frozen=True, slots=True)
class Create:
    """A new record under ``key``; applies only if no live record holds that key."""

    fields: Mapping[str, str]
    expires_at: float
    principal: str | None = None
    limit: PrincipalLimit | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Update:
    """A delta on the live record under ``key``: set ``fields``, drop ``removed``, move the
    expiry to ``expires_at`` and file the record under ``principal``. Missing record: nothing
    is written (a session that is gone stays gone)."""

    fields: Mapping[str, str]
    expires_at: float
    principal: str | None = None
    removed: Collection[str] = ()
    limit: PrincipalLimit | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Rotate:
    """ID rotation: if the live record under ``supersedes`` exists, delete it, create ``key``
    holding exactly ``fields``, and write ``tombstone`` (if given), all in one atomic step.
    If ``supersedes`` is not live, nothing is written."""

    supersedes: str
    fields: Mapping[str, str]
    expires_at: float
    principal: str | None = None
    limit: PrincipalLimit | None = None
    tombstone: Tombstone | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Rewrite:
    """Replace the live record under ``key`` by exactly ``fields`` (resave, a forced rewrite).
    Missing record: nothing is written."""

    fields: Mapping[str, str]
    expires_at: float
    principal: str | None = None
    limit: PrincipalLimit | None = None


#: One commit, as a store applies it in a single atomic step: a tagged union, so no store
#: decodes flags again. ``match`` on it (``case Update(): ...``).
Write = Create | Update | Rotate | Rewrite


class SaveOutcome(enum.Enum):
    """What a :meth:`Store.save` did."""

    APPLIED = "applied"
    #: The record an Update/Rewrite targets, or the one a Rotate supersedes, is not live.
    MISSING = "missing"
    #: A Create found a live record under its key.
    EXISTS = "exists"
    #: The principal limit said ``"reject"``: nothing written.
    REJECTED = "rejected"


@dataclasses.dataclass(frozen=True, slots=True)
class Saved:
    """The result of :meth:`Store.save`; true when the write applied."""

    outcome: SaveOutcome
    #: Keys removed by ``PrincipalLimit(on_limit="evict_oldest")`` in the same atomic step.
    evicted: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.outcome is SaveOutcome.APPLIED


# The outcomes that carry no evicted keys, shared (a Saved is immutable). Left out of
# ``__all__``: a store module imports them by name.
APPLIED = Saved(SaveOutcome.APPLIED)
MISSING = Saved(SaveOutcome.MISSING)
EXISTS = Saved(SaveOutcome.EXISTS)
REJECTED = Saved(SaveOutcome.REJECTED)


@dataclasses.dataclass(frozen=True, slots=True)
class Page:
    """One page of :meth:`Store.page`: live records, and the cursor of the next page."""

    records: list[Record]
    #: Pass it back for the next page; ``None`` when there is none.
    cursor: str | None = None


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
    async def save(self, key: str, write: Write) -> Saved:
        """Apply ``write`` to the record under ``key``, atomically; see the module docs."""

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

    async def page(self, cursor: str | None = None, limit: int = 100) -> Page:
        """One page of live records (housekeeping: by default the sync twin, in a thread)."""
        return await asyncio.to_thread(self.page_sync, cursor, limit)

    async def close(self) -> None:  # noqa: B027 - most stores hold nothing to release
        """Release connections and files."""

    # -- sync twins -----------------------------------------------------------------------------

    @abc.abstractmethod
    def load_sync(self, key: str) -> Record | None:
        """Sync twin of :meth:`load`."""

    @abc.abstractmethod
    def save_sync(self, key: str, write: Write) -> Saved:
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

    @abc.abstractmethod
    def page_sync(self, cursor: str | None = None, limit: int = 100) -> Page:
        """Sync twin of :meth:`page`."""

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

    async def save(self, key: str, write: Write) -> Saved:
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

    async def page(self, cursor: str | None = None, limit: int = 100) -> Page:
        return self.page_sync(cursor, limit)

    async def close(self) -> None:
        self.close_sync()
