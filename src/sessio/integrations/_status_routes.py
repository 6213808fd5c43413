"""The session status and refresh routes, framework-free: what each answers, for every integration.

A single-page app asks ``GET`` the status route how long its session has left and for a CSRF
token, and ``POST`` s the refresh route to keep an idle session alive; both answer the same
JSON, ``{authenticated, user, expires_in, idle_expires_in, csrf_token}`` (seconds, ``null``
without a live session, ``idle_expires_in`` ``null`` without an idle timeout). The routes read
the token through the lifecycle's transports, as the middleware does, and run outside it (list
their paths in the middleware's ``exclude_paths``): a status poll must not count as activity,
so it creates, touches and writes nothing (:meth:`~sessio.SessionManager.status`). The refresh
route is a request like the middleware's, CSRF check included, whose commit pushes the idle
expiry (once per ``refresh_interval``, the granularity the policy records activity at) and
re-sends the cookie whenever its lifetime moved.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from ..errors import ConfigurationError, SessionError
from ..exchange import UNTOUCHED, Answer, Exchange, Lifecycle, ReadForm, Request
from ..manager import Commit, SessionManager, SyncSessionManager
from ..session import Session
from ..status import SessionStatus
from ..transports.base import Transport

__all__ = [
    "Reply",
    "refresh_async",
    "refresh_sync",
    "require_csrf",
    "status_async",
    "status_sync",
    "unshared",
]

_JSON = ("content-type", "application/json")
#: A session's state is one visitor's: no cache may keep it.
_NO_STORE = ("cache-control", "no-store")


class Reply(NamedTuple):
    """A finished answer: status, headers and JSON body, for the framework to send."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def unshared(in_middleware: bool) -> None:
    """Refuse to answer under the session middleware, which would load and touch the session."""
    if in_middleware:
        raise ConfigurationError(
            "the session status routes run outside SessionMiddleware: add their paths to its "
            "exclude_paths (a status poll must not count as activity)"
        )


def require_csrf(lifecycle: Lifecycle[Any, Any]) -> None:
    """Refuse a refresh route that would take unsafe requests without a CSRF check."""
    if lifecycle.csrf is None:
        raise ConfigurationError(
            "the session refresh route is CSRF-protected: give csrf=CSRFOptions() and keep "
            "policy.csrf on"
        )


def status_body(status: SessionStatus) -> dict[str, Any]:
    """The JSON of a :class:`~sessio.SessionStatus`."""
    if not status.is_live:
        return _body(False, None, None, None, None)
    principal = status.principal
    return _body(
        status.authenticated,
        None if principal is None else principal.id,
        status.remaining,
        status.idle_remaining,
        status.csrf_token,
    )


def session_body(manager: SessionManager | SyncSessionManager, session: Session) -> dict[str, Any]:
    """The same JSON for a session this request loaded and committed."""
    if session.is_new or session.is_destroyed:
        return _body(False, None, None, None, None)  # nothing stored: nothing to report
    policy, principal = manager.policy, session.principal
    anonymous = not manager.seals_tokens and principal is None and not dict.__len__(session)
    idle = policy.anonymous_idle_seconds if anonymous else policy.idle_seconds
    idle_left = None
    if idle is not None:  # the slack of Policy.expires_at: never early
        idle_left = session.meta.last_seen + idle + policy.refresh_seconds - manager.clock()
    return _body(
        principal is not None,
        None if principal is None else principal.id,
        session.remaining.total_seconds(),
        idle_left,
        session.csrf_token,
    )


def _body(
    authenticated: bool,
    user: str | None,
    expires_in: float | None,
    idle_expires_in: float | None,
    csrf_token: str | None,
) -> dict[str, Any]:
    return {
        "authenticated": authenticated,
        "user": user,
        "expires_in": None if expires_in is None else max(0, int(expires_in)),
        "idle_expires_in": None if idle_expires_in is None else max(0, int(idle_expires_in)),
        "csrf_token": csrf_token,
    }


