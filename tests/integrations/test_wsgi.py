"""SessionMiddleware: in process under wsgiref.validate, and under a real threaded server."""

from __future__ import annotations

import io
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from sessio import (
    ConcurrencyPolicy,
    ConfigurationError,
    EventKind,
    Policy,
    Principal,
    SessionEvent,
    SessionManager,
    SyncSessionManager,
)
from sessio.errors import AuthenticationRequired
from sessio.ids import store_key
from sessio.integrations.csrf import CSRFOptions
from sessio.integrations.wsgi import SessionMiddleware, client_ip
from sessio.stores import MemoryStore, SQLiteStore
from sessio.transports import TokenSigner

from .wsgi_support import DownStore, SpyStore, call, serve, write_concurrently

SECRET = secrets.token_urlsafe(32)
DEV = Policy.web().development()


def demo(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """A small app that drives the session from its path and query."""
    session = environ["sessio.session"]
    path = environ["PATH_INFO"]
    query = dict(parse_qsl(environ["QUERY_STRING"]))
    out: Any = "ok"
    if path == "/set":
        session.update(query)
    elif path == "/slow-set":
        time.sleep(0.05)  # holds every request between its load and its commit, so they overlap
        session.update(query)
    elif path == "/get":
        out = dict(session)
    elif path == "/login":
        session.login(Principal(query.get("user", "alice"), roles={"admin"}))
    elif path == "/logout":
        session.logout()
    elif path == "/whoami":
        out = session.principal.id if session.principal else None
    elif path == "/csrf":
        out = session.csrf_token
    elif path == "/meta":
        out = {"ip": session.meta.ip, "ua": session.meta.user_agent}
    elif path in ("/form", "/hooks/github"):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        out = {"length": length, "body": body.decode("latin-1")}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(out).encode()]


def middleware(app: Any = demo, *, store: Any = None, **kwargs: Any) -> SessionMiddleware:
    kwargs.setdefault("policy", DEV)
    store = store if store is not None else MemoryStore()
    return SessionMiddleware(app, store=store, secret_key=SECRET, **kwargs)


def cookie_of(result: Any, name: str = "sessio") -> str:
    (value,) = [v for v in result.header("set-cookie") if v.startswith(name + "=")]
    return value.split(";", 1)[0].split("=", 1)[1]


def events_of(mw: SessionMiddleware) -> list[SessionEvent]:
    seen: list[SessionEvent] = []
    mw.manager.events.subscribe(seen.append)
    return seen


# -- in process: the session, the commit and the headers ---------------------------------------------


def test_a_request_without_a_token_costs_no_store_call() -> None:
    store = SpyStore()
    mw = middleware(store=store)
    result = call(mw, "GET", "/get")
    assert result.status == 200
    assert json.loads(result.body) == {}
    assert store.calls == []
    assert result.header("set-cookie") == []


def test_writes_set_a_cookie_and_reads_come_back() -> None:
    mw = middleware()
    first = call(mw, "GET", "/set?color=blue")
    token = cookie_of(first)
    second = call(mw, "GET", "/get", headers={"Cookie": f"sessio={token}"})
    assert json.loads(second.body) == {"color": "blue"}
    assert second.header("set-cookie") == []  # nothing changed: no cookie, no write
    assert second.header("vary") == ["Cookie"]


def test_an_untouched_session_adds_no_vary_and_no_cookie() -> None:
    result = call(middleware(), "GET", "/nothing")
    assert result.header("vary") == []
    assert result.header("set-cookie") == []


def test_vary_joins_the_apps_own_vary_header() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["sessio.session"].get("x")
        start_response("200 OK", [("Content-Type", "text/plain"), ("Vary", "Accept-Encoding")])
        return [b""]

    result = call(middleware(app), "GET", "/")
    assert result.header("vary") == ["Accept-Encoding, Cookie"]


def test_the_session_is_in_the_environ_under_the_configured_key() -> None:
    seen = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        start_response("204 No Content", [])
        return []

    call(middleware(app, environ_key="my.session"), "GET", "/")
    assert "sessio.session" not in seen
    assert seen["my.session"].is_new


