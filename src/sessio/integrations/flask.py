"""Flask drop-in: ``app.session_interface = SessionInterface(store=...)`` and ``flask.session``
keeps working, with the data on the server and only a signed session ID in the cookie.

::

    from sessio.integrations.flask import SessionInterface, login_required

    SessionInterface(store=SQLiteStore("sessions.db")).init_app(app)

Flask's contract is kept: ``flask.session`` is a :class:`FlaskSession` (a sessio
:class:`~sessio.Session` with ``permanent``, ``new``, ``modified`` and ``accessed``),
``flash()``/``get_flashed_messages()`` work unchanged, ``SESSION_COOKIE_*``,
``SESSION_REFRESH_EACH_REQUEST``, ``PERMANENT_SESSION_LIFETIME``, ``SECRET_KEY`` and
``SECRET_KEY_FALLBACKS`` are read from ``app.config`` on every request, and Flask's tagged
types (tuple, bytes, ``Markup``, UUID, datetime) round-trip through the store.

``PERMANENT_SESSION_LIFETIME`` is the server-side idle timeout of every session (Flask's
signed cookie expires the same way); a permanent session's cookie carries the matching
``Expires``, any other is a browser-session cookie the server still expires on its own clock.

:meth:`SessionInterface.init_app` (rather than the bare assignment) also answers sessio's
errors as JSON (``StoreUnavailable`` 503, ...) and, with ``csrf=CSRFOptions()``, checks CSRF
tokens on unsafe methods in a ``before_request`` hook: render ``{{ session.csrf_token }}`` in
a ``csrf_token`` form field or send it as ``X-CSRF-Token``; :func:`csrf_exempt` spares a view.
A refusal raises :class:`~sessio.errors.CSRFFailed` (403 JSON), so
``@app.errorhandler(CSRFFailed)`` can render a friendly page instead.

The cookie is written in Werkzeug's words, so an emptied session is deleted with Flask's own
``session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; ...``. The request's other
decisions are :mod:`sessio.exchange`'s, as on the ASGI and WSGI middlewares: a 5xx response
commits nothing and sends no cookie (Flask's own interface would send it), ``Vary: Cookie``
follows every read, and a cookie never rides a response a shared cache may store.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

try:
    import flask
    from flask.sessions import SessionInterface as _FlaskSessionInterface
    from flask.sessions import SessionMixin
except ImportError:  # pragma: no cover - exercised only without the extra
    from ..errors import require

    require("flask", "flask")
    raise

from ..codec import Codec
from ..errors import (
    AuthenticationRequired,
    ConfigurationError,
    CSRFFailed,
    PermissionDenied,
    SessionError,
)
from ..events import Events
from ..exchange import Answer, Exchange, ReadForm, answer_for
from ..manager import Commit, SyncSessionManager
from ..policy import Policy
from ..principal import Principal
from ..session import Session
from ..stores.base import Clock, Store
from ..stores.client import ClientSideStore
from ._flask_config import ConfigCache, Settings
from ._flask_rules import DropInSettings, finish, flask_commit, reply
from ._flask_session import MARKUP_TAG, FlaskSession, UnavailableSession
from .csrf import SAFE_METHODS, CSRFOptions
from .wsgi import environ_request

__all__ = [
    "MARKUP_TAG",
    "FlaskSession",
    "SessionInterface",
    "csrf_exempt",
    "current_principal",
    "login_required",
    "role_required",
]

logger = logging.getLogger("sessio.flask")

F = TypeVar("F", bound=Callable[..., Any])


class SessionInterface(DropInSettings, _FlaskSessionInterface):
    """A Flask ``SessionInterface`` that keeps sessions in a sessio store.

    * ``store`` -- default ``SQLiteStore("sessio.db")`` in the working directory. A client-side
      store (``SignedCookieStore``, ``EncryptedCookieStore``, ``JWTStore``) puts the whole
      session in the cookie instead, sealed with the store's own keys.
    * ``policy`` -- everything but the idle timeout (``PERMANENT_SESSION_LIFETIME`` replaces
      it) and the cookie (``SESSION_COOKIE_*``), which come from ``app.config``; e.g.
      ``Policy(ttl=timedelta(hours=12))`` adds an absolute limit. The default has none, like
      Flask.
    * ``codec`` -- value encoding; :data:`MARKUP_TAG` is always added.
    * ``csrf`` -- check CSRF tokens on unsafe methods (needs :meth:`init_app`, and
      ``policy.csrf``); off by default, as in Flask.
    * ``events`` -- shared by every manager this interface builds.

    The ``get_cookie_*`` hooks of Flask's interface are honoured, so a subclass can override
    them as with Flask's own. Behind a proxy, Werkzeug's ``ProxyFix`` gives the client address
    (recorded in the session's metadata) and the scheme and host (CSRF origin check).
    """

    session_class = FlaskSession
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
        self._config = ConfigCache(self)

    def __repr__(self) -> str:
        return f"SessionInterface({self.store!r})"

    # -- setup ----------------------------------------------------------------------------------

    def init_app(self, app: flask.Flask) -> None:
        """Install this interface on ``app``, answer sessio errors as JSON, and check CSRF."""
        app.session_interface = self
        app.extensions["sessio"] = self
        app.register_error_handler(SessionError, _escaped)
        if self.csrf is not None:
            app.before_request(self._check_csrf)

    def manager(self, app: flask.Flask | None = None) -> SyncSessionManager:
        """The manager for ``app``'s current config (default: the current app), for
        ``sessions_of``, ``revoke``, ``revoke_all`` and ``cleanup``."""
        app = app if app is not None else flask.current_app
        settings = self._settings(app)
        if settings is None:
            raise ConfigurationError("SECRET_KEY is not set")
        return settings.manager

    def _settings(self, app: flask.Flask) -> Settings | None:
        return self._config.settings(app)

    # -- Flask's contract -------------------------------------------------------------------------

    def open_session(self, app: flask.Flask, request: flask.Request) -> SessionMixin | None:
        """Load the session the request's cookie names (a fresh one if none is live)."""
        if self.csrf is not None and app.extensions.get("sessio") is not self:
            raise ConfigurationError("CSRF checks run from init_app(app); call it")
        settings = self._settings(app)
        if settings is None:
            return None  # Flask answers with its NullSession: "no secret key was set"
        environ = request.environ
        exchange = settings.lifecycle.begin(environ_request(environ))
        environ[_EXCHANGE_KEY] = exchange
        try:
            session = settings.manager.load(
                exchange.token, ip=exchange.ip, user_agent=exchange.user_agent
            )
        except SessionError as exc:
            logger.warning("session load failed: %s", exc)
            return UnavailableSession(exc)
        exchange.loaded(session)
        flask_session = cast(FlaskSession, session)  # the manager's session_class
        flask_session._settings = settings  # the config is read once per request, here
        return flask_session

    def save_session(
        self, app: flask.Flask, session: SessionMixin, response: flask.Response
    ) -> None:
        """Commit the session, then set, refresh or delete the cookie as Flask would."""
        if not isinstance(session, FlaskSession):
            return
        settings = session._settings
        if not isinstance(settings, Settings):  # not opened by this interface
            settings = self._settings(app)
            if settings is None:
                return
        exchange = _exchange(settings, session)
        status = response.status_code
        permanent = bool(dict.get(session, "_permanent", False))
        transport = settings.permanent if permanent else settings.browser
        commit = None
        if exchange.start(status):  # (a 5xx commits nothing: see sessio.exchange)
            try:
                commit = self._commit(app, session, settings.manager, permanent)
            except SessionError as exc:
                reply(exchange.answer(exc), response)
                return
        finish(exchange, response, commit, transport)

    def _commit(
        self,
        app: flask.Flask,
        session: FlaskSession,
        manager: SyncSessionManager,
        permanent: bool,
    ) -> Commit:
        """Commit ``session`` by Flask's rules of when its cookie goes out."""
        touch_only = not session.is_modified  # nothing to write but, maybe, a later expiry
        flag = session._modified_flag  # set by the app (session.modified = True), or None
        # What the app saw stays visible after the commit.
        session._modified_flag = modified = (not touch_only) if flag is None else flag
        if modified and not session.is_new and session._holds_nothing():
            session.destroy()  # Flask deletes an emptied session's cookie; we drop the record too
        commit = manager.commit(session)
        return flask_commit(
            commit,
            session_id=session.id,
            created_at=session.meta.created_at,
            expires_at=session._expires_at,  # (the float behind expires_at)
            is_new=session.is_new,
            touch_only=touch_only,
            modified=modified,
            refresh=modified or (permanent and app.config["SESSION_REFRESH_EACH_REQUEST"]),
            sealed=manager.seals_tokens,
            policy=manager.policy,
            now=manager.clock(),
        )

    # -- CSRF -------------------------------------------------------------------------------------

    def _check_csrf(self) -> None:
        options = self.csrf
        request = flask.request
        if options is None or request.method in SAFE_METHODS:
            return
        view = flask.current_app.view_functions.get(request.endpoint or "")
        if getattr(view, "_sessio_csrf_exempt", False):
            return
        session: Any = flask.session
        if isinstance(session, UnavailableSession):
            session.fail()
        exchange = request.environ.get(_EXCHANGE_KEY)
        if not isinstance(session, Session) or not isinstance(exchange, Exchange):
            raise CSRFFailed("no session to check the CSRF token against")
        verdict = exchange.csrf()
        if isinstance(verdict, ReadForm):  # Werkzeug parses the form; the app reads it again
            length = request.content_length
            if length is None or length <= verdict.limit:
                verdict = exchange.form_field(request.form.get(options.field_name))
            else:
                verdict = exchange.form(None)
        if isinstance(verdict, Answer):
            raise verdict.error  # (the event is out) @app.errorhandler(CSRFFailed) may answer


_EXCHANGE_KEY = "sessio.exchange"


def _exchange(settings: Settings, session: Session) -> Exchange[Any]:
    """The request's exchange (opened with its session, or now if another opened that)."""
    environ = flask.request.environ
    exchange = environ.get(_EXCHANGE_KEY)
    if not isinstance(exchange, Exchange):
        exchange = environ[_EXCHANGE_KEY] = settings.lifecycle.begin(environ_request(environ))
        exchange.loaded(session)
    return exchange


# -- responses --------------------------------------------------------------------------------------


def _json(error: SessionError) -> flask.Response:
    """A new response answering ``error`` as every integration does (:mod:`sessio.exchange`)."""
    exchange = flask.request.environ.get(_EXCHANGE_KEY) if flask.has_request_context() else None
    answer = exchange.answer(error) if isinstance(exchange, Exchange) else answer_for(error)
    response = flask.current_app.response_class()
    reply(answer, response)
    return response


def _escaped(error: SessionError) -> flask.Response:
    """The error handler :meth:`SessionInterface.init_app` registers: a client error or an
    outage is answered with its JSON; a programming error goes on to Flask's own 500."""
    exchange = flask.request.environ.get(_EXCHANGE_KEY)
    answer = exchange.escaped(error) if isinstance(exchange, Exchange) else None
    if answer is None:
        if isinstance(exchange, Exchange) or error.status_code >= 500:
            raise error
        answer = answer_for(error)
    response = flask.current_app.response_class()
    reply(answer, response)
    return response


# -- view helpers -----------------------------------------------------------------------------------


def current_principal() -> Principal | None:
    """The principal logged in to ``flask.session``, or ``None`` (also without sessions)."""
    session: Any = flask.session
    if isinstance(session, UnavailableSession):
        session.fail()
    return session.principal if isinstance(session, Session) else None


def login_required(view: F) -> F:
    """Answer 401 ``{"error": "AUTHENTICATION_REQUIRED"}`` unless a principal is logged in."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_principal() is None:
            return _json(AuthenticationRequired("this page needs a logged-in session"))
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def role_required(*roles: str) -> Callable[[F], F]:
    """Like :func:`login_required`, and answer 403 ``{"error": "PERMISSION_DENIED"}`` unless
    the principal holds every one of ``roles``."""
    if not roles or any(not isinstance(r, str) or not r for r in roles):
        raise ConfigurationError("role_required() takes one or more role names")

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = current_principal()
            if principal is None:
                return _json(AuthenticationRequired("this page needs a logged-in session"))
            if not principal.has_role(*roles):
                missing = sorted(set(roles) - principal.roles)
                return _json(PermissionDenied(f"missing role(s): {', '.join(missing)}"))
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def csrf_exempt(view: F) -> F:
    """Spare ``view`` the CSRF check (a webhook authenticated some other way)."""
    view._sessio_csrf_exempt = True  # type: ignore[attr-defined]
    return view
