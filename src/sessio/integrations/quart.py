"""Quart drop-in: the Flask drop-in's twin, async: ``quart.session`` and ``flash()`` keep
working, with the data on the server and only a signed session ID in the cookie.

::

    from sessio.integrations.quart import SessionInterface

    SessionInterface(store=SQLiteStore("sessions.db")).init_app(app)
    # or: app.session_interface = SessionInterface(store=...)

Everything :mod:`sessio.integrations.flask` promises holds, read from the same ``app.config``
keys by the same code (``SECRET_KEY`` and its fallbacks, ``SESSION_COOKIE_*``,
``PERMANENT_SESSION_LIFETIME``, ``SESSION_REFRESH_EACH_REQUEST``): ``quart.session`` is a
:class:`~sessio.integrations.flask.FlaskSession`, the cookie is Werkzeug's text, an emptied
session's cookie is deleted. What differs is that the store is awaited (an async
:class:`~sessio.SessionManager`), so Redis or PostgreSQL never block the event loop, and that
WebSockets have sessions: loaded at the handshake, CSRF-checked by ``Origin``, and saved when
the WebSocket ends (no cookie can reach the client then). :meth:`SessionInterface.init_app`
also answers sessio's errors as JSON (a store outage 503) and, with ``csrf=CSRFOptions()``,
checks CSRF tokens before each view.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

try:
    import quart
    from quart.sessions import SessionInterface as _QuartSessionInterface
    from quart.sessions import SessionMixin
    from quart.wrappers import BaseRequestWebsocket, Websocket
except ImportError:  # pragma: no cover - exercised only without the extra
    from ..errors import require

    require("quart", "quart")
    raise

from ..codec import Codec
from ..errors import (
    AuthenticationRequired,
    ConfigurationError,
    CSRFFailed,
    PermissionDenied,
    SessionError,
    StoreUnavailable,
)
from ..events import Events
from ..exchange import Answer, Exchange, ReadForm, Request, answer_for
from ..manager import Commit, SessionManager, SyncSessionManager
from ..policy import Policy
from ..principal import Principal
from ..stores.base import Clock, Store
from ..stores.client import ClientSideStore
from ._flask_config import ConfigCache, Settings
from ._flask_rules import DropInSettings, finish, flask_commit, reply
from ._flask_session import FlaskSession, UnavailableSession
from .csrf import CSRFOptions
from .flask import csrf_exempt

__all__ = [
    "QuartSession",
    "SessionInterface",
    "csrf_exempt",
    "current_principal",
    "login_required",
    "role_required",
]

logger = logging.getLogger("sessio.quart")

_CACHE_LIMIT = 32

F = TypeVar("F", bound=Callable[..., Any])


class QuartSession(FlaskSession):
    """``quart.session``: the Flask drop-in's session, with the request it belongs to."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The request's exchange and what the config made of it, set by the interface.
        self.exchange: Exchange[Any] | None = None
        self.config: Settings | None = None


class _QuartManager(SessionManager):
    session_class = QuartSession


def _request(request: BaseRequestWebsocket) -> Request:
    headers = request.headers
    return Request(
        request.method,
        request.path,
        lambda name: headers.getlist(name),
        scheme=request.scheme,
        host=request.host,
        client=request.remote_addr,
        websocket=isinstance(request, Websocket),
    )