class _Generated:
    """A generator-style body that calls start_response on first iteration and records close."""

    def __init__(self, environ: dict[str, Any], start_response: Any) -> None:
        self.environ, self.start_response = environ, start_response
        self.closed = False
        self.started = False

    def __iter__(self) -> Iterator[bytes]:
        self.environ["sessio.session"]["lazy"] = True
        self.start_response("200 OK", [("Content-Type", "text/plain")])
        self.started = True
        yield b"one"
        yield b"two"

    def close(self) -> None:
        self.closed = True


def test_a_body_that_starts_the_response_late_still_gets_the_cookie() -> None:
    bodies: list[_Generated] = []

    def app(environ: dict[str, Any], start_response: Any) -> _Generated:
        bodies.append(_Generated(environ, start_response))
        return bodies[0]

    mw = middleware(app)
    result = call(mw, "GET", "/")
    assert result.body == b"onetwo"
    token = cookie_of(result)
    again = call(
        middleware(demo, store=mw.manager.store),
        "GET",
        "/get",
        headers={"Cookie": f"sessio={token}"},
    )
    assert json.loads(again.body) == {"lazy": True}
    assert bodies[0].closed


def test_close_reaches_the_app_even_when_the_body_is_never_iterated() -> None:
    bodies: list[_Generated] = []

    def app(environ: dict[str, Any], start_response: Any) -> _Generated:
        bodies.append(_Generated(environ, start_response))
        return bodies[0]

    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "wsgi.input": io.BytesIO(),
    }
    result = middleware(app)(environ, lambda status, headers, exc_info=None: None)
    result.close()  # type: ignore[attr-defined]
    assert bodies[0].closed
    assert not bodies[0].started


def test_an_app_that_started_before_returning_gets_its_own_iterable_back() -> None:
    body = [b"as", b"is"]

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return body

    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/",
        "wsgi.input": io.BytesIO(),
    }
    assert middleware(app)(environ, lambda *a: None) is body


def test_an_error_page_started_with_exc_info_keeps_the_session_headers() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["sessio.session"]["n"] = 1
        start_response("200 OK", [("Content-Type", "text/plain")])
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            import sys

            start_response(
                "500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info()
            )
        return [b"error"]

    result = call(middleware(app), "GET", "/", validate=False)
    assert result.status == 500
    assert len(result.header("set-cookie")) == 1


# -- in process: failures answer JSON with their code ---------------------------------------------------


def test_a_store_down_at_load_answers_503_without_calling_the_app() -> None:
    called = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        called.append(True)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b""]

    store = DownStore(load=True)
    token = TokenSigner(SECRET).sign(secrets.token_urlsafe(32))
    result = call(middleware(app, store=store), "GET", "/", headers={"Cookie": f"sessio={token}"})
    assert result.status == 503
    assert json.loads(result.body)["error"] == "STORE_UNAVAILABLE"
    assert called == []


def test_a_store_down_at_commit_replaces_the_answer_with_503_and_closes_the_body() -> None:
    bodies: list[_Generated] = []

    def app(environ: dict[str, Any], start_response: Any) -> _Generated:
        bodies.append(_Generated(environ, start_response))
        return bodies[0]

    result = call(middleware(app, store=DownStore(save=True)), "GET", "/")
    assert result.status == 503
    # The cause (here "connection refused"; a host or a path in real life) stays in the log.
    assert json.loads(result.body) == {
        "error": "STORE_UNAVAILABLE",
        "detail": "the session store is unavailable",
    }
    assert result.header("set-cookie") == []
    assert bodies[0].closed


def test_the_concurrency_limit_answers_409() -> None:
    policy = DEV.replace(
        concurrency=ConcurrencyPolicy(max_sessions_per_principal=1, on_limit="reject")
    )
    mw = middleware(policy=policy)
    assert call(mw, "GET", "/login").status == 200
    refused = call(mw, "GET", "/login")
    assert refused.status == 409
    assert json.loads(refused.body)["error"] == "CONCURRENCY_LIMIT"
    assert refused.header("set-cookie") == []


def test_a_sessio_error_raised_by_the_app_answers_its_status() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise AuthenticationRequired("log in first")

    result = call(middleware(app), "GET", "/")
    assert result.status == 401
    assert json.loads(result.body) == {"error": "AUTHENTICATION_REQUIRED", "detail": "log in first"}


