"""What a token's session looks like right now, read without creating, touching or writing it.

:meth:`SessionManager.status <sessio.SessionManager.status>` answers with a
:class:`SessionStatus`; its :class:`SessionState` is one of five::

    LIVE      the token names a session that is live now
    EXPIRED   the token names a session past its expiry (told only where it is still known)
    REVOKED   the token is authentic and unexpired, but its session was ended early
    INVALID   the token is malformed, forged, or names a record that cannot be read
    UNKNOWN   no token, or no record under it (never stored, ended, or already swept)

A status never carries the raw session ID: it is a read-only view for a status route, a
single-page app's session timer or an operator's tooling.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import TYPE_CHECKING

from .errors import SessionExpired, SessionInvalid, SessionNotFound, TokenInvalid

if TYPE_CHECKING:
    from typing_extensions import Self

    from .principal import Principal

__all__ = ["SessionState", "SessionStatus"]


class SessionState(enum.Enum):
    """The state of the session a token names, as :meth:`SessionManager.status` finds it.

    * ``LIVE`` -- a record (server-side) or a verified token (client-side) whose expiry, the
      earliest of the store's and the policy's (idle, absolute), is still ahead.
    * ``EXPIRED`` -- a record the store still returns, or a verified token (it carries its
      expiry), past that expiry: e.g. a token past its end, or a record whose policy
      timeout passed before the store's TTL swept it. A server-side store drops expired
      records on its own (its ``load`` reports them as misses), so most expired server-side
      sessions read ``UNKNOWN``: the store no longer knows them.
    * ``REVOKED`` -- a client-side token that verifies and has not expired, but is on the
      store's revocation list (logged out, rotated, or revoked). Server-side stores never
      say ``REVOKED``: an ended session's record is deleted, and the tombstone a rotation
      leaves lies under another key for only ``rotation_grace``, so telling a rotated ID
      from one never issued would take a second load; a status makes one, so both read
      ``UNKNOWN``.
    * ``INVALID`` -- a token sessio never issues: not a well-formed session ID (server-side),
      or failing its signature, decryption or format checks (client-side); also a record or
      token payload that cannot be decoded (corrupt, or written under another codec).
    * ``UNKNOWN`` -- no token, or a well-formed ID with no record: never stored (a new
      session's ID before its first commit), destroyed, revoked, rotated away, or expired and
      swept.
    """

    LIVE = "live"
    EXPIRED = "expired"
    REVOKED = "revoked"
    INVALID = "invalid"
    UNKNOWN = "unknown"


@dataclasses.dataclass(frozen=True, slots=True)
class SessionStatus:
    """A read-only view of a token's session; see :class:`SessionState`.

    ``remaining`` is the seconds until the session ends if no request comes (zero once past);
    ``idle_remaining`` the seconds until the idle timeout alone ends it (``None`` without one):
    a request pushes it back, so when it exceeds ``remaining`` the absolute end binds and
    activity no longer helps. ``expires_at`` is that end in epoch seconds. The timing and
    principal fields are filled for ``LIVE`` and ``EXPIRED`` states (and ``REVOKED``, from the
    token), ``None`` otherwise. ``principal_key`` is the store's key of the signed-in principal
    (:attr:`Principal.key`), ``principal`` the principal itself. ``csrf_token`` is a freshly
    masked CSRF token of a ``LIVE`` session (``None`` otherwise), what a single-page app sends
    with its unsafe calls; it is no secret of the session beyond what a page already shows.
    """

    state: SessionState
    remaining: float | None = None
    idle_remaining: float | None = None
    expires_at: float | None = None
    principal: Principal | None = None
    principal_key: str | None = None
    csrf_token: str | None = dataclasses.field(default=None, repr=False)
    #: Short hash of the store key (as in events and logs), when a record or token was read.
    short_key: str | None = None

    @property
    def is_live(self) -> bool:
        """Whether the state is ``LIVE``."""
        return self.state is SessionState.LIVE

    @property
    def authenticated(self) -> bool:
        """Whether the session is live with a principal signed in."""
        return self.state is SessionState.LIVE and self.principal_key is not None

    def raise_unless_live(self) -> Self:
        """``self`` when ``LIVE``; else the matching typed error, with the short hash as evidence.

        ``EXPIRED`` raises :class:`~sessio.errors.SessionExpired`, ``UNKNOWN``
        :class:`~sessio.errors.SessionNotFound`, ``INVALID``
        :class:`~sessio.errors.TokenInvalid`, ``REVOKED`` :class:`~sessio.errors.SessionInvalid`.
        """
        state, short = self.state, self.short_key
        if state is SessionState.LIVE:
            return self
        if state is SessionState.EXPIRED:
            raise SessionExpired("the session has expired", session=short)
        if state is SessionState.REVOKED:
            raise SessionInvalid("the session was revoked", session=short, reason="revoked")
        if state is SessionState.INVALID:
            raise TokenInvalid("the token is not one this server issued", session=short)
        raise SessionNotFound("no session matches the token", session=short)
