"""The status flow: read one token's session state with one store read and no write at all.

Like the other flows (:mod:`sessio._flows`) it *yields* store operations, so both managers
drive it unchanged; unlike them it never yields a ``save`` or a ``delete``: an expired or
corrupt record is reported, not swept (the next ``load`` sweeps it).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

from . import csrf, ids
from .errors import RecordCorrupt, TokenInvalid
from .fields import Loaded, decode
from .status import SessionState, SessionStatus
from .stores.base import Record
from .stores.client import ClientSideStore

if TYPE_CHECKING:
    from ._flows import BaseManager, Flow

    Manager = BaseManager[Any]

__all__ = ["status_flow"]

_UNKNOWN = SessionStatus(SessionState.UNKNOWN)
_INVALID = SessionStatus(SessionState.INVALID)


def status_flow(m: Manager, token: str | None) -> Flow[SessionStatus]:
    """The :class:`SessionStatus` of ``token``: a raw session ID for a server-side store (what
    :meth:`~sessio.SessionManager.load` takes), the sealed token for a client-side one."""
    if not token or not isinstance(token, str):
        return _UNKNOWN
    store = m.store
    if isinstance(store, ClientSideStore):
        return (yield from _sealed(m, store, token))
    if not ids.is_well_formed(token):
        return _INVALID
    key = ids.store_key(token)
    try:
        record: Record | None = yield ("load", key)
    except RecordCorrupt:
        return SessionStatus(SessionState.INVALID, short_key=ids.short_hash(key))
    if record is None:
        return SessionStatus(SessionState.UNKNOWN, short_key=ids.short_hash(key))
    return _judge(m, token, record, server_side=True)


def _sealed(m: Manager, store: ClientSideStore, token: str) -> Flow[SessionStatus]:
    try:
        session_id, record = store.unseal(token)
    except TokenInvalid:
        return _INVALID
    status = _judge(m, session_id, record, server_side=False)
    if (
        status.state is SessionState.LIVE
        and store.revocations is not None
        and (yield ("is_revoked", record.key))
    ):
        return dataclasses.replace(status, state=SessionState.REVOKED, csrf_token=None)
    return status


def _judge(m: Manager, session_id: str, record: Record, *, server_side: bool) -> SessionStatus:
    """LIVE or EXPIRED by the earliest of the record's and the policy's expiry (the rules
    :meth:`~sessio.SessionManager.load` applies), or INVALID for an undecodable record."""
    short = ids.short_hash(record.key)
    try:
        loaded = decode(m.codec, record.fields)
    except (RecordCorrupt, KeyError):
        return SessionStatus(SessionState.INVALID, short_key=short)
    meta, policy = loaded.meta, m.policy
    if not math.isfinite(record.expires_at + meta.created_at + meta.last_seen):
        return SessionStatus(SessionState.INVALID, short_key=short)
    # anonymous_idle_timeout binds server-side records only (a token fills no store).
    anonymous = server_side and loaded.principal is None and not loaded.values
    ends = min(
        record.expires_at,
        policy.expires_at(
            meta.created_at, meta.last_seen, anonymous=anonymous, ends_at=meta.ends_at
        ),
    )
    # A session with an end of its own (remember-me, set_expiry) has no idle timeout.
    idle = (
        None
        if meta.ends_at is not None
        else (policy.anonymous_idle_seconds if anonymous else policy.idle_seconds)
    )
    now = m.clock()
    idle_remaining = None
    if idle is not None:
        # The same slack as Policy.expires_at: never early, at most refresh_interval late.
        idle_remaining = max(0.0, meta.last_seen + idle + policy.refresh_seconds - now)
    live = ends > now
    principal = loaded.principal
    return SessionStatus(
        SessionState.LIVE if live else SessionState.EXPIRED,
        max(0.0, ends - now),
        idle_remaining,
        ends,
        principal,
        record.principal if record.principal is not None else _key_of(loaded),
        csrf.mask_token(_csrf_secret(session_id, loaded)) if live else None,
        short,
    )


def _key_of(loaded: Loaded) -> str | None:
    return None if loaded.principal is None else loaded.principal.key


def _csrf_secret(session_id: str, loaded: Loaded) -> str:
    """The session's CSRF secret, derived as :attr:`sessio.Session.csrf_token` derives it."""
    if loaded.csrf_salt is not None:
        return csrf.derive_secret(session_id, loaded.csrf_salt)
    if loaded.csrf_secret is not None:
        return loaded.csrf_secret
    return csrf.derive_secret(session_id)
