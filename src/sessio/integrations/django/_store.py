"""SessionStore: Django's session backend contract (``SessionBase``) over any sessio store.

Django's own semantics hold (``CreateError``/``UpdateError``, ``cycle_key()``, ``flush()``,
``set_expiry()``, ``clear_expired()``); underneath, each Django session is a sessio
:class:`~sessio.Session` whose values are Django-signed texts (:mod:`._values`), so a save
writes only the keys it changed, IDs are hashed at rest, and a session deleted elsewhere is
never written back. The ``a``-prefixed twins run on the store's async API through
:class:`~sessio.SessionManager`; the plain ones through :class:`~sessio.SyncSessionManager`.
"""

from __future__ import annotations

from typing import Any

from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
from django.core.exceptions import PermissionDenied

from ... import ids
from ...errors import ConcurrencyLimitExceeded
from ...manager import Commit, CommitAction
from ...principal import Principal
from ...session import Session
from ._engine import Engine, engine
from ._values import apply, decode_all

__all__ = ["SessionLimitReached", "SessionStore"]

_UA_LIMIT = 512


class SessionLimitReached(ConcurrencyLimitExceeded, PermissionDenied):
    """A login past the policy's per-user limit with ``on_limit="reject"``: nothing was saved.

    A sessio error (``code`` ``CONCURRENCY_LIMIT``) that Django answers as ``PermissionDenied``
    (403), raised by the save that would have stored the login.
    """