class SessionInterface(DropInSettings, _QuartSessionInterface):
    """A Quart ``SessionInterface`` that keeps sessions in a sessio store; the arguments are
    the Flask drop-in's (:class:`sessio.integrations.flask.SessionInterface`)."""

    pickle_based = False

    def __init__(
        self,
        store: Store | ClientSideStore | None = None,
        *,
        policy: Policy | None = None,
        codec: Codec | None = None,
        csrf: CSRFOptions | None = None,
        events: Events | None = None,
        clock: Clock = time.time,
    ) -> None:
        DropInSettings.__init__(
            self, store, policy=policy, codec=codec, csrf=csrf, events=events, clock=clock
        )
        # Quart's get_cookie_* hooks read the same config keys as Flask's: one reader for both.
        self._config = ConfigCache(self)  # type: ignore[arg-type]
        self._managers: dict[SyncSessionManager, SessionManager] = {}

    def __repr__(self) -> str:
        return f"SessionInterface({self.store!r})"

    def init_app(self, app: quart.Quart) -> None:
        """Install this interface on ``app``, answer sessio errors as JSON, and check CSRF."""
        app.session_interface = self  # type: ignore[assignment]  # (Quart types it narrowly)
        app.extensions["sessio"] = self
        app.register_error_handler(SessionError, _escaped)
        if self.csrf is not None:
            app.before_request(self._check_csrf)
            app.before_websocket(self._check_csrf)

    def manager(self, app: quart.Quart | None = None) -> SessionManager:
        """The async manager for ``app``'s current config (default: the current app), for
        ``sessions_of``, ``revoke``, ``revoke_all`` and ``cleanup``."""
        settings = self._settings(app if app is not None else quart.current_app)
        if settings is None:
            raise ConfigurationError("SECRET_KEY is not set")
        return self._manager(settings)

    def _settings(self, app: quart.Quart) -> Settings | None:
        return self._config.settings(app)  # type: ignore[arg-type]

    def _manager(self, settings: Settings) -> SessionManager:
        # The config reader's manager is the sync twin; this is its async one, same policy.
        manager = self._managers.get(settings.manager)
        if manager is None:
            if len(self._managers) >= _CACHE_LIMIT:
                self._managers.clear()
            manager = self._managers[settings.manager] = _QuartManager(
                self.store,
                settings.manager.policy,
                codec=self.codec,
                clock=self.clock,
                events=self.events,
            )
        return manager

    # -- Quart's contract -------------------------------------------------------------------------

    async def open_session(
        self, app: quart.Quart, request: BaseRequestWebsocket
    ) -> SessionMixin | None:
        """Load the session the request's cookie names (a fresh one if none is live)."""
        if self.csrf is not None and app.extensions.get("sessio") is not self:
            raise ConfigurationError("CSRF checks run from init_app(app); call it")
        settings = self._settings(app)
        if settings is None:
            return None  # Quart answers with its NullSession: "no secret key was set"
        exchange = settings.lifecycle.begin(_request(request))
        try:
            session = await self._manager(settings).load(
                exchange.token, ip=exchange.ip, user_agent=exchange.user_agent
            )
        except SessionError as exc:
            logger.warning("session load failed: %s", exc)
            return UnavailableSession(exc)
        exchange.loaded(session)
        if not isinstance(session, QuartSession):
            raise ConfigurationError("the manager must build QuartSession sessions")
        session.exchange, session.config = exchange, settings
        return session

    async def save_session(self, app: quart.Quart, session: SessionMixin, response: Any) -> None:
        """Commit the session, then set, refresh or delete the cookie as Flask would; after a
        WebSocket (``response`` is ``None``) save what changed, silently."""
        if not isinstance(session, QuartSession):
            return
        exchange, settings = session.exchange, session.config
        if exchange is None or settings is None:
            return
        manager = self._manager(settings)
        if response is None:
            if session.is_modified:
                try:
                    await manager.commit(session)
                except SessionError as exc:
                    logger.warning("session commit failed after a WebSocket: %s", exc)
            return
        status = response.status_code
        permanent = bool(dict.get(session, "_permanent", False))
        transport = settings.permanent if permanent else settings.browser
        commit = None
        if exchange.start(status):  # (a 5xx commits nothing: see sessio.exchange)
            try:
                commit = await self._commit(app, session, manager, permanent)
            except SessionError as exc:
                reply(exchange.answer(exc), response)
                return
        finish(exchange, response, commit, transport)

    async def _commit(
        self, app: quart.Quart, session: QuartSession, manager: SessionManager, permanent: bool
    ) -> Commit:
        """Commit ``session`` by Flask's rules of when its cookie goes out (those of
        :meth:`sessio.integrations.flask.SessionInterface._commit`, through public names)."""
        touch_only = not session.is_modified
        modified = session.modified  # the app's own flag, else what sessio recorded
        session.modified = modified  # what the app saw stays visible after the commit
        if modified and not session.is_new and _holds_nothing(session):
            session.destroy()  # Flask deletes an emptied session's cookie; we drop the record too
        commit = await manager.commit(session)
        return flask_commit(
            commit,
            session_id=session.id,
            created_at=session.meta.created_at,
            expires_at=session.expires_at.timestamp(),
            is_new=session.is_new,
            touch_only=touch_only,
            modified=modified,
            refresh=modified or (permanent and app.config["SESSION_REFRESH_EACH_REQUEST"]),
            sealed=manager.seals_tokens,
            policy=manager.policy,
            now=manager.clock(),
        )

    async def _check_csrf(self) -> None:
        options = self.csrf
        connection: BaseRequestWebsocket = (
            quart.websocket if quart.has_websocket_context() else quart.request
        )
        if options is None:
            return
        view = quart.current_app.view_functions.get(connection.endpoint or "")
        if getattr(view, "_sessio_csrf_exempt", False):
            return
        session: Any = quart.session
        if isinstance(session, UnavailableSession):
            session.fail()
        if not isinstance(session, QuartSession) or session.exchange is None:
            raise CSRFFailed("no session to check the CSRF token against")
        exchange = session.exchange
        verdict = exchange.csrf()
        if isinstance(verdict, ReadForm) and isinstance(connection, quart.Request):
            length = connection.content_length
            if length is None or length <= verdict.limit:  # Quart parses the form; the app
                form = await connection.form  # reads it again, from Quart's cache
                verdict = exchange.form_field(form.get(options.field_name))
            else:
                verdict = exchange.form(None)
        if isinstance(verdict, Answer):
            raise verdict.error  # (the event is out) @app.errorhandler(CSRFFailed) may answer


