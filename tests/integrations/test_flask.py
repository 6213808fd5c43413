"""The Flask drop-in beyond Flask's contract (test_flask_dropin): server-side data, expiry, auth
helpers, CSRF, failures, and a real threaded Werkzeug server."""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import flask
import httpx
import pytest
from markupsafe import Markup
from werkzeug.serving import make_server

from sessio import (
    ConcurrencyPolicy,
    ConfigurationError,
    CSRFFailed,
    EventKind,
    Policy,
    Principal,
)
from sessio.ids import store_key
from sessio.integrations.csrf import CSRFOptions
from sessio.integrations.flask import (
    SessionInterface,
    csrf_exempt,
    login_required,
    role_required,
)
from sessio.stores import MemoryStore, SQLiteStore

from ..conftest import FakeClock
from .wsgi_support import DownStore, write_concurrently

SECRET = secrets.token_urlsafe(32)


def make_app(interface: SessionInterface, *, init: bool = True) -> flask.Flask:
    app = flask.Flask(__name__)
    app.config.update(TESTING=True, SECRET_KEY=SECRET)
    if init:
        interface.init_app(app)
    else:
        app.session_interface = interface

    @app.get("/set")
    def set_values() -> str:
        flask.session.update(flask.request.args)
        return "ok"

    @app.get("/get")
    def get_values() -> dict[str, Any]:
        return dict(flask.session)

    @app.get("/nothing")
    def nothing() -> str:
        return "nothing"

    @app.get("/login")
    def login() -> str:
        roles = flask.request.args.getlist("role")
        flask.session.login(Principal(flask.request.args.get("user", "alice"), roles=roles))  # type: ignore[attr-defined]
        return "in"

    @app.get("/logout")
    def logout() -> str:
        flask.session.logout()  # type: ignore[attr-defined]
        return "out"

    @app.get("/private")
    @login_required
    def private() -> str:
        return "secret"

    @app.get("/admin")
    @role_required("admin")
    def admin() -> str:
        return "admin"

    return app


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def app(store: MemoryStore) -> flask.Flask:
    return make_app(SessionInterface(store=store))


def token_of(response: Any) -> str:
    (cookie,) = response.headers.getlist("Set-Cookie")
    return str(cookie.split(";", 1)[0].split("=", 1)[1])


# -- the data lives on the server ------------------------------------------------------------------


def test_the_cookie_carries_a_signed_id_and_no_data(app: flask.Flask, store: MemoryStore) -> None:
    client = app.test_client()
    response = client.get("/set?card=4111111111111111")
    token = token_of(response)
    session_id = token.rpartition(".")[0]
    assert len(session_id) == 43  # 256 random bits, nothing else
    assert "4111" not in token
    assert store.exists_sync(store_key(session_id))
    assert client.get("/get").json == {"card": "4111111111111111"}


def test_flasks_tagged_types_round_trip_through_the_store(app: flask.Flask) -> None:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    the_uuid = uuid.uuid4()

    @app.get("/write")
    def write() -> str:
        flask.session.update(t=(1, 2, 3), b=b"\xff", m=Markup("<html>"), u=the_uuid, d=now)
        return ""

    @app.get("/read")
    def read() -> str:
        s = flask.session
        assert s["t"] == (1, 2, 3)
        assert type(s["b"]) is bytes
        assert s["b"] == b"\xff"
        assert type(s["m"]) is Markup
        assert s["m"] == Markup("<html>")
        assert s["u"] == the_uuid
        assert s["d"] == now
        return "read back"

    client = app.test_client()
    client.get("/write")
    assert client.get("/read").text == "read back"  # a fresh load from the store, not memory


def test_values_changed_in_place_are_saved_without_setting_modified(app: flask.Flask) -> None:
    @app.get("/add")
    def add() -> str:
        flask.session.setdefault("cart", [])
        flask.session["cart"].append(flask.request.args["item"])  # Flask loses this
        return ""

    client = app.test_client()
    client.get("/add?item=apple")
    client.get("/add?item=pear")
    assert client.get("/get").json == {"cart": ["apple", "pear"]}


def test_setting_modified_true_resends_the_cookie_and_false_keeps_writes(
    app: flask.Flask,
) -> None:
    @app.get("/touch")
    def touch() -> str:
        flask.session.modified = True
        return ""

    @app.get("/quiet-write")
    def quiet_write() -> str:
        flask.session["kept"] = 1
        flask.session.modified = False
        return ""

    client = app.test_client()
    token = token_of(client.get("/set?a=1"))
    assert token_of(client.get("/touch")) == token
    client.get("/quiet-write")
    assert client.get("/get").json == {"a": "1", "kept": 1}


