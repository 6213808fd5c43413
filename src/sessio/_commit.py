"""The commit flow on store contract v2: one atomic write per commit, and what to do with its outcome.

A new session is a :class:`~sessio.stores.base.Create`, a delta or a touch an ``Update``, an ID
rotation a ``Rotate`` (leaving a tombstone when a principal is signed in), a forced full write
of a stored session a ``Rewrite``. The concurrency limit travels in the login's own write. A
write that finds its record gone (``MISSING``) loads the tombstone of the ID it held -- the
only extra round trip, and only then: a parallel request of the same principal rotated the
session, so the changes are *forwarded* to the successor and its ID handed out; a parallel
login of another principal *superseded* it, so nothing is written and the cookie left alone;
no tombstone, and the session really ended (*vanished*): the client forgets its token.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from . import ids
from .errors import ConcurrencyLimitExceeded, RecordCorrupt, StoreUnavailable
from .events import EventKind
from .fields import META, SessionMeta
from .results import CLEARED, DESTROYED, UNCHANGED, Commit, CommitAction, CommitOutcome
from .session import Session
from .stores.base import (
    Create,
    PrincipalLimit,
    Record,
    Rewrite,
    Rotate,
    Saved,
    SaveOutcome,
    Tombstone,
    Update,
    Write,
)

if TYPE_CHECKING:
    from ._flows import BaseManager, Flow

    Manager = BaseManager[Any]

__all__ = ["MAX_HOPS", "announce", "commit_flow"]

#: Tombstones followed at most, one after another (a session rotated again meanwhile).
MAX_HOPS = 3
_CREATE_ATTEMPTS = 3
#: Fields of a tombstone: the successor's store key, its ID sealed for the holder of the old
#: ID (:func:`sessio.ids.seal_successor`), the principal key the rotation signed in, and the
#: successor's metadata: a forwarded write keeps its login time and lifetime, not the stale ones.
SUCCESSOR, HANDOFF, OWNER = "s:successor", "s:handoff", "s:principal"
SUCCESSOR_META = "s:successor-meta"

SUPERSEDED = Commit(CommitAction.NONE, outcome=CommitOutcome.SUPERSEDED)


def commit_flow(m: Manager, session: Session) -> Flow[Commit]:
    """Write what the request changed, in one store call; see the module docs."""
    policy = m.policy
    if session.is_destroyed:
        old = session._superseded or (None if session.is_new else session.key)
        if old is not None:
            yield ("delete", old)  # (and no tombstone: a destroyed session has no successor)
            m._emit(EventKind.DESTROYED, old)
        return DESTROYED
    now = m.clock()
    meta = session.meta
    principal = None if session._principal is None else session._principal.key
    pending = session._pending()
    if pending is None:
        if session.is_new:
            if not policy.save_uninitialized:
                return UNCHANGED
        elif not policy.resave:
            idle = (
                policy.anonymous_idle_seconds if _empty(session, principal) else policy.idle_seconds
            )
            # Without an idle timeout the expiry never moves, so there is nothing to push.
            if idle is None or now - meta.last_seen < policy.refresh_seconds:
                return UNCHANGED  # (checked here: the common read costs no generator)
            return (yield from _touch(m, session, principal, now))
        pending = session._pending(force=True)
    meta.last_seen = now
    expires_at = policy.expires_at(
        meta.created_at, now, anonymous=_empty(session, principal), ends_at=meta.ends_at
    )
    fields, removed, whole = pending
    fields[META] = meta.dumps()
    was_new, superseded, auth_change = session.is_new, session._superseded, session.auth_change
    lifetime_changed = session._lifetime_changed
    for _ in range(_CREATE_ATTEMPTS):  # a fresh ID on the (2**-256) collision of a Create
        write = _write(m, session, fields, removed, whole, expires_at, principal, now)
        saved: Saved = yield ("save", session.key, write)
        if saved.outcome is not SaveOutcome.EXISTS or not isinstance(write, Create):
            break
        session._id, session._key = ids.new_session_id(), None
    outcome = saved.outcome
    if outcome is SaveOutcome.MISSING:
        return (yield from _follow(m, session, principal, expires_at))
    if outcome is SaveOutcome.REJECTED:
        return _refused(m, session, principal)
    if outcome is not SaveOutcome.APPLIED:  # EXISTS to an Update, or to every attempt
        raise StoreUnavailable(f"the store answered {outcome.value} to a {type(write).__name__}")
    limit = policy.concurrency.max_sessions_per_principal
    for key in saved.evicted:  # removed in the login's own atomic step
        m._emit(EventKind.EVICTED, key, principal, limit=limit)
    session._committed(expires_at, whole=whole)
    if was_new or superseded is not None or auth_change is not None:
        announce(m, session.key, principal, was_new, superseded, auth_change)
    if m.events.listeners:
        m._emit(EventKind.SAVED, session.key, principal, fields=len(fields), replace=whole)
    # The cookie goes out when the token is new, or when its lifetime follows the expiry.
    send = was_new or superseded is not None or policy.rolling or policy.cookie_slides
    send = send or lifetime_changed  # login(remember=...), set_expiry(): a new cookie lifetime
    return result(m, session, expires_at, CommitAction.SET if send else CommitAction.NONE)


def _write(
    m: Manager,
    session: Session,
    fields: dict[str, str],
    removed: set[str],
    whole: bool,
    expires_at: float,
    principal: str | None,
    now: float,
) -> Write:
    limit = None
    concurrency = m.policy.concurrency
    if (
        principal is not None
        and session.auth_change == "authenticated"
        and concurrency.max_sessions_per_principal is not None
    ):
        limit = PrincipalLimit(concurrency.max_sessions_per_principal, concurrency.on_limit)
    if session._superseded is not None:
        old_id = session._superseded_id
        tombstone = None
        if principal is not None and old_id is not None:  # logout leaves none
            tombstone = Tombstone(
                ids.successor_key(old_id),
                {
                    SUCCESSOR: json.dumps(session.key),
                    HANDOFF: json.dumps(ids.seal_successor(old_id, session.id)),
                    OWNER: json.dumps(principal),
                    SUCCESSOR_META: json.dumps(fields[META]),
                },
                now + m.policy.grace_seconds,
            )
        return Rotate(session._superseded, fields, expires_at, principal, limit, tombstone)
    if session.is_new:
        return Create(fields, expires_at, principal, limit)
    if whole:
        return Rewrite(fields, expires_at, principal, limit)
    return Update(fields, expires_at, principal, removed, limit)


def _empty(session: Session, principal: str | None) -> bool:
    """Whether ``anonymous_idle_timeout`` applies: nobody signed in and no data (a visitor
    whose page only read its CSRF token, or a flash message); a guest's cart is kept as long
    as anyone's session."""
    return principal is None and not dict.__len__(session)


