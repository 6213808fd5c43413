"""The session status and refresh routes on Starlette and FastAPI, through real test clients."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from sessio import ConfigurationError, Policy, Principal, SessionManager, StoreUnavailable
from sessio.integrations.asgi import SessionMiddleware, get_session
from sessio.integrations.csrf import CSRFOptions
from sessio.integrations.fastapi import session_status_router
from sessio.integrations.starlette import session_status_routes

from ..conftest import FakeClock
from ..drive import CountingStore
from .apps import SECRET

POLICY = Policy(ttl=None, idle_timeout=timedelta(minutes=30), refresh_interval=timedelta(minutes=1))
CSRF = CSRFOptions(exempt_paths=("/login",))
STATUS_PATHS = ("/api/session", "/api/session/refresh")
BASE = "https://testserver"  # the cookie is __Host- and Secure
ORIGIN = {"origin": BASE}
EMPTY = {
    "authenticated": False,
    "user": None,
    "expires_in": None,
    "idle_expires_in": None,
    "csrf_token": None,
}


async def login(request: Request) -> Response:
    get_session(request.scope).login(Principal("ada"))
    return JSONResponse({})


def starlette_app(manager: SessionManager, *, excluded: bool = True) -> Starlette:
    return Starlette(
        routes=[
            *session_status_routes(manager, secret_key=SECRET, csrf=CSRF),
            Route("/login", login, methods=["POST"]),
        ],
        middleware=[
            Middleware(
                SessionMiddleware,
                manager=manager,
                secret_key=SECRET,
                csrf=CSRF,
                exclude_paths=STATUS_PATHS if excluded else (),
            )
        ],
    )


def fastapi_app(manager: SessionManager) -> FastAPI:
    app = FastAPI()
    app.include_router(session_status_router(manager, secret_key=SECRET, csrf=CSRF))
    app.add_api_route("/login", login, methods=["POST"])
    app.add_middleware(
        SessionMiddleware, manager=manager, secret_key=SECRET, csrf=CSRF, exclude_paths=STATUS_PATHS
    )
    return app


@pytest.fixture
def store(clock: FakeClock) -> CountingStore:
    return CountingStore(clock=clock)


@pytest.fixture
def manager(store: CountingStore, clock: FakeClock) -> SessionManager:
    return SessionManager(store, POLICY, clock=clock)


@pytest.fixture(params=["starlette", "fastapi"])
def client(request: pytest.FixtureRequest, manager: SessionManager) -> TestClient:
    app: Any = starlette_app(manager) if request.param == "starlette" else fastapi_app(manager)
    return TestClient(app, base_url=BASE)


def test_status_without_a_session_is_empty_and_stores_nothing(
    client: TestClient, store: CountingStore
) -> None:
    response = client.get("/api/session")
    assert response.status_code == 200
    assert response.json() == EMPTY
    assert response.headers["cache-control"] == "no-store"
    assert "set-cookie" not in response.headers
    assert store.writes == []
    assert store.loads == 0


@pytest.mark.parametrize(
    "cookie", ["garbage", "x" * 5000, "a.b.c", "\u00e9t\u00e9", "session=;;", "%00" * 50]
)
def test_hostile_cookies_read_as_no_session(
    client: TestClient, store: CountingStore, cookie: str
) -> None:
    raw = ("__Host-sessio=" + cookie).encode("utf-8")  # the bytes a hostile client can send
    response = client.get("/api/session", headers={"cookie": raw})  # type: ignore[dict-item]
    assert response.status_code == 200
    assert response.json() == EMPTY
    assert store.writes == []


def test_status_reports_and_never_touches(
    client: TestClient, store: CountingStore, clock: FakeClock
) -> None:
    assert client.post("/login").status_code == 200
    writes = len(store.writes)
    clock.advance(10 * 60)  # a touch would be due on any request through the middleware
    body = client.get("/api/session").json()
    assert body["authenticated"] is True
    assert body["user"] == "ada"
    assert body["expires_in"] == 21 * 60
    assert body["idle_expires_in"] == 21 * 60
    assert isinstance(body["csrf_token"], str)
    assert len(store.writes) == writes  # polling is no activity
    assert store.deletes == []
    clock.advance(22 * 60)
    assert client.get("/api/session").json() == EMPTY  # expired: nothing to report
    assert len(store.writes) == writes


def test_refresh_needs_csrf_then_pushes_the_expiry_and_resends_the_cookie(
    client: TestClient, store: CountingStore, clock: FakeClock
) -> None:
    client.post("/login")
    token = client.get("/api/session").json()["csrf_token"]
    clock.advance(10 * 60)
    refused = client.post("/api/session/refresh", headers=ORIGIN)
    assert refused.status_code == 403
    assert refused.json()["error"] == "CSRF_FAILED"
    forged = client.post("/api/session/refresh", headers={**ORIGIN, "x-csrf-token": "forged"})
    assert forged.status_code == 403
    foreign = client.post(
        "/api/session/refresh", headers={"origin": "https://evil.example", "x-csrf-token": token}
    )
    assert foreign.status_code == 403
    writes = len(store.writes)
    response = client.post("/api/session/refresh", headers={**ORIGIN, "x-csrf-token": token})
    assert response.status_code == 200
    body = response.json()
    assert body["authenticated"] is True
    assert body["expires_in"] == 31 * 60  # pushed back from 21 minutes
    assert body["idle_expires_in"] == 31 * 60
    assert "set-cookie" in response.headers
    assert response.headers["cache-control"] == "no-store"
    assert len(store.writes) == writes + 1  # the touch
    assert client.get("/api/session").json()["expires_in"] == 31 * 60


def test_refresh_without_a_session_is_refused(client: TestClient, store: CountingStore) -> None:
    response = client.post("/api/session/refresh", headers={**ORIGIN, "x-csrf-token": "x"})
    assert response.status_code == 403  # login CSRF: a cookie-less POST proves nothing
    assert store.writes == []


def test_a_form_post_to_refresh_is_bounded(client: TestClient) -> None:
    client.post("/login")
    token = client.get("/api/session").json()["csrf_token"]
    ok = client.post("/api/session/refresh", headers=ORIGIN, data={"csrf_token": token})
    assert ok.status_code == 200
    big = client.post(
        "/api/session/refresh", headers=ORIGIN, data={"csrf_token": token, "pad": "x" * 2_000_000}
    )
    assert big.status_code == 403


def test_the_routes_refuse_to_run_under_the_middleware(manager: SessionManager) -> None:
    client = TestClient(starlette_app(manager, excluded=False), base_url=BASE)
    with pytest.raises(ConfigurationError, match="exclude_paths"):
        client.get("/api/session")


def test_a_store_outage_answers_503(manager: SessionManager, store: CountingStore) -> None:
    client = TestClient(starlette_app(manager), base_url=BASE)
    client.post("/login")

    async def down(key: str) -> None:
        raise StoreUnavailable("down")

    store.load = down  # type: ignore[method-assign]
    response = client.get("/api/session")
    assert response.status_code == 503
    assert response.json()["error"] == "STORE_UNAVAILABLE"


async def test_two_parallel_status_calls_during_a_login(
    manager: SessionManager, store: CountingStore
) -> None:
    transport = httpx.ASGITransport(app=starlette_app(manager))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        await http.post("/login")
        writes = len(store.writes)
        first, again, second = await asyncio.gather(
            http.get("/api/session"), http.post("/login"), http.get("/api/session")
        )
        assert again.status_code == 200
        for response in (first, second):
            assert response.status_code == 200
            assert response.json()["user"] in ("ada", None)
        assert len(store.writes) == writes + 1  # the second login's rotation alone
        final = await http.get("/api/session")
        assert final.json()["user"] == "ada"