def _json(body: dict[str, Any], lifecycle: Lifecycle[Any, Any]) -> Reply:
    headers = [_JSON, _NO_STORE]
    if lifecycle.fresh_vary:
        headers.append(("vary", lifecycle.fresh_vary))
    return Reply(200, headers, json.dumps(body).encode())


def _answer(answer: Answer[Any]) -> Reply:
    return Reply(answer.status, list(answer.headers), answer.body)


# -- status: one read, no write ----------------------------------------------------------------------


async def status_async(lifecycle: Lifecycle[SessionManager, Any], request: Request) -> Reply:
    """``GET`` the status route, on the async manager."""
    exchange = lifecycle.begin(request)
    try:
        status = await lifecycle.manager.status(exchange.token)
    except SessionError as exc:
        return _answer(exchange.answer(exc))
    return _json(status_body(status), lifecycle)


def status_sync(lifecycle: Lifecycle[SyncSessionManager, Any], request: Request) -> Reply:
    """Sync twin of :func:`status_async`."""
    exchange = lifecycle.begin(request)
    try:
        status = lifecycle.manager.status(exchange.token)
    except SessionError as exc:
        return _answer(exchange.answer(exc))
    return _json(status_body(status), lifecycle)


# -- refresh: a request of its own, CSRF-checked, committed -----------------------------------------


async def refresh_async(
    lifecycle: Lifecycle[SessionManager, Any],
    request: Request,
    read_body: Callable[[int], Awaitable[bytes | None]],
) -> Reply:
    """``POST`` the refresh route; ``read_body(limit)`` reads a form body of at most ``limit``
    bytes (``None`` past it), only if the CSRF token may be in one."""
    manager, exchange = lifecycle.manager, lifecycle.begin(request)
    try:
        session = await manager.load(exchange.token, ip=exchange.ip, user_agent=exchange.user_agent)
        exchange.loaded(session)
        verdict = exchange.csrf()
        if isinstance(verdict, ReadForm):
            verdict = exchange.form(await read_body(verdict.limit))
        if isinstance(verdict, Answer):
            return _answer(verdict)
        exchange.start(200)
        commit = await manager.commit(session)
    except SessionError as exc:
        return _answer(exchange.answer(exc))
    return _refreshed(lifecycle, exchange, session, commit)


def refresh_sync(
    lifecycle: Lifecycle[SyncSessionManager, Any],
    request: Request,
    read_body: Callable[[int], bytes | None],
    writer: Callable[[Session], Transport] | None = None,
) -> Reply:
    """Sync twin of :func:`refresh_async`; ``writer(session)`` picks the transport that
    answers (Flask writes a permanent session's cookie with another expiry)."""
    manager, exchange = lifecycle.manager, lifecycle.begin(request)
    try:
        session = manager.load(exchange.token, ip=exchange.ip, user_agent=exchange.user_agent)
        exchange.loaded(session)
        verdict = exchange.csrf()
        if isinstance(verdict, ReadForm):
            verdict = exchange.form(read_body(verdict.limit))
        if isinstance(verdict, Answer):
            return _answer(verdict)
        exchange.start(200)
        commit = manager.commit(session)
    except SessionError as exc:
        return _answer(exchange.answer(exc))
    return _refreshed(lifecycle, exchange, session, commit, writer)


def _refreshed(
    lifecycle: Lifecycle[Any, Any],
    exchange: Exchange[Any],
    session: Session,
    commit: Commit,
    writer: Callable[[Session], Transport] | None = None,
) -> Reply:
    body = session_body(lifecycle.manager, session)
    transport = None if writer is None else writer(session)
    edit = exchange.respond(200, cache_control="no-store", commit=commit, transport=transport)
    if isinstance(edit, Answer):
        return _answer(edit)
    reply = _json(body, lifecycle)
    if edit is UNTOUCHED:
        return reply
    headers = [h for h in reply.headers if h[0] != "vary"]
    return Reply(200, edit.apply(headers), reply.body)
