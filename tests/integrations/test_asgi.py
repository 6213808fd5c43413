"""SessionMiddleware in-process: configuration, laziness, errors, expiry and the ASGI plumbing."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient, WebSocketDenialResponse

from sessio import (
    AuthenticationRequired,
    ConfigurationError,
    CSRFFailed,
    MemoryStore,
    PermissionDenied,
    Policy,
    SessionManager,
    SQLiteStore,
    StoreUnavailable,
    SyncSessionManager,
    ValueNotSerializable,
)
from sessio.exchange import Edit
from sessio.integrations import _asgi
from sessio.integrations._common import with_vary
from sessio.integrations.asgi import SessionMiddleware, get_manager, get_session
from sessio.integrations.csrf import CSRFOptions
from sessio.transports import HeaderTransport

from ..conftest import FakeClock
from .apps import SECRET, starlette_app

POLICY = Policy.web().development()
COOKIE = POLICY.cookie.name


def middleware(app: Any = None, **options: Any) -> SessionMiddleware:
    options.setdefault("store", MemoryStore())
    options.setdefault("secret_key", SECRET)
    options.setdefault("policy", POLICY)
    options.setdefault("exclude_paths", ["/static/*"])
    return SessionMiddleware(app or starlette_app(), **options)


def lookups(store: MemoryStore) -> int:
    stats = store.stats()
    return int(stats["hits"] + stats["misses"])


# -- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"store": None}, "needs a store"),
        ({"manager": SessionManager(MemoryStore())}, "not both"),
        ({"secret_key": None}, "secret_key is required"),
        ({"transports": [HeaderTransport(SECRET)]}, "drop secret_key"),
        ({"secret_key": None, "transports": []}, "non-empty list"),
        ({"secret_key": "short"}, "32 bytes"),
        ({"csrf": {"field_name": "x"}}, "CSRFOptions"),
        ({"exclude_paths": "/static/*"}, "sequence of path patterns"),
        ({"on_error": "503.html"}, "callable"),
    ],
)
def test_bad_configuration_fails_at_construction(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        middleware(**options)


def test_the_manager_must_be_the_async_one() -> None:
    with pytest.raises(ConfigurationError, match="async"):
        SessionMiddleware(
            starlette_app(), manager=SyncSessionManager(MemoryStore()), secret_key=SECRET
        )  # type: ignore[arg-type]


def test_get_session_outside_the_middleware_says_what_is_missing() -> None:
    with pytest.raises(ConfigurationError, match="install SessionMiddleware"):
        get_session({"type": "http"})
    with pytest.raises(ConfigurationError, match="install SessionMiddleware"):
        get_manager({"type": "http"})


def test_a_bare_asgi_app_gets_its_session_from_the_scope() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        session = get_session(scope)
        session["hits"] = session.get("hits", 0) + 1
        assert get_manager(scope).store is store
        body = str(session["hits"]).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    store = MemoryStore()
    with TestClient(middleware(app, store=store)) as client:  # lifespan passes through
        assert [client.get("/").text for _ in range(3)] == ["1", "2", "3"]


# -- laziness -------------------------------------------------------------------------------------


def test_no_token_and_excluded_paths_cost_no_store_call() -> None:
    store = MemoryStore()
    client = TestClient(middleware(store=store))
    assert client.get("/whoami").json() == {"user": None, "data": {}}
    assert lookups(store) == 0
    client.post(
        "/put", json={"a": 1}, headers={"X-CSRF-Token": client.get("/csrf").json()["token"]}
    )
    assert client.cookies.get(COOKIE)
    before = lookups(store)
    assert client.get("/static/app.css").headers["has-session"] == "False"
    assert lookups(store) == before
    client.get("/ping")
    assert lookups(store) == before + 1  # a token is loaded even if unused (see asgi docs)


# -- failures -------------------------------------------------------------------------------------


def test_a_handler_that_raises_commits_nothing() -> None:
    store = MemoryStore()
    client = TestClient(middleware(store=store), raise_server_exceptions=False)
    response = client.get("/boom")
    assert response.status_code == 500
    assert "set-cookie" not in response.headers
    assert store.count_sync() == 0


def _raising(exc: Exception) -> Starlette:
    """An app whose one route writes the session and raises ``exc``.

    The middleware sits in Starlette's list, inside its ServerErrorMiddleware, as usual: wrapped
    around the whole app instead, it would find Starlette's own 500 already sent.
    """

    async def endpoint(request: Request) -> Response:
        request.session["touched"] = True
        raise exc

    options = {"store": MemoryStore(), "secret_key": SECRET, "policy": POLICY}
    return Starlette(
        routes=[Route("/", endpoint)], middleware=[Middleware(SessionMiddleware, **options)]
    )


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (AuthenticationRequired("log in first"), 401),
        (PermissionDenied("admins only"), 403),
        (StoreUnavailable("redis at 10.0.0.1 is down"), 503),
    ],
)
def test_session_errors_escaping_the_app_are_answered(exc: Exception, status: int) -> None:
    client = TestClient(_raising(exc))
    response = client.get("/")
    assert response.status_code == status
    body = response.json()
    assert body["error"] == exc.code  # type: ignore[attr-defined]
    assert "10.0.0.1" not in response.text  # an outage's cause is for the log only
    # A client error still commits what the handler wrote; a 5xx does not.
    assert ("set-cookie" in response.headers) is (status < 500)


def test_programming_errors_are_not_dressed_as_answers() -> None:
    client = TestClient(_raising(ValueNotSerializable("no")), raise_server_exceptions=False)
    assert client.get("/").status_code == 500
    with pytest.raises(ValueNotSerializable):
        TestClient(_raising(ValueNotSerializable("no"))).get("/")


def test_on_error_chooses_the_answer(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    seen: list[str] = []

    def on_error(scope: Any, exc: Any) -> Response:
        seen.append(exc.code)
        return PlainTextResponse("back soon", status_code=503, headers={"retry-after": "5"})

    client = TestClient(middleware(store=store, on_error=on_error))
    client.post(
        "/put", json={"a": 1}, headers={"X-CSRF-Token": client.get("/csrf").json()["token"]}
    )
    store.close_sync()
    response = client.get("/whoami")
    assert (response.status_code, response.text) == (503, "back soon")
    assert response.headers["retry-after"] == "5"
    assert seen == ["STORE_UNAVAILABLE"]


def test_a_csrf_refusal_goes_through_on_error_so_html_apps_can_render_a_page() -> None:
    events: list[Any] = []

    def on_error(scope: Any, exc: Any) -> Response:
        if isinstance(exc, CSRFFailed):
            # The session is there to read (who was refused), though nothing gets committed.
            events.append((exc.message, get_session(scope).is_new))
            page = "<h1>This form has expired</h1><p>Go back, reload, and try again.</p>"
            return HTMLResponse(page, status_code=403)
        return PlainTextResponse("other", status_code=exc.status_code)

    client = TestClient(middleware(on_error=on_error))
    client.get("/csrf")  # a stored session, so the refusal below concerns a known one
    response = client.post("/note", data={"note": "hi", "csrf_token": "stale"})
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "This form has expired" in response.text
    assert "set-cookie" not in response.headers
    assert events == [("CSRF token invalid", False)]
    # Without on_error the refusal stays the JSON 403.
    default = TestClient(middleware()).post("/note", data={"note": "hi"})
    assert (default.status_code, default.json()["error"]) == (403, "CSRF_FAILED")


def test_websocket_handshake_during_an_outage_is_denied(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    client = TestClient(middleware(store=store))
    client.post(
        "/put", json={"a": 1}, headers={"X-CSRF-Token": client.get("/csrf").json()["token"]}
    )
    store.close_sync()
    with pytest.raises(WebSocketDenialResponse) as denied, client.websocket_connect("/ws"):
        pass
    assert denied.value.status_code == 503
    assert denied.value.json()["error"] == "STORE_UNAVAILABLE"


# -- expiry and refresh ---------------------------------------------------------------------------


def test_expiry_is_enforced_server_side(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    manager = SessionManager(store, POLICY, clock=clock)
    client = TestClient(middleware(store=None, policy=None, manager=manager))
    client.post(
        "/put", json={"a": 1}, headers={"X-CSRF-Token": client.get("/csrf").json()["token"]}
    )
    assert client.get("/whoami").json()["data"] == {"a": 1}
    clock.advance(POLICY.idle_seconds + POLICY.refresh_seconds + 1)  # type: ignore[operator]
    # The browser would still send the cookie; the server no longer honours it.
    assert client.get("/whoami").json()["data"] == {}


@pytest.mark.parametrize("rolling", [False, True])
def test_touch_refreshes_expiry_and_rolling_resends_the_cookie(
    clock: FakeClock, rolling: bool
) -> None:
    policy = POLICY.replace(rolling=rolling)
    assert policy.idle_timeout == timedelta(minutes=30)  # the steps below rely on it
    manager = SessionManager(MemoryStore(clock=clock), policy, clock=clock)
    client = TestClient(middleware(store=None, policy=None, manager=manager))
    client.post(
        "/put", json={"a": 1}, headers={"X-CSRF-Token": client.get("/csrf").json()["token"]}
    )
    assert "set-cookie" not in client.get("/whoami").headers  # within the refresh interval
    for _ in range(3):  # 3 x 20 minutes: alive only because each read pushed the idle expiry
        clock.advance(20 * 60)
        response = client.get("/whoami")
        assert response.json()["data"] == {"a": 1}
        assert ("set-cookie" in response.headers) is rolling


# -- header transports ---------------------------------------------------------------------------


def test_header_sessions_echo_their_token_and_never_set_cookies() -> None:
    app = middleware(policy=Policy.api(), csrf=CSRFOptions())
    client = TestClient(app)
    response = client.post("/put", json={"api": 1})
    assert "set-cookie" not in response.headers
    token = response.headers["x-session-id"]
    again = client.post("/put", json={"more": 2}, headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 200
    assert "x-session-id" not in again.headers  # same session, nothing new to tell
    read = client.get("/whoami", headers={"X-Session-ID": token})
    assert read.json()["data"] == {"api": 1, "more": 2}
    assert read.headers["vary"] == "Authorization, X-Session-ID"


# -- proxies --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trust", "forwarded", "expected"),
    [
        (False, "203.0.113.7", "testclient"),
        (True, "10.0.0.1, 203.0.113.7", "203.0.113.7"),  # the entry our proxy appended
        (True, "2001:db8::1", "2001:db8::1"),
        (True, "not-an-ip", "testclient"),
    ],
)
def test_client_ip_follows_x_forwarded_for_only_when_trusted(
    trust: bool, forwarded: str, expected: str
) -> None:
    store = MemoryStore()
    client = TestClient(middleware(store=store, trust_forwarded=trust))
    headers = {"X-Forwarded-For": forwarded}
    token = client.get("/csrf", headers=headers).json()["token"]
    client.post("/login", data={"user": "ann"}, headers={**headers, "X-CSRF-Token": token})
    (info,) = SyncSessionManager(store, POLICY).sessions_of("ann")
    assert info.ip == expected


@pytest.mark.parametrize(
    "forwarded",
    [
        [("X-Forwarded-For", "6.6.6.6, 198.51.100.20")],
        [("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "198.51.100.20")],
    ],
    ids=["one-line", "two-lines"],
)
def test_a_forged_left_entry_of_x_forwarded_for_is_ignored(forwarded: list[Any]) -> None:
    # The client sent "X-Forwarded-For: 6.6.6.6" itself; our proxy appended the address it saw,
    # on the same line or a line of its own. The client is what the proxy wrote, last.
    async def where(request: Request) -> Response:
        return PlainTextResponse(str(request.session.meta.ip))

    client = TestClient(middleware(Starlette(routes=[Route("/", where)]), trust_forwarded=True))
    assert client.get("/", headers=forwarded).text == "198.51.100.20"


def test_forwarded_scheme_and_host_count_for_the_origin_check_only_when_trusted() -> None:
    for trust, status in ((False, 403), (True, 200)):
        client = TestClient(middleware(trust_forwarded=trust))
        token = client.get("/csrf").json()["token"]
        headers = {
            "X-CSRF-Token": token,
            "Origin": "https://shop.example",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "shop.example",
        }
        assert client.post("/put", json={"a": 1}, headers=headers).status_code == status


# -- plumbing -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], [(b"vary", b"Cookie")]),
        ([(b"vary", b"Accept-Encoding")], [(b"vary", b"Accept-Encoding, Cookie")]),
        ([(b"Vary", b"accept, COOKIE")], [(b"Vary", b"accept, COOKIE")]),
        ([(b"vary", b"*")], [(b"vary", b"*")]),
        (
            [(b"vary", b"Accept"), (b"vary", b"Origin")],
            [(b"vary", b"Accept, Cookie"), (b"vary", b"Origin")],
        ),
    ],
)
def test_vary_merges_into_the_first_vary_line(
    headers: list[tuple[bytes, bytes]], expected: list[tuple[bytes, bytes]]
) -> None:
    merged = with_vary(_asgi.cache_headers(headers)[0], ("Cookie",))
    assert _asgi.apply(headers, Edit(vary=merged)) == expected


async def test_read_body_stops_at_the_limit_and_replay_hands_it_back() -> None:
    messages = [
        {"type": "http.request", "body": b"a" * 6, "more_body": True},
        {"type": "http.request", "body": b"b" * 6, "more_body": False},
        {"type": "http.disconnect"},
    ]

    def channel(items: list[dict[str, Any]]) -> Any:
        queue = list(items)

        async def receive() -> dict[str, Any]:
            return queue.pop(0)

        return receive

    assert await _asgi.read_body(channel(messages), 10) == (b"", "too_large")
    assert await _asgi.read_body(channel(messages[2:]), 10) == (b"", "disconnected")
    receive = channel(messages)
    body, state = await _asgi.read_body(receive, 12)
    assert (body, state) == (b"aaaaaabbbbbb", "complete")
    replayed = _asgi.replay(body, receive)
    assert await replayed() == {"type": "http.request", "body": body, "more_body": False}
    assert await replayed() == {"type": "http.disconnect"}


def test_the_middleware_and_the_starlette_drop_in_import_no_framework() -> None:
    code = (
        "import sys, sessio.integrations.asgi, sessio.integrations.starlette\n"
        "found = {m.split('.')[0] for m in sys.modules} & {'starlette', 'fastapi', 'httpx'}\n"
        "assert not found, found\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
