"""The demo's error answers: a friendly page for people in a browser, JSON for the API and scripts.

One rule picks the form: a request under ``/api/``, or one whose ``Accept`` names no HTML (a
script, ``curl``, ``fetch``'s default), gets ``{"error": CODE, "detail": ...}``; a browser on
the shop's pages gets an HTML page in the demo's own style, under the same strict CSP.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from ..errors import CSRFFailed, SessionError, StoreUnavailable
from ..integrations._types import ASGIApp, Scope
from ..session import Session
from .headers import SECURITY_HEADERS
from .templates import render

__all__ = [
    "http_error",
    "server_error",
    "session_error",
    "signed_out_elsewhere",
    "wants_html",
]


@dataclass(frozen=True)
class _Problem:
    """What one error page says."""

    status: int
    code: str
    heading: str
    message: tuple[str, ...]
    links: tuple[tuple[str, str], ...] = (("/", "Back to the shop"),)


_SIGNED_OUT = _Problem(
    403,
    "CSRF_FAILED",
    "You were signed out",
    (
        "Your session ended before this form was sent: you were signed out on another device, "
        "or the session expired. Nothing was changed.",
        "Log in again to carry on.",
    ),
    (("/login", "Log in again"), ("/", "Back to the shop")),
)
_STALE_FORM = _Problem(
    403,
    "CSRF_FAILED",
    "This form has expired",
    (
        "The page you sent it from was out of date, or the form came from another site, so "
        "nothing was done.",
        "Go back, reload the page and try again.",
    ),
)
_STORE_DOWN = _Problem(
    503,
    "STORE_UNAVAILABLE",
    "The shop is briefly unavailable",
    ("It cannot reach its session store right now. Nothing was changed; try again in a moment.",),
)
_NOT_FOUND = _Problem(
    404,
    "NOT_FOUND",
    "No such page",
    ("The address may be mistyped, or the page may have moved.",),
)
_SERVER_ERROR = _Problem(
    500,
    "INTERNAL_ERROR",
    "Something went wrong on our side",
    ("The error has been logged. Nothing you sent was kept; please try again.",),
)


def wants_html(scope: Scope) -> bool:
    """Whether this request is a browser asking for a shop page (not the JSON API, not a script)."""
    path = scope.get("path", "")
    if path == "/api" or path.startswith("/api/"):
        return False
    accept = b", ".join(v for k, v in scope.get("headers", ()) if k.lower() == b"accept")
    return b"text/html" in accept or b"application/xhtml+xml" in accept


def signed_out_elsewhere(scope: Scope) -> bool:
    """Whether the browser brought a genuine session cookie whose session no longer exists.

    The signature on the cookie held, so the demo issued it; the store no longer has it, so
    the session was revoked on another device, evicted by a newer login, or expired. (A forged
    or garbled cookie never verifies and does not count.)
    """
    session = scope.get("session")
    return (
        isinstance(session, Session)
        and session.is_new
        and scope.get("sessio.transport") == "cookie"
    )


def _signed_in(scope: Scope) -> bool:
    session = scope.get("session")
    return isinstance(session, Session) and session.is_authenticated


def _page(scope: Scope, problem: _Problem, headers: dict[str, str] | None = None) -> Response:
    html = render(
        "error.html",
        title=problem.heading,
        status=problem.status,
        code=problem.code,
        heading=problem.heading,
        message=problem.message,
        links=problem.links,
        signed_in=_signed_in(scope),
    )
    return HTMLResponse(html, problem.status, headers)


def _json(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": code, "detail": detail}, status, headers)


def session_error(scope: Scope, error: SessionError) -> ASGIApp:
    """The middleware's ``on_error``: what answers a refused form or a store outage."""
    if not wants_html(scope):
        detail = error.message
        if isinstance(error, StoreUnavailable):
            detail = "the session store is unavailable"  # its cause is for the log
        return _json(error.status_code, error.code, detail)
    if isinstance(error, CSRFFailed):
        return _page(scope, _SIGNED_OUT if signed_out_elsewhere(scope) else _STALE_FORM)
    if isinstance(error, StoreUnavailable):
        return _page(scope, _STORE_DOWN)
    problem = _Problem(error.status_code, error.code, "That did not work", (error.message,))
    return _page(scope, problem)


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's handler for ``HTTPException``: no such page (404), wrong method (405)."""
    if not isinstance(exc, HTTPException):  # Starlette only routes HTTPException here
        raise exc
    headers = dict(exc.headers) if exc.headers else None
    if exc.status_code == 404:
        problem = _NOT_FOUND
    else:
        code = "METHOD_NOT_ALLOWED" if exc.status_code == 405 else f"HTTP_{exc.status_code}"
        problem = _Problem(exc.status_code, code, "That did not work", (exc.detail,))
    if not wants_html(request.scope):
        return _json(problem.status, problem.code, exc.detail, headers)
    return _page(request.scope, problem, headers)


async def server_error(request: Request, exc: Exception) -> Response:
    """Starlette's 500 handler: a calm page (the traceback goes to the server's log only).

    It answers outside every middleware of the app, so it adds the security headers itself.
    """
    headers = {name.decode(): value.decode() for name, value in SECURITY_HEADERS}
    headers["cache-control"] = "no-store"
    problem = _SERVER_ERROR
    if not wants_html(request.scope):
        return _json(problem.status, problem.code, "something went wrong on our side", headers)
    return _page(request.scope, problem, headers)
