"""The aiohttp integration behind aiohttp's test server: aiohttp-session's calls, the exchange's rules."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import aiohttp_session
import pytest
from aiohttp import web

from sessio import MemoryStore, Policy, Principal, SQLiteStore
from sessio.errors import AuthenticationRequired, ConfigurationError
from sessio.integrations import aiohttp as sessio_aiohttp
from sessio.integrations.aiohttp import Session, get_manager, get_session, new_session, setup

from ..test_lifecycle_failures import FailingStore
from ..wsgi_support import DownStore
from .conftest import MakeClient

SECRET = "a-test-secret-of-at-least-32-bytes!!"
POLICY = Policy.web().development()
COOKIE = POLICY.cookie.name


def shop(module: ModuleType) -> web.Application:
    """One app's handlers, written against aiohttp-session: ``module`` provides
    ``get_session`` and ``new_session`` (aiohttp_session, or sessio's drop-in)."""

    async def visit(request: web.Request) -> web.Response:
        session = await module.get_session(request)
        session["visits"] = session.get("visits", 0) + 1
        return web.json_response({"visits": session["visits"], "new": session.new})

    async def login(request: web.Request) -> web.Response:
        session = await module.new_session(request)
        session["user"] = request.match_info["name"]
        raise web.HTTPFound("/whoami")

    async def whoami(request: web.Request) -> web.Response:
        session = await module.get_session(request)
        return web.json_response({"user": session.get("user"), "empty": session.empty})

    async def cart(request: web.Request) -> web.Response:
        session = await module.get_session(request)
        session.setdefault("cart", [])
        session["cart"].append(request.match_info["item"])
        session.changed()  # aiohttp-session cannot see in-place changes; sessio needs no hint
        return web.json_response(session["cart"])

    async def logout(request: web.Request) -> web.Response:
        session = await module.get_session(request)
        session.invalidate()
        return web.json_response({"bye": True})

    app = web.Application()
    app.router.add_get("/visit", visit)
    app.router.add_get("/login/{name}", login)
    app.router.add_get("/whoami", whoami)
    app.router.add_get("/cart/{item}", cart)
    app.router.add_get("/logout", logout)
    return app


async def _journey(client: Any) -> list[Any]:
    seen = []
    for path in (
        "/visit",
        "/visit",
        "/cart/apple",
        "/cart/pear",
        "/login/ada",
        "/visit",
        "/logout",
        "/whoami",
        "/visit",
    ):
        response = await client.get(path)
        assert response.status == 200, path
        seen.append(await response.json())
    return seen


# aiohttp-session itself keys requests by str, which aiohttp 3.14 warns about.
@pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")
async def test_an_aiohttp_session_app_switches_by_its_setup_line(
    aiohttp_client: MakeClient,
) -> None:
    theirs = shop(aiohttp_session)
    aiohttp_session.setup(theirs, aiohttp_session.SimpleCookieStorage())
    store = MemoryStore()
    ours = shop(sessio_aiohttp)
    setup(ours, store=store, secret_key=SECRET, policy=POLICY)

    expected = await _journey(await aiohttp_client(theirs))
    client = await aiohttp_client(ours)
    assert await _journey(client) == expected
    assert expected[3] == ["apple", "pear"]  # the in-place append, kept by both
    assert expected[5] == {"visits": 1, "new": False}  # new_session dropped the old data
    assert expected[7] == {"user": None, "empty": True}
    # The difference: the cookie holds a signed ID, the data is in the store.
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE].value
    assert "visits" not in cookie
    assert "ada" not in cookie


async def test_new_session_rotates_the_id_and_deletes_the_old_record(
    aiohttp_client: MakeClient,
) -> None:
    store = MemoryStore()
    app = shop(sessio_aiohttp)
    setup(app, store=store, secret_key=SECRET, policy=POLICY)
    client = await aiohttp_client(app)
    await client.get("/visit")
    before = client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE].value
    response = await client.get("/login/ada", allow_redirects=False)
    assert response.status == 302
    assert COOKIE in response.cookies  # the raised HTTPFound carries the new cookie
    after = client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE].value
    assert after != before
    stale = await aiohttp_client(app)
    stale.session.cookie_jar.update_cookies({COOKIE: before})
    assert await (await stale.get("/whoami")).json() == {"user": None, "empty": True}


