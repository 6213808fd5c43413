"""Flask's rule of when a session cookie goes out, applied to a sessio commit (Flask and Quart).

Both drop-ins commit through a manager, then ask :func:`flask_commit` which :class:`Commit`
the transport should carry, so the two cannot drift apart. No I/O, no framework import.
"""

from __future__ import annotations

import dataclasses

from ..manager import Commit, CommitAction
from ..policy import Policy
from ..session import Session

__all__ = ["flask_commit", "persistent_cookie"]


def persistent_cookie(session: Session) -> bool:
    """Whether the cookie outlives the browser: Flask's ``session.permanent``, unless the
    session chose for itself (``login(remember=...)``, ``set_expiry()``)."""
    chosen = session.meta.persistent
    return bool(dict.get(session, "_permanent", False)) if chosen is None else chosen


def flask_commit(
    commit: Commit,
    *,
    session_id: str,
    created_at: float,
    expires_at: float,
    is_new: bool,
    touch_only: bool,
    modified: bool,
    refresh: bool,
    sealed: bool,
    policy: Policy,
    now: float,
    ends_at: float | None = None,
) -> Commit:
    """What to send after ``commit``, by Flask's ``should_set_cookie()``.

    A modified session, or a permanent one that refreshes on each request, sends its cookie;
    a server-side touch alone does not (Flask's would not go out). A client-side token is the
    session itself: every new one goes out as the manager said. The cookie lives exactly
    Flask's lifetime (``PERMANENT_SESSION_LIFETIME`` from now, the policy's idle timeout), as
    Flask's own ``Expires`` says; the server keeps the record at least as long. A session
    with an end of its own (``ends_at``: ``login(remember=...)``) keeps its cookie until then.
    """
    if sealed:
        return commit
    if commit.action is CommitAction.SET and touch_only and not refresh:
        return Commit(CommitAction.NONE)
    if commit.action is CommitAction.NONE and refresh and not is_new:
        end = policy.cookie_expires_at(created_at, expires_at, ends_at=ends_at)
        commit = dataclasses.replace(
            commit,
            action=CommitAction.SET,
            token=session_id,
            expires_at=expires_at,
            cookie_expires_at=end,
        )
    if commit.action is CommitAction.SET and commit.cookie_expires_at is not None:
        idle = policy.idle_seconds
        if policy.ttl_seconds is None and idle is not None and ends_at is None:
            flask_end = min(commit.cookie_expires_at, now + idle)
            if flask_end != commit.cookie_expires_at:
                return dataclasses.replace(commit, cookie_expires_at=flask_end)
    return commit
