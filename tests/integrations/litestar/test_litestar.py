"""The Litestar integration, tested as Litestar tests its own session backends (its TestClient
over the app) and behind a real uvicorn server."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets.exceptions
import websockets.sync.client
from litestar import Litestar, Request, WebSocket, get, post, websocket
from litestar.middleware.session.server_side import ServerSideSessionConfig
from litestar.testing import TestClient, create_test_client

from sessio import MemoryStore, Policy, Principal, SQLiteStore
from sessio.errors import AuthenticationRequired, ConfigurationError, ValueNotSerializable
from sessio.integrations.litestar import SessionConfig, get_manager

from ..apps import serve
from ..wsgi_support import DownStore

SECRET = "a-test-secret-of-at-least-32-bytes!!"
POLICY = Policy.web().development()
COOKIE = POLICY.cookie.name
ORIGIN = "http://testserver.local"  # Litestar's TestClient base URL


@dataclasses.dataclass
class Profile:
    name: str
    langs: list[str]


# -- handlers written against Litestar's session API ----------------------------------------------


@post("/session", status_code=200)
async def set_session(request: Request[Any, Any, Any]) -> dict[str, Any]:
    request.set_session({"foo": "bar", "n": 1})
    return request.session


@get("/session")
async def read_session(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return dict(request.session)


@post("/session/profile", status_code=200)
async def set_profile(request: Request[Any, Any, Any]) -> None:
    request.set_session(Profile("ada", ["en", "fr"]))


@post("/session/clear", status_code=200)
async def clear_session(request: Request[Any, Any, Any]) -> None:
    request.clear_session()


@post("/session/add/{key:str}", status_code=200)
async def add_key(request: Request[Any, Any, Any]) -> dict[str, Any]:
    request.session[request.path_params["key"]] = True
    return dict(request.session)


HANDLERS = [set_session, read_session, set_profile, clear_session, add_key]


def _journey(client: TestClient[Any], headers: dict[str, str]) -> list[Any]:
    seen = []
    for method, path in (
        ("GET", "/session"),
        ("POST", "/session"),
        ("GET", "/session"),
        ("POST", "/session/add/extra"),
        ("GET", "/session"),
        ("POST", "/session/clear"),
        ("GET", "/session"),
        ("POST", "/session/profile"),
        ("GET", "/session"),
    ):
        response = client.request(method, path, headers=headers)
        assert response.status_code == 200, (path, response.text)
        seen.append(response.json() if response.content else None)
    return seen


def test_a_server_side_session_app_switches_by_its_config_line() -> None:
    with create_test_client(HANDLERS, middleware=[ServerSideSessionConfig().middleware]) as client:
        expected = _journey(client, {})
    config = SessionConfig(store=MemoryStore(), secret_key=SECRET, policy=POLICY, csrf=None)
    with create_test_client(HANDLERS, middleware=[config.middleware]) as client:
        assert _journey(client, {}) == expected
        assert "foo" not in client.cookies.get(COOKIE, "")
    assert expected[4] == {"foo": "bar", "n": 1, "extra": True}
    assert expected[6] == {}
    assert expected[8] == {"name": "ada", "langs": ["en", "fr"]}


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    sqlite = SQLiteStore(tmp_path / "sessions.db")
    yield sqlite
    sqlite.close_sync()


@get("/csrf")
async def csrf_token(request: Request[Any, Any, Any]) -> str:
    return request.session.csrf_token


@post("/note", status_code=200)
async def note(request: Request[Any, Any, Any]) -> dict[str, str]:
    form = await request.form()  # the middleware read the body first: Litestar still sees it
    request.session["note"] = form["note"]
    return {"note": form["note"]}


@post("/login", status_code=200)
async def login(request: Request[Any, Any, Any]) -> None:
    request.session.login(Principal("42"))


@get("/devices")
async def devices(request: Request[Any, Any, Any]) -> int:
    infos = await get_manager(request).sessions_of("42", current=request.session)
    return len(infos)


@get("/skipped", opt={"skip_session": True})
async def skipped(request: Request[Any, Any, Any]) -> bool:
    return "session" in request.scope


@get("/slow/{key:str}")
async def slow(request: Request[Any, Any, Any]) -> dict[str, Any]:
    state = request.app.state
    state.arrived = state.get("arrived", 0) + 1
    event = state.setdefault("both", asyncio.Event())
    if state.arrived == 2:
        event.set()
    await asyncio.wait_for(event.wait(), 5)  # both loaded before either commits
    request.session[request.path_params["key"]] = 1
    return dict(request.session)


@websocket("/ws")
async def ws(socket: WebSocket[Any, Any, Any]) -> None:
    socket.session["opened"] = True
    await socket.accept()
    said = await socket.receive_text()
    socket.session["said"] = said  # after the handshake: saved at close
    await socket.send_text(f"{socket.session['opened']}:{said}")
    await socket.close()


@get("/private")
async def private(request: Request[Any, Any, Any]) -> str:
    if not request.session.is_authenticated:
        raise AuthenticationRequired("log in first")
    return "secret"


@get("/bad")
async def bad(request: Request[Any, Any, Any]) -> None:
    request.session["x"] = object()  # not encodable: a programming error


ALL = [*HANDLERS, csrf_token, note, login, devices, skipped, slow, ws, private, bad]


def _app(store: Any, **options: Any) -> Litestar:
    config = SessionConfig(store=store, secret_key=SECRET, policy=POLICY, **options)
    return Litestar(
        ALL, middleware=[config.middleware], exception_handlers=config.exception_handlers
    )


def _token(client: TestClient[Any]) -> dict[str, str]:
    return {"Origin": ORIGIN, "X-CSRF-Token": client.get("/csrf").text}


def test_sessions_live_in_the_store(store: Any) -> None:
    with TestClient(_app(store)) as client:
        headers = _token(client)
        assert client.post("/session", headers=headers).json() == {"foo": "bar", "n": 1}
        token = client.cookies[COOKIE]
    with TestClient(_app(store)) as other:
        other.cookies[COOKIE] = token
        assert other.get("/session").json() == {"foo": "bar", "n": 1}


def test_clear_session_deletes_the_record_and_the_cookie(store: Any) -> None:
    with TestClient(_app(store)) as client:
        headers = _token(client)
        client.post("/session", headers=headers)
        token = client.cookies[COOKIE]
        response = client.post("/session/clear", headers=headers)
        assert response.headers["set-cookie"].startswith(f'{COOKIE}="";')
        assert "max-age=0" in response.headers["set-cookie"].lower()
        assert COOKIE not in client.cookies
    with TestClient(_app(store)) as other:
        other.cookies[COOKIE] = token
        assert other.get("/session").json() == {}


def test_csrf_refuses_unsafe_requests_without_the_token(store: Any) -> None:
    with TestClient(_app(store)) as client:
        refused = client.post("/session", headers={"Origin": ORIGIN})
        assert refused.status_code == 403
        assert refused.json()["error"] == "CSRF_FAILED"
        token = client.get("/csrf").text
        forged = client.post(
            "/session", headers={"Origin": "https://evil.example", "X-CSRF-Token": token}
        )
        assert forged.status_code == 403
        form = client.post(
            "/note", data={"csrf_token": token, "note": "hi"}, headers={"Origin": ORIGIN}
        )
        assert form.json() == {"note": "hi"}
        assert client.get("/session").json() == {"note": "hi"}


def test_a_store_outage_answers_503_json() -> None:
    down = DownStore()
    with TestClient(_app(down)) as client:
        client.post("/session", headers=_token(client))
        down.fail_load = True
        response = client.get("/session")
        assert response.status_code == 503
        assert response.json()["error"] == "STORE_UNAVAILABLE"
        assert response.headers["cache-control"] == "no-store"
        down.fail_load, down.fail_save = False, True
        response = client.post("/session/add/x", headers=_token(client))
        assert response.status_code == 503
        assert "set-cookie" not in response.headers


def test_skip_session_and_exclude_keep_litestars_meaning() -> None:
    with TestClient(_app(MemoryStore(), exclude=["/csrf"])) as client:
        assert client.get("/skipped").json() is False
        assert client.get("/session").json() == {}


def test_the_principal_index_lists_devices() -> None:
    with TestClient(_app(MemoryStore())) as client:
        for _device in ("phone", "laptop"):
            client.cookies.clear()  # another browser
            assert client.post("/login", headers=_token(client)).status_code == 200
        assert client.get("/devices").json() == 2


def test_a_websocket_session_is_committed_at_accept_and_close(store: Any) -> None:
    with TestClient(_app(store)) as client:
        with client.websocket_connect("/ws", headers={"Origin": ORIGIN}) as socket:
            socket.send_text("hello")
            assert socket.receive_text() == "True:hello"
            accepted = dict(socket.extra_headers or [])
        # The handshake carried the cookie (the test client does not keep it: we do);
        # "said" came after it and was saved at close.
        cookie = accepted[b"set-cookie"].decode().split(";")[0]
        response = client.get("/session", headers={"Cookie": cookie})
        assert response.json() == {"opened": True, "said": "hello"}


def test_a_cross_site_websocket_handshake_is_refused() -> None:
    from litestar.exceptions import WebSocketDisconnect

    with TestClient(_app(MemoryStore())) as client:
        with (
            pytest.raises(WebSocketDisconnect) as caught,
            client.websocket_connect("/ws", headers={"Origin": "https://evil.example"}),
        ):
            pass
        assert caught.value.code == 1008  # policy violation (no HTTP denial in this client)


@pytest.mark.parametrize("cookie", ["garbage", "x" * 5000, "a.b.c", '"; Path=/'])
def test_hostile_cookies_get_a_fresh_session(cookie: str) -> None:
    with TestClient(_app(MemoryStore())) as client:
        response = client.get("/session", headers={"Cookie": f"{COOKIE}={cookie}"})
        assert (response.status_code, response.json()) == (200, {})


def test_the_config_is_checked_once_at_construction() -> None:
    with pytest.raises(ConfigurationError, match="secret_key"):
        SessionConfig(store=MemoryStore())
    with pytest.raises(ConfigurationError, match="store"):
        SessionConfig(secret_key=SECRET)


@pytest.mark.slow
async def test_two_parallel_requests_changing_different_keys_both_win_under_uvicorn() -> None:
    app = _app(MemoryStore(), csrf=None)
    with serve(app) as url:
        async with httpx.AsyncClient(base_url=url, trust_env=False) as client:
            await client.post("/session/add/seed")
            first, second = await asyncio.gather(client.get("/slow/a"), client.get("/slow/b"))
            assert (first.status_code, second.status_code) == (200, 200)
            body = (await client.get("/session")).json()
    assert body == {"seed": True, "a": 1, "b": 1}


def test_a_session_error_from_a_handler_is_answered_as_json() -> None:
    with TestClient(_app(MemoryStore())) as client:
        response = client.get("/private")
        assert response.status_code == 401
        assert response.json()["error"] == "AUTHENTICATION_REQUIRED"
        client.post("/login", headers=_token(client))
        assert client.get("/private").text == "secret"
        with pytest.raises(ValueNotSerializable):  # a programming error is not dressed up
            client.get("/bad")


@pytest.mark.slow
def test_a_websocket_under_uvicorn_gets_its_cookie_at_the_handshake() -> None:
    with serve(_app(MemoryStore())) as url:
        ws_url = "ws" + url.removeprefix("http") + "/ws"
        with websockets.sync.client.connect(ws_url, proxy=None) as socket:
            set_cookie = socket.response.headers["set-cookie"]
            socket.send("hello")
            assert socket.recv(timeout=5) == "True:hello"
            with pytest.raises(websockets.exceptions.ConnectionClosedOK):
                socket.recv(timeout=5)
        token = set_cookie.split(";", 1)[0].split("=", 1)[1]
        with httpx.Client(base_url=url, trust_env=False, cookies={COOKIE: token}) as client:
            assert client.get("/session").json() == {"opened": True, "said": "hello"}
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            websockets.sync.client.connect(
                ws_url,
                additional_headers={"Cookie": f"{COOKIE}={token}"},
                origin="http://evil.example",  # type: ignore[arg-type]
                proxy=None,
            )
        assert refused.value.response.status_code == 403