def _app(**options: Any) -> tuple[web.Application, sessio_aiohttp.SessionMiddleware]:
    async def put(request: web.Request) -> web.Response:
        session = await get_session(request)
        session[request.match_info["key"]] = request.match_info["value"]
        return web.json_response(dict(session))

    async def read(request: web.Request) -> web.Response:
        session = await get_session(request)
        return web.json_response(
            {
                "data": dict(session),
                "csrf": session.csrf_token,
                "via": request[sessio_aiohttp.TRANSPORT_KEY],
            }
        )

    async def form(request: web.Request) -> web.Response:
        fields = await request.post()  # the middleware read the body first: it is still here
        session = await get_session(request)
        session["note"] = str(fields["note"])
        return web.json_response({"note": session["note"]})

    async def stream(request: web.Request) -> web.StreamResponse:
        session = await get_session(request)
        session["streamed"] = True
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"one,")
        await response.write(b"two")
        return response

    async def boom(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["half"] = "made"
        return web.json_response({"error": "oops"}, status=500)

    async def login(request: web.Request) -> web.Response:
        session = await get_session(request)
        session.login(Principal("42"))
        return web.json_response({"ok": True})

    async def devices(request: web.Request) -> web.Response:
        session = await get_session(request)
        infos = await get_manager(request).sessions_of("42", current=session)
        return web.json_response(len(infos))

    async def ws(request: web.Request) -> web.WebSocketResponse:
        session = await get_session(request)
        session["opened"] = True
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            session["said"] = message.data  # after the handshake: saved at close
            await socket.send_str(f"{session['opened']}:{message.data}")
            await socket.close()
        return socket

    async def private(request: web.Request) -> web.Response:
        session = await get_session(request)
        if not session.is_authenticated:
            raise AuthenticationRequired("log in first")
        return web.Response(text="secret")

    async def bad(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["x"] = object()  # not encodable: a programming error
        return web.Response(text="unreachable")

    async def static(request: web.Request) -> web.Response:
        return web.Response(text=str(sessio_aiohttp.SESSION_KEY in request))

    app = web.Application()
    app.router.add_get("/put/{key}/{value}", put)
    app.router.add_post("/put/{key}/{value}", put)
    app.router.add_get("/read", read)
    app.router.add_post("/form", form)
    app.router.add_get("/stream", stream)
    app.router.add_get("/boom", boom)
    app.router.add_post("/login", login)
    app.router.add_get("/devices", devices)
    app.router.add_get("/ws", ws)
    app.router.add_get("/static/x", static)
    app.router.add_get("/private", private)
    app.router.add_get("/bad", bad)
    if "manager" not in options:
        options.setdefault("store", MemoryStore())
        options.setdefault("policy", POLICY)
    middleware = setup(app, secret_key=SECRET, **options)
    return app, middleware


async def test_sqlite_sessions_survive_a_new_app(
    tmp_path: Path, aiohttp_client: MakeClient
) -> None:
    store = SQLiteStore(tmp_path / "sessions.db")
    app, _ = _app(store=store)
    client = await aiohttp_client(app)
    await client.get("/put/colour/blue")
    token = client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE].value
    again, _ = _app(store=SQLiteStore(tmp_path / "sessions.db"))
    other = await aiohttp_client(again)
    other.session.cookie_jar.update_cookies({COOKIE: token})
    body = await (await other.get("/read")).json()
    assert body["data"] == {"colour": "blue"}
    assert body["via"] == "cookie"


@pytest.mark.redis
async def test_redis_store(aiohttp_client: MakeClient) -> None:
    from ...stores.servers import redis_store, require_redis

    require_redis()
    async with redis_store() as store:
        app, _ = _app(store=store)
        client = await aiohttp_client(app)
        await client.get("/put/colour/red")
        assert (await (await client.get("/read")).json())["data"] == {"colour": "red"}


async def test_two_parallel_requests_changing_different_keys_both_win(
    aiohttp_client: MakeClient,
) -> None:
    both_loaded = asyncio.Event()
    arrived = 0

    async def slow_put(request: web.Request) -> web.Response:
        nonlocal arrived
        session = await get_session(request)
        arrived += 1
        if arrived == 2:
            both_loaded.set()
        await asyncio.wait_for(both_loaded.wait(), 5)  # both loaded before either commits
        session[request.match_info["key"]] = 1
        return web.json_response(dict(session))

    app, _ = _app()
    app.router.add_get("/slow/{key}", slow_put)
    client = await aiohttp_client(app)
    await client.get("/put/seed/0")
    first, second = await asyncio.gather(client.get("/slow/a"), client.get("/slow/b"))
    assert (first.status, second.status) == (200, 200)
    body = await (await client.get("/read")).json()
    assert body["data"] == {"seed": "0", "a": 1, "b": 1}


async def test_csrf_refuses_a_post_without_its_token(aiohttp_client: MakeClient) -> None:
    app, _ = _app()
    client = await aiohttp_client(app)
    token = (await (await client.get("/read")).json())["csrf"]
    origin = str(client.make_url("")).rstrip("/")

    refused = await client.post("/put/k/v", headers={"Origin": origin})
    assert refused.status == 403
    assert (await refused.json())["error"] == "CSRF_FAILED"
    assert "Set-Cookie" not in refused.headers
    assert "Vary" not in refused.headers  # the refusal is the exchange's answer, untouched
    forged = await client.post(
        "/put/k/v", headers={"Origin": "https://evil.example", "X-CSRF-Token": token}
    )
    assert forged.status == 403
    ok = await client.post("/put/k/v", headers={"Origin": origin, "X-CSRF-Token": token})
    assert ok.status == 200
    form = await client.post(
        "/form", data={"csrf_token": token, "note": "hi"}, headers={"Origin": origin}
    )
    assert await form.json() == {"note": "hi"}
    wrong = await client.post(
        "/form", data={"csrf_token": token[::-1], "note": "x"}, headers={"Origin": origin}
    )
    assert wrong.status == 403
    assert (await (await client.get("/read")).json())["data"] == {"k": "v", "note": "hi"}


async def test_a_form_over_the_limit_is_refused_unread(aiohttp_client: MakeClient) -> None:
    from sessio.integrations.csrf import CSRFOptions

    app, _ = _app(csrf=CSRFOptions(max_form_bytes=64))
    client = await aiohttp_client(app)
    token = (await (await client.get("/read")).json())["csrf"]
    origin = str(client.make_url("")).rstrip("/")
    response = await client.post(
        "/form", data={"csrf_token": token, "note": "x" * 200}, headers={"Origin": origin}
    )
    assert response.status == 403
    assert "over 64 bytes" in (await response.json())["detail"]


async def test_a_store_outage_answers_503_json(aiohttp_client: MakeClient) -> None:
    store = DownStore()
    app, _ = _app(store=store)
    client = await aiohttp_client(app)
    await client.get("/put/a/1")
    store.fail_load = True
    response = await client.get("/read")
    assert response.status == 503
    assert response.headers["Cache-Control"] == "no-store"
    assert (await response.json())["error"] == "STORE_UNAVAILABLE"
    store.fail_load, store.fail_save = False, True
    response = await client.get("/put/b/2")
    assert response.status == 503
    assert COOKIE not in response.cookies


@pytest.mark.parametrize("stall", [0.0, 0.2])
async def test_a_stalled_store_answers_503_and_keeps_nothing(
    aiohttp_client: MakeClient, stall: float
) -> None:
    app, _ = _app(store=FailingStore(stall=stall))
    client = await aiohttp_client(app)
    response = await asyncio.wait_for(client.get("/put/a/1"), 10)
    assert response.status == 503
    assert (await response.json())["error"] == "STORE_UNAVAILABLE"
    assert COOKIE not in response.cookies


async def test_on_error_answers_instead(aiohttp_client: MakeClient) -> None:
    async def friendly(request: web.Request, error: Exception) -> web.Response:
        return web.Response(status=503, text=f"try later ({type(error).__name__})")

    app, _ = _app(store=DownStore(save=True), on_error=friendly)
    client = await aiohttp_client(app)
    response = await client.get("/put/a/1")
    assert (response.status, await response.text()) == (503, "try later (StoreUnavailable)")


async def test_a_stream_is_committed_as_it_starts(aiohttp_client: MakeClient) -> None:
    app, _ = _app()
    client = await aiohttp_client(app)
    response = await client.get("/stream")
    assert await response.read() == b"one,two"
    assert COOKIE in response.cookies
    assert "Cookie" in response.headers["Vary"]
    assert (await (await client.get("/read")).json())["data"] == {"streamed": True}


async def test_a_stream_whose_commit_fails_is_answered(aiohttp_client: MakeClient) -> None:
    app, _ = _app(store=DownStore(save=True))
    client = await aiohttp_client(app)
    response = await client.get("/stream")
    assert response.status == 503
    assert (await response.json())["error"] == "STORE_UNAVAILABLE"


async def test_a_5xx_keeps_no_half_made_change(aiohttp_client: MakeClient) -> None:
    store = MemoryStore()
    app, _ = _app(store=store)
    client = await aiohttp_client(app)
    response = await client.get("/boom")
    assert response.status == 500
    assert COOKIE not in response.cookies
    assert "Set-Cookie" not in response.headers


async def test_excluded_paths_get_no_session(aiohttp_client: MakeClient) -> None:
    app, _ = _app(exclude_paths=["/static/*"])
    client = await aiohttp_client(app)
    assert await (await client.get("/static/x")).text() == "False"


async def test_the_principal_index_lists_devices(aiohttp_client: MakeClient) -> None:
    app, _ = _app()
    phone, laptop = await aiohttp_client(app), await aiohttp_client(app)
    for client in (phone, laptop):
        token = (await (await client.get("/read")).json())["csrf"]
        origin = str(client.make_url("")).rstrip("/")
        response = await client.post("/login", headers={"Origin": origin, "X-CSRF-Token": token})
        assert response.status == 200
    assert await (await phone.get("/devices")).json() == 2


async def test_a_websocket_has_its_session_committed_at_accept_and_close(
    aiohttp_client: MakeClient,
) -> None:
    app, _ = _app()
    client = await aiohttp_client(app)
    socket = await client.ws_connect("/ws", origin=str(client.make_url("")).rstrip("/"))
    await socket.send_str("hello")
    assert (await socket.receive_str()) == "True:hello"
    await socket.close()
    # The handshake set the cookie (the jar has it); "said" came later and was saved at close.
    body = await (await client.get("/read")).json()
    assert body["data"] == {"opened": True, "said": "hello"}


async def test_a_cross_site_websocket_handshake_is_refused(aiohttp_client: MakeClient) -> None:
    app, _ = _app()
    client = await aiohttp_client(app)
    await client.get("/put/a/1")
    with pytest.raises(aiohttp.WSServerHandshakeError) as caught:
        await client.ws_connect("/ws", origin="https://evil.example")
    assert caught.value.status == 403


@pytest.mark.parametrize(
    "cookie",
    ["", "garbage", "x" * 5000, "a.b.c", "\u00e9t\u00e9", '"; Path=/; evil=1'],
)
async def test_hostile_cookies_get_a_fresh_session(cookie: str, aiohttp_client: MakeClient) -> None:
    app, _ = _app()
    client = await aiohttp_client(app)
    response = await client.get("/read", headers={"Cookie": f"{COOKIE}={cookie}"})
    assert response.status == 200
    assert (await response.json())["data"] == {}


async def test_get_session_without_setup_says_what_to_do(aiohttp_client: MakeClient) -> None:
    async def handler(request: web.Request) -> web.Response:
        with pytest.raises(ConfigurationError, match="setup"):
            await get_session(request)
        with pytest.raises(ConfigurationError, match="setup"):
            await new_session(request)
        return web.Response(text="checked")

    app = web.Application()
    app.router.add_get("/", handler)
    client = await aiohttp_client(app)
    assert await (await client.get("/")).text() == "checked"


def test_the_session_answers_to_aiohttp_sessions_names() -> None:
    names = {"new", "identity", "created", "empty", "changed", "invalidate"}
    assert names <= set(dir(Session))


async def test_a_session_error_from_a_handler_is_answered_as_json(
    aiohttp_client: MakeClient,
) -> None:
    app, _ = _app()
    client = await aiohttp_client(app)
    response = await client.get("/private")
    assert response.status == 401
    assert (await response.json())["error"] == "AUTHENTICATION_REQUIRED"
    programming = await client.get("/bad")  # not dressed as an answer: aiohttp's own 500
    assert programming.status == 500
    assert programming.content_type == "text/plain"


async def test_a_ready_manager_is_one_that_builds_aiohttp_sessions(
    aiohttp_client: MakeClient,
) -> None:
    from sessio import SessionManager

    ours, _ = _app(manager=sessio_aiohttp.Manager(MemoryStore(), POLICY))
    client = await aiohttp_client(ours)
    assert (await client.get("/put/a/1")).status == 200
    plain, _ = _app(manager=SessionManager(MemoryStore(), POLICY))
    client = await aiohttp_client(plain)
    response = await client.get("/put/a/1")
    assert response.status == 500  # a configuration error, raised to aiohttp


class CountingManager(sessio_aiohttp.Manager):
    """Counts the commits the middleware asks for."""

    commits = 0

    async def commit(self, session: Any) -> Any:
        type(self).commits += 1
        return await super().commit(session)


async def test_a_refused_request_commits_nothing(aiohttp_client: MakeClient) -> None:
    CountingManager.commits = 0
    app, _ = _app(manager=CountingManager(MemoryStore(), POLICY))
    client = await aiohttp_client(app)
    await client.get("/read")
    assert CountingManager.commits == 1
    origin = str(client.make_url("")).rstrip("/")
    refused = await client.post("/put/k/v", headers={"Origin": origin})
    assert refused.status == 403
    assert CountingManager.commits == 1  # the answer is the exchange's, not the app's response


async def test_aiohttp_sessions_own_middleware_line_switches_too(
    aiohttp_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    # aiohttp-session's tests install it as web.Application(middlewares=[session_middleware(...)])
    async def save(request: web.Request) -> web.StreamResponse:
        session = await get_session(request)
        session["message"] = "works"
        raise web.HTTPFound("/show")

    async def show(request: web.Request) -> web.StreamResponse:
        session = await get_session(request)
        return web.Response(text=f"{session.get('message')} {session.get('streamed')}")

    async def stream(request: web.Request) -> web.StreamResponse:
        session = await get_session(request)
        session["streamed"] = True
        response = web.StreamResponse()
        await response.prepare(request)
        await response.write(b"data")
        return response

    middleware = sessio_aiohttp.session_middleware(
        store=MemoryStore(), secret_key=SECRET, policy=POLICY
    )
    app = web.Application(middlewares=[middleware])
    app.router.add_get("/save", save)
    app.router.add_get("/show", show)
    app.router.add_get("/stream", stream)
    client = await aiohttp_client(app)
    response = await client.get("/save")
    assert (response.status, str(response.url)[-5:]) == (200, "/show")
    assert await response.text() == "works None"
    # Without setup()'s hook a stream cannot carry a header, but its changes are saved.
    response = await client.get("/stream")
    assert await response.read() == b"data"
    assert COOKIE not in response.cookies
    assert "setup(app, ...)" in caplog.text
    assert await (await client.get("/show")).text() == "works True"
    assert (await client.get("/stream")).status == 200
    assert caplog.text.count("setup(app, ...)") == 1  # said once
