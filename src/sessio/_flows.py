"""The session logic, written once: load, commit and police sessions as flows of store operations.

Each flow is a generator that *yields* the store operations it needs, ``("load", key)``, and
receives their results (the sans-I/O style of httpx's auth flows), so it knows nothing of
``await``. :mod:`sessio.manager` holds the two drivers that run them: :class:`SessionManager`
awaits each operation, :class:`SyncSessionManager` calls its sync twin.
"""

from __future__ import annotations

import math
import time
from collections.abc import Generator
from typing import Any, Generic, TypeVar

from . import _client, _commit, ids, sealed
from .codec import Codec, default_codec
from .errors import ConfigurationError, RecordCorrupt
from .events import EventKind, Events, SessionEvent
from .fields import META, Loaded, SessionMeta, decode
from .policy import Policy
from .results import CLEARED, UNCHANGED, Commit, CommitAction, CommitOutcome, SessionInfo
from .session import Session
from .stores.base import Clock, Record, Store
from .stores.client import ClientSideStore

__all__ = [
    "CLEARED",
    "UNCHANGED",
    "BaseManager",
    "Commit",
    "CommitAction",
    "CommitOutcome",
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
                self.policy.expires_at(
                    meta.created_at,
                    meta.last_seen,
                    anonymous=loaded is None or (loaded.principal is None and not loaded.values),
                    ends_at=meta.ends_at,
                )
                if expires_at is None
                else expires_at
            ),
            loaded=loaded,
            is_new=is_new,
            rotate_on_login=self.policy.rotate_on_login,
            clock=self.clock,
            policy=self.policy,
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
            # NaN compares as "not expired" and inf never ends: such a record is corrupt. (One
            # test for three: a sum is finite only if every term is, at these magnitudes.)
            if not math.isfinite(record.expires_at + meta.created_at + meta.last_seen):
                raise RecordCorrupt("non-finite time in the record")
            now = self.clock()
            anonymous = loaded.principal is None and not loaded.values
            policy_end = self.policy.expires_at(
                meta.created_at, meta.last_seen, anonymous=anonymous, ends_at=meta.ends_at
            )
            if min(record.expires_at, policy_end) <= now:
                yield ("delete", key)
                self._emit(EventKind.EXPIRED, key, record.principal)
                return self.start(ip=ip, user_agent=user_agent)
            session = self._session(
                session_id, meta, is_new=False, loaded=loaded, key=key, expires_at=policy_end
            )
        except (RecordCorrupt, KeyError) as exc:
            return (yield from self._discard_corrupt(key, exc, ip, user_agent))
        if self._note_client(session, ip, user_agent):
            yield ("delete", key)  # bound to the client it left: the session ends here
            self._emit(EventKind.DESTROYED, key, record.principal, reason="client_changed")
            return self.start(ip=ip, user_agent=user_agent)
        if self.events.listeners:  # (the hot path spares itself the call otherwise)
            self._emit(EventKind.LOADED, key, record.principal)
        return session

    def _note_client(self, session: Session, ip: str | None, user_agent: str | None) -> bool:
        """Record this request's client; ``True`` when the session must end (``bind`` with
        ``on_client_change="end"``). A move fires ``client_changed`` with coarse old/new values."""
        meta, policy = session.meta, self.policy
        if (ip is not None and ip != meta.ip) or (
            user_agent is not None and user_agent != meta.user_agent
        ):
            moved = _client.changes(
                meta.ip if policy.capture_ip else None,
                meta.user_agent if policy.capture_user_agent else None,
                ip if policy.capture_ip else None,
                user_agent if policy.capture_user_agent else None,
                ipv4_prefix=policy.client_network[0],
                ipv6_prefix=policy.client_network[1],
            )
            if moved and self._client_moved(session, moved):
                return True
        if ip is not None and ip != meta.ip and policy.capture_ip:
            meta.ip = ip
            session._system_dirty.add(META)
        if user_agent is not None and policy.capture_user_agent:
            user_agent = user_agent[:512]
            if user_agent != meta.user_agent:
                meta.user_agent = user_agent
                session._system_dirty.add(META)
        return False

    def _client_moved(self, session: Session, moved: dict[str, tuple[str, str]]) -> bool:
        bound = sorted(name for name in moved if name in self.policy.bind)
        action = "none" if not bound else self.policy.on_client_change
        detail = {
            f"{name}_{side}": v
            for name, pair in moved.items()
            for side, v in zip(("old", "new"), pair, strict=True)
        }
        self._emit(
            EventKind.CLIENT_CHANGED,
            session.key,
            None if session._principal is None else session._principal.key,
            action=action,
            **detail,
        )
        if action == "flag":
            flagged = set(session.meta.flagged.split(",")) if session.meta.flagged else set()
            flagged.update(bound)
            session.meta.flagged = ",".join(sorted(flagged))
            session._system_dirty.add(META)
        return action == "end"

    def _discard_corrupt(
        self, key: str, exc: Exception, ip: str | None, user_agent: str | None
    ) -> Flow[Session]:
        self._emit(EventKind.CORRUPT, key, reason=str(exc))
        yield ("delete", key)
        return self.start(ip=ip, user_agent=user_agent)

    # -- commit (sessio._commit) ----------------------------------------------------------------------

    def _commit_flow(self, session: Session) -> Flow[Commit]:
        # (Returns the flow itself rather than delegating: one generator less per commit.)
        if self._sealer is not None:
            return sealed.commit_flow(self, self._sealer, session)
        return _commit.commit_flow(self, session)

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
            meta.flagged,
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


def _principal_key(principal: Any) -> str:
    """A Principal's index key; a plain string or int names a principal of kind "user"."""
    key = getattr(principal, "key", None)
    if isinstance(key, str):
        return key
    return f"user:{principal}"