def test_excluded_paths_get_no_session_and_cost_nothing() -> None:
    seen = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.update(environ)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b""]

    store = SpyStore()
    token = TokenSigner(SECRET).sign(secrets.token_urlsafe(32))
    mw = middleware(app, store=store, exclude_paths=["/static/*"])
    result = call(mw, "GET", "/static/app.css", headers={"Cookie": f"sessio={token}"})
    assert result.status == 200
    assert "sessio.session" not in seen
    assert store.calls == []


# -- in process: metadata -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("trust", "forwarded", "expected"),
    [
        (False, "203.0.113.9", "192.0.2.1"),  # not trusted: the header is ignored
        (True, "198.51.100.7, 203.0.113.9", "203.0.113.9"),  # the hop our proxy appended
        (True, "not-an-ip", "192.0.2.1"),
        (True, None, "192.0.2.1"),
    ],
)
def test_client_ip(trust: bool, forwarded: str | None, expected: str) -> None:
    environ = {"REMOTE_ADDR": "192.0.2.1"}
    if forwarded is not None:
        environ["HTTP_X_FORWARDED_FOR"] = forwarded
    assert client_ip(environ, trust_forwarded=trust) == expected


def test_ip_and_user_agent_are_recorded() -> None:
    mw = middleware(trust_forwarded=True)
    result = call(
        mw,
        "GET",
        "/meta",
        headers={"User-Agent": "Tester/1.0", "X-Forwarded-For": "203.0.113.9"},
        environ={"REMOTE_ADDR": "10.0.0.2"},
    )
    assert json.loads(result.body) == {"ip": "203.0.113.9", "ua": "Tester/1.0"}


# -- in process: CSRF ----------------------------------------------------------------------------------


def _csrf_session(mw: SessionMiddleware) -> tuple[str, str]:
    result = call(mw, "GET", "/csrf")
    return cookie_of(result), json.loads(result.body)


def test_csrf_failure_is_an_event_with_its_reason() -> None:
    mw = middleware()
    seen = events_of(mw)
    token, _ = _csrf_session(mw)
    result = call(mw, "POST", "/form", headers={"Cookie": f"sessio={token}"})
    assert result.status == 403
    assert json.loads(result.body) == {"error": "CSRF_FAILED", "detail": "CSRF token missing"}
    (event,) = [e for e in seen if e.kind is EventKind.CSRF_FAILED]
    assert event.detail == {"reason": "CSRF token missing", "method": "POST", "path": "/form"}
    assert event.session is not None
    assert event.session not in token


def test_a_chunked_form_is_read_bounded_and_put_back() -> None:
    mw = middleware()
    token, csrf = _csrf_session(mw)
    body = f"csrf_token={csrf}&note=hello".encode()
    result = call(
        mw,
        "POST",
        "/form",
        headers={"Cookie": f"sessio={token}", "Content-Type": "application/x-www-form-urlencoded"},
        environ={
            "CONTENT_LENGTH": "",
            "wsgi.input": io.BytesIO(body),
            "wsgi.input_terminated": True,
        },
        validate=False,  # wsgiref.validate knows nothing of wsgi.input_terminated
    )
    assert result.status == 200
    assert json.loads(result.body) == {"length": len(body), "body": body.decode()}


def test_a_header_borne_session_needs_no_csrf_token() -> None:
    mw = middleware(policy=DEV.replace(transports=("cookie", "header")))
    token, _ = _csrf_session(mw)
    assert call(mw, "POST", "/form", headers={"X-Session-ID": token}).status == 200
    assert call(mw, "POST", "/form", headers={"Cookie": f"sessio={token}"}).status == 403


def test_forwarded_proto_and_host_are_trusted_only_when_asked() -> None:
    for trust, status in ((True, 200), (False, 403)):
        mw = middleware(trust_forwarded=trust)
        token, csrf = _csrf_session(mw)
        headers = {
            "Cookie": f"sessio={token}",
            "X-CSRF-Token": csrf,
            "Origin": "https://app.example",
            "Host": "app.example",
            "X-Forwarded-Proto": "https",
        }
        assert call(mw, "POST", "/form", headers=headers).status == status
        rewritten = {**headers, "Host": "backend:8000", "X-Forwarded-Host": "app.example"}
        assert call(mw, "POST", "/form", headers=rewritten).status == status