def _touch(m: Manager, session: Session, principal: str | None, now: float) -> Flow[Commit]:
    """An unchanged stored session whose touch is due (once per refresh_interval): push its
    idle expiry."""
    policy, meta = m.policy, session.meta
    meta.last_seen = now
    expires_at = policy.expires_at(
        meta.created_at, now, anonymous=_empty(session, principal), ends_at=meta.ends_at
    )
    saved: Saved = yield ("save", session.key, Update({META: meta.dumps()}, expires_at, principal))
    if saved.outcome is SaveOutcome.MISSING:
        return (yield from _follow(m, session, principal, expires_at))
    if not saved:
        return _refused(m, session, principal)
    session._committed(expires_at, whole=False)
    m._emit(EventKind.TOUCHED, session.key, principal)
    slides = policy.rolling or policy.cookie_slides
    return result(m, session, expires_at, CommitAction.SET if slides else CommitAction.NONE)


def _follow(m: Manager, session: Session, principal: str | None, expires_at: float) -> Flow[Commit]:
    """The record this commit wrote to is gone: follow the tombstone of the ID it held."""
    held = session._superseded_id or session.id
    expected = session._superseded or session.key
    fields: dict[str, str] | None = None
    removed: set[str] = set()
    for hop in range(MAX_HOPS):
        stone: Record | None = yield ("load", ids.successor_key(held))
        successor = _open(stone, held)
        if successor is None:
            break
        new_id, new_key, owner, their_meta = successor
        if owner != principal:
            # Another principal signed in meanwhile: this request's view is stale. Nothing is
            # written, and the cookie is left alone: the other response carries the login.
            m._emit(EventKind.SUPERSEDED, expected, principal, successor=ids.short_hash(new_key))
            return SUPERSEDED
        if fields is None:
            fields, removed = session._own_changes()
        meta = _merged(m, session.meta, their_meta)
        fields[META] = meta.dumps()
        expires_at = m.policy.expires_at(meta.created_at, meta.last_seen, ends_at=meta.ends_at)
        saved: Saved = yield ("save", new_key, Update(fields, expires_at, principal, removed))
        if saved.outcome is SaveOutcome.APPLIED:
            session._follow(new_id, new_key)
            session.meta = meta
            session._committed(expires_at, whole=False)
            m._emit(
                EventKind.FORWARDED,
                new_key,
                principal,
                previous=ids.short_hash(expected),
                hops=hop + 1,
            )
            return result(m, session, expires_at, CommitAction.SET, CommitOutcome.FORWARDED)
        held = new_id  # rotated again meanwhile: its own tombstone says where to
    # Revoked, evicted, destroyed or expired while this request held it: the store wrote
    # nothing (a session that is gone stays gone), and the client forgets its token.
    m._emit(EventKind.VANISHED, expected, principal)
    return CLEARED


