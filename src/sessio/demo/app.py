"""The demo as one Starlette app: routes, sessio's session middleware, and security headers."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Route

from ..integrations.asgi import SessionMiddleware
from ..integrations.csrf import CSRFOptions
from ..manager import SessionManager
from ..policy import ConcurrencyPolicy, Policy
from ..stores.base import Store
from ..transports.signing import TokenSigner
from . import api, error_pages, pages
from .common import DemoState
from .headers import SecurityHeaders
from .throttle import LoginThrottle
from .users import UserStore

__all__ = ["DEMO_POLICY", "SecurityHeaders", "create_app"]

#: Browser sessions on plain-HTTP localhost, at most five per user (a sixth login ends the
#: oldest), and API clients showing a token as ``Authorization: Bearer`` or ``X-Session-ID``.
#: The cookie comes first: a visitor who brings no token is given a cookie. A session used
#: from another network or browser is flagged, and the device list says so.
DEMO_POLICY = Policy.web(
    concurrency=ConcurrencyPolicy(max_sessions_per_principal=5, on_limit="evict_oldest"),
    transports=("cookie", "bearer", "header"),
    bind=("network", "user_agent"),
    on_client_change="flag",
).development()

ROUTES = [
    Route("/", pages.home),
    Route("/register", pages.register, methods=["GET", "POST"]),
    Route("/login", pages.login, methods=["GET", "POST"]),
    Route("/logout", pages.logout, methods=["POST"]),
    Route("/cart", pages.cart, methods=["POST"]),
    Route("/devices", pages.devices),
    Route("/devices/revoke", pages.revoke, methods=["POST"]),
    Route("/devices/revoke-others", pages.revoke_others, methods=["POST"]),
    Route("/api/session", api.api_session),
    Route("/api/login", api.api_login, methods=["POST"]),
    Route("/api/me", api.api_me),
    Route("/static/{name}", pages.static),
]


def create_app(
    store: Store,
    *,
    secret_key: str | Sequence[str] | None = None,
    users: UserStore | None = None,
    policy: Policy | None = None,
    throttle: LoginThrottle | None = None,
) -> Starlette:
    """The demo as an ASGI app, its sessions in ``store``.

    ``secret_key`` signs session tokens (one key, or a list with the newest last); without it
    a random key is made and sessions die with the process. ``users`` defaults to accounts in
    memory, ``policy`` to :data:`DEMO_POLICY` (plain-HTTP cookies: use ``.production()`` on it
    behind TLS), ``throttle`` to five failed logins per username and address, and twenty per
    address, in five minutes.
    """
    policy = policy if policy is not None else DEMO_POLICY
    signer = TokenSigner(secret_key if secret_key is not None else secrets.token_urlsafe(32))
    session_middleware = Middleware(
        SessionMiddleware,
        manager=SessionManager(store, policy),
        secret_key=signer,
        # /api/login reads no ambient credential and sets no cookie (the token comes back in
        # a JSON body a cross-site page cannot read), and it takes only application/json,
        # which no cross-site form can send: it needs no CSRF token.
        csrf=CSRFOptions(exempt_paths=("/api/login",)),
        exclude_paths=("/static/*",),
        # A refused form or a store outage: a page for people, JSON for the API and scripts.
        on_error=error_pages.session_error,
    )
    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(SecurityHeaders), session_middleware],
        exception_handlers={
            HTTPException: error_pages.http_error,
            500: error_pages.server_error,
        },
    )
    app.state.demo = DemoState(
        users=users if users is not None else UserStore(),
        signer=signer,
        throttle=throttle if throttle is not None else LoginThrottle(),
    )
    return app