def test_an_emptied_session_is_deleted_from_the_store(app: flask.Flask, store: MemoryStore) -> None:
    @app.get("/clear")
    def clear() -> str:
        flask.session.clear()
        return ""

    client = app.test_client()
    client.get("/set?a=1")
    assert store.count_sync() == 1
    response = client.get("/clear")
    assert "Max-Age=0" in response.headers["Set-Cookie"]
    assert store.count_sync() == 0


@pytest.mark.parametrize(
    "cookie",
    [
        "session={good}; session={good}",  # two of one name: ambiguous, so neither
        "session={tampered}",
        "session=" + "a" * 5000,
        "session=%%%;;;===",
        "session=",
    ],
)
def test_bad_cookies_give_a_fresh_session_and_store_nothing(
    app: flask.Flask, store: MemoryStore, cookie: str
) -> None:
    good = token_of(app.test_client().get("/set?a=1"))
    tampered = good[:-1] + ("A" if good[-1] != "A" else "B")
    client = app.test_client(use_cookies=False)
    response = client.get("/get", headers={"Cookie": cookie.format(good=good, tampered=tampered)})
    assert response.status_code == 200
    assert response.json == {}
    assert "Set-Cookie" not in response.headers
    assert store.count_sync() == 1  # only the good session


# -- lifetime --------------------------------------------------------------------------------------


