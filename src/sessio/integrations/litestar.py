"""Litestar: a session config that goes where Litestar's ``ServerSideSessionConfig`` goes.

::

    # from litestar.middleware.session.server_side import ServerSideSessionConfig
    # app = Litestar(route_handlers, middleware=[ServerSideSessionConfig().middleware])
    from sessio.integrations.litestar import SessionConfig

    config = SessionConfig(store=SQLiteStore("sessions.db"), secret_key=SECRET)
    app = Litestar(route_handlers, middleware=[config.middleware])

``request.session`` (and a WebSocket's ``socket.session``) is a sessio
:class:`~sessio.Session`, a ``dict`` with ``flash``, ``login`` and ``csrf_token``;
``request.set_session(data)`` replaces its data (a ``dict``, or any data container Litestar's
serializer turns into one) and ``request.clear_session()`` ends it (the record is deleted and
the cookie cleared). Litestar's ``exclude``, ``exclude_opt_key`` (``opt={"skip_session":
True}`` on a route) and ``scopes`` keep their meaning.

Everything else is :class:`sessio.integrations.asgi.SessionMiddleware`, the exchange's ASGI
plumbing, unchanged: the commit before the response starts, CSRF on unsafe methods of cookie
sessions (render ``{{ request.session.csrf_token }}`` in a ``csrf_token`` field or send
``X-CSRF-Token``), the principal index (:func:`get_manager` lists and revokes a user's
sessions), 503 JSON on a store outage, and WebSockets committed at accept and close. This
module only turns what ``set_session``/``clear_session`` left in the scope into changes of
the loaded session before the response starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

try:
    from litestar.connection import ASGIConnection, Request
    from litestar.enums import ScopeType
    from litestar.middleware import ASGIMiddleware
    from litestar.response import Response
    from litestar.serialization import decode_json, encode_json
    from litestar.types import ASGIApp, Empty, Message, Receive, Scope, Scopes, Send
    from litestar.utils import get_serializer_from_scope
except ImportError:  # pragma: no cover - exercised only without the extra
    from ..errors import require

    require("litestar", "litestar")
    raise

from ..errors import ConfigurationError, SessionError, StoreUnavailable
from ..exchange import DEFAULT_CSRF, Answer, Lifecycle, answer_for
from ..manager import SessionManager
from ..policy import Policy
from ..session import Session
from ..stores.base import Store
from ..stores.client import ClientSideStore
from ..transports.base import SecretLike, Transport
from . import asgi
from .csrf import CSRFOptions

__all__ = ["SessionConfig", "SessionMiddleware", "get_manager"]

# The messages before which the scope's session must be the loaded one again.
_COMMIT_POINTS = frozenset({"http.response.start", "websocket.accept", "websocket.close"})


def get_manager(connection: ASGIConnection[Any, Any, Any, Any]) -> SessionManager:
    """The :class:`~sessio.SessionManager` serving ``connection`` (a request or WebSocket)."""
    return asgi.get_manager(connection.scope)  # type: ignore[arg-type]


@dataclasses.dataclass(frozen=True, kw_only=True, eq=False)
class SessionConfig:
    """sessio's session middleware for Litestar; put :attr:`middleware` in ``middleware=``.

    ``store`` (and ``policy``, default :meth:`Policy.web`) or a ready ``manager``,
    ``secret_key``, ``transports``, ``csrf``, ``trust_forwarded`` and ``on_error`` are those of
    :class:`sessio.integrations.asgi.SessionMiddleware` (``on_error(scope, error)`` returns an
    ASGI app, e.g. Litestar's ``ASGIResponse``). ``exclude`` (regular expressions),
    ``exclude_opt_key`` and ``scopes`` are Litestar's. The manager is built once, here, and
    shared by every route's middleware.
    """

    store: Store | ClientSideStore | None = None
    secret_key: SecretLike | None = dataclasses.field(default=None, repr=False)
    policy: Policy | None = None
    manager: SessionManager | None = None
    transports: Sequence[Transport] | None = None
    csrf: CSRFOptions | None = DEFAULT_CSRF
    trust_forwarded: bool = False
    on_error: asgi.ErrorHandler | None = None
    exclude: str | list[str] | None = None
    exclude_opt_key: str = "skip_session"
    scopes: Scopes = dataclasses.field(
        default_factory=lambda: {ScopeType.HTTP, ScopeType.WEBSOCKET}
    )

    def __post_init__(self) -> None:
        # Checked (and the manager and transports built) once, not per route.
        lifecycle: Lifecycle[SessionManager, asgi.ErrorHandler] = Lifecycle.configure(
            SessionManager,
            store=self.store,
            secret_key=self.secret_key,
            policy=self.policy,
            manager=self.manager,
            transports=self.transports,
            csrf=self.csrf,
            trust_forwarded=self.trust_forwarded,
            on_error=self.on_error,
        )
        object.__setattr__(self, "_lifecycle", lifecycle)

    @property
    def lifecycle(self) -> Lifecycle[SessionManager, asgi.ErrorHandler]:
        """The checked configuration every route's middleware shares."""
        lifecycle: Lifecycle[SessionManager, asgi.ErrorHandler] = self.__dict__["_lifecycle"]
        return lifecycle

    @property
    def exception_handlers(self) -> dict[type[Exception], Any]:
        """For ``Litestar(exception_handlers=...)``: a :class:`~sessio.errors.SessionError`
        raised by a handler (``AuthenticationRequired``, ``PermissionDenied``, a store outage)
        is answered with its status and JSON, as the middleware answers its own; any other
        goes on to Litestar's 500. (Litestar catches a handler's exceptions before any
        middleware sees them, so this is how they reach the exchange's rule.)"""
        return {SessionError: _answer_escaped}

    @property
    def middleware(self) -> SessionMiddleware:
        """The entry for Litestar's ``middleware=[...]`` (as ``ServerSideSessionConfig``'s)."""
        return SessionMiddleware(self)


class SessionMiddleware(ASGIMiddleware):
    """Litestar's view of :class:`sessio.integrations.asgi.SessionMiddleware`: Litestar skips
    it by ``exclude``, ``exclude_opt_key`` and ``scopes``; the ASGI middleware, built once per
    route, does the rest."""

    def __init__(self, config: SessionConfig) -> None:
        if not isinstance(config, SessionConfig):
            raise ConfigurationError("SessionMiddleware takes a sessio SessionConfig")
        self.config = config
        exclude = config.exclude
        # (None, not an empty tuple: Litestar reads that as a pattern matching every path.)
        self.exclude_path_pattern = (
            (exclude,) if isinstance(exclude, str) else (tuple(exclude) if exclude else None)
        )
        self.exclude_opt_key = config.exclude_opt_key
        self.scopes = tuple(config.scopes)
        self._routes: dict[ASGIApp, asgi.SessionMiddleware] = {}

    def __call__(self, app: ASGIApp) -> ASGIApp:
        """The middleware around one route's ``app`` (Litestar calls this once per route, at
        startup): the sessio middleware for it is built here, and found again by
        :meth:`handle` (a bypassed request goes to ``app`` itself)."""
        lifecycle = self.config.lifecycle
        self._routes[app] = asgi.SessionMiddleware(
            _Reconcile(app),
            manager=lifecycle.manager,
            transports=lifecycle.transports,
            csrf=lifecycle.csrf,
            trust_forwarded=lifecycle.trust_forwarded,
            on_error=lifecycle.on_error,
        )
        return super().__call__(app)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        """Past Litestar's exclusions: the route's sessio middleware takes the connection."""
        await self._routes[next_app](scope, receive, send)  # type: ignore[arg-type]


class _Reconcile:
    """The app, inside the ASGI middleware: before the response starts (and at a WebSocket's
    close), what ``set_session``/``clear_session`` put in the scope becomes a change of the
    loaded session, and the scope holds that session again."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        loaded = scope.get("session")
        if not isinstance(loaded, Session):
            await self.app(scope, receive, send)
            return

        async def reconciling(message: Message) -> None:
            if message["type"] in _COMMIT_POINTS:
                _reconcile(scope, loaded)
            await send(message)

        await self.app(scope, receive, reconciling)
        _reconcile(scope, loaded)


def _reconcile(scope: Scope, loaded: Session) -> None:
    current = scope.get("session")
    if current is loaded:
        return
    scope["session"] = loaded
    if current is None or current is Empty:  # clear_session()
        loaded.destroy()
        return
    if loaded.is_destroyed:
        return  # (a second commit point after clear_session: nothing left to change)
    if isinstance(current, Mapping):
        data = dict(current)
    else:  # a data container (dataclass, pydantic, msgspec...): Litestar's serializer reads it
        data = decode_json(encode_json(current, get_serializer_from_scope(scope)))
    if not isinstance(data, dict):
        raise ConfigurationError(f"set_session() takes a mapping, got {type(current).__name__}")
    loaded.clear()
    loaded.update(data)


def _answer_escaped(request: Request[Any, Any, Any], error: SessionError) -> Response[bytes]:
    # The exchange's rule for an error escaping the app: a client error or an outage is
    # answered; a programming error is not dressed as one.
    if error.status_code >= 500 and not isinstance(error, StoreUnavailable):
        raise error
    answer: Answer[None] = answer_for(error)
    return Response(answer.body, status_code=answer.status, headers=dict(answer.headers))