def test_csrf_is_off_when_the_policy_says_so_or_without_options() -> None:
    assert call(middleware(), "POST", "/form").status == 403
    assert call(middleware(policy=DEV.replace(csrf=False)), "POST", "/form").status == 200
    assert call(middleware(csrf=None), "POST", "/form").status == 200


# -- construction -----------------------------------------------------------------------------------


def test_construction_is_validated() -> None:
    store = MemoryStore()
    with pytest.raises(ConfigurationError, match="SyncSessionManager"):
        SessionMiddleware(demo, secret_key=SECRET, manager=SessionManager(store))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="not both"):
        SessionMiddleware(demo, store=store, secret_key=SECRET, manager=SyncSessionManager(store))
    with pytest.raises(ConfigurationError, match="needs a store"):
        SessionMiddleware(demo, secret_key=SECRET)
    with pytest.raises(ConfigurationError, match="secret_key is required"):
        SessionMiddleware(demo, store=store)
    with pytest.raises(ConfigurationError, match="sequence of path patterns"):
        SessionMiddleware(demo, store=store, secret_key=SECRET, exclude_paths="/static/*")
    with pytest.raises(ConfigurationError, match="32 bytes"):
        SessionMiddleware(demo, store=store, secret_key="short")
    manager = SyncSessionManager(store, DEV)
    mw = SessionMiddleware(demo, secret_key=SECRET, manager=manager)
    assert mw.manager is manager
    assert mw.manager.policy is DEV


# -- a real server ------------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Any) -> Iterator[SQLiteStore]:
    store = SQLiteStore(tmp_path / "sessions.db")
    yield store
    store.close_sync()


@pytest.mark.slow
def test_cookie_flags_in_production(store: SQLiteStore) -> None:
    mw = middleware(store=store, policy=Policy.web().production())
    with serve(mw) as url:
        response = httpx.get(f"{url}/set?a=1")
    (cookie,) = response.headers.get_list("set-cookie")
    name_value, *attributes = cookie.split("; ")
    assert name_value.startswith("__Host-sessio=")
    assert attributes[0] == "Path=/"
    assert attributes[1] == f"Max-Age={7 * 24 * 3600}"
    assert attributes[2].startswith("Expires=")
    assert attributes[3:] == ["Secure", "HttpOnly", "SameSite=Lax"]
    assert response.headers["vary"] == "Cookie"


@pytest.mark.slow
def test_login_rotates_the_id_and_keeps_the_data(store: SQLiteStore) -> None:
    with serve(middleware(store=store)) as url, httpx.Client(base_url=url) as client:
        client.get("/set?cart=apple")
        before = client.cookies["sessio"]
        client.get("/login")
        after = client.cookies["sessio"]
        assert after != before
        assert client.get("/get").json() == {"cart": "apple"}
        assert client.get("/whoami").json() == "alice"
        old_id = before.rsplit(".", 1)[0]
        assert not store.exists_sync(store_key(old_id))  # the pre-login ID is gone server-side
        replay = httpx.get(f"{url}/whoami", headers={"Cookie": f"sessio={before}"})
        assert replay.json() is None


@pytest.mark.slow
def test_logout_invalidates_the_session_server_side(store: SQLiteStore) -> None:
    with serve(middleware(store=store)) as url, httpx.Client(base_url=url) as client:
        client.get("/login")
        logged_in = client.cookies["sessio"]
        client.get("/logout")
        assert client.cookies["sessio"] != logged_in
        assert client.get("/whoami").json() is None
        assert not store.exists_sync(store_key(logged_in.rsplit(".", 1)[0]))
        replay = httpx.get(f"{url}/whoami", headers={"Cookie": f"sessio={logged_in}"})
        assert replay.json() is None  # a stolen cookie is worthless after logout


