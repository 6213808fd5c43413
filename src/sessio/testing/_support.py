"""What every contract test shares: a manual clock, calls in either mode, and writes by name.

Expiry is written as an absolute time in the past or the future (``at(-5)``), so no test
sleeps and stores that expire records on their own clock take part unchanged.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from ..events import EventKind, SessionEvent
from ..ids import new_session_id, store_key
from ..manager import SessionManager, SyncSessionManager
from ..policy import Policy
from ..stores.base import (
    Create,
    PrincipalLimit,
    Rewrite,
    Rotate,
    Saved,
    SaveOutcome,
    Store,
    Tombstone,
    Update,
    Write,
)

__all__ = [
    "LIVE",
    "ManagerOps",
    "ManualClock",
    "Mode",
    "OnLimit",
    "StoreOps",
    "at",
    "create",
    "key",
    "lim",
    "rewrite",
    "rotate",
    "stone",
    "update",
]

#: How a test reaches the store: its coroutine methods, or their ``_sync`` twins.
Mode = Literal["async", "sync"]
#: What a principal limit does when a write would pass it.
OnLimit = Literal["evict_oldest", "reject"]
#: The lifetime of a record that is meant to stay live for the whole test.
LIVE = 3600.0

APPLIED, MISSING = SaveOutcome.APPLIED, SaveOutcome.MISSING
EXISTS, REJECTED = SaveOutcome.EXISTS, SaveOutcome.REJECTED


class ManualClock:
    """A clock that starts at the real time and moves only when told."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        self.now += seconds


class StoreOps:
    """Calls a store's coroutine method or its ``_sync`` twin, as ``mode`` says.

    ``await ops("load", key)`` is ``await store.load(key)`` in async mode and
    ``store.load_sync(key)`` in sync mode, so one test body proves both paths.
    """

    def __init__(self, store: Store, mode: Mode) -> None:
        self.store = store
        self.mode = mode

    async def __call__(self, name: str, *args: Any) -> Any:
        """Call the store method ``name`` (or ``name + "_sync"``) with ``args``."""
        if self.mode == "sync":
            return getattr(self.store, name + "_sync")(*args)
        return await getattr(self.store, name)(*args)

    async def outcome(self, key: str, write: Write) -> SaveOutcome:
        """Save ``write`` under ``key`` and return what happened."""
        saved = await self("save", key, write)
        assert isinstance(saved, Saved)
        return saved.outcome

    async def fields(self, key: str) -> dict[str, str] | None:
        """The fields stored under ``key``, or ``None`` on a miss."""
        record = await self("load", key)
        return None if record is None else dict(record.fields)

    async def indexed(self, principal: str) -> list[str]:
        """The sorted keys the store files under ``principal``."""
        return sorted(r.key for r in await self("principal_records", principal))


class ManagerOps:
    """A :class:`~sessio.SessionManager` or its sync twin behind one awaitable interface.

    Every event the manager emits is kept in :attr:`events`.
    """

    def __init__(
        self,
        store: Store,
        mode: Mode,
        policy: Policy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.mode = mode
        self.events: list[SessionEvent] = []
        if mode == "sync":
            self.manager: Any = SyncSessionManager(store, policy, clock=clock)
        else:
            self.manager = SessionManager(store, policy, clock=clock)
        self.manager.events.subscribe(self.events.append)

    async def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call the manager method ``name``, awaiting it in async mode."""
        result = getattr(self.manager, name)(*args, **kwargs)
        return result if self.mode == "sync" else await result

    def kinds(self) -> list[EventKind]:
        """The kinds of the events emitted so far, in order."""
        return [e.kind for e in self.events]


def key() -> str:
    """A fresh store key, as the manager derives one from a new session ID."""
    return store_key(new_session_id())


def at(ttl: float) -> float:
    """The absolute time ``ttl`` seconds from now (negative: already expired)."""
    return time.time() + ttl


def create(
    fields: dict[str, str],
    *,
    ttl: float = LIVE,
    principal: str | None = None,
    limit: PrincipalLimit | None = None,
) -> Create:
    """A :class:`~sessio.stores.base.Create` expiring ``ttl`` seconds from now."""
    return Create(fields, at(ttl), principal, limit)


def update(
    fields: dict[str, str],
    *,
    ttl: float = LIVE,
    principal: str | None = None,
    removed: tuple[str, ...] = (),
    limit: PrincipalLimit | None = None,
) -> Update:
    """An :class:`~sessio.stores.base.Update` expiring ``ttl`` seconds from now."""
    return Update(fields, at(ttl), principal, removed, limit)


def rotate(
    old: str,
    fields: dict[str, str],
    *,
    ttl: float = LIVE,
    principal: str | None = None,
    limit: PrincipalLimit | None = None,
    tombstone: Tombstone | None = None,
) -> Rotate:
    """A :class:`~sessio.stores.base.Rotate` of ``old`` expiring ``ttl`` seconds from now."""
    return Rotate(old, fields, at(ttl), principal, limit, tombstone)


def rewrite(
    fields: dict[str, str],
    *,
    ttl: float = LIVE,
    principal: str | None = None,
    limit: PrincipalLimit | None = None,
) -> Rewrite:
    """A :class:`~sessio.stores.base.Rewrite` expiring ``ttl`` seconds from now."""
    return Rewrite(fields, at(ttl), principal, limit)


def stone(successor: str, ttl: float = 10.0) -> Tombstone:
    """A tombstone under a fresh key naming ``successor``."""
    return Tombstone(key(), {"s:successor": '"' + successor + '"'}, at(ttl))


def lim(n: int, on_limit: OnLimit = "evict_oldest") -> PrincipalLimit:
    """A :class:`~sessio.stores.base.PrincipalLimit` of ``n`` live sessions."""
    return PrincipalLimit(n, on_limit)
