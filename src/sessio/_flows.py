"""The session logic, written once: load, commit and police sessions as flows of store operations.

Each flow is a generator that *yields* the store operations it needs, ``("load", key)``, and
receives their results (the sans-I/O style of httpx's auth flows), so it knows nothing of
``await``. :mod:`sessio.manager` holds the two drivers that run them: :class:`SessionManager`
awaits each operation, :class:`SyncSessionManager` calls its sync twin.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from collections.abc import Generator
from typing import Any, Generic, TypeVar

from . import ids, sealed
from .codec import Codec, default_codec
from .errors import ConcurrencyLimitExceeded, ConfigurationError, RecordCorrupt
from .events import EventKind, Events, SessionEvent
from .fields import META, Loaded, SessionMeta, decode
from .policy import Policy
from .session import Session
from .stores.base import Clock, Record, Store, Write
from .stores.client import ClientSideStore

__all__ = [
    "CLEARED",
    "UNCHANGED",
    "BaseManager",
    "Commit",
    "CommitAction",
    "Flow",
    "Op",
    "SessionInfo",
]

T = TypeVar("T")


# -- store operations, as the flows yield them -------------------------------------------------------


#: ``(store method name, *arguments)``: ``("load", key)`` asks for ``store.load(key)``, or
#: ``store.load_sync(key)`` in the sync driver.
Op = tuple[Any, ...]
Flow = Generator[Op, Any, T]


# -- results ----------------------------------------------------------------------------------------


class CommitAction(str, enum.Enum):
    """What the transport must do after a commit."""

    NONE = "none"  # leave the client's token as it is
    SET = "set"  # send the token (new, rotated, or refreshed with ``rolling``)
    CLEAR = "clear"  # tell the client to forget its token


@dataclasses.dataclass(frozen=True, slots=True)
class Commit:
    """The outcome of :meth:`SessionManager.commit`."""

    action: CommitAction
    #: The session ID to hand the client (a secret: left out of ``repr``, so logs never show it).
    token: str | None = dataclasses.field(default=None, repr=False)
    #: When the server will expire the session (the earlier of idle and absolute timeouts).
    expires_at: float | None = None
    wrote: bool = False
    #: How long the client should keep the token: the absolute end when there is one (the
    #: server enforces the idle timeout itself), else the sliding idle expiry.
    cookie_expires_at: float | None = None


#: The commits that carry nothing but their action, shared (a Commit is immutable).
UNCHANGED = Commit(CommitAction.NONE)
CLEARED = Commit(CommitAction.CLEAR)


@dataclasses.dataclass(frozen=True, slots=True)
class SessionInfo:
    """One session of a principal, as a device list shows it. ``key`` is safe to display."""

    key: str
    principal: str | None
    created_at: float
    last_seen: float
    expires_at: float
    ip: str | None
    user_agent: str | None
    current: bool = False


# -- the shared logic ---------------------------------------------------------------------------------


class BaseManager(Generic[T]):
    """What both managers share: configuration, the flows, and the store they run against.

    A driver subclass binds the store's operations in :meth:`_bind` and runs the flows.
    """

    #: The class of the sessions handed out; an integration may use a subclass (Flask's
    #: drop-in adds ``SessionMixin``), constructed with :class:`Session`'s own arguments.
    session_class: type[Session] = Session

    def __init__(
        self,
        store: Store | ClientSideStore,
        policy: Policy | None = None,
        *,
        codec: Codec | None = None,
        clock: Clock = time.time,
        events: Events | None = None,
    ) -> None:
        self.store = store
        self.policy = policy if policy is not None else Policy()
        self.codec = codec if codec is not None else default_codec
        self.clock = clock
        self.events = events if events is not None else Events()
        if self._sealer is not None and self.policy.concurrency.max_sessions_per_principal:
            raise ConfigurationError(
                "a per-principal session limit needs server-side state; "
                f"{type(store).__name__} keeps sessions in their tokens, so it cannot count them"
            )

    @property
    def store(self) -> Store | ClientSideStore:
        """The store the sessions live in (or, for a client-side store, are sealed by)."""
        return self._store

    @store.setter
    def store(self, store: Store | ClientSideStore) -> None:
        if not isinstance(store, (Store, ClientSideStore)):
            raise TypeError(
                f"store must be a sessio Store or ClientSideStore, got {type(store).__name__}"
            )
        self._store = store
        # Set when the session travels sealed in its token: the flows branch to sessio.sealed.
        self._sealer = store if isinstance(store, ClientSideStore) else None
        self._bind(store)

    def _bind(self, store: Store | ClientSideStore) -> None:
        """Look up the store methods the driver will call (again when the store changes)."""
        raise NotImplementedError

    @property
    def seals_tokens(self) -> bool:
        """Whether the token *is* the sealed session (a client-side store).

        Transports must then carry it verbatim, unsigned (it authenticates itself):
        ``transports_for(policy, secret, raw=manager.seals_tokens)``.
        """
        return self._sealer is not None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.store!r})"

    def _emit(
        self, kind: EventKind, key: str | None, principal: str | None = None, **detail: Any
    ) -> None:
        if self.events.listeners:
            short = None if key is None else ids.short_hash(key)
            self.events.emit(SessionEvent(kind, short, principal, self.clock(), detail))

    def start(self, *, ip: str | None = None, user_agent: str | None = None) -> Session:
        """A new, empty session; it is stored only when committed with something in it."""
        now = self.clock()
        meta = SessionMeta(now, now, ip=self._ip(ip), user_agent=self._agent(user_agent))
        return self._session(ids.new_session_id(), meta, is_new=True)

    def _session(
        self,
        session_id: str,
        meta: SessionMeta,
        *,
        is_new: bool,
        loaded: Loaded | None = None,
        key: str | None = None,
        expires_at: float | None = None,
    ) -> Session:
        session = self.session_class(
            session_id,
            codec=self.codec,
            meta=meta,
            expires_at=(
                self.policy.expires_at(meta.created_at, meta.last_seen)
                if expires_at is None
                else expires_at
            ),
            loaded=loaded,
            is_new=is_new,
            rotate_on_login=self.policy.rotate_on_login,
            clock=self.clock,
        )
        if key is not None:
            session._key = key  # the hash is already known: spare the session computing it
        if loaded is not None:
            for name in loaded.corrupt:
                self._emit(EventKind.CORRUPT, session.key, field=name)
        return session

    def _ip(self, ip: str | None) -> str | None:
        return ip if self.policy.capture_ip else None

    def _agent(self, user_agent: str | None) -> str | None:
        if not self.policy.capture_user_agent or user_agent is None:
            return None
        return user_agent[:512]

    # -- load ---------------------------------------------------------------------------------------

    def _load_flow(
        self, session_id: str | None, ip: str | None, user_agent: str | None
    ) -> Flow[Session]:
        if self._sealer is not None:
            return (yield from sealed.load_flow(self, self._sealer, session_id, ip, user_agent))
        if not session_id or not ids.is_well_formed(session_id):
            return self.start(ip=ip, user_agent=user_agent)
        key = ids.store_key(session_id)
        try:
            record = yield ("load", key)
        except RecordCorrupt as exc:
            return (yield from self._discard_corrupt(key, exc, ip, user_agent))
        if record is None:
            # Strict IDs: a token the store does not know is never adopted.
            return self.start(ip=ip, user_agent=user_agent)
        try:
            loaded = decode(self.codec, record.fields)
            meta = loaded.meta
            now = self.clock()
            policy_end = self.policy.expires_at(meta.created_at, meta.last_seen)
            if min(record.expires_at, policy_end) <= now:
                yield ("delete", key)
                self._emit(EventKind.EXPIRED, key, record.principal)
                return self.start(ip=ip, user_agent=user_agent)
            session = self._session(
                session_id, meta, is_new=False, loaded=loaded, key=key, expires_at=policy_end
            )
        except (RecordCorrupt, KeyError) as exc:
            return (yield from self._discard_corrupt(key, exc, ip, user_agent))
        self._note_client(session, ip, user_agent)
        if self.events.listeners:  # (the hot path spares itself the call otherwise)
            self._emit(EventKind.LOADED, key, record.principal)
        return session

    def _note_client(self, session: Session, ip: str | None, user_agent: str | None) -> None:
        meta, policy = session.meta, self.policy
        if ip is not None and ip != meta.ip and policy.capture_ip:
            meta.ip = ip
            session._system_dirty.add(META)
        if user_agent is not None and policy.capture_user_agent:
            user_agent = user_agent[:512]
            if user_agent != meta.user_agent:
                meta.user_agent = user_agent
                session._system_dirty.add(META)

    def _discard_corrupt(
        self, key: str, exc: Exception, ip: str | None, user_agent: str | None
    ) -> Flow[Session]:
        self._emit(EventKind.CORRUPT, key, reason=str(exc))
        yield ("delete", key)
        return self.start(ip=ip, user_agent=user_agent)

    # -- commit -------------------------------------------------------------------------------------

    def _commit_flow(self, session: Session) -> Flow[Commit]:
        if self._sealer is not None:
            return (yield from sealed.commit_flow(self, self._sealer, session))
        policy = self.policy
        if session.is_destroyed:
            old = session._superseded or (None if session.is_new else session.key)
            if old is not None:
                yield ("delete", old)
                self._emit(EventKind.DESTROYED, old)
            return CLEARED
        now = self.clock()
        meta = session.meta
        pending = session._pending()
        if pending is None:
            if session.is_new:
                if not policy.save_uninitialized:
                    return UNCHANGED
            elif not policy.resave:
                touch_due = now - meta.last_seen >= policy.refresh_seconds
                # Without an idle timeout the expiry never moves, so there is nothing to push.
                if not touch_due or policy.idle_timeout is None:
                    return UNCHANGED
                meta.last_seen = now
                expires_at = policy.expires_at(meta.created_at, now)
                principal = session.principal.key if session.principal else None
                fields = {META: meta.dumps()}
                if not (yield ("save", session.key, Write(fields, expires_at, principal))):
                    return self._vanished(session.key, principal)
                session._committed(expires_at)
                self._emit(EventKind.TOUCHED, session.key, principal)
                slides = policy.rolling or policy.ttl is None
                action = CommitAction.SET if slides else CommitAction.NONE
                cookie_end = policy.cookie_expires_at(meta.created_at, expires_at)
                return Commit(action, session.id, expires_at, True, cookie_end)
            pending = session._pending(force=True)
        meta.last_seen = now
        expires_at = policy.expires_at(meta.created_at, now)
        principal = session.principal.key if session.principal else None
        evict: list[str] = []
        if session.auth_change == "authenticated" and principal is not None:
            evict = yield from self._over_limit(session, principal)
        fields, removed, replace = pending
        fields[META] = meta.dumps()
        superseded = session._superseded
        # A stored session's full rewrite (resave, save_uninitialized) takes over its own
        # record: like a rotation, it applies only if that record is still there.
        takes_over = superseded or (session.key if replace and not session.is_new else None)
        write = Write(fields, expires_at, principal, removed, replace, takes_over)
        was_new, auth_change = session.is_new, session.auth_change
        if not (yield ("save", session.key, write)):
            return self._vanished(takes_over or session.key, principal)
        if evict:  # only now that the login is stored: a refused one logs nobody out
            yield from self._evict(evict, principal)
        session._committed(expires_at)
        if was_new or superseded is not None or auth_change is not None:
            self._announce(session.key, principal, was_new, superseded, auth_change)
        if self.events.listeners:
            self._emit(
                EventKind.SAVED, session.key, principal, fields=len(fields), replace=replace
            )
        send = was_new or superseded is not None or policy.rolling
        action = CommitAction.SET if send else CommitAction.NONE
        cookie_end = policy.cookie_expires_at(meta.created_at, expires_at)
        return Commit(action, session.id, expires_at, True, cookie_end)

    def _vanished(self, key: str, principal: str | None) -> Commit:
        # Revoked, evicted, destroyed or expired while this request held it: the store wrote
        # nothing (a session that is gone stays gone), and the client forgets its token.
        self._emit(EventKind.VANISHED, key, principal)
        return CLEARED

    def _announce(
        self,
        key: str,
        principal: str | None,
        was_new: bool,
        superseded: str | None,
        auth_change: str | None,
    ) -> None:
        if was_new:
            self._emit(EventKind.CREATED, key, principal)
        if superseded is not None:
            self._emit(EventKind.ROTATED, key, principal, previous=ids.short_hash(superseded))
        if auth_change == "authenticated":
            self._emit(EventKind.AUTHENTICATED, key, principal)
        elif auth_change == "logged_out":
            self._emit(EventKind.LOGGED_OUT, key, None)

    def _over_limit(self, session: Session, principal: str) -> Flow[list[str]]:
        """The keys a login must evict to stay within the limit (raises if it must reject).

        Decided before the save but carried out after it (:meth:`_evict`), so a login that the
        store refuses (its session vanished meanwhile) costs no other device its session.
        """
        limit = self.policy.concurrency.max_sessions_per_principal
        if limit is None:
            return []
        records: list[Record] = yield ("principal_records", principal)
        mine = {session.key, session._superseded}
        others = sorted((self._info(r) for r in records if r.key not in mine), key=_age)
        excess = len(others) - limit + 1
        if excess <= 0:
            return []
        if self.policy.concurrency.on_limit == "reject":
            self._emit(EventKind.REJECTED, session.key, principal, limit=limit)
            raise ConcurrencyLimitExceeded(
                f"principal already holds {len(others)} sessions (limit {limit})",
                principal=principal,
                limit=limit,
            )
        return [info.key for info in others[:excess]]

    def _evict(self, keys: list[str], principal: str | None) -> Flow[None]:
        limit = self.policy.concurrency.max_sessions_per_principal
        for key in keys:
            yield ("delete", key)
            self._emit(EventKind.EVICTED, key, principal, limit=limit)

    # -- per-principal views and revocation --------------------------------------------------------------

    def _info(self, record: Record, current: str | None = None) -> SessionInfo:
        try:
            meta = SessionMeta.from_data(self.codec.loads(record.fields[META]))
        except (RecordCorrupt, KeyError):
            meta = SessionMeta(0.0, 0.0)
        return SessionInfo(
            record.key,
            record.principal,
            meta.created_at,
            meta.last_seen,
            record.expires_at,
            meta.ip,
            meta.user_agent,
            record.key == current,
        )

    def _sessions_of_flow(self, principal: Any, current: Session | None) -> Flow[list[SessionInfo]]:
        sealed.need_server_state(self, "sessions_of")
        records = yield ("principal_records", _principal_key(principal))
        current_key = None if current is None or current.is_new else current.key
        infos = [self._info(r, current_key) for r in records]
        return sorted(infos, key=lambda i: i.last_seen, reverse=True)

    def _revoke_flow(self, key: str, principal: Any) -> Flow[bool]:
        if self._sealer is not None:
            return (yield from sealed.revoke_flow(self, self._sealer, key, principal))
        if principal is not None:
            owner = _principal_key(principal)
            records = yield ("principal_records", owner)
            if key not in {r.key for r in records}:
                return False
        else:
            owner = None
        removed = yield ("delete", key)
        if removed:
            self._emit(EventKind.REVOKED, key, owner)
        return bool(removed)

    def _revoke_all_flow(self, principal: Any, keep: Any) -> Flow[int]:
        sealed.need_server_state(self, "revoke_all")
        owner = _principal_key(principal)
        keep_key = keep.key if isinstance(keep, Session) else keep
        # One store operation, atomic with respect to saves: a session rotated meanwhile is
        # caught under its new key, or its rotation finds nothing left to take over.
        removed: list[str] = yield ("delete_principal_records", owner, keep_key)
        for key in removed:
            self._emit(EventKind.REVOKED, key, owner)
        return len(removed)


def _age(info: SessionInfo) -> float:
    return info.created_at


def _principal_key(principal: Any) -> str:
    """A Principal's index key; a plain string or int names a principal of kind "user"."""
    key = getattr(principal, "key", None)
    if isinstance(key, str):
        return key
    return f"user:{principal}"