@pytest.mark.slow
def test_csrf_over_http(store: SQLiteStore) -> None:
    csrf = CSRFOptions(exempt_paths=["/hooks/*"], max_form_bytes=2048)
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    with serve(middleware(store=store, csrf=csrf)) as url, httpx.Client(base_url=url) as client:
        token = client.get("/csrf").json()
        other = httpx.get(f"{url}/csrf").json()  # another visitor's token

        def post(**kwargs: Any) -> httpx.Response:
            return client.post("/form", **kwargs)

        missing = post(data={"note": "x"})
        assert missing.status_code == 403
        assert missing.json()["error"] == "CSRF_FAILED"
        assert post(data={"csrf_token": "A" * 86}).status_code == 403
        assert post(data={"csrf_token": other}).status_code == 403
        assert post(headers={"X-CSRF-Token": token}).status_code == 200
        # Every read masks the token anew; each mask is valid.
        fresh = client.get("/csrf").json()
        assert fresh != token
        ok = post(data={"csrf_token": fresh, "note": "kept"})
        assert ok.status_code == 200
        assert ok.json()["body"] == f"csrf_token={fresh}&note=kept"  # the app reads the body
        multipart = post(files={"f": ("a.txt", b"data")}, data={"csrf_token": token})
        assert multipart.status_code == 200
        assert b"data" in multipart.json()["body"].encode("latin-1")
        foreign = post(headers={"X-CSRF-Token": token, "Origin": "https://evil.example"})
        assert foreign.status_code == 403
        assert foreign.json()["detail"] == "Origin does not match"
        same = post(headers={"X-CSRF-Token": token, "Origin": url})
        assert same.status_code == 200
        oversized = post(
            content=b"csrf_token=" + token.encode() + b"&x=" + b"y" * 4096, headers=form
        )
        assert oversized.status_code == 403
        assert client.post("/hooks/github", content=b"{}").status_code == 200


@pytest.mark.slow
def test_tampered_oversized_and_duplicate_cookies_give_a_fresh_session(store: SQLiteStore) -> None:
    with serve(middleware(store=store)) as url, httpx.Client(base_url=url) as client:
        good = client.get("/set?a=1").cookies["sessio"]
        client.cookies.clear()
        before = store.count_sync()
        session_id, mac = good.rsplit(".", 1)
        tampered = f"{session_id}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}"
        forged_id = TokenSigner("x" * 32).sign(secrets.token_urlsafe(32))
        for cookie in (
            f"sessio={tampered}",
            f"sessio={'a' * 5000}",
            f"sessio={good}; sessio={good}",  # ambiguous even when both are valid
            f"sessio={forged_id}",
            "sessio=%%%;;;===",
            "sessio=",
        ):
            response = client.get("/get", headers={"Cookie": cookie})
            assert response.status_code == 200, cookie
            assert response.json() == {}, cookie
            assert "set-cookie" not in response.headers
        assert store.count_sync() == before


@pytest.mark.slow
def test_concurrent_requests_on_one_session_lose_no_write(store: SQLiteStore) -> None:
    with serve(middleware(store=store)) as url, httpx.Client(base_url=url) as client:
        cookie = client.get("/set?start=1").cookies["sessio"]
        client.cookies.clear()  # each request names the session itself
        write_concurrently(client, f"sessio={cookie}", writers=16)
        data = client.get("/get", headers={"Cookie": f"sessio={cookie}"}).json()
    assert data == {"start": "1", **{f"k{i}": f"v{i}" for i in range(16)}}


# -- client-side stores: the sealed token travels verbatim -------------------------------------------


def test_a_client_side_store_needs_no_secret_key_and_round_trips() -> None:
    from sessio.stores.client import NoRevocationWarning
    from sessio.stores.signed import SignedCookieStore

    with pytest.warns(NoRevocationWarning):  # deliberate: this test needs no revocation list
        store = SignedCookieStore(SECRET)
    mw = SessionMiddleware(demo, store=store, secret_key=None, policy=DEV)
    first = call(mw, "GET", "/set?color=green")
    token = cookie_of(first)
    assert len(token) > 100  # the whole session travels, not an 87-character signed ID
    second = call(mw, "GET", "/get", headers={"Cookie": f"sessio={token}"})
    assert json.loads(second.body) == {"color": "green"}
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    third = call(mw, "GET", "/get", headers={"Cookie": f"sessio={tampered}"})
    assert json.loads(third.body) == {}


def test_vary_names_every_header_that_may_carry_the_session() -> None:
    policy = DEV.replace(transports=("cookie", "header"))
    mw = middleware(policy=policy)
    token = cookie_of(call(mw, "GET", "/set?a=1"))
    read = call(mw, "GET", "/get", headers={"Cookie": f"sessio={token}"})
    assert read.header("vary") == ["Cookie, X-Session-ID"]
