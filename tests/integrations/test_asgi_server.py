"""SessionMiddleware behind a real uvicorn server, driven by httpx and a WebSocket client."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets.exceptions
import websockets.sync.client

from sessio import (
    ConcurrencyPolicy,
    EventKind,
    Policy,
    SessionEvent,
    SessionManager,
    SQLiteStore,
    SyncSessionManager,
)
from sessio.ids import short_hash, store_key
from sessio.integrations.asgi import SessionMiddleware
from sessio.integrations.csrf import CSRFOptions

from .apps import SECRET, serve, starlette_app

pytestmark = pytest.mark.slow

POLICY = Policy.web().development()
COOKIE = POLICY.cookie.name


class Site:
    """A served app, its store and manager, and the events it emitted."""

    def __init__(self, url: str, store: SQLiteStore, manager: SessionManager) -> None:
        self.url = url
        self.store = store
        self.manager = manager
        self.events: list[SessionEvent] = []
        manager.events.subscribe(self.events.append)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, trust_env=False, **kwargs)

    def ws_url(self, path: str) -> str:
        return "ws" + self.url.removeprefix("http") + path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "sessions.db")
    yield store
    store.close_sync()


def _site(store: SQLiteStore, policy: Policy = POLICY, **options: Any) -> Iterator[Site]:
    manager = SessionManager(store, policy)
    options.setdefault("csrf", CSRFOptions(exempt_paths=["/hooks/*"]))
    app = SessionMiddleware(
        starlette_app(),
        manager=manager,
        secret_key=SECRET,
        exclude_paths=["/static/*"],
        **options,
    )
    with serve(app) as url:
        yield Site(url, store, manager)


@pytest.fixture
def site(store: SQLiteStore) -> Iterator[Site]:
    yield from _site(store)


@pytest.fixture
def client(site: Site) -> Iterator[httpx.Client]:
    with site.client() as client:
        yield client


def csrf_token(client: httpx.Client) -> str:
    token = client.get("/csrf").json()["token"]
    assert isinstance(token, str)
    return token


def login(client: httpx.Client, user: str = "alice", roles: str = "") -> httpx.Response:
    return client.post(
        "/login", data={"user": user, "roles": roles}, headers={"X-CSRF-Token": csrf_token(client)}
    )


def whoami(client: httpx.Client) -> Any:
    return client.get("/whoami").json()


# -- the cookie's life ---------------------------------------------------------------------------


def test_login_rotates_the_cookie_and_kills_the_old_one(site: Site, client: httpx.Client) -> None:
    before = client.get("/csrf")
    assert COOKIE in before.headers["set-cookie"]
    anonymous = client.cookies[COOKIE]
    response = login(client)
    assert response.status_code == 200
    assert "set-cookie" in response.headers
    assert client.cookies[COOKIE] != anonymous
    assert whoami(client)["user"] == "alice"
    with site.client(cookies={COOKIE: anonymous}) as stale:
        assert whoami(stale)["user"] is None


def test_logout_ends_the_login_and_destroy_clears_the_cookie(
    site: Site, client: httpx.Client
) -> None:
    login(client)
    logged_in = client.cookies[COOKIE]
    response = client.post("/logout", headers={"X-CSRF-Token": csrf_token(client)})
    assert response.status_code == 200
    assert client.cookies[COOKIE] != logged_in
    assert whoami(client)["user"] is None
    with site.client(cookies={COOKIE: logged_in}) as stale:
        assert whoami(stale)["user"] is None

    response = client.post("/destroy", headers={"X-CSRF-Token": csrf_token(client)})
    assert response.status_code == 200
    assert "Max-Age=0" in response.headers["set-cookie"]
    assert COOKIE not in client.cookies
    # No session is left; only the login's tombstone lives out its grace window (10 s).
    assert [r for r in site.store.page_sync().records if "s:meta" in r.fields] == []


def test_read_only_requests_send_no_cookie(client: httpx.Client) -> None:
    login(client)
    for path in ("/whoami", "/ping", "/cart"):
        response = client.get(path)
        assert response.status_code == 200
        assert "set-cookie" not in response.headers, path


def test_a_visitor_without_token_costs_no_store_row(site: Site, client: httpx.Client) -> None:
    assert whoami(client) == {"user": None, "data": {}}
    assert client.get("/ping").text == "pong"
    assert "set-cookie" not in client.get("/whoami").headers
    assert site.store.count_sync() == 0


def test_vary_cookie_when_the_session_was_read(client: httpx.Client) -> None:
    assert client.get("/whoami").headers.get_list("vary") == ["Cookie"]
    assert "vary" not in client.get("/ping").headers
    merged = client.get("/vary", params={"vary": "Accept-Encoding"})
    assert merged.headers.get_list("vary") == ["Accept-Encoding, Cookie"]
    already = client.get("/vary", params={"vary": "cookie"})
    assert already.headers.get_list("vary") == ["cookie"]


def test_streaming_response_commits_at_its_start(client: httpx.Client) -> None:
    with client.stream("GET", "/stream") as response:
        assert "set-cookie" in response.headers
        body = b"".join(response.iter_bytes())
    assert body == b"chunk0;chunk1;chunk2;"
    assert whoami(client)["data"] == {"streamed": True}


def test_redirect_after_post_sees_the_data(client: httpx.Client) -> None:
    token = csrf_token(client)
    for item in ("apple", "pear"):
        response = client.post(
            "/cart", data={"item": item}, headers={"X-CSRF-Token": token}, follow_redirects=True
        )
        assert response.history[0].status_code == 303
        assert response.json()["cart"][-1] == item
    assert client.get("/cart").json() == {"cart": ["apple", "pear"]}


def test_a_5xx_response_commits_nothing(site: Site, client: httpx.Client) -> None:
    failing = client.get("/failing")
    assert failing.status_code == 502
    assert "set-cookie" not in failing.headers
    assert site.store.count_sync() == 0


def test_excluded_paths_get_no_session(client: httpx.Client) -> None:
    response = client.get("/static/app.css")
    assert response.text == "static"
    assert response.headers["has-session"] == "False"


def test_client_ip_and_agent_are_recorded(site: Site, client: httpx.Client) -> None:
    login(client)
    (info,) = SyncSessionManager(site.store, POLICY).sessions_of("alice")
    assert info.ip == "127.0.0.1"
    assert info.user_agent == client.headers["user-agent"]


# -- hostile tokens ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cookie",
    [
        pytest.param(
            lambda good: good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1], id="tampered"
        ),
        pytest.param(lambda good: good + "x" * 5000, id="oversized"),
        pytest.param(lambda good: "\u00e9" + good, id="non-ascii"),
        pytest.param(lambda good: good.split(".")[0], id="unsigned"),
        pytest.param(lambda good: "", id="empty"),
    ],
)
def test_a_bad_cookie_gives_a_fresh_session_and_stores_nothing(
    site: Site, client: httpx.Client, cookie: Any
) -> None:
    login(client)
    good = client.cookies[COOKIE]
    stored = site.store.count_sync()
    raw = f"{COOKIE}={cookie(good)}".encode()
    with site.client() as other:
        response = other.get("/whoami", headers={"Cookie": raw})
    assert response.status_code == 200
    assert response.json() == {"user": None, "data": {}}
    assert "set-cookie" not in response.headers
    assert site.store.count_sync() == stored


def test_a_duplicated_cookie_is_refused_even_when_both_are_valid(
    site: Site, client: httpx.Client
) -> None:
    login(client)
    good = client.cookies[COOKIE]
    with site.client() as other:
        response = other.get("/whoami", headers={"Cookie": f"{COOKIE}={good}; {COOKIE}={good}"})
        assert response.json()["user"] is None
        single = other.get("/whoami", headers={"Cookie": f"{COOKIE}={good}"})
        assert single.json()["user"] == "alice"


# -- CSRF -----------------------------------------------------------------------------------------


def _csrf_denied(response: httpx.Response, detail: str) -> None:
    assert response.status_code == 403
    assert response.json() == {"error": "CSRF_FAILED", "detail": detail}
    assert "set-cookie" not in response.headers


def test_csrf_missing_and_wrong_tokens_are_refused(site: Site, client: httpx.Client) -> None:
    csrf_token(client)
    _csrf_denied(client.post("/put", json={"a": 1}), "CSRF token missing")
    _csrf_denied(
        client.post("/put", json={"a": 1}, headers={"X-CSRF-Token": "garbage"}),
        "CSRF token invalid",
    )
    assert whoami(client)["data"] == {}
    failed = [e for e in site.events if e.kind is EventKind.CSRF_FAILED]
    assert len(failed) == 2
    session_id = client.cookies[COOKIE].rsplit(".", 1)[0]
    assert failed[0].session == short_hash(store_key(session_id))
    assert session_id not in json.dumps([e.as_dict() for e in site.events])


def test_csrf_token_of_another_session_is_refused(site: Site, client: httpx.Client) -> None:
    with site.client() as other:
        foreign = csrf_token(other)
    csrf_token(client)
    _csrf_denied(
        client.post("/put", json={"a": 1}, headers={"X-CSRF-Token": foreign}), "CSRF token invalid"
    )


def test_csrf_tokens_are_masked_and_each_one_works(client: httpx.Client) -> None:
    first, second = csrf_token(client), csrf_token(client)
    assert first != second
    for n, token in enumerate((first, second)):
        response = client.post("/put", json={f"k{n}": n}, headers={"X-CSRF-Token": token})
        assert response.status_code == 200
    assert whoami(client)["data"] == {"k0": 0, "k1": 1}


def test_csrf_token_in_a_form_field_and_the_body_reaches_the_app(client: httpx.Client) -> None:
    token = csrf_token(client)
    response = client.post("/note", data={"note": "héllo", "csrf_token": token})
    assert response.status_code == 200
    assert response.json() == {"note": "héllo"}
    multipart = client.post(
        "/note",
        data={"note": "with a file", "csrf_token": token},
        files={"upload": ("a.txt", b"x" * 3000, "text/plain")},
    )
    assert multipart.status_code == 200
    assert whoami(client)["data"] == {"note": "with a file"}
    _csrf_denied(client.post("/note", data={"note": "forged"}), "CSRF token missing")


def test_a_form_too_large_to_check_is_refused(store: SQLiteStore) -> None:
    for site in _site(store, csrf=CSRFOptions(max_form_bytes=1000)):
        with site.client() as client:
            token = csrf_token(client)
            small = client.post("/note", data={"note": "x" * 100, "csrf_token": token})
            assert small.status_code == 200
            big = client.post("/note", data={"note": "x" * 2000, "csrf_token": token})
            assert big.status_code == 403
            assert "X-CSRF-Token header" in big.json()["detail"]
            by_header = client.post(
                "/note", data={"note": "x" * 2000}, headers={"X-CSRF-Token": token}
            )
            assert by_header.status_code == 200


def test_csrf_foreign_origin_is_refused_own_origin_passes(site: Site, client: httpx.Client) -> None:
    token = csrf_token(client)
    headers = {"X-CSRF-Token": token, "Origin": "http://evil.example"}
    _csrf_denied(client.post("/put", json={"a": 1}, headers=headers), "Origin does not match")
    headers["Origin"] = site.url
    assert client.post("/put", json={"a": 1}, headers=headers).status_code == 200


def test_csrf_exempt_path_and_the_untouched_body(client: httpx.Client) -> None:
    response = client.post(
        "/hooks/echo",
        content=b"a=1&b=2",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert response.json() == {"body": "a=1&b=2"}
    assert client.post("/echo", content=b"a=1").status_code == 403


def test_login_csrf_a_cookieless_post_is_refused(client: httpx.Client) -> None:
    _csrf_denied(client.post("/login", data={"user": "mallory"}), "CSRF token missing")


def test_bearer_sessions_are_exempt_cookie_sessions_are_not(store: SQLiteStore) -> None:
    policy = POLICY.replace(transports=("cookie", "bearer"))
    for site in _site(store, policy):
        with site.client() as browser:
            login(browser)
            token = browser.cookies[COOKIE]
            _csrf_denied(browser.post("/put", json={"a": 1}), "CSRF token missing")
        with site.client(headers={"Authorization": f"Bearer {token}"}) as api:
            response = api.post("/put", json={"api": True})
            assert response.status_code == 200
            assert whoami(api) == {"user": "alice", "data": {"api": True}}
            assert api.get("/whoami").headers["vary"] == "Cookie, Authorization"
        # A request that tries a (stale) bearer token is an API client: exempt, answered in kind.
        with site.client(headers={"Authorization": "Bearer stale.token"}) as api:
            response = api.post("/put", json={"fresh": True})
            assert response.status_code == 200
            assert "set-cookie" not in response.headers
            assert response.headers["x-session-id"]


# -- WebSocket ----------------------------------------------------------------------------------


def test_websocket_handshake_carries_the_session(site: Site, client: httpx.Client) -> None:
    login(client)
    cookie = f"{COOKIE}={client.cookies[COOKIE]}"
    with websockets.sync.client.connect(
        site.ws_url("/ws"), additional_headers={"Cookie": cookie}, proxy=None
    ) as ws:
        assert "set-cookie" not in ws.response.headers  # known session, same token
        assert json.loads(ws.recv()) == {"user": "alice"}
        ws.send("hello over ws")
        with pytest.raises(websockets.exceptions.ConnectionClosedOK):
            ws.recv()
    data = whoami(client)["data"]
    assert data == {"ws_visits": 1, "ws_said": "hello over ws"}


def test_websocket_accept_sets_the_cookie_of_a_new_session(site: Site) -> None:
    with websockets.sync.client.connect(site.ws_url("/ws"), proxy=None) as ws:
        set_cookie = ws.response.headers["set-cookie"]
        assert json.loads(ws.recv()) == {"user": None}
        ws.send("first contact")
    token = set_cookie.split(";", 1)[0].split("=", 1)[1]
    with site.client(cookies={COOKIE: token}) as client:
        assert whoami(client)["data"] == {"ws_visits": 1, "ws_said": "first contact"}


def test_websocket_from_a_foreign_origin_is_refused(site: Site, client: httpx.Client) -> None:
    login(client)
    cookie = f"{COOKIE}={client.cookies[COOKIE]}"
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        websockets.sync.client.connect(
            site.ws_url("/ws"),
            additional_headers={"Cookie": cookie},
            origin="http://evil.example",  # type: ignore[arg-type]
            proxy=None,
        )
    assert refused.value.response.status_code == 403
    assert whoami(client)["data"] == {}


# -- store failures -------------------------------------------------------------------------------


def test_store_outage_answers_503_and_writes_nothing(site: Site, client: httpx.Client) -> None:
    login(client)
    site.store.close_sync()  # the store's connection is gone, as if its server stopped
    response = client.get("/whoami")
    assert response.status_code == 503
    assert response.json() == {
        "error": "STORE_UNAVAILABLE",
        "detail": "the session store is unavailable",
    }
    assert "set-cookie" not in response.headers
    with site.client() as newcomer:
        assert newcomer.get("/ping").text == "pong"  # no token, no store call, no outage
        assert newcomer.get("/stream").status_code == 503  # ...until something must be saved


def test_store_failing_at_commit_answers_503_and_keeps_the_old_state(
    site: Site, client: httpx.Client
) -> None:
    token = csrf_token(client)
    client.post("/put", json={"kept": 1}, headers={"X-CSRF-Token": token})
    for handle in site.store._handles:  # both connections: reads work, every write now fails
        handle.db.execute("PRAGMA query_only = ON")
    response = client.post("/put", json={"lost": 2}, headers={"X-CSRF-Token": token})
    assert response.status_code == 503
    assert response.json()["error"] == "STORE_UNAVAILABLE"
    assert "set-cookie" not in response.headers
    for handle in site.store._handles:
        handle.db.execute("PRAGMA query_only = OFF")
    assert whoami(client)["data"] == {"kept": 1}


def test_concurrency_limit_at_login_answers_409(store: SQLiteStore) -> None:
    policy = POLICY.replace(
        concurrency=ConcurrencyPolicy(max_sessions_per_principal=1, on_limit="reject")
    )
    for site in _site(store, policy):
        with site.client() as first, site.client() as second:
            assert login(first).status_code == 200
            token = csrf_token(second)
            second.post("/put", json={"mine": True}, headers={"X-CSRF-Token": token})
            before = second.cookies[COOKIE]
            response = login(second)
            assert response.status_code == 409
            assert response.json()["error"] == "CONCURRENCY_LIMIT"
            assert "set-cookie" not in response.headers
            assert second.cookies[COOKIE] == before
            assert whoami(second) == {"user": None, "data": {"mine": True}}
            assert whoami(first)["user"] == "alice"
