"""SessionManager and SyncSessionManager: the two drivers of sessio's session logic.

The logic is written once, in :mod:`sessio._flows`, as generators that *yield* store
operations and receive their results. :class:`SessionManager` drives them with ``await``,
:class:`SyncSessionManager` with plain calls, so WSGI apps get a true sync path with no event
loop anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ._flows import BaseManager, Flow
from ._status_flow import status_flow
from .errors import SessionError
from .results import Commit, CommitAction, CommitOutcome, SessionInfo
from .session import Session
from .status import SessionStatus
from .stores.base import LocalStore, Store
from .stores.client import ClientSideStore

__all__ = [
    "Commit",
    "CommitAction",
    "CommitOutcome",
    "SessionInfo",
    "SessionManager",
    "SessionStatus",
    "SyncSessionManager",
]

T = TypeVar("T")


# -- running the flows ------------------------------------------------------------------------------


class _Calls(dict[str, Callable[..., Any]]):
    """A store's methods by operation name, each looked up once (``suffix="_sync"``: the twins)."""

    __slots__ = ("store", "suffix")

    def __init__(self, store: Store | ClientSideStore, suffix: str) -> None:
        super().__init__()
        self.store = store
        self.suffix = suffix

    def __missing__(self, name: str) -> Callable[..., Any]:
        method: Callable[..., Any] = getattr(self.store, name + self.suffix)
        self[name] = method
        return method


def _run(flow: Flow[T], calls: _Calls) -> T:
    """Drive ``flow`` to its end, answering each operation with a plain call."""
    try:
        op = next(flow)
        while True:
            try:
                result = calls[op[0]](*op[1:])
            except SessionError as exc:
                op = flow.throw(exc)
            else:
                op = flow.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def _run_async(flow: Flow[T], calls: _Calls) -> T:
    """Drive ``flow`` to its end, answering each operation with an awaited call."""
    try:
        op = next(flow)
        while True:
            try:
                result = await calls[op[0]](*op[1:])
            except SessionError as exc:
                op = flow.throw(exc)
            else:
                op = flow.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


_OPERATIONS = ("load", "save", "delete", "principal_records", "delete_principal_records")


def _runs_inline(store: Store | ClientSideStore) -> bool:
    """Whether ``store``'s async operations are :class:`LocalStore`'s, which only call the sync
    twins: the async manager then calls those itself, sparing a coroutine per operation."""
    cls = type(store)
    return isinstance(store, LocalStore) and all(
        getattr(cls, name) is getattr(LocalStore, name) for name in _OPERATIONS
    )


# -- the two drivers -----------------------------------------------------------------------------------


