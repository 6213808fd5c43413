"""Test helpers: one awaitable interface over both managers, a counting store, and a browser.

Every manager test runs twice, once through :class:`~sessio.SessionManager` and once through
:class:`~sessio.SyncSessionManager`: :class:`Drive` awaits the first and calls the second.
:class:`CountingStore` wraps a real store and records every call, so "nothing was written" is
a count, not a mock's opinion.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sessio import (
    Commit,
    CommitAction,
    EventKind,
    MemoryStore,
    Policy,
    Session,
    SessionEvent,
    SessionManager,
    Store,
    SyncSessionManager,
)
from sessio.stores import Record, Write
from sessio.stores.base import Page, Saved

MODES = ["async", "sync"]


class CountingStore(Store):
    """A real store (memory by default) behind a wrapper that logs every write and delete."""

    def __init__(self, inner: Store | None = None, *, clock: Callable[[], float]) -> None:
        super().__init__(clock=clock)
        self.inner = inner if inner is not None else MemoryStore(max_sessions=None, clock=clock)
        self.writes: list[tuple[str, Write]] = []
        self.deletes: list[str] = []
        self.loads = 0

    def reset(self) -> None:
        """Forget the calls counted so far."""
        self.writes.clear()
        self.deletes.clear()
        self.loads = 0

    # async

    async def load(self, key: str) -> Record | None:
        self.loads += 1
        return await self.inner.load(key)

    async def save(self, key: str, write: Write) -> Saved:
        self.writes.append((key, write))
        return await self.inner.save(key, write)

    async def delete(self, key: str) -> bool:
        self.deletes.append(key)
        return await self.inner.delete(key)

    async def principal_records(self, principal: str) -> list[Record]:
        return await self.inner.principal_records(principal)

    async def exists(self, key: str) -> bool:
        return await self.inner.exists(key)

    async def count(self) -> int:
        return await self.inner.count()

    async def clear(self) -> int:
        return await self.inner.clear()

    async def cleanup(self) -> int:
        return await self.inner.cleanup()

    async def delete_principal_records(self, principal: str, keep: str | None = None) -> list[str]:
        return await self.inner.delete_principal_records(principal, keep)

    async def page(self, cursor: str | None = None, limit: int = 100) -> Page:
        return await self.inner.page(cursor, limit)

    # sync

    def load_sync(self, key: str) -> Record | None:
        self.loads += 1
        return self.inner.load_sync(key)

    def save_sync(self, key: str, write: Write) -> Saved:
        self.writes.append((key, write))
        return self.inner.save_sync(key, write)

    def delete_sync(self, key: str) -> bool:
        self.deletes.append(key)
        return self.inner.delete_sync(key)

    def principal_records_sync(self, principal: str) -> list[Record]:
        return self.inner.principal_records_sync(principal)

    def exists_sync(self, key: str) -> bool:
        return self.inner.exists_sync(key)

    def count_sync(self) -> int:
        return self.inner.count_sync()

    def clear_sync(self) -> int:
        return self.inner.clear_sync()

    def cleanup_sync(self) -> int:
        return self.inner.cleanup_sync()

    def delete_principal_records_sync(self, principal: str, keep: str | None = None) -> list[str]:
        return self.inner.delete_principal_records_sync(principal, keep)

    def page_sync(self, cursor: str | None = None, limit: int = 100) -> Page:
        return self.inner.page_sync(cursor, limit)


class Drive:
    """A manager of either kind (``mode``: "async" or "sync"), with its events collected."""

    def __init__(
        self,
        mode: str,
        *,
        clock: Callable[[], float],
        policy: Policy | None = None,
        store: Store | None = None,
    ) -> None:
        self.mode = mode
        self.clock = clock
        self.store = store if store is not None else CountingStore(clock=clock)
        cls: Any = SyncSessionManager if mode == "sync" else SessionManager
        self.manager = cls(self.store, policy, clock=clock)
        self.events: list[SessionEvent] = []
        self.manager.events.subscribe(self.events.append)

    @property
    def counting(self) -> CountingStore:
        """The store, as the :class:`CountingStore` it is by default."""
        assert isinstance(self.store, CountingStore)
        return self.store

    def twin(self, policy: Policy) -> Drive:
        """Another manager of the same mode on the same store and clock, with ``policy``."""
        return Drive(self.mode, clock=self.clock, policy=policy, store=self.store)

    async def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.manager, name)(*args, **kwargs)
        return result if self.mode == "sync" else await result

    async def load(self, token: str | None = None, **kwargs: Any) -> Session:
        """``manager.load(token)``."""
        session: Session = await self("load", token, **kwargs)
        return session

    async def commit(self, session: Session) -> Commit:
        """``manager.commit(session)``."""
        commit: Commit = await self("commit", session)
        return commit

    async def stored(self, **data: Any) -> tuple[Session, str]:
        """A committed session holding ``data`` (one key by default) and its token."""
        session = await self.load(None)
        for key, value in (data or {"seed": 1}).items():
            session[key] = value
        commit = await self.commit(session)
        assert commit.token is not None
        return session, commit.token

    def kinds(self) -> list[EventKind]:
        """The kinds of the events emitted so far, in order."""
        return [event.kind for event in self.events]

    def browser(self, token: str | None = None) -> Browser:
        """A client that keeps the token the way a browser keeps a cookie."""
        return Browser(self, token)


class Browser:
    """Keeps the token between requests and follows every commit's instruction."""

    def __init__(self, drive: Drive, token: str | None = None) -> None:
        self.drive = drive
        self.token = token
        self.last: Commit | None = None

    @asynccontextmanager
    async def request(self, **load: Any) -> AsyncIterator[Session]:
        """One request: load the session, hand it to the block, commit it."""
        session = await self.drive.load(self.token, **load)
        yield session
        self.last = await self.drive.commit(session)
        if self.last.action is CommitAction.SET:
            self.token = self.last.token
        elif self.last.action is CommitAction.CLEAR:
            self.token = None
