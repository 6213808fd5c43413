"""FastAPI helpers: the session as a dependency, route guards, and JSON answers for session errors.

With :class:`~sessio.integrations.asgi.SessionMiddleware` installed::

    app = FastAPI()
    app.add_middleware(SessionMiddleware, store=SQLiteStore("sessions.db"), secret_key=SECRET)
    install_error_handlers(app)

    @app.get("/cart")
    def cart(session: SessionDep) -> list[str]:
        return session.get("cart", [])

    @app.get("/admin", dependencies=[Depends(require_role("admin"))])
    def admin() -> str: ...

Guards raise :class:`~sessio.errors.AuthenticationRequired` (401) and
:class:`~sessio.errors.PermissionDenied` (403); they answer as JSON
``{"error": "AUTHENTICATION_REQUIRED" | "PERMISSION_DENIED", "detail": ...}``, through
:func:`install_error_handlers` or, without it, through the middleware itself.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any, cast

from .._session_time import fresh_seconds, require_fresh
from ..errors import (
    AuthenticationRequired,
    ConfigurationError,
    PermissionDenied,
    SessionError,
    StoreUnavailable,
    require,
)
from ..exchange import Answer, answer_for
from ..principal import Principal
from ..session import Session
from . import asgi

try:
    from fastapi import Depends
    from starlette.applications import Starlette
    from starlette.requests import HTTPConnection
    from starlette.responses import Response
    from starlette.websockets import WebSocket
except ImportError:  # pragma: no cover - exercised only without the extra
    require("fastapi", "fastapi")  # raises MissingDependency with the pip line that fixes it
    raise

__all__ = [
    "PrincipalDep",
    "SessionDep",
    "get_session",
    "install_error_handlers",
    "require_auth",
    "require_fresh_login",
    "require_role",
]


def get_session(connection: HTTPConnection) -> Session:
    """The connection's session, for ``Depends`` (HTTP and WebSocket routes alike)."""
    return asgi.get_session(connection.scope)


#: ``session: SessionDep`` in a route's parameters receives the session.
SessionDep = Annotated[Session, Depends(get_session)]


def require_auth(session: SessionDep) -> Principal:
    """The logged-in principal, or :class:`~sessio.errors.AuthenticationRequired` (401)."""
    principal = session.principal
    if principal is None:
        raise AuthenticationRequired("this route needs a logged-in session")
    return principal


#: ``user: PrincipalDep`` receives the logged-in principal (401 without one).
PrincipalDep = Annotated[Principal, Depends(require_auth)]


def require_role(*roles: str) -> Callable[[Session], Principal]:
    """A dependency that passes principals holding every one of ``roles``.

    401 without a login, 403 (:class:`~sessio.errors.PermissionDenied`) without a role; the
    principal is returned, so ``Annotated[Principal, Depends(require_role("admin"))]`` works.
    """
    if not roles or not all(isinstance(r, str) and r for r in roles):
        raise ConfigurationError("require_role() takes one or more role names")
    wanted = frozenset(roles)

    def role_guard(session: SessionDep) -> Principal:
        principal = require_auth(session)
        missing = sorted(wanted - principal.roles)
        if missing:
            raise PermissionDenied("the principal lacks a role this route needs", missing=missing)
        return principal

    role_guard.__qualname__ = f"require_role({', '.join(map(repr, sorted(wanted)))})"
    return role_guard


def require_fresh_login(max_age: timedelta | float) -> Callable[[Session], Principal]:
    """A dependency that passes principals who signed in within ``max_age`` (a timedelta or
    seconds): 401 without a login, 401 ``REAUTHENTICATION_REQUIRED`` (with ``max_age`` in the
    body) for an older one. ``Depends(require_fresh_login(timedelta(minutes=5)))``."""
    seconds = fresh_seconds(max_age)

    def fresh_guard(session: SessionDep) -> Principal:
        return require_fresh(session, session.principal, seconds)

    fresh_guard.__qualname__ = f"require_fresh_login({seconds:g})"
    return fresh_guard


async def _handle(connection: HTTPConnection, exc: Exception) -> Response | None:
    if not isinstance(exc, SessionError):  # registered for SessionError only; be exact anyway
        raise exc
    if exc.status_code >= 500 and not isinstance(exc, StoreUnavailable):
        raise exc  # a programming error is not dressed as an answer (sessio.exchange's rule)
    if isinstance(connection, WebSocket):
        await connection.close(code=1008, reason=exc.code)
        return None
    answer: Answer[None] = answer_for(exc)
    return Response(answer.body, answer.status, headers=dict(answer.headers))


def install_error_handlers(app: Starlette) -> None:
    """Answer a :class:`~sessio.errors.SessionError` a route raises, when it is a client error
    or a store outage, with its ``status_code`` and JSON ``to_dict()``, as the middleware does
    (WebSockets are closed with code 1008); any other goes on to the server's 500."""
    app.add_exception_handler(SessionError, cast(Any, _handle))