def test_a_browser_session_cookie_still_expires_on_the_server(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    app = make_app(SessionInterface(store=store, clock=clock))
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(minutes=10)
    client = app.test_client()
    cookie = client.get("/set?a=1").headers["Set-Cookie"]
    assert "Expires" not in cookie
    assert "Max-Age" not in cookie
    # Activity slides the idle timeout...
    for _ in range(3):
        clock.advance(6 * 60)
        assert client.get("/get").json == {"a": "1"}
    # ...and silence ends the session, though the browser would still send its cookie.
    clock.advance(11 * 60)
    assert client.get("/get").json == {}


def test_a_permanent_cookie_lives_as_long_as_the_configured_lifetime(clock: FakeClock) -> None:
    app = make_app(SessionInterface(store=MemoryStore(clock=clock), clock=clock))
    app.config["PERMANENT_SESSION_LIFETIME"] = 3600

    @app.get("/remember")
    def remember() -> str:
        flask.session["user"] = "alice"
        flask.session.permanent = True
        return ""

    cookie = app.test_client().get("/remember").headers["Set-Cookie"]
    assert "Max-Age=3600" in cookie


def test_a_policy_adds_an_absolute_limit(clock: FakeClock) -> None:
    policy = Policy(ttl=timedelta(hours=1))
    app = make_app(SessionInterface(store=MemoryStore(clock=clock), policy=policy, clock=clock))
    client = app.test_client()
    client.get("/set?a=1")
    for _ in range(5):  # 55 minutes of steady use...
        clock.advance(11 * 60)
        assert client.get("/get").json == {"a": "1"}
    clock.advance(6 * 60)  # ...and the hour is up, however active the session was
    assert client.get("/get").json == {}


# -- login, roles, revocation ----------------------------------------------------------------------


def test_login_required_and_role_required_answer_json_codes(app: flask.Flask) -> None:
    client = app.test_client()
    anonymous = client.get("/private")
    assert anonymous.status_code == 401
    assert anonymous.json["error"] == "AUTHENTICATION_REQUIRED"
    assert client.get("/admin").status_code == 401
    client.get("/login?user=bob")
    assert client.get("/private").text == "secret"
    denied = client.get("/admin")
    assert denied.status_code == 403
    assert denied.json == {"error": "PERMISSION_DENIED", "detail": "missing role(s): admin"}
    client.get("/login?user=carol&role=admin")
    assert client.get("/admin").text == "admin"
    with pytest.raises(ConfigurationError):
        role_required()


def test_login_rotates_the_id_and_logout_kills_the_old_one(app: flask.Flask) -> None:
    client = app.test_client()
    before = token_of(client.get("/set?cart=apple"))
    after = token_of(client.get("/login"))
    assert after != before
    assert client.get("/get").json == {"cart": "apple"}
    stranger = app.test_client()
    stranger.set_cookie("session", before)
    assert stranger.get("/private").status_code == 401
    client.get("/logout")
    stranger.set_cookie("session", after)
    assert stranger.get("/private").status_code == 401


def test_session_transaction_can_log_a_test_user_in(app: flask.Flask) -> None:
    client = app.test_client()
    with client.session_transaction() as session:
        session.login(Principal("alice", roles={"admin"}))  # type: ignore[attr-defined]
    assert client.get("/admin").text == "admin"


def test_revoke_all_logs_a_user_out_everywhere(app: flask.Flask) -> None:
    laptop, phone = app.test_client(), app.test_client()
    laptop.get("/login?user=dave")
    phone.get("/login?user=dave")
    interface = app.extensions["sessio"]
    assert len(interface.manager(app).sessions_of("dave")) == 2
    assert interface.manager(app).revoke_all("dave") == 2
    assert laptop.get("/private").status_code == 401
    assert phone.get("/private").status_code == 401


def test_the_concurrency_limit_answers_409(store: MemoryStore) -> None:
    policy = Policy(
        ttl=None, concurrency=ConcurrencyPolicy(max_sessions_per_principal=1, on_limit="reject")
    )
    app = make_app(SessionInterface(store=store, policy=policy))
    app.test_client().get("/login")
    refused = app.test_client().get("/login")
    assert refused.status_code == 409
    assert refused.json["error"] == "CONCURRENCY_LIMIT"
    assert "Set-Cookie" not in refused.headers


# -- the store going away ----------------------------------------------------------------------------


def test_a_store_down_at_load_fails_only_the_views_that_use_the_session() -> None:
    store = DownStore()
    app = make_app(SessionInterface(store=store))
    client = app.test_client()
    client.get("/set?a=1")
    store.fail_load = True
    assert client.get("/nothing").text == "nothing"
    for path in ("/get", "/private"):
        response = client.get(path)
        assert response.status_code == 503, path
        assert response.json["error"] == "STORE_UNAVAILABLE"


def test_a_store_down_at_commit_replaces_the_answer() -> None:
    app = make_app(SessionInterface(store=DownStore(save=True)))
    response = app.test_client().get("/set?a=1")
    assert response.status_code == 503
    assert response.json == {
        "error": "STORE_UNAVAILABLE",
        "detail": "the session store is unavailable",  # the cause is logged, not shown
    }
    assert "Set-Cookie" not in response.headers


# -- CSRF --------------------------------------------------------------------------------------------


@pytest.fixture
def csrf_app(store: MemoryStore) -> flask.Flask:
    interface = SessionInterface(store=store, csrf=CSRFOptions(exempt_paths=["/hooks/*"]))
    app = make_app(interface)

    @app.get("/form")
    def form() -> str:
        return flask.render_template_string("{{ session.csrf_token }}")

    @app.post("/comment")
    def comment() -> dict[str, Any]:
        return {"note": flask.request.form.get("note")}

    @app.post("/hooks/stripe")
    def stripe() -> str:
        return "hooked"

    @app.post("/webhook")
    @csrf_exempt
    def webhook() -> str:
        return "exempt"

    return app


def test_csrf_is_checked_on_unsafe_methods(csrf_app: flask.Flask) -> None:
    interface = csrf_app.extensions["sessio"]
    events: list[Any] = []
    interface.events.subscribe(events.append)
    client = csrf_app.test_client()
    token = client.get("/form").text
    missing = client.post("/comment", data={"note": "hi"})
    assert missing.status_code == 403
    assert missing.json == {"error": "CSRF_FAILED", "detail": "CSRF token missing"}
    assert [e.detail["reason"] for e in events if e.kind is EventKind.CSRF_FAILED] == [
        "CSRF token missing"
    ]
    ok = client.post("/comment", data={"note": "hi", "csrf_token": token})
    assert ok.json == {"note": "hi"}  # the view still reads the form
    assert client.post("/comment", headers={"X-CSRF-Token": token}).status_code == 200
    foreign = client.post(
        "/comment", headers={"X-CSRF-Token": token, "Origin": "https://evil.example"}
    )
    assert foreign.status_code == 403
    other = csrf_app.test_client().get("/form").text
    assert client.post("/comment", data={"csrf_token": other}).status_code == 403
    assert client.post("/hooks/stripe").text == "hooked"
    assert client.post("/webhook").text == "exempt"


def test_an_error_handler_for_csrf_failed_renders_the_refusal(csrf_app: flask.Flask) -> None:
    @csrf_app.errorhandler(CSRFFailed)
    def expired_form(error: CSRFFailed) -> tuple[str, int]:
        return f"<p>This form expired ({error.message}); reload it.</p>", 403

    client = csrf_app.test_client()
    client.get("/form")
    refused = client.post("/comment", data={"note": "hi", "csrf_token": "stale"})
    assert refused.status_code == 403
    assert refused.mimetype == "text/html"
    assert refused.text == "<p>This form expired (CSRF token invalid); reload it.</p>"
    # Other session errors keep init_app's JSON answer.
    assert client.get("/private").json["error"] == "AUTHENTICATION_REQUIRED"


def test_csrf_without_init_app_refuses_to_run_unprotected(store: MemoryStore) -> None:
    app = make_app(SessionInterface(store=store, csrf=CSRFOptions()), init=False)
    with pytest.raises(ConfigurationError, match="init_app"):
        app.test_client().get("/get")


# -- construction and configuration -------------------------------------------------------------------


def test_the_default_store_is_sqlite_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    interface = SessionInterface()
    assert isinstance(interface.store, SQLiteStore)
    app = make_app(interface)
    app.test_client().get("/set?a=1")
    assert (tmp_path / "sessio.db").exists()
    assert interface.store.count_sync() == 1
    interface.store.close_sync()


def test_a_short_secret_key_works_and_is_reported_once(
    store: MemoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(SessionInterface(store=store))
    app.config["SECRET_KEY"] = "dev"
    client = app.test_client()
    with caplog.at_level(logging.WARNING, logger="sessio.flask"):
        client.get("/set?a=1")
        client.get("/get")
    assert client.get("/get").json == {"a": "1"}
    reports = [r.getMessage() for r in caplog.records if "shorter than 32 bytes" in r.getMessage()]
    assert len(reports) == 1  # once per key, not once per request
    assert "'dev'" not in reports[0]  # and the key itself is never printed


def test_construction_is_validated() -> None:
    with pytest.raises(TypeError, match="sessio Store"):
        SessionInterface(store={})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="CSRFOptions"):
        SessionInterface(store=MemoryStore(), csrf=True)  # type: ignore[arg-type]


# -- a real server -----------------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, SQLiteStore]]:
    store = SQLiteStore(tmp_path / "sessions.db")
    app = make_app(SessionInterface(store=store))

    @app.get("/slow-set")
    def slow_set() -> str:
        time.sleep(0.05)  # holds every request between its load and its commit, so they overlap
        flask.session.update(flask.request.args)
        return "ok"

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", store
    finally:
        server.shutdown()
        thread.join()
        store.close_sync()


@pytest.mark.slow
def test_a_real_server_keeps_every_concurrent_write(served: tuple[str, SQLiteStore]) -> None:
    url, _ = served
    with httpx.Client(base_url=url) as client:
        cookie = client.get("/set?start=1").cookies["session"]
        client.cookies.clear()
        write_concurrently(client, f"session={cookie}", writers=12)
        data = client.get("/get", headers={"Cookie": f"session={cookie}"}).json()
    assert data == {"start": "1", **{f"k{i}": f"v{i}" for i in range(12)}}


@pytest.mark.slow
def test_a_real_server_rotates_on_login(served: tuple[str, SQLiteStore]) -> None:
    url, store = served
    with httpx.Client(base_url=url) as client:
        response = client.get("/set?cart=apple")
        assert response.headers["Set-Cookie"].endswith("; HttpOnly; Path=/")  # Flask's own text
        before = client.cookies["session"]
        client.get("/login")
        assert client.cookies["session"] != before
        assert not store.exists_sync(store_key(before.rsplit(".", 1)[0]))
        assert client.get("/private").text == "secret"
        assert client.get("/get").json() == {"cart": "apple"}


# -- config read per request ------------------------------------------------------------------------


def test_cookie_settings_changed_between_requests_apply_at_once() -> None:
    app = make_app(SessionInterface(MemoryStore()))
    client = app.test_client()
    first = client.get("/set?a=1").headers["Set-Cookie"]
    assert first.startswith("session=")
    app.config["SESSION_COOKIE_NAME"] = "sid"
    app.config["SESSION_COOKIE_SAMESITE"] = "Strict"
    second = client.get("/set?a=2").headers["Set-Cookie"]
    assert second.startswith("sid=")
    assert "SameSite=Strict" in second


def test_an_overridden_cookie_hook_is_asked_on_every_request() -> None:
    names = iter(["one", "two"])

    class Rotating(SessionInterface):
        def get_cookie_name(self, app: flask.Flask) -> str:
            return next(names)

    app = make_app(Rotating(MemoryStore()))
    client = app.test_client()
    assert client.get("/set?a=1").headers["Set-Cookie"].startswith("one=")
    assert client.get("/set?a=2").headers["Set-Cookie"].startswith("two=")