class SessionManager(BaseManager[Any]):
    """The async session manager: ``await manager.load(token)``, ``await manager.commit(session)``.

    ``store`` is any :class:`~sessio.stores.Store`; ``policy`` defaults to :meth:`Policy.web`;
    ``codec`` encodes values (add :class:`~sessio.codec.Tag` s for your own types); ``clock``
    is injectable for tests; ``events`` receives :class:`~sessio.events.SessionEvent` s.
    """

    def _bind(self, store: Store | ClientSideStore) -> None:
        self._sync_calls = _Calls(store, "_sync")
        self._async_calls = _Calls(store, "")
        self._inline = _runs_inline(store)

    async def _drive(self, flow: Flow[T]) -> T:
        if self._inline:
            return _run(flow, self._sync_calls)
        return await _run_async(flow, self._async_calls)

    async def load(
        self, token: str | None, *, ip: str | None = None, user_agent: str | None = None
    ) -> Session:
        """The session ``token`` names, or a new one if it names none that is live.

        Never raises for a bad token (a forged, expired or revoked one gives a fresh session);
        raises :class:`~sessio.errors.StoreUnavailable` when the store is down.
        """
        return await self._drive(self._load_flow(token, ip, user_agent))

    async def commit(self, session: Session) -> Commit:
        """Write what the request changed, in one store call; see :class:`Commit`.

        :attr:`Commit.outcome` says what happened (:class:`CommitOutcome`). A session revoked,
        evicted or expired while the request held it is not written back (``VANISHED``,
        :attr:`CommitAction.CLEAR`); one a parallel request of the same principal rotated
        gets the changes forwarded to its successor (``FORWARDED``, the successor's ID); one a
        parallel login of another principal rotated is left alone (``SUPERSEDED``,
        :attr:`CommitAction.NONE`). A login past a ``reject`` limit raises
        :class:`~sessio.errors.ConcurrencyLimitExceeded`.
        """
        return await self._drive(self._commit_flow(session))

    async def destroy(self, session: Session) -> None:
        """Destroy ``session`` now (rather than at the end of the request)."""
        session.destroy()
        await self.commit(session)

    async def cleanup(self) -> int:
        """Remove expired sessions from the store; how many were removed."""
        return int(await self.store.cleanup())

    async def sessions_of(
        self, principal: Any, *, current: Session | None = None
    ) -> list[SessionInfo]:
        """The live sessions of ``principal`` (a Principal, or a user id), newest first."""
        return await self._drive(self._sessions_of_flow(principal, current))

    async def revoke(self, key: str, *, principal: Any = None) -> bool:
        """End the session stored under ``key`` (a :attr:`SessionInfo.key`).

        With ``principal``, only if that session belongs to it (what a device list wants).
        """
        return await self._drive(self._revoke_flow(key, principal))

    async def revoke_all(self, principal: Any, *, except_: Session | str | None = None) -> int:
        """End every session of ``principal`` but ``except_`` ("log out everywhere else")."""
        return await self._drive(self._revoke_all_flow(principal, except_))

    async def status(
        self,
        token: str | None,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
        strict: bool = False,
    ) -> SessionStatus:
        """The :class:`~sessio.SessionStatus` of the session ``token`` names, read with one
        store load (or none: a client-side store without a revocation list) and no write: no
        session is created, touched, swept or recorded.

        ``token`` is what :meth:`load` takes: the raw session ID for a server-side store (the
        transports unwrap the signed cookie or header; ``sessio.integrations`` status routes
        read it so), the sealed token for a client-side one. ``ip`` and ``user_agent`` are
        accepted for symmetry with :meth:`load` and never stored. With ``strict``, anything
        but ``LIVE`` raises (:meth:`SessionStatus.raise_unless_live`). Raises
        :class:`~sessio.errors.StoreUnavailable` when the store is down.
        """
        status = await self._drive(status_flow(self, token))
        return status.raise_unless_live() if strict else status


class SyncSessionManager(BaseManager[Any]):
    """The sync twin of :class:`SessionManager`, for WSGI: same logic, no event loop."""

    def _bind(self, store: Store | ClientSideStore) -> None:
        self._sync_calls = _Calls(store, "_sync")

    def _drive(self, flow: Flow[T]) -> T:
        return _run(flow, self._sync_calls)

    def load(
        self, token: str | None, *, ip: str | None = None, user_agent: str | None = None
    ) -> Session:
        """See :meth:`SessionManager.load`."""
        return self._drive(self._load_flow(token, ip, user_agent))

    def commit(self, session: Session) -> Commit:
        """See :meth:`SessionManager.commit`."""
        return self._drive(self._commit_flow(session))

    def destroy(self, session: Session) -> None:
        """See :meth:`SessionManager.destroy`."""
        session.destroy()
        self.commit(session)

    def cleanup(self) -> int:
        """See :meth:`SessionManager.cleanup`."""
        return int(self.store.cleanup_sync())

    def sessions_of(self, principal: Any, *, current: Session | None = None) -> list[SessionInfo]:
        """See :meth:`SessionManager.sessions_of`."""
        return self._drive(self._sessions_of_flow(principal, current))

    def revoke(self, key: str, *, principal: Any = None) -> bool:
        """See :meth:`SessionManager.revoke`."""
        return self._drive(self._revoke_flow(key, principal))

    def revoke_all(self, principal: Any, *, except_: Session | str | None = None) -> int:
        """See :meth:`SessionManager.revoke_all`."""
        return self._drive(self._revoke_all_flow(principal, except_))

    def status(
        self,
        token: str | None,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
        strict: bool = False,
    ) -> SessionStatus:
        """See :meth:`SessionManager.status`."""
        status = self._drive(status_flow(self, token))
        return status.raise_unless_live() if strict else status
