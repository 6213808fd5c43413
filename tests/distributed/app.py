"""The app each server of the multi-process test runs, under uvicorn, on a store named by URL.

``python -m uvicorn tests.distributed.app:create --factory`` serves it; the store is
``store_from_url($SESSIO_TEST_STORE_URL)``. Every response that shows the session echoes its
data and the serving process's ID, so the test can check which server answered and that a
client only ever sees its own data. ``/admin/*`` is what an operator (or the test) calls
without a session: revoke a user's sessions, count and release held requests, read the event
counts.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from sessio import Policy, Principal, SessionEvent, SessionManager
from sessio.integrations.asgi import SessionMiddleware, get_manager
from sessio.integrations.csrf import CSRFOptions
from sessio.stores import store_from_url

STORE_URL_ENV = "SESSIO_TEST_STORE_URL"
SECRET = "distributed-test-secret-" + "d" * 32
POLICY = Policy.web().development()
#: How long a held request waits for /admin/release before it gives up (a bound, not a pace).
HOLD_LIMIT = 60.0


class Gate:
    """Requests parked in ``/hold`` until ``/admin/release``: a barrier the test drives."""

    def __init__(self) -> None:
        self.waiting = 0
        self._event = asyncio.Event()

    async def wait(self) -> None:
        """Park until the next :meth:`release` (or :data:`HOLD_LIMIT`)."""
        event = self._event
        self.waiting += 1
        try:
            await asyncio.wait_for(event.wait(), HOLD_LIMIT)
        finally:
            self.waiting -= 1

    def release(self) -> int:
        """Let every parked request go on; how many there were."""
        released, event, self._event = self.waiting, self._event, asyncio.Event()
        event.set()
        return released


def _shown(request: Request) -> dict[str, Any]:
    session = request.session
    principal = session.principal
    return {
        "data": dict(session.items()),
        "user": principal.id if principal else None,
        "pid": os.getpid(),
    }


async def health(request: Request) -> Response:
    return PlainTextResponse("ok")


async def csrf(request: Request) -> Response:
    # A new session's first CSRF token stores it (its secret) and sets the cookie.
    return JSONResponse({"csrf": request.session.csrf_token, **_shown(request)})


async def data(request: Request) -> Response:
    return JSONResponse(_shown(request))


async def put(request: Request) -> Response:
    body = await request.json()
    request.session[str(body["key"])] = body["value"]
    return JSONResponse(_shown(request))


async def login(request: Request) -> Response:
    body = await request.json()
    request.session.login(Principal(str(body["user"])))
    return JSONResponse({"csrf": request.session.csrf_token, **_shown(request)})


async def hold(request: Request) -> Response:
    """With the session loaded, wait for ``/admin/release``, then change it as ``then`` says."""
    body = await request.json()
    await request.app.state.gate.wait()
    if body["then"] == "regenerate":
        request.session.regenerate()
    request.session["late"] = True
    return JSONResponse(_shown(request))


async def revoke_all(request: Request) -> Response:
    body = await request.json()
    return JSONResponse({"revoked": await get_manager(request.scope).revoke_all(body["user"])})


async def held(request: Request) -> Response:
    return JSONResponse({"waiting": request.app.state.gate.waiting})


async def release(request: Request) -> Response:
    return JSONResponse({"released": request.app.state.gate.release()})


async def events(request: Request) -> Response:
    return JSONResponse(dict(request.app.state.events))


def create() -> Starlette:
    """The app, on the store ``$SESSIO_TEST_STORE_URL`` names (uvicorn's ``--factory``)."""
    store = store_from_url(os.environ[STORE_URL_ENV])
    manager = SessionManager(store, POLICY)
    counts: collections.Counter[str] = collections.Counter()

    def count(event: SessionEvent) -> None:
        counts[event.kind.value] += 1

    manager.events.subscribe(count)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.gate = Gate()
        app.state.events = counts
        try:
            yield
        finally:
            await store.close()

    return Starlette(
        routes=[
            Route("/health", health),
            Route("/csrf", csrf),
            Route("/data", data),
            Route("/put", put, methods=["POST"]),
            Route("/login", login, methods=["POST"]),
            Route("/hold", hold, methods=["POST"]),
            Route("/admin/revoke-all", revoke_all, methods=["POST"]),
            Route("/admin/held", held),
            Route("/admin/release", release, methods=["POST"]),
            Route("/admin/events", events),
        ],
        middleware=[
            Middleware(
                SessionMiddleware,
                manager=manager,
                secret_key=SECRET,
                csrf=CSRFOptions(exempt_paths=["/admin/*"]),
                exclude_paths=["/health"],
            )
        ],
        lifespan=lifespan,
    )