def _merged(m: Manager, mine: SessionMeta, theirs: str | None) -> SessionMeta:
    """The successor's metadata (its login time, lifetime, flags) with this request's sighting
    of the client; this request's own when the tombstone carries none (an older one)."""
    if theirs is None:
        return mine
    try:
        meta = SessionMeta.from_data(m.codec.loads(theirs))
    except (RecordCorrupt, ValueError, TypeError):
        return mine
    meta.last_seen = max(meta.last_seen, mine.last_seen)
    meta.ip, meta.user_agent = mine.ip or meta.ip, mine.user_agent or meta.user_agent
    return meta


def _open(stone: Record | None, held: str) -> tuple[str, str, str | None, str | None] | None:
    """``(successor ID, successor key, principal, its metadata)`` from a tombstone, or ``None``."""
    if stone is None:
        return None
    try:
        key = json.loads(stone.fields[SUCCESSOR])
        owner = json.loads(stone.fields[OWNER])
        new_id = ids.open_successor(held, json.loads(stone.fields[HANDOFF]), key)
    except (KeyError, ValueError, TypeError):
        return None  # not a tombstone of ours: nothing to follow
    if new_id is None or not (owner is None or isinstance(owner, str)):
        return None
    try:
        meta = json.loads(stone.fields.get(SUCCESSOR_META, "null"))
    except ValueError:
        meta = None
    return new_id, key, owner, meta if isinstance(meta, str) else None


def _refused(m: Manager, session: Session, principal: str | None) -> Commit:
    limit = m.policy.concurrency.max_sessions_per_principal
    m._emit(EventKind.REJECTED, session.key, principal, limit=limit)
    raise ConcurrencyLimitExceeded(
        f"principal already holds the most sessions allowed (limit {limit})",
        principal=principal,
        limit=limit,
    )


def result(
    m: Manager,
    session: Session,
    expires_at: float,
    action: CommitAction,
    outcome: CommitOutcome = CommitOutcome.APPLIED,
) -> Commit:
    meta = session.meta
    cookie_end = m.policy.cookie_expires_at(meta.created_at, expires_at, ends_at=meta.ends_at)
    browser_session = meta.persistent is False
    return Commit(action, session.id, expires_at, True, cookie_end, outcome, browser_session)


def announce(
    m: Manager,
    key: str,
    principal: str | None,
    was_new: bool,
    superseded: str | None,
    auth_change: str | None,
) -> None:
    """Emit what a stored commit changed in the session's life."""
    if was_new:
        m._emit(EventKind.CREATED, key, principal)
    if superseded is not None:
        m._emit(EventKind.ROTATED, key, principal, previous=ids.short_hash(superseded))
    if auth_change == "authenticated":
        m._emit(EventKind.AUTHENTICATED, key, principal)
    elif auth_change == "logged_out":
        m._emit(EventKind.LOGGED_OUT, key, None)
