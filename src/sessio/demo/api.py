"""The demo's JSON API: session state for single-page apps, and bearer tokens for other clients."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..errors import AuthenticationRequired
from ..ids import short_hash
from ..integrations.asgi import get_manager
from .common import Throttled, check_password, client_ip, principal_for, session_of, state_of

__all__ = ["MAX_LOGIN_BODY", "api_login", "api_me", "api_session"]

#: The largest ``POST /api/login`` body read: two strings, the password up to 1024 characters.
MAX_LOGIN_BODY = 16 * 1024


async def api_session(request: Request) -> Response:
    """``GET /api/session``: the cookie session's state and a CSRF token for unsafe calls."""
    session = session_of(request)
    principal = session.principal
    return JSONResponse(
        {
            "authenticated": session.is_authenticated,
            "user": principal.id if principal else None,
            "expires_in": int(session.remaining.total_seconds()),
            "csrf_token": session.csrf_token,
        }
    )


async def _read_at_most(request: Request, limit: int) -> bytes | None:
    """The body, or ``None`` as soon as it proves longer than ``limit`` (never read whole)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def api_login(request: Request) -> Response:
    """``POST /api/login``: JSON credentials in, a bearer token for a new session out."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        return JSONResponse(
            {"error": "UNSUPPORTED_MEDIA_TYPE", "detail": "send application/json"}, 415
        )
    raw = await _read_at_most(request, MAX_LOGIN_BODY)
    if raw is None:
        detail = f"credentials take at most {MAX_LOGIN_BODY} bytes"
        return JSONResponse({"error": "BODY_TOO_LARGE", "detail": detail}, 413)
    try:
        body = json.loads(raw)
        username, password = body["username"], body["password"]
        if not isinstance(username, str) or not isinstance(password, str):
            raise TypeError("username and password must be strings")
    except (ValueError, KeyError, TypeError):
        detail = 'expected {"username": "...", "password": "..."}'
        return JSONResponse({"error": "INVALID_REQUEST", "detail": detail}, 400)
    try:
        name = await check_password(request, username, password)
    except Throttled as exc:
        return JSONResponse(exc.to_dict(), exc.status_code)
    if name is None:
        return JSONResponse(
            {"error": "INVALID_CREDENTIALS", "detail": "wrong username or password"}, 401
        )
    manager = get_manager(request.scope)
    # A new session of its own: never the cookie session this request may also carry.
    token_session = manager.start(
        ip=client_ip(request), user_agent=request.headers.get("user-agent")
    )
    token_session.login(principal_for(name))
    await manager.commit(token_session)
    return JSONResponse(
        {
            "token": state_of(request).signer.sign(token_session.id),
            "token_type": "Bearer",
            "expires_in": int(token_session.remaining.total_seconds()),
        }
    )


async def api_me(request: Request) -> Response:
    """``GET /api/me``: who a bearer or ``X-Session-ID`` token belongs to; 401 without one."""
    session = session_of(request)
    principal = session.principal
    # The middleware says which transport carried the session: a browser's cookie does not
    # count here (a valid cookie sent beside a token is read first, as the policy lists it).
    if principal is None or request.scope.get("sessio.transport") not in ("bearer", "header"):
        error = AuthenticationRequired("send a token from /api/login as Authorization: Bearer")
        return JSONResponse(error.to_dict(), 401, {"www-authenticate": "Bearer"})
    return JSONResponse(
        {
            "user": principal.id,
            "roles": sorted(principal.roles),
            "session": short_hash(session.key),
            "expires_in": int(session.remaining.total_seconds()),
        }
    )