def current_principal() -> Principal | None:
    """The principal logged in to ``quart.session``, or ``None`` (also without sessions)."""
    session: Any = quart.session
    if isinstance(session, UnavailableSession):
        session.fail()
    return session.principal if isinstance(session, QuartSession) else None


def login_required(view: F) -> F:
    """Answer 401 ``{"error": "AUTHENTICATION_REQUIRED"}`` unless a principal is logged in."""
    return _guard(())(view)


def role_required(*roles: str) -> Callable[[F], F]:
    """Like :func:`login_required`, and answer 403 ``{"error": "PERMISSION_DENIED"}`` unless
    the principal holds every one of ``roles`` (the Flask drop-in's, awaited)."""
    if not roles or any(not isinstance(r, str) or not r for r in roles):
        raise ConfigurationError("role_required() takes one or more role names")
    return _guard(roles)


def _guard(roles: tuple[str, ...]) -> Callable[[F], F]:
    def decorate(view: F) -> F:
        @functools.wraps(view)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if principal is None:
                return _json(AuthenticationRequired("this page needs a logged-in session"))
            if roles and not principal.has_role(*roles):
                missing = sorted(set(roles) - principal.roles)
                return _json(PermissionDenied(f"missing role(s): {', '.join(missing)}"))
            return await quart.current_app.ensure_async(view)(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def _json(error: SessionError) -> Any:
    session: Any = quart.session
    exchange = session.exchange if isinstance(session, QuartSession) else None
    answer = exchange.answer(error) if exchange is not None else answer_for(error)
    response = quart.current_app.response_class(b"")
    reply(answer, response)
    return response


def _holds_nothing(session: QuartSession) -> bool:
    # No data, no principal, no flash message left for the next page.
    return not dict.__len__(session) and session.principal is None and not session.has_flash()


async def _escaped(error: SessionError) -> Any:
    """The error handler :meth:`SessionInterface.init_app` registers: a client error or an
    outage is answered with its JSON; a programming error goes on to Quart's own 500."""
    session: Any = quart.session
    exchange = session.exchange if isinstance(session, QuartSession) else None
    answer = exchange.escaped(error) if exchange is not None else None
    if answer is None:
        if exchange is not None or (
            error.status_code >= 500 and not isinstance(error, StoreUnavailable)
        ):
            raise error
        answer = answer_for(error)
    response = quart.current_app.response_class(b"")
    reply(answer, response)
    return response
