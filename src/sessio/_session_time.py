"""A session's clock-facing side: when it ends, a lifetime of its own, and how old its login is.

Mixed into :class:`~sessio.Session` (which owns the state these read); no I/O. A lifetime set
here (``login(remember=...)``, :meth:`SessionTime.set_expiry`) lives in the session's metadata,
so every store keeps the record exactly that long and every integration writes the cookie to
match: persistent to the end, or a browser-session cookie.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable

from .errors import AuthenticationRequired, ConfigurationError, ReauthenticationRequired
from .fields import META, SessionMeta
from .policy import Policy
from .principal import Principal

__all__ = ["SessionTime", "fresh_seconds", "require_fresh"]


class SessionTime:
    """Lifetime and authentication age, for :class:`~sessio.Session`."""

    # Owned by Session (its slots; this mixin has none, Session keeps a __dict__ anyway):
    # declared for the type checker.
    meta: SessionMeta
    is_accessed: bool
    _clock: Callable[[], float]
    _policy: Policy
    _expires_at: float
    _system_dirty: set[str]
    _lifetime_changed: bool

    @property
    def expires_at(self) -> dt.datetime:
        """When the session ends (UTC), the earliest of its timeouts (the idle one is never
        early and at most ``refresh_interval`` late: see :class:`~sessio.Policy`)."""
        self.is_accessed = True
        return dt.datetime.fromtimestamp(self._expires_at, dt.timezone.utc)

    @property
    def remaining(self) -> dt.timedelta:
        """Time left before :attr:`expires_at` (zero once past)."""
        self.is_accessed = True
        return dt.timedelta(seconds=max(0.0, self._expires_at - self._clock()))

    @property
    def auth_age(self) -> dt.timedelta | None:
        """How long ago the principal last authenticated (``login()``), or ``None`` when
        nobody is signed in: what a step-up check (``require_fresh_login``) compares."""
        self.is_accessed = True
        at = self.meta.authenticated_at
        if at is None:
            return None
        return dt.timedelta(seconds=max(0.0, self._clock() - at))

    @property
    def is_persistent(self) -> bool | None:
        """Whether the cookie outlives the browser: ``True`` (remembered, or a lifetime set),
        ``False`` (a browser-session cookie), ``None`` (as the policy's cookie options say)."""
        return self.meta.persistent

    def set_expiry(self, lifetime: dt.timedelta | None, *, persistent: bool = True) -> None:
        """Give this session a lifetime of its own, from now: it ends then, idle or not, never
        past the policy's ``ttl`` from its creation (a longer one raises
        :class:`~sessio.errors.ConfigurationError`). ``persistent=False`` sends a
        browser-session cookie. ``None`` returns the session to the policy's timeouts."""
        if lifetime is not None and not isinstance(lifetime, dt.timedelta):
            raise TypeError(f"set_expiry() takes a timedelta or None, got {lifetime!r}")
        if lifetime is None:
            self._apply_lifetime(None, None)
        else:
            now = self._clock()
            end = self._policy.lifetime_end(self.meta.created_at, now, lifetime)
            self._apply_lifetime(end, persistent)

    def _remembered(self, remember: bool | dt.timedelta | None) -> tuple[float | None, bool | None]:
        """``(ends_at, persistent)`` for ``login(remember=...)``, checked before the login
        changes anything; ``None`` keeps what the session had."""
        if remember is None:
            return self.meta.ends_at, self.meta.persistent
        if remember is False:
            return None, False
        if remember is not True and not isinstance(remember, dt.timedelta):
            raise TypeError(f"remember takes a bool or a timedelta, got {remember!r}")
        lifetime = None if remember is True else remember
        return self._policy.lifetime_end(self.meta.created_at, self._clock(), lifetime), True

    def _apply_lifetime(self, ends_at: float | None, persistent: bool | None) -> None:
        meta = self.meta
        if ends_at == meta.ends_at and persistent == meta.persistent:
            return
        meta.ends_at, meta.persistent = ends_at, persistent
        # expires_at and remaining show the new end at once (None: the policy's again).
        self._expires_at = self._policy.expires_at(meta.created_at, self._clock(), ends_at=ends_at)
        self._system_dirty.add(META)
        self._lifetime_changed = True  # the cookie goes out again with its new lifetime

    def _signed_out(self) -> None:
        """The login ended: its lifetime and authentication time go with it."""
        self.meta.authenticated_at = None
        self._apply_lifetime(None, None)


def fresh_seconds(max_age: dt.timedelta | float) -> float:
    """``max_age`` of a ``require_fresh_login`` guard as positive seconds, checked when the
    route is declared (a bad value fails at import, not on the first request)."""
    if isinstance(max_age, dt.timedelta):
        seconds = max_age.total_seconds()
    elif isinstance(max_age, (int, float)) and not isinstance(max_age, bool):
        seconds = float(max_age)
    else:
        raise ConfigurationError(f"max_age is a timedelta or seconds, got {max_age!r}")
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigurationError(f"max_age must be a positive duration, got {max_age!r}")
    return seconds


def require_fresh(session: SessionTime, principal: Principal | None, max_age: float) -> Principal:
    """``principal`` when it signed in less than ``max_age`` seconds ago; else
    :class:`AuthenticationRequired` (nobody signed in) or :class:`ReauthenticationRequired`."""
    if principal is None:
        raise AuthenticationRequired("this route needs a logged-in session")
    age = session.auth_age
    if age is None or age.total_seconds() > max_age:
        raise ReauthenticationRequired(
            f"this route needs a login within the last {int(max_age)} seconds: sign in again",
            max_age=max_age,
        )
    return principal
