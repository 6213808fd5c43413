"""What the managers hand back: a commit's outcome and action, and a session as a device list shows it.

A leaf module (it imports nothing of sessio), so the flows, the integrations and the client-side
flows all share one definition.
"""

from __future__ import annotations

import dataclasses
import enum

__all__ = [
    "CLEARED",
    "DESTROYED",
    "UNCHANGED",
    "Commit",
    "CommitAction",
    "CommitOutcome",
    "SessionInfo",
]


class CommitAction(str, enum.Enum):
    """What the transport must do after a commit."""

    NONE = "none"  # leave the client's token as it is
    SET = "set"  # send the token (new, rotated, followed, or with a moved expiry)
    CLEAR = "clear"  # tell the client to forget its token


class CommitOutcome(str, enum.Enum):
    """What a commit did in the store, beside what the client must do (:class:`CommitAction`).

    * ``APPLIED`` -- the session's changes (or touch) were written to its own record.
    * ``UNCHANGED`` -- nothing needed writing.
    * ``FORWARDED`` -- the session had been rotated by a parallel request of the same
      principal (a double-submitted login, a step-up): the changes went to its successor,
      whose ID the commit hands out (action ``SET``).
    * ``SUPERSEDED`` -- a parallel request rotated the session to another principal (an
      anonymous request in flight during a login): nothing written, and the client's token is
      left alone (action ``NONE``, never ``CLEAR``: the other response carries the live login).
    * ``VANISHED`` -- the session was revoked, evicted, destroyed or expired meanwhile and left
      no successor: nothing written, the client forgets its token (action ``CLEAR``).
    * ``DESTROYED`` -- the request destroyed the session (action ``CLEAR``).
    """

    APPLIED = "applied"
    UNCHANGED = "unchanged"
    FORWARDED = "forwarded"
    SUPERSEDED = "superseded"
    VANISHED = "vanished"
    DESTROYED = "destroyed"


@dataclasses.dataclass(frozen=True, slots=True)
class Commit:
    """The result of :meth:`SessionManager.commit`."""

    action: CommitAction
    #: The session ID to hand the client (a secret: left out of ``repr``, so logs never show it).
    token: str | None = dataclasses.field(default=None, repr=False)
    #: When the server will expire the session (the earliest of its timeouts).
    expires_at: float | None = None
    wrote: bool = False
    #: How long the client should keep the token, never shorter than the server keeps the
    #: session: the absolute end when there is one (the server enforces the idle timeout
    #: itself), else the sliding idle expiry, which every write that moves it re-sends.
    cookie_expires_at: float | None = None
    outcome: CommitOutcome = CommitOutcome.APPLIED
    #: Whether the cookie is a browser-session cookie (no ``Max-Age``/``Expires``) whatever
    #: the cookie options say: a login that was not remembered (``login(remember=False)``).
    browser_session: bool = False


#: The commits that carry nothing but their action, shared (a Commit is immutable).
UNCHANGED = Commit(CommitAction.NONE, outcome=CommitOutcome.UNCHANGED)
CLEARED = Commit(CommitAction.CLEAR, outcome=CommitOutcome.VANISHED)
DESTROYED = Commit(CommitAction.CLEAR, outcome=CommitOutcome.DESTROYED)


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
    #: The client changes the policy's ``bind`` flagged (``"network"``, ``"user_agent"``,
    #: comma-separated), or ``None``: a device list shows these sessions as suspect.
    flagged: str | None = None
