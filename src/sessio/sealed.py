"""The manager's flows for client-side stores, where the token *is* the sealed session.

:class:`~sessio.SessionManager` branches here when its store is a
:class:`~sessio.stores.client.ClientSideStore`; the policy is the same, only the record
travels in the token. Loading unseals the token (strict IDs still hold: only a token this
server sealed is adopted, anything else gives a fresh session and an ``invalid`` event);
committing seals the whole session into a new token (``CommitAction.SET``); destroying clears
it. The only I/O is the optional revocation list, yielded as store operations like every
other flow, so the async and sync managers drive these unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _commit, results
from .errors import ConfigurationError, RecordCorrupt, TokenInvalid
from .events import EventKind
from .fields import META, decode
from .session import Session
from .stores.base import Record
from .stores.client import ClientSideStore

if TYPE_CHECKING:
    from ._flows import BaseManager, Commit, Flow

    Manager = BaseManager[Any]

__all__ = ["commit_flow", "load_flow", "need_server_state", "revoke_flow"]


def load_flow(
    m: Manager, sealer: ClientSideStore, token: str | None, ip: str | None, agent: str | None
) -> Flow[Session]:
    """The session in ``token``, or a fresh one when it is absent, forged, expired or revoked."""
    if not token:
        return m.start(ip=ip, user_agent=agent)
    try:
        session_id, record = sealer.unseal(token)
    except TokenInvalid as exc:
        m._emit(EventKind.INVALID, None, reason=exc.evidence.get("reason"))
        return m.start(ip=ip, user_agent=agent)
    key = record.key
    try:
        loaded = decode(m.codec, record.fields)
        meta = loaded.meta
        ends = m.policy.expires_at(meta.created_at, meta.last_seen, ends_at=meta.ends_at)
        live = min(record.expires_at, ends) > m.clock()
        # (anonymous_idle_timeout is for server-side stores: a token fills no store)
        session = m._session(session_id, meta, is_new=False, loaded=loaded, expires_at=ends)
    except (RecordCorrupt, KeyError) as exc:
        # Authentic but undecodable: a codec change, or a field written by another app.
        m._emit(EventKind.CORRUPT, key, reason=str(exc))
        return m.start(ip=ip, user_agent=agent)
    if not live:
        m._emit(EventKind.EXPIRED, key, record.principal)
        return m.start(ip=ip, user_agent=agent)
    if sealer.revocations is not None and (yield ("is_revoked", key)):
        m._emit(EventKind.INVALID, key, record.principal, reason="revoked")
        return m.start(ip=ip, user_agent=agent)
    if m._note_client(session, ip, agent):  # bound to its client, and used from another
        yield from _end(m, sealer, key, m.clock())
        return m.start(ip=ip, user_agent=agent)
    m._emit(EventKind.LOADED, key, record.principal)
    return session


def commit_flow(m: Manager, sealer: ClientSideStore, session: Session) -> Flow[Commit]:
    """Seal the session into a new token when it changed or its refresh is due."""
    policy, now, meta = m.policy, m.clock(), session.meta
    action = results.CommitAction
    if session.is_destroyed:
        old = session._superseded or (None if session.is_new else session.key)
        if old is not None:
            yield from _end(m, sealer, old, now)
            m._emit(EventKind.DESTROYED, old)
        return results.DESTROYED
    refresh_only = False
    if session._pending() is None:
        if session.is_new:
            if not policy.save_uninitialized:
                return results.UNCHANGED
        elif not policy.resave:
            if not _refresh_due(m, sealer, session, now):
                return results.UNCHANGED
            refresh_only = True
    # A token carries the whole session, so every commit seals all of it.
    fields, _, _ = session._pending(force=True)
    meta.last_seen = now
    expires_at = policy.expires_at(meta.created_at, now, ends_at=meta.ends_at)
    principal = None if session._principal is None else session._principal.key
    fields[META] = meta.dumps()
    token = sealer.seal(session.id, Record(session.key, fields, expires_at, principal), now=now)
    superseded, was_new, auth_change = session._superseded, session.is_new, session.auth_change
    if superseded is not None:
        # The old token still verifies; only the revocation list can end it before its time.
        yield from _end(m, sealer, superseded, now)
    session._committed(expires_at)
    if refresh_only:
        m._emit(EventKind.TOUCHED, session.key, principal)
    else:
        _commit.announce(m, session.key, principal, was_new, superseded, auth_change)
        m._emit(EventKind.SAVED, session.key, principal, fields=len(fields), size=len(token))
    cookie_end = policy.cookie_expires_at(meta.created_at, expires_at, ends_at=meta.ends_at)
    browser_session = meta.persistent is False  # (the token itself is the session: send it)
    return results.Commit(
        action.SET, token, expires_at, True, cookie_end, browser_session=browser_session
    )


def _refresh_due(m: Manager, sealer: ClientSideStore, session: Session, now: float) -> bool:
    """Whether an unchanged session gets a new token, pushing its idle expiry."""
    policy = m.policy
    if policy.idle_timeout is None and not policy.rolling:
        return False  # nothing slides: a new token would carry the same expiry
    if now - session.meta.last_seen < policy.refresh_seconds:
        return False
    threshold = sealer.refresh_threshold
    return threshold is None or session._expires_at - now < threshold.total_seconds()


def _end(m: Manager, sealer: ClientSideStore, key: str, now: float) -> Flow[None]:
    # Every token of this session was issued by now, so none outlives this bound.
    if sealer.revocations is not None:
        yield ("revoke", key, m.policy.expires_at(now, now))


def revoke_flow(m: Manager, sealer: ClientSideStore, key: str, principal: Any) -> Flow[bool]:
    """List the session ``key`` on the revocation list until its tokens expire."""
    if principal is not None:
        raise ConfigurationError(
            "a client-side store cannot tell which principal a session belongs to; "
            "call revoke(key) without principal"
        )
    if sealer.revocations is None:
        raise ConfigurationError(
            f"{type(sealer).__name__} has no revocation_store, so its tokens cannot be "
            "revoked before they expire"
        )
    yield from _end(m, sealer, key, m.clock())
    m._emit(EventKind.REVOKED, key, None)
    return True


def need_server_state(m: Manager, what: str) -> None:
    """Raise :class:`ConfigurationError` when ``what`` is asked of a client-side store."""
    if m._sealer is not None:
        raise ConfigurationError(
            f"{what}() needs server-side state; {type(m._sealer).__name__} keeps sessions "
            "in their tokens, so it cannot list or count them"
        )
