"""The Starlette drop-in: Starlette's wire text and rules, with the data kept in a store."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from sessio import ConfigurationError, MemoryStore, Policy
from sessio.integrations.csrf import CSRFOptions
from sessio.integrations.starlette import SessionMiddleware

from ..conftest import FakeClock
from .apps import SECRET


async def view(request: Request) -> Response:
    return JSONResponse({"session": request.session})


async def update(request: Request) -> Response:
    request.session.update(await request.json())
    return JSONResponse({"session": request.session})


async def clear(request: Request) -> Response:
    request.session.clear()
    return JSONResponse({"session": request.session})


async def flash(request: Request) -> Response:
    request.session.flash("info", "saved")
    return JSONResponse({})


async def flashes(request: Request) -> Response:
    return JSONResponse({"info": request.session.pop_flash("info")})


async def ws(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json(dict(websocket.session))
    await websocket.close()


ROUTES = [
    Route("/view", view),
    Route("/update", update, methods=["POST"]),
    Route("/clear", clear, methods=["POST"]),
    Route("/flash", flash, methods=["POST"]),
    Route("/flashes", flashes),
    WebSocketRoute("/ws", ws),
]


def app_with(middleware: type, **options: Any) -> Starlette:
    return Starlette(routes=ROUTES, middleware=[Middleware(middleware, **options)])


def client_for(**options: Any) -> TestClient:
    options.setdefault("secret_key", SECRET)
    return TestClient(app_with(SessionMiddleware, **options))


# -- the same bytes on the wire -------------------------------------------------------------------

WIRE_CASES = [
    {},
    {"max_age": None},
    {"session_cookie": "sid", "max_age": 3600, "path": "/app", "same_site": "strict"},
    {"https_only": True, "domain": "example.com", "partitioned": True, "same_site": "none"},
]


def _wire(middleware: type, options: dict[str, Any]) -> tuple[str, str]:
    """(Set-Cookie after a write, its value masked; Set-Cookie after emptying the session)."""
    client = TestClient(
        app_with(middleware, secret_key=SECRET, **options), base_url="https://testserver"
    )
    name = options.get("session_cookie", "session")
    written = client.post("/update", json={"some": "data"}).headers["set-cookie"]
    value = re.match(rf"{name}=([^;]*);", written)
    assert value is not None
    cleared = client.post("/clear", headers={"Cookie": f"{name}={value[1]}"})
    return re.sub(rf"^{name}=[^;]*;", f"{name}=VALUE;", written), cleared.headers["set-cookie"]


@pytest.mark.parametrize("options", WIRE_CASES)
def test_set_cookie_text_is_starlettes_own(options: dict[str, Any]) -> None:
    assert _wire(SessionMiddleware, options) == _wire(StarletteSessionMiddleware, options)


def test_the_cookie_holds_a_signed_id_and_the_data_stays_home() -> None:
    store = MemoryStore()
    client = client_for(store=store)
    big = {"essay": "x" * 100_000}  # 25 times what a cookie may hold
    response = client.post("/update", json=big)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}", client.cookies["session"])
    assert len(response.headers["set-cookie"]) < 200
    assert store.count_sync() == 1
    assert client.get("/view").json() == {"session": big}


# -- Starlette's rules -------------------------------------------------------------------------------


def test_cookie_goes_out_on_changes_only_with_the_same_token(clock: FakeClock) -> None:
    middleware = SessionMiddleware(Starlette(routes=ROUTES), secret_key=SECRET, store=MemoryStore())
    middleware.manager.clock = clock  # the server-side touch below is due at once
    client = TestClient(middleware)
    first = client.post("/update", json={"a": 1}).headers["set-cookie"]
    clock.advance(600)
    read = client.get("/view")
    assert read.json() == {"session": {"a": 1}}
    assert "set-cookie" not in read.headers  # touched server-side, silent as Starlette is
    assert read.headers["vary"] == "Cookie"
    second = client.post("/update", json={"b": 2}).headers["set-cookie"]
    assert first.split(";")[0] == second.split(";")[0]


def test_an_emptied_session_is_deleted_in_the_store_too() -> None:
    store = MemoryStore()
    client = client_for(store=store)
    client.post("/update", json={"a": 1})
    assert store.count_sync() == 1
    assert "expires=Thu, 01 Jan 1970" in client.post("/clear").headers["set-cookie"]
    assert store.count_sync() == 0


def test_expiry_is_enforced_server_side(clock: FakeClock) -> None:
    client = client_for(store=MemoryStore(clock=clock), max_age=60)
    client.post("/update", json={"a": 1})
    cookie = client.cookies["session"]
    clock.advance(60 + 15 + 1)  # max_age, and the refresh slack (max_age / 4) it may be late by
    # A client that ignores Max-Age and replays the cookie gets nothing.
    assert client.get("/view", headers={"Cookie": f"session={cookie}"}).json() == {"session": {}}


def test_websocket_connections_get_the_session() -> None:
    client = client_for(store=MemoryStore())
    client.post("/update", json={"a": 1})
    with client.websocket_connect("/ws") as websocket:
        assert websocket.receive_json() == {"a": 1}


def test_the_session_is_a_full_sessio_session() -> None:
    client = client_for(store=MemoryStore())
    client.post("/flash")
    assert client.get("/flashes").json() == {"info": ["saved"]}
    assert client.get("/flashes").json() == {"info": []}


# -- what the drop-in adds ----------------------------------------------------------------------------


def test_csrf_is_off_by_default_and_can_be_turned_on() -> None:
    assert client_for(store=MemoryStore()).post("/update", json={"a": 1}).status_code == 200
    guarded = client_for(store=MemoryStore(), csrf=CSRFOptions())
    response = guarded.post("/update", json={"a": 1})
    assert response.status_code == 403
    assert response.json()["error"] == "CSRF_FAILED"


def test_policy_sets_the_rules_and_the_arguments_set_the_cookie() -> None:
    policy = Policy.web(rolling=True)
    middleware = SessionMiddleware(
        Starlette(routes=ROUTES), secret_key=SECRET, store=MemoryStore(), policy=policy
    )
    assert middleware.manager.policy.rolling
    assert middleware.manager.policy.cookie.name == "session"
    assert not middleware.manager.policy.cookie.secure
    assert middleware.csrf is None


def test_a_short_secret_works_as_in_starlette_but_is_flagged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="sessio.starlette"):
        SessionMiddleware(Starlette(), secret_key=SECRET, store=MemoryStore())
        assert not caplog.records
        SessionMiddleware(Starlette(), secret_key="example", store=MemoryStore())
    assert "shorter than 32 bytes" in caplog.text
    store = MemoryStore()
    client = client_for(secret_key="example", store=store)
    client.post("/update", json={"a": 1})
    assert client.get("/view").json() == {"session": {"a": 1}}
    other = client_for(secret_key="another", store=store)  # same data, other key
    other.cookies.update(client.cookies)
    assert other.get("/view").json() == {"session": {}}


@pytest.mark.parametrize(
    "options",
    [
        {"same_site": "none"},  # browsers drop SameSite=None cookies that are not Secure
        {"partitioned": True},  # likewise Partitioned ones
        {"max_age": 1.5},
        {"session_cookie": "bad name"},
        {"secret_key": ""},
    ],
)
def test_settings_browsers_would_reject_fail_at_construction(options: dict[str, Any]) -> None:
    options.setdefault("secret_key", SECRET)
    with pytest.raises(ConfigurationError):
        SessionMiddleware(Starlette(), store=MemoryStore(), **options)
