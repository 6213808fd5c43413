"""The Quart drop-in, tested as Quart tests its sessions (its test client), beside Quart's own
cookie interface, and behind a real uvicorn server for parallel requests."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import quart
import websockets.sync.client
from quart.sessions import SecureCookieSessionInterface

from sessio import MemoryStore, Policy, SQLiteStore
from sessio.integrations.csrf import CSRFOptions
from sessio.integrations.quart import QuartSession, SessionInterface

from ..apps import serve
from ..wsgi_support import DownStore

KEY = secrets.token_urlsafe(32)


def bakery(interface: Any, *, init: bool = False) -> quart.Quart:
    """One app, installed with the line a Quart app changes (``app.session_interface``)."""
    app = quart.Quart(__name__)
    app.config["SECRET_KEY"] = KEY
    if init:
        interface.init_app(app)
    else:
        app.session_interface = interface

    @app.get("/visit")
    async def visit() -> Any:
        quart.session["visits"] = quart.session.get("visits", 0) + 1
        return {"visits": quart.session["visits"]}

    @app.get("/cart/<item>")
    async def cart(item: str) -> Any:
        quart.session.setdefault("cart", []).append(item)
        quart.session.modified = True  # Quart's own interface needs this; sessio does not
        return {"cart": quart.session["cart"]}

    @app.get("/bake")
    async def bake() -> Any:
        await quart.flash("bread is ready")
        await quart.flash("so is the cake", "info")
        return quart.redirect("/shelf")

    @app.get("/shelf")
    async def shelf() -> Any:
        return {"flashes": quart.get_flashed_messages(with_categories=True)}

    @app.get("/permanent")
    async def permanent() -> Any:
        quart.session.permanent = True
        return {"permanent": True}

    @app.get("/clear")
    async def clear() -> Any:
        quart.session.clear()
        return {"cleared": True}

    @app.get("/read")
    async def read() -> Any:
        data = {k: v for k, v in quart.session.items() if not k.startswith("_")}
        token = quart.session.csrf_token if isinstance(quart.session, QuartSession) else None
        return {"data": data, "csrf": token}

    @app.post("/note")
    async def note() -> Any:
        form = await quart.request.form
        quart.session["note"] = form["note"]
        return {"note": form["note"]}

    @app.get("/slow/<key>")
    async def slow(key: str) -> Any:
        state = app.extensions.setdefault("test", {"arrived": 0, "both": asyncio.Event()})
        state["arrived"] += 1
        if state["arrived"] == 2:
            state["both"].set()
        await asyncio.wait_for(state["both"].wait(), 5)  # both loaded before either commits
        quart.session[key] = 1
        return {"ok": True}

    @app.websocket("/ws")
    async def ws() -> None:
        quart.session["opened"] = True
        await quart.websocket.accept()
        said = await quart.websocket.receive()
        quart.session["said"] = said  # saved when the WebSocket ends
        await quart.websocket.send(f"{quart.session['opened']}:{said}")

    return app


async def _journey(app: quart.Quart) -> list[Any]:
    client = app.test_client()
    seen = []
    for path in ("/visit", "/visit", "/cart/rye", "/cart/spelt", "/bake", "/shelf", "/shelf"):
        response = await client.get(path, follow_redirects=False)
        seen.append((response.status_code, await response.get_json()))
    response = await client.get("/permanent")
    seen.append("Expires=" in response.headers.get("Set-Cookie", ""))  # a dated cookie
    response = await client.get("/clear")
    seen.append("Expires=Thu, 01 Jan 1970" in response.headers.get("Set-Cookie", ""))
    return seen


@pytest.fixture(params=["memory", "sqlite"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        yield MemoryStore()
        return
    sqlite = SQLiteStore(tmp_path / "sessions.db")
    yield sqlite
    sqlite.close_sync()


async def test_a_quart_app_switches_by_its_session_interface_line(store: Any) -> None:
    expected = await _journey(bakery(SecureCookieSessionInterface()))
    assert expected[3][1] == {"cart": ["rye", "spelt"]}
    assert expected[5][1] == {
        "flashes": [["message", "bread is ready"], ["info", "so is the cake"]]
    }
    assert expected[6][1] == {"flashes": []}
    assert expected[-2:] == [True, True]  # permanent: dated; emptied: deleted
    assert await _journey(bakery(SessionInterface(store))) == expected


async def test_the_cookie_holds_an_id_and_the_data_stays_in_the_store(store: Any) -> None:
    app = bakery(SessionInterface(store))
    client = app.test_client()
    await client.get("/cart/rye")
    cookie = next(iter(client.cookie_jar or []))
    assert "rye" not in cookie.value
    other = bakery(SessionInterface(store)).test_client()
    other.set_cookie("localhost", cookie.name, cookie.value)
    assert (await (await other.get("/read")).get_json())["data"] == {"cart": ["rye"]}


async def test_csrf_refuses_a_post_without_its_token() -> None:
    app = bakery(SessionInterface(MemoryStore(), csrf=CSRFOptions()), init=True)
    client = app.test_client()
    token = (await (await client.get("/read")).get_json())["csrf"]
    origin = {"Origin": "http://localhost"}
    refused = await client.post("/note", form={"note": "hi"}, headers=origin)
    assert refused.status_code == 403
    assert (await refused.get_json())["error"] == "CSRF_FAILED"
    forged = await client.post(
        "/note", form={"note": "x", "csrf_token": token}, headers={"Origin": "https://evil.example"}
    )
    assert forged.status_code == 403
    ok = await client.post("/note", form={"note": "hi", "csrf_token": token}, headers=origin)
    assert await ok.get_json() == {"note": "hi"}
    assert (await (await client.get("/read")).get_json())["data"] == {"note": "hi"}


async def test_a_store_outage_answers_503_json() -> None:
    down = DownStore()
    app = bakery(SessionInterface(down), init=True)
    client = app.test_client()
    await client.get("/visit")
    down.fail_load = True
    response = await client.get("/visit")
    assert response.status_code == 503
    assert (await response.get_json())["error"] == "STORE_UNAVAILABLE"
    down.fail_load, down.fail_save = False, True
    response = await client.get("/visit")
    assert response.status_code == 503
    assert "Set-Cookie" not in response.headers


async def test_a_websocket_has_its_session_and_saves_it_at_the_end() -> None:
    app = bakery(SessionInterface(MemoryStore()), init=True)
    client = app.test_client()
    await client.get("/visit")  # the cookie first: a WebSocket cannot set one afterwards
    async with client.websocket("/ws") as socket:
        await socket.send("hello")
        assert await socket.receive() == "True:hello"
    await asyncio.sleep(0)  # (the handler's context closes after the last message)
    data = (await (await client.get("/read")).get_json())["data"]
    assert data == {"visits": 1, "opened": True, "said": "hello"}


async def test_a_cross_site_websocket_handshake_is_refused() -> None:
    from quart.testing import WebsocketResponseError

    app = bakery(SessionInterface(MemoryStore(), csrf=CSRFOptions()), init=True)
    client = app.test_client()
    await client.get("/visit")
    with pytest.raises(WebsocketResponseError) as caught:
        async with client.websocket("/ws", headers={"Origin": "https://evil.example"}) as socket:
            await socket.send("hello")
    assert caught.value.response.status_code == 403


@pytest.mark.parametrize("cookie", ["garbage", "x" * 5000, "a.b.c", '"; Path=/'])
async def test_hostile_cookies_get_a_fresh_session(cookie: str) -> None:
    app = bakery(SessionInterface(MemoryStore()), init=True)
    response = await app.test_client().get("/read", headers={"Cookie": f"session={cookie}"})
    assert response.status_code == 200
    assert (await response.get_json())["data"] == {}


@pytest.mark.slow
async def test_two_parallel_requests_changing_different_keys_both_win_under_uvicorn() -> None:
    app = bakery(SessionInterface(MemoryStore(), policy=Policy(ttl=None)), init=True)
    with serve(app) as url:
        async with httpx.AsyncClient(base_url=url, trust_env=False) as client:
            await client.get("/visit")
            first, second = await asyncio.gather(client.get("/slow/a"), client.get("/slow/b"))
            assert (first.status_code, second.status_code) == (200, 200)
            body = (await client.get("/read")).json()
    assert body["data"] == {"visits": 1, "a": 1, "b": 1}


@pytest.mark.slow
def test_a_websocket_under_uvicorn_saves_its_session_at_the_end() -> None:
    app = bakery(SessionInterface(MemoryStore()), init=True)
    with serve(app) as url, httpx.Client(base_url=url, trust_env=False) as client:
        client.get("/visit")
        cookie = f"session={client.cookies['session']}"
        ws_url = "ws" + url.removeprefix("http") + "/ws"
        with websockets.sync.client.connect(
            ws_url, additional_headers={"Cookie": cookie}, proxy=None
        ) as socket:
            socket.send("hello")
            assert socket.recv(timeout=5) == "True:hello"
        deadline = time.monotonic() + 5  # the save follows the close, on the server's side
        while client.get("/read").json()["data"].get("said") is None:
            assert time.monotonic() < deadline, "the WebSocket's session was not saved"
            time.sleep(0.02)
        assert client.get("/read").json()["data"] == {"visits": 1, "opened": True, "said": "hello"}


async def test_login_and_role_required_answer_json() -> None:
    from sessio import Principal
    from sessio.integrations.quart import current_principal, login_required, role_required

    app = bakery(SessionInterface(MemoryStore()), init=True)

    @app.get("/login/<name>")
    async def login(name: str) -> Any:
        session: Any = quart.session
        session.login(Principal(name, roles={"baker"} if name == "ada" else set()))
        return {"ok": True}

    @app.get("/kitchen")
    @login_required
    async def kitchen() -> Any:
        principal = current_principal()
        return {"user": principal.id if principal else None}

    @app.get("/oven")
    @role_required("baker")
    def oven() -> Any:  # a sync view is awaited through Quart's ensure_async
        return {"hot": True}

    client = app.test_client()
    response = await client.get("/kitchen")
    assert response.status_code == 401
    assert (await response.get_json())["error"] == "AUTHENTICATION_REQUIRED"
    await client.get("/login/bob")
    assert await (await client.get("/kitchen")).get_json() == {"user": "bob"}
    response = await client.get("/oven")
    assert response.status_code == 403
    assert (await response.get_json())["error"] == "PERMISSION_DENIED"
    await client.get("/login/ada")
    assert await (await client.get("/oven")).get_json() == {"hot": True}
