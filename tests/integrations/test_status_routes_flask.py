"""Flask's session status and refresh routes, through Flask's test client."""

from __future__ import annotations

import secrets
import threading
from datetime import timedelta
from typing import Any

import flask
import pytest

from sessio import ConfigurationError, Principal, StoreUnavailable
from sessio.integrations.flask import SessionInterface, session_status_routes

from ..conftest import FakeClock
from ..drive import CountingStore

SECRET = secrets.token_urlsafe(32)
EMPTY = {
    "authenticated": False,
    "user": None,
    "expires_in": None,
    "idle_expires_in": None,
    "csrf_token": None,
}


def make_app(store: CountingStore, clock: FakeClock, **options: Any) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config.update(
        TESTING=True, SECRET_KEY=SECRET, PERMANENT_SESSION_LIFETIME=timedelta(minutes=30)
    )
    SessionInterface(store=store, clock=clock, **options).init_app(app)
    session_status_routes(app)

    @app.post("/login")
    def login() -> str:
        flask.session.login(Principal("ada"))  # type: ignore[attr-defined]
        return "ok"

    return app


@pytest.fixture
def store(clock: FakeClock) -> CountingStore:
    return CountingStore(clock=clock)


@pytest.fixture
def app(store: CountingStore, clock: FakeClock) -> flask.Flask:
    return make_app(store, clock)


def _lifetime(app: flask.Flask) -> int:
    with app.app_context():
        policy = app.extensions["sessio"].manager().policy
    return int(policy.idle_seconds + policy.refresh_seconds)


def test_status_without_a_session(app: flask.Flask, store: CountingStore) -> None:
    response = app.test_client().get("/api/session")
    assert response.status_code == 200
    assert response.json == EMPTY
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers
    assert store.writes == []
    assert store.loads == 0


@pytest.mark.parametrize("cookie", ["garbage", "x" * 5000, "a.b.c", "%00" * 40])
def test_hostile_cookies_read_as_no_session(
    app: flask.Flask, store: CountingStore, cookie: str
) -> None:
    client = app.test_client()  # the raw header, as a hostile client sends it
    assert client.get("/api/session", headers={"Cookie": f"session={cookie}"}).json == EMPTY
    assert store.writes == []


def test_status_reports_and_never_touches(
    app: flask.Flask, store: CountingStore, clock: FakeClock
) -> None:
    client = app.test_client()
    assert client.post("/login").status_code == 200
    writes = len(store.writes)
    clock.advance(10 * 60)
    body = client.get("/api/session").json
    assert body is not None
    assert body["authenticated"] is True
    assert body["user"] == "ada"
    assert body["expires_in"] == _lifetime(app) - 600
    assert body["idle_expires_in"] == _lifetime(app) - 600
    assert len(store.writes) == writes
    assert store.deletes == []


def test_refresh_enforces_csrf_and_pushes_the_expiry(
    app: flask.Flask, store: CountingStore, clock: FakeClock
) -> None:
    client = app.test_client()
    client.post("/login")
    token = client.get("/api/session").json["csrf_token"]  # type: ignore[index]
    clock.advance(10 * 60)
    missing = client.post("/api/session/refresh")
    assert missing.status_code == 403
    assert missing.json["error"] == "CSRF_FAILED"  # type: ignore[index]
    assert client.post("/api/session/refresh", headers={"X-CSRF-Token": "no"}).status_code == 403
    foreign = client.post(
        "/api/session/refresh", headers={"X-CSRF-Token": token, "Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    writes = len(store.writes)
    response = client.post("/api/session/refresh", headers={"X-CSRF-Token": token})
    assert response.status_code == 200
    assert response.json is not None
    assert response.json["expires_in"] == _lifetime(app)
    assert response.json["user"] == "ada"
    assert "Set-Cookie" in response.headers
    assert len(store.writes) == writes + 1
    form = client.post("/api/session/refresh", data={"csrf_token": token})
    assert form.status_code == 200
    too_big = client.post("/api/session/refresh", data={"csrf_token": token, "x": "y" * 2_000_000})
    assert too_big.status_code == 403


def test_other_routes_and_methods_reach_flask(app: flask.Flask) -> None:
    client = app.test_client()
    # Another method on these paths is Flask's to answer (it has no such route).
    assert client.post("/api/session").status_code == 404
    assert client.get("/api/session/refresh").status_code == 404
    assert client.post("/login").status_code == 200


def test_setup_is_checked(store: CountingStore, clock: FakeClock) -> None:
    bare = flask.Flask(__name__)
    with pytest.raises(ConfigurationError, match="SessionInterface"):
        session_status_routes(bare)
    app = make_app(store, clock)
    with pytest.raises(ConfigurationError, match="paths"):
        session_status_routes(app, path="/same", refresh_path="/same")


def test_a_store_outage_answers_503(
    app: flask.Flask, store: CountingStore, clock: FakeClock
) -> None:
    client = app.test_client()
    client.post("/login")

    def down(key: str) -> None:
        raise StoreUnavailable("down")

    store.load_sync = down  # type: ignore[method-assign]
    response = client.get("/api/session")
    assert response.status_code == 503
    assert response.json["error"] == "STORE_UNAVAILABLE"  # type: ignore[index]


def test_two_parallel_status_calls_during_a_login(app: flask.Flask, store: CountingStore) -> None:
    client = app.test_client()
    client.post("/login")
    cookie = client.get_cookie("session")
    assert cookie is not None
    results: list[Any] = []

    def status() -> None:
        other = app.test_client()
        other.set_cookie("session", cookie.value)
        results.append(other.get("/api/session").json)

    writes = len(store.writes)
    threads = [threading.Thread(target=status) for _ in range(2)]
    for thread in threads:
        thread.start()
    assert client.post("/login").status_code == 200
    for thread in threads:
        thread.join(10)
    assert len(results) == 2
    for body in results:
        assert body["user"] in ("ada", None)
    assert len(store.writes) == writes + 1
