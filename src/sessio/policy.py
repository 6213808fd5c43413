"""Policy: every rule of a session's life (timeouts, refresh, rotation, limits, cookie), frozen.

A :class:`Policy` validates itself at construction, so a bad setting fails when the app starts,
not on the first request. Presets cover the common cases::

    Policy.web()                # browser sessions: 7 days absolute, 30 minutes idle, cookie
    Policy.api()                # API tokens: 1 hour, sent in a header, no cookie, no CSRF
    Policy.ephemeral()          # short, browser-session cookie, nothing kept after 15 minutes
    Policy.web().production()   # Secure + __Host- cookie
    Policy.web().development()  # plain-HTTP friendly cookie for localhost

and ``policy.replace(idle_timeout=timedelta(minutes=5))`` derives a variant.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from datetime import timedelta
from typing import Any, Literal

from ._cookie_options import DEFAULT_COOKIE_NAME, CookieOptions, SameSite
from .errors import ConfigurationError

# (plain sorted order, as tests/test_public_api.py keeps every __all__)
__all__ = [  # noqa: RUF022
    "ConcurrencyPolicy",
    "CookieOptions",
    "DEFAULT_COOKIE_NAME",
    "Policy",
    "SameSite",
]

OnLimit = Literal["evict_oldest", "reject"]
TransportName = Literal["cookie", "header", "bearer"]
#: What a session may be bound to (see :attr:`Policy.bind`).
BindName = Literal["network", "user_agent"]
OnClientChange = Literal["flag", "end"]

_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _duration(value: object, name: str) -> timedelta | None:
    """``value`` (a timedelta or seconds) as a positive timedelta; ``None`` stays ``None``."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        duration = value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            duration = timedelta(seconds=value)
        except (OverflowError, ValueError):
            raise ConfigurationError(f"{name} is out of range: {value!r}") from None
    else:
        raise ConfigurationError(f"{name} must be a timedelta or seconds, got {value!r}")
    if not duration.total_seconds() > 0:
        raise ConfigurationError(f"{name} must be positive, got {value!r}")
    return duration


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConcurrencyPolicy:
    """How many live sessions one principal may hold, and what happens past that number."""

    max_sessions_per_principal: int | None = None
    on_limit: OnLimit = "evict_oldest"

    def __post_init__(self) -> None:
        limit = self.max_sessions_per_principal
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ConfigurationError(f"max_sessions_per_principal must be >= 1, got {limit!r}")
        if self.on_limit not in ("evict_oldest", "reject"):
            raise ConfigurationError(
                f"on_limit must be 'evict_oldest' or 'reject', got {self.on_limit!r}"
            )


_DURATIONS = ("ttl", "idle_timeout", "refresh_interval", "anonymous_idle_timeout", "rotation_grace")