class SessionStore(SessionBase):
    """``SESSION_ENGINE = "sessio.integrations.django"``: Django's sessions in a sessio store.

    ``session_key`` is the sessio session ID (256 random bits; the store sees only its
    SHA-256). :meth:`sessio_session` gives the sessio :class:`~sessio.Session` beneath.
    """

    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        self._engine: Engine = engine()
        self._sessio: Session | None = None

    # -- loading -------------------------------------------------------------------------------

    #: The data Django's methods read and write (``SessionBase``'s lazy cache; ``clear()``
    #: replaces it). A save makes the sessio session hold it.
    _session_cache: dict[str, Any]

    def _get_session(self, no_load: bool = False) -> dict[str, Any]:
        # SessionBase's lazy load, declared here (Django's stubs leave it out) for both twins.
        self.accessed = True
        try:
            return self._session_cache
        except AttributeError:
            self._session_cache = {} if self.session_key is None or no_load else self.load()
            return self._session_cache

    async def _aget_session(self, no_load: bool = False) -> dict[str, Any]:
        self.accessed = True
        try:
            return self._session_cache
        except AttributeError:
            no_data = self.session_key is None or no_load
            self._session_cache = {} if no_data else await self.aload()
            return self._session_cache

    _session = property(_get_session)

    def load(self) -> dict[str, Any]:
        """The session's data; an unknown, expired or revoked key gives ``{}`` and is dropped."""
        return self._adopt(self._engine.loader.load(self.session_key))

    async def aload(self) -> dict[str, Any]:
        """See :meth:`load`."""
        return self._adopt(await self._engine.async_loader.load(self.session_key))

    def _adopt(self, session: Session) -> dict[str, Any]:
        self._sessio = session
        if session.is_new:
            self._session_key = None  # an unknown key is never adopted (session fixation)
            return {}
        return decode_all(self.key_salt, self.serializer, session)

    def sessio_session(self) -> Session:
        """The sessio :class:`~sessio.Session` beneath (loaded, or new, on first use)."""
        self._get_session()
        session = self._sessio
        if session is None:  # the data was replaced (clear()) before it was ever read
            session = self._engine.loader.load(self.session_key)
            self._adopt(session)
        return session

    async def asessio_session(self) -> Session:
        """See :meth:`sessio_session`."""
        await self._aget_session()
        session = self._sessio
        if session is None:
            session = await self._engine.async_loader.load(self.session_key)
            self._adopt(session)
        return session

    def exists(self, session_key: str | None) -> bool:
        """Whether a live session is stored under ``session_key``."""
        return bool(session_key) and not self._engine.loader.load(session_key).is_new

    async def aexists(self, session_key: str | None) -> bool:
        """See :meth:`exists`."""
        return bool(session_key) and not (await self._engine.async_loader.load(session_key)).is_new

    # -- writing ---------------------------------------------------------------------------------

    def save(self, must_create: bool = False) -> None:
        """Write what changed. ``UpdateError`` if the session was deleted meanwhile (it stays
        deleted); ``CreateError`` for ``must_create`` on a stored session."""
        if self.session_key is None:
            return self.create()
        data = self._get_session()
        session = self._writable(self.sessio_session(), data, must_create)
        self._finish(session, self._commit(session))
        return None

    async def asave(self, must_create: bool = False) -> None:
        """See :meth:`save`."""
        if self.session_key is None:
            return await self.acreate()
        data = await self._aget_session()
        session = self._writable(await self.asessio_session(), data, must_create)
        self._finish(session, await self._acommit(session))
        return None

    def create(self) -> None:
        """Store the current data as a new session under a new key."""
        session = self._fresh()
        self._finish(session, self._commit(session))
        self.modified = True

    async def acreate(self) -> None:
        """See :meth:`create`."""
        session = self._fresh()
        self._finish(session, await self._acommit(session))
        self.modified = True

    def cycle_key(self) -> None:
        """A new key for the same data; the old record goes in the same atomic write."""
        data = self._get_session()
        session = self.sessio_session()
        if session.is_new:
            return self.create()
        apply(self.key_salt, self.serializer, data, session)
        session.regenerate(keep_data=True)
        if not self._rotated(session, self._commit(session)):
            self.create()
        return None

    async def acycle_key(self) -> None:
        """See :meth:`cycle_key`."""
        data = await self._aget_session()
        session = await self.asessio_session()
        if session.is_new:
            return await self.acreate()
        apply(self.key_salt, self.serializer, data, session)
        session.regenerate(keep_data=True)
        if not self._rotated(session, await self._acommit(session)):
            await self.acreate()
        return None

    def delete(self, session_key: str | None = None) -> None:
        """Remove the record under ``session_key`` (this session's by default)."""
        key = self.session_key if session_key is None else session_key
        if key is not None and ids.is_well_formed(key):
            self._engine.loader.revoke(ids.store_key(key))

    async def adelete(self, session_key: str | None = None) -> None:
        """See :meth:`delete`."""
        key = self.session_key if session_key is None else session_key
        if key is not None and ids.is_well_formed(key):
            await self._engine.async_loader.revoke(ids.store_key(key))

    def flush(self) -> None:
        """Drop the data and delete the record now; the next save stores a new session."""
        self.clear()
        held = self._held()
        if held is not None:
            self._engine.loader.destroy(held)  # announced as "destroyed" (logout() comes here)
        else:
            self.delete()
        self._session_key = None
        self._sessio = None

    async def aflush(self) -> None:
        """See :meth:`flush`."""
        self.clear()
        held = self._held()
        if held is not None:
            await self._engine.async_loader.destroy(held)
        else:
            await self.adelete()
        self._session_key = None
        self._sessio = None

    def _held(self) -> Session | None:
        """The loaded sessio session stored under this key, if there is one."""
        held = self._sessio
        if held is None or held.is_new or held.id != self.session_key:
            return None
        return held

    @classmethod
    def clear_expired(cls) -> None:
        """Remove expired sessions from the store (``manage.py clearsessions``)."""
        engine().loader.cleanup()

    @classmethod
    async def aclear_expired(cls) -> None:
        """See :meth:`clear_expired`."""
        await engine().async_loader.cleanup()

    # -- the per-user index ----------------------------------------------------------------------

    def link_user(
        self, user_id: object, *, ip: str | None = None, user_agent: str | None = None
    ) -> None:
        """File this session under user ``user_id`` (``login()`` does it through
        ``user_logged_in``); the next save writes the link, within the policy's session limit.

        Django keeps the key when the same user logs in again; sessio rotates it then too
        (``rotate_on_login``), so a copy taken before the re-authentication dies with it.
        """
        principal = Principal(str(user_id))
        session = self.sessio_session()
        if self._reauthenticates(session, principal):
            self.cycle_key()
            session = self.sessio_session()
        self._link(session, principal, ip, user_agent)

    async def alink_user(
        self, user_id: object, *, ip: str | None = None, user_agent: str | None = None
    ) -> None:
        """See :meth:`link_user`."""
        principal = Principal(str(user_id))
        session = await self.asessio_session()
        if self._reauthenticates(session, principal):
            await self.acycle_key()
            session = await self.asessio_session()
        self._link(session, principal, ip, user_agent)

    # -- the shared steps (no I/O) ---------------------------------------------------------------

    def _fresh(self) -> Session:
        """A new sessio session holding the current data (Django's create() writes it whole)."""
        data = self._get_session(no_load=True)
        session = self._engine.loader.start()
        apply(self.key_salt, self.serializer, data, session)
        self._sessio = session
        return session

    def _writable(self, session: Session, data: dict[str, Any], must_create: bool) -> Session:
        if session.is_new:
            # The key named nothing live (deleted, expired, never stored): a save never
            # brings it back, as Django's database backend refuses a forced update.
            raise UpdateError
        if must_create:
            raise CreateError
        apply(self.key_salt, self.serializer, data, session)
        return session

    def _age(self) -> float:
        """Django's expiry for this session, in seconds from now (<= 0: already expired)."""
        return float(self.get_expiry_age())

    # A session saved with an expiry in the past is gone at once, as in Django's backends:
    # its record (and the one a rotation replaces) is deleted, and the next use loads afresh.

    def _commit(self, session: Session) -> Commit | None:
        age = self._age()
        if age <= 0:
            self._engine.loader.destroy(session)
            self._sessio = None
            return None
        try:
            return self._engine.writer(age).commit(session)
        except ConcurrencyLimitExceeded as exc:
            raise SessionLimitReached(exc.message, **exc.evidence) from exc

    async def _acommit(self, session: Session) -> Commit | None:
        age = self._age()
        if age <= 0:
            await self._engine.async_loader.destroy(session)
            self._sessio = None
            return None
        try:
            return await self._engine.async_writer(age).commit(session)
        except ConcurrencyLimitExceeded as exc:
            raise SessionLimitReached(exc.message, **exc.evidence) from exc

    def _finish(self, session: Session, commit: Commit | None) -> None:
        if commit is not None and commit.action is CommitAction.CLEAR:
            raise UpdateError  # revoked, evicted or logged out meanwhile: it stays so
        self._session_key = session.id

    def _rotated(self, session: Session, commit: Commit | None) -> bool:
        """Whether a cycle_key() landed; if its session vanished meanwhile, the data it held
        is dropped (it was logged out elsewhere) and the caller stores a new, empty one."""
        if commit is not None and commit.action is CommitAction.CLEAR:
            self.clear()
            return False
        self._session_key = session.id
        self.modified = True
        return True

    def _reauthenticates(self, session: Session, principal: Principal) -> bool:
        current = session.principal
        return (
            self._engine.policy.rotate_on_login
            and not session.is_new
            and current is not None
            and current.key == principal.key
        )

    def _link(
        self, session: Session, principal: Principal, ip: str | None, user_agent: str | None
    ) -> None:
        session.login(principal)
        policy = self._engine.policy
        # Written with the login's commit: the device list shows where the session signed in.
        if ip and policy.capture_ip:
            session.meta.ip = ip
        if user_agent and policy.capture_user_agent:
            session.meta.user_agent = user_agent[:_UA_LIMIT]
        self.modified = True
