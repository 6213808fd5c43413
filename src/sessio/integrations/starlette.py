"""A drop-in for Starlette's SessionMiddleware that keeps the data server-side.

Change one import and nothing else::

    # from starlette.middleware.sessions import SessionMiddleware
    from sessio.integrations.starlette import SessionMiddleware

    app = Starlette(middleware=[Middleware(SessionMiddleware, secret_key=SECRET)])

The constructor is Starlette's, and so is what a client sees: the cookie's name and attributes
are written in Starlette's own spelling, it is sent when the session changes and deleted when
the session is emptied, ``max_age=None`` makes a browser-session cookie, and
``request.session`` is a ``dict``: a :class:`Session`, which Starlette 1.x apps import beside
the middleware (``from sessio.integrations.starlette import Session, SessionMiddleware``), with
Starlette's ``accessed``/``modified`` flags. What changes is where the data lives: the cookie holds only
a signed random ID, the data sits in ``store`` (default ``SQLiteStore("sessio.db")``), so it
can be large, cannot be read by the client, and is expired server-side ``max_age`` after the
last request (an idle timeout; ``policy=`` sets any other rules). CSRF protection is off, as in
Starlette; ``csrf=CSRFOptions()`` turns it on. ``request.session`` is a full
:class:`~sessio.Session`, so ``flash``, ``login`` and ``csrf_token`` are there when wanted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
from datetime import timedelta
from typing import Any, Literal

from .. import ids
from .. import session as _session
from ..codec import default_codec
from ..errors import ConfigurationError
from ..fields import META, SessionMeta, data_field, decode
from ..legacy import LegacyCookie, StarletteCookie
from ..manager import Commit, CommitAction, SessionManager
from ..policy import CookieOptions, Policy
from ..stores.base import Store
from ..stores.sqlite import SQLiteStore
from ..transports.base import CookieTransport
from ..transports.cookies import render_delete_cookie, render_set_cookie
from ..transports.signing import TokenSigner
from . import asgi
from ._types import ASGIApp
from .csrf import CSRFOptions

__all__ = ["Session", "SessionMiddleware", "StarletteCookieTransport"]

logger = logging.getLogger("sessio.starlette")

_DEFAULT_MAX_AGE = 14 * 24 * 60 * 60


class Session(_session.Session):
    """``request.session`` of the drop-in: a sessio :class:`~sessio.Session` that is also
    Starlette's ``Session``.

    Built like Starlette's, ``Session()`` or ``Session({"cart": []})``, it is a detached new
    session (no store has seen it); the middleware's manager builds it with sessio's own
    arguments. ``modified`` becomes true on every write Starlette's counts (``session[k] = v``,
    ``del``, ``clear``, ``pop`` of a present key, ``popitem``, ``setdefault`` of a missing one,
    ``update``, ``|=``), and also when a value is changed in place, which Starlette's cannot
    see; setting it to ``False`` does not discard writes. ``accessed`` is sessio's
    :attr:`~sessio.Session.is_accessed`: any read, a write, or ``request.session`` itself
    (Starlette calls :meth:`mark_accessed`).
    """

    __slots__ = ("_written",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._written = False
        if "codec" in kwargs:  # the manager's call, with sessio.Session's arguments
            super().__init__(*args, **kwargs)
            return
        data = dict(*args, **kwargs)
        now = time.time()
        codec = default_codec
        fields = {data_field(k): codec.dumps(v, key=k) for k, v in data.items()}
        loaded = decode(codec, {META: SessionMeta(now, now).dumps(), **fields})
        super().__init__(
            ids.new_session_id(),
            codec=codec,
            meta=loaded.meta,
            expires_at=now + _DEFAULT_MAX_AGE,
            loaded=loaded,
            clock=time.time,
        )

    @property
    def accessed(self) -> bool:
        """Whether the request read (or wrote) the session: the response varies on ``Cookie``."""
        return self.is_accessed

    @accessed.setter
    def accessed(self, value: bool) -> None:
        self.is_accessed = bool(value)

    @property
    def modified(self) -> bool:
        """Whether the request wrote the session (Starlette's flag; in-place changes count)."""
        return self._written or self.is_modified

    @modified.setter
    def modified(self, value: bool) -> None:
        self._written = bool(value)

    def mark_accessed(self) -> None:
        """Note that the session was used (``request.session`` calls this)."""
        self.is_accessed = True

    def mark_modified(self) -> None:
        """Note a write: the cookie is sent again at the end of the request."""
        self.is_accessed = True
        self._written = True

    def __setitem__(self, key: str, value: Any) -> None:
        self.mark_modified()
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self.mark_modified()
        super().__delitem__(key)

    def clear(self) -> None:
        """Remove every data key (as sessio's ``clear``), a write even when empty."""
        self.mark_modified()
        super().clear()

    def pop(self, key: str, *default: Any) -> Any:
        """Remove ``key`` and return its value, or ``default``; a write only if it was there."""
        if dict.__contains__(self, key):
            self.mark_modified()
        return super().pop(key, *default)

    def popitem(self) -> tuple[str, Any]:
        """Remove and return the last inserted item, a write."""
        item = super().popitem()
        self.mark_modified()
        return item

    def setdefault(self, key: str, default: Any = None) -> Any:
        """``session[key]``, first setting it to ``default`` when missing (a write then)."""
        if not dict.__contains__(self, key):
            self.mark_modified()
        return super().setdefault(key, default)

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Set many keys, like ``dict.update``; a write even when nothing is given."""
        self.mark_modified()
        super().update(other, **kwargs)

    def __ior__(self, other: Any) -> Session:  # type: ignore[override,misc]
        self.mark_modified()
        super().update(other)
        return self


class _Manager(SessionManager):
    session_class = Session


class StarletteCookieTransport(CookieTransport):
    """A cookie written exactly as Starlette writes it, with a fixed ``max_age`` (or none)."""

    def __init__(self, signer: TokenSigner, options: CookieOptions, max_age: int | None) -> None:
        super().__init__(signer, options)
        self.max_age = max_age

    def cookie_value(self, commit: Commit) -> str:
        if commit.token is None:
            raise ValueError("a commit that sets the token carries the token")
        return render_set_cookie(
            self.options, self.wrap(commit.token), max_age=self.max_age, style="starlette"
        )

    def response_headers(self, commit: Commit, *, had_token: bool) -> list[tuple[str, str]]:
        if commit.action is CommitAction.SET:
            return [("set-cookie", self.cookie_value(commit))]
        if commit.action is CommitAction.CLEAR and had_token:
            return [("set-cookie", render_delete_cookie(self.options, style="starlette"))]
        return []


def _signer(secret_key: Any) -> TokenSigner:
    key = str(secret_key)  # str or starlette.datastructures.Secret, as Starlette accepts
    if not key:
        raise ConfigurationError("secret_key must not be empty")
    if len(key.encode("utf-8")) < 32:
        # Starlette takes any key, so the drop-in must. The cookie holds only a random 256-bit
        # ID, so the signature is a second line of defence here, not the only one as in
        # Starlette; the short key is stretched to a full-length one and flagged.
        logger.warning("secret_key is shorter than 32 bytes; use a longer random key")
        key = hashlib.sha256(b"sessio.starlette-key:" + key.encode("utf-8")).hexdigest()
    return TokenSigner(key)


def _policy(
    policy: Policy | None, cookie: CookieOptions, max_age: int | None, csrf: bool
) -> Policy:
    if policy is not None:
        return policy.replace(cookie=cookie, transports=("cookie",), csrf=csrf)
    idle = max_age if max_age is not None and max_age > 0 else _DEFAULT_MAX_AGE
    return Policy(
        ttl=None,
        idle_timeout=timedelta(seconds=idle),
        refresh_interval=timedelta(seconds=min(60.0, idle / 4)),
        anonymous_idle_timeout=None,  # max_age binds every session, as Starlette's does
        csrf=csrf,
        cookie=cookie,
        transports=("cookie",),
        capture_ip=False,  # Starlette records nothing about the client; neither does its twin
        capture_user_agent=False,
    )


class SessionMiddleware(asgi.SessionMiddleware):
    """Starlette's ``SessionMiddleware`` signature and behaviour, with the data in a store.

    Takes Starlette's arguments, plus ``store`` (default ``SQLiteStore("sessio.db")``),
    ``policy`` (timeouts, rotation, limits; the cookie always follows the arguments),
    ``csrf`` (off unless given) and ``legacy`` (``"starlette"``: the cookies Starlette's own
    middleware issued with these arguments are imported once, so nobody is logged out; see
    :mod:`sessio.legacy`).
    """

    def __init__(
        self,
        app: ASGIApp,
        secret_key: Any,
        session_cookie: str = "session",
        max_age: int | None = _DEFAULT_MAX_AGE,
        path: str = "/",
        same_site: Literal["lax", "strict", "none"] = "lax",
        https_only: bool = False,
        domain: str | None = None,
        partitioned: bool = False,
        *,
        store: Store | None = None,
        policy: Policy | None = None,
        csrf: CSRFOptions | None = None,
        legacy: LegacyCookie | Literal["starlette"] | None = None,
    ) -> None:
        if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, int)):
            raise ConfigurationError(f"max_age must be int seconds or None, got {max_age!r}")
        cookie = CookieOptions(
            name=session_cookie,
            path=path,
            domain=domain,
            secure=https_only,
            httponly=True,
            samesite=str(same_site).lower(),  # type: ignore[arg-type]  # validated by CookieOptions
            max_age="session" if max_age is None else (max_age if max_age > 0 else None),
            partitioned=partitioned,
        )
        transport = StarletteCookieTransport(_signer(secret_key), cookie, max_age)
        if legacy == "starlette" and max_age is not None and max_age <= 0:
            legacy = None  # Starlette's cookies of such a max_age were expired on arrival
        elif legacy == "starlette":  # Starlette's own cookies, signed with the same arguments
            legacy = StarletteCookie(
                secret_key, session_cookie=session_cookie, max_age=max_age, path=path, domain=domain
            )
        elif legacy is not None and not isinstance(legacy, LegacyCookie):
            raise ConfigurationError('legacy must be "starlette", a sessio.legacy reader, or None')
        super().__init__(
            app,
            manager=_Manager(
                store if store is not None else SQLiteStore("sessio.db"),
                _policy(policy, cookie, max_age, csrf is not None),
            ),
            transports=[transport],
            csrf=csrf,
            legacy=legacy,
        )
        #: Starlette with ``max_age <= 0`` issues cookies that are expired on arrival.
        self._expired_on_arrival = max_age is not None and max_age <= 0

    async def commit(self, session: _session.Session) -> Commit:
        """Commit ``session`` by Starlette's rules of when its cookie is sent or deleted."""
        has_data = dict.__len__(session) > 0  # plain dict length: reading is not "accessing"
        modified = session.modified if isinstance(session, Session) else session.is_modified
        if self._expired_on_arrival:
            action = CommitAction.SET if modified and has_data else CommitAction.NONE
            return Commit(action, session.id, self.manager.clock())  # stored nowhere
        if not session.is_new and not has_data and modified and _bare(session):
            session.destroy()  # Starlette deletes the cookie of a session emptied by the app
        commit = await super().commit(session)
        if commit.action is CommitAction.CLEAR:
            return commit
        # Starlette's rule: the cookie goes out, with a fresh Max-Age, when the app changed the
        # session (mark_modified() included), and only then (a server-side touch on a
        # read-only request stays silent).
        send = modified and (has_data or commit.action is CommitAction.SET)
        if not send:
            return commit if commit.action is CommitAction.NONE else Commit(CommitAction.NONE)
        if commit.token is None:  # nothing to write, yet the app asked for the cookie again
            return Commit(CommitAction.SET, session.id)
        return dataclasses.replace(commit, action=CommitAction.SET)


def _bare(session: _session.Session) -> bool:
    """Nothing but (possibly) a CSRF secret left: no principal, no flash messages."""
    return session.principal is None and not session.has_flash()