#: The longest :attr:`Policy.rotation_grace` allowed: a tombstone lets a request holding the
#: superseded ID follow the rotation, so its life is kept to seconds.
MAX_ROTATION_GRACE = timedelta(seconds=60)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Policy:
    """The rules a :class:`~sessio.SessionManager` enforces, server-side, on every load and commit.

    Timeouts (both enforced together; the earlier one wins; durations are timedeltas, or
    seconds converted to timedeltas at construction):

    * ``ttl`` -- absolute lifetime from creation (``None``: no absolute limit).
    * ``idle_timeout`` -- expiry after this long without a request (``None``: no idle limit).
    * ``anonymous_idle_timeout`` -- the idle timeout of a session that holds no data and
      nobody is signed in to (default 15 minutes; ``None``: the same as everyone's), in
      server-side stores. Short, so cookieless page views (a crawler reading a form's CSRF
      token) fill no store for long; a guest's cart lives as long as anyone's session, and
      client-side tokens, which fill no store, keep ``idle_timeout``.

    The idle timeouts are exact in one direction: a session idle for less than its timeout is
    never expired, yet the touch that records activity is throttled to one per
    ``refresh_interval``, so the server keeps a session until ``idle`` + ``refresh_interval``
    after its last recorded touch -- *never early, at most* ``refresh_interval`` *late*.

    Writes:

    * ``refresh_interval`` -- an unmodified request writes nothing, except to push the idle
      expiry, and then at most once per this interval (the "touch" is throttled).
    * ``rolling`` -- re-send the cookie whenever the expiry is pushed, so the browser's copy
      follows the server's (express-session's ``rolling``).
    * ``resave`` -- write the whole session on every request that loaded it (rarely wanted).
    * ``save_uninitialized`` -- store (and send a cookie for) new sessions that hold no data.

    Security:

    * ``rotate_on_login`` -- a new session ID on every ``login()``: authentication,
      re-authentication, a change of principal or roles.
    * ``rotation_grace`` -- how long a rotation's tombstone lets a parallel request of the
      same principal, still holding the old ID, follow it to the new session (default 10 s,
      at most 60 s).
    * ``concurrency`` -- the per-principal session limit.
    * ``csrf`` -- whether integrations enforce CSRF tokens on unsafe methods.

    Per-session lifetime and client binding:

    * ``remember_ttl`` -- the lifetime ``session.login(principal, remember=True)`` gives
      (``None``: ``ttl``, or without one ``idle_timeout``); never longer than ``ttl``. A session with a lifetime of its own
      (``login(remember=...)``, ``session.set_expiry()``) ends at its end, idle or not, and
      never past ``ttl`` from its creation.
    * ``bind`` -- what ``client_changed`` acts on: ``"network"`` (the client's
      ``client_network`` prefixes, ``(24, 64)`` for IPv4 and IPv6) and ``"user_agent"``
      (browser name and major version). The event fires whatever ``bind`` says.
    * ``on_client_change`` -- ``"flag"`` marks the session (``SessionInfo.flagged``),
      ``"end"`` deletes it and hands the request a fresh session.

    Transport: ``cookie`` options, ``header_name`` (``None`` disables header tokens), and the
    ``transports`` tried in order when reading a token.
    """

    ttl: timedelta | None = timedelta(days=7)
    idle_timeout: timedelta | None = timedelta(minutes=30)
    refresh_interval: timedelta = timedelta(seconds=60)
    anonymous_idle_timeout: timedelta | None = timedelta(minutes=15)
    rotation_grace: timedelta = timedelta(seconds=10)
    rolling: bool = False
    resave: bool = False
    save_uninitialized: bool = False
    rotate_on_login: bool = True
    concurrency: ConcurrencyPolicy = ConcurrencyPolicy()
    csrf: bool = True
    cookie: CookieOptions = dataclasses.field(default_factory=CookieOptions)
    header_name: str | None = "X-Session-ID"
    transports: tuple[TransportName, ...] = ("cookie",)
    capture_ip: bool = True
    capture_user_agent: bool = True
    remember_ttl: timedelta | None = None
    bind: tuple[BindName, ...] = ()
    on_client_change: OnClientChange = "flag"
    client_network: tuple[int, int] = (24, 64)

    def __post_init__(self) -> None:
        # Seconds are accepted and stored as timedeltas, so every later use sees one type.
        durations = {n: _duration(getattr(self, n), n) for n in _DURATIONS}
        for name, duration in durations.items():
            object.__setattr__(self, name, duration)
        ttl, idle, refresh, anonymous, grace = (
            None if d is None else d.total_seconds() for d in durations.values()
        )
        if refresh is None:
            raise ConfigurationError("refresh_interval must be a positive duration, not None")
        if grace is None or grace > MAX_ROTATION_GRACE.total_seconds():
            raise ConfigurationError(
                f"rotation_grace must be a positive duration of at most "
                f"{MAX_ROTATION_GRACE.total_seconds():g}s, got {self.rotation_grace!r}"
            )
        if ttl is None and idle is None:
            raise ConfigurationError(
                "a session needs an end: set ttl, idle_timeout, or both (OWASP: both)"
            )
        shortest = min(x for x in (ttl, idle, anonymous) if x is not None)
        if refresh >= shortest:
            raise ConfigurationError(
                f"refresh_interval ({refresh:g}s) must be shorter than the shortest timeout "
                f"({shortest:g}s), or sessions would expire between refreshes"
            )
        if isinstance(self.transports, str):
            raise ConfigurationError(f"transports is a tuple of names: ({self.transports!r},)")
        object.__setattr__(self, "transports", tuple(self.transports))
        if not self.transports:
            raise ConfigurationError("transports must name at least one of cookie, header, bearer")
        for name in self.transports:
            if name not in ("cookie", "header", "bearer"):
                raise ConfigurationError(f"unknown transport {name!r}")
        if len(set(self.transports)) != len(self.transports):
            raise ConfigurationError(f"transports repeat a name: {self.transports!r}")
        if "header" in self.transports and self.header_name is None:
            raise ConfigurationError("the header transport needs header_name")
        if self.header_name is not None and not (
            isinstance(self.header_name, str) and _HEADER_NAME.fullmatch(self.header_name)
        ):
            raise ConfigurationError(f"invalid header name {self.header_name!r}")
        if not isinstance(self.cookie, CookieOptions):
            raise ConfigurationError("cookie must be a CookieOptions")
        if not isinstance(self.concurrency, ConcurrencyPolicy):
            raise ConfigurationError("concurrency must be a ConcurrencyPolicy")
        self._check_lifetime_and_binding(ttl)

    def _check_lifetime_and_binding(self, ttl: float | None) -> None:
        remember = _duration(self.remember_ttl, "remember_ttl")
        object.__setattr__(self, "remember_ttl", remember)
        if remember is not None and ttl is not None and remember.total_seconds() > ttl:
            raise ConfigurationError(
                f"remember_ttl ({remember.total_seconds():g}s) must not exceed ttl ({ttl:g}s)"
            )
        if isinstance(self.bind, str) or not all(b in ("network", "user_agent") for b in self.bind):
            raise ConfigurationError(
                f"bind is a tuple of 'network' and 'user_agent', got {self.bind!r}"
            )
        object.__setattr__(self, "bind", tuple(self.bind))
        if self.on_client_change not in ("flag", "end"):
            raise ConfigurationError(
                f"on_client_change must be 'flag' or 'end', got {self.on_client_change!r}"
            )
        v4, v6 = self.client_network
        if not (type(v4) is int and type(v6) is int and 1 <= v4 <= 32 and 1 <= v6 <= 128):
            raise ConfigurationError(
                f"client_network is (IPv4 prefix 1-32, IPv6 prefix 1-128): {self.client_network!r}"
            )

    # -- derived values the manager uses on every request ---------------------------------------

    # Cached: the manager needs these on every request, and a frozen policy never changes.
    @functools.cached_property
    def ttl_seconds(self) -> float | None:
        """``ttl`` in seconds."""
        return None if self.ttl is None else self.ttl.total_seconds()

    @functools.cached_property
    def idle_seconds(self) -> float | None:
        """``idle_timeout`` in seconds."""
        return None if self.idle_timeout is None else self.idle_timeout.total_seconds()

    @functools.cached_property
    def refresh_seconds(self) -> float:
        """``refresh_interval`` in seconds."""
        return self.refresh_interval.total_seconds()

    @functools.cached_property
    def anonymous_idle_seconds(self) -> float | None:
        """The idle timeout of an anonymous session in seconds (the shorter of the two)."""
        anonymous = self.anonymous_idle_timeout
        if anonymous is None:
            return self.idle_seconds
        seconds = anonymous.total_seconds()
        idle = self.idle_seconds
        return seconds if idle is None else min(seconds, idle)

    @functools.cached_property
    def grace_seconds(self) -> float:
        """``rotation_grace`` in seconds."""
        return self.rotation_grace.total_seconds()

    def lifetime_end(self, created_at: float, now: float, lifetime: timedelta | None) -> float:
        """The end of a session given a ``lifetime`` of its own from ``now`` (``None``:
        ``remember_ttl``, else ``ttl``, else ``idle_timeout``), checked against ``ttl``:
        :class:`ConfigurationError` beyond it."""
        if lifetime is None:  # remember=True: remember_ttl, else ttl, else the idle timeout
            lifetime = self.remember_ttl or self.ttl or self.idle_timeout
        seconds = _duration(lifetime, "lifetime")
        if seconds is None:
            raise ConfigurationError("a session lifetime must be a positive duration")
        length, ttl = seconds.total_seconds(), self.ttl_seconds
        if ttl is not None and length > ttl:
            raise ConfigurationError(
                f"a session lifetime of {length:g}s exceeds the policy's ttl ({ttl:g}s)",
                lifetime=length,
                ttl=ttl,
            )
        end = now + length
        return end if ttl is None else min(end, created_at + ttl)

    def expires_at(
        self,
        created_at: float,
        last_seen: float,
        *,
        anonymous: bool = False,
        ends_at: float | None = None,
    ) -> float:
        """When a session created at ``created_at`` and last touched at ``last_seen`` expires.

        The idle part is ``last_seen + idle + refresh_interval``: requests between two touches
        are not recorded, so the slack of one interval makes the idle timeout never early and
        at most ``refresh_interval`` late. ``anonymous`` applies ``anonymous_idle_timeout``.
        ``ends_at``, a session's own end (:meth:`lifetime_end`), replaces the idle part.
        """
        ttl = self.ttl_seconds
        if ends_at is not None:
            return ends_at if ttl is None else min(ends_at, created_at + ttl)
        idle = self.anonymous_idle_seconds if anonymous else self.idle_seconds
        if idle is not None:
            idle_end = last_seen + idle + self.refresh_seconds
            return idle_end if ttl is None else min(created_at + ttl, idle_end)
        if ttl is not None:
            return created_at + ttl
        raise ConfigurationError("a session needs an end")  # unreachable: __post_init__ checks

    def cookie_expires_at(
        self, created_at: float, expires_at: float, *, ends_at: float | None = None
    ) -> float:
        """When the client may forget the token, never before the server's ``expires_at``: the
        absolute end if any (it bounds every expiry), else ``expires_at`` itself, which then
        slides, so every commit that moves it re-sends the cookie. A session with an end of
        its own (``ends_at``) keeps the cookie exactly that long."""
        ttl = self.ttl_seconds
        if ends_at is not None:
            return expires_at
        return expires_at if ttl is None else max(created_at + ttl, expires_at)

    @functools.cached_property
    def cookie_slides(self) -> bool:
        """Whether the cookie's lifetime moves with the expiry (no ``ttl``), so every commit
        that pushes the expiry must re-send it."""
        return self.ttl_seconds is None

    # -- variants ---------------------------------------------------------------------------------

    def replace(self, **changes: Any) -> Policy:
        """A copy with ``changes`` applied (and validated). ``cookie`` may be a dict of changes."""
        cookie = changes.get("cookie")
        if isinstance(cookie, dict):
            changes["cookie"] = self.cookie.replace(**cookie)
        concurrency = changes.get("concurrency")
        if isinstance(concurrency, dict):
            changes["concurrency"] = dataclasses.replace(self.concurrency, **concurrency)
        return dataclasses.replace(self, **changes)

    @classmethod
    def web(cls, **changes: Any) -> Policy:
        """Browser sessions (the default): 7 days absolute, 30 minutes idle, Lax cookie, CSRF."""
        return cls().replace(**changes)

    @classmethod
    def api(cls, **changes: Any) -> Policy:
        """API tokens: 1 hour, idle 15 minutes, sent as ``Authorization: Bearer`` or a header."""
        base = cls(
            ttl=timedelta(hours=1),
            idle_timeout=timedelta(minutes=15),
            transports=("bearer", "header"),
            csrf=False,  # no ambient credential (cookie) means no cross-site request forgery
            save_uninitialized=False,
            capture_ip=True,
        )
        return base.replace(**changes)

    @classmethod
    def ephemeral(cls, **changes: Any) -> Policy:
        """Short-lived sessions: 15 minutes absolute, a browser-session cookie."""
        base = cls(
            ttl=timedelta(minutes=15),
            idle_timeout=None,
            cookie=CookieOptions(max_age="session"),
        )
        return base.replace(**changes)

    def production(self) -> Policy:
        """This policy, hardened: a ``__Host-`` cookie that is Secure, host-only, path ``/``."""
        changes: dict[str, Any] = {"secure": True, "domain": None, "path": "/"}
        if not getattr(self.cookie, "_name_chosen", False):  # a chosen name becomes __Host-
            name = self.cookie.name
            if not name.startswith(("__Host-", "__Secure-")):
                name = "__Host-" + name
            changes["name"] = name
        return self.replace(cookie=self.cookie.replace(**changes))

    def development(self) -> Policy:
        """This policy for plain-HTTP localhost: the cookie drops ``Secure`` and its prefix."""
        samesite = "lax" if self.cookie.samesite == "none" else self.cookie.samesite
        changes: dict[str, Any] = {"secure": False, "samesite": samesite, "partitioned": False}
        if not getattr(self.cookie, "_name_chosen", False):  # a chosen name loses its prefix
            changes["name"] = self.cookie.name.removeprefix("__Host-").removeprefix("__Secure-")
        return self.replace(cookie=self.cookie.replace(**changes))
