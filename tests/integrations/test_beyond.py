"""Per-session lifetimes, login freshness and client binding, end to end through the
integrations: the cookie's attributes on ASGI, WSGI (a real threaded server) and Flask, the
``require_fresh_login`` guards of ASGI, FastAPI, Flask and Quart, and a replayed session."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl

import flask
import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from sessio import (
    EventKind,
    MemoryStore,
    Policy,
    Principal,
    SessionEvent,
    SessionManager,
    SyncSessionManager,
)
from sessio.integrations import asgi, fastapi, wsgi
from sessio.integrations import flask as sessio_flask

from ..conftest import FakeClock
from .apps import SECRET
from .wsgi_support import serve

POLICY = Policy(ttl=timedelta(days=30), remember_ttl=timedelta(days=14)).development()
COOKIE = POLICY.cookie.name
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0"
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0"


def _remember(value: str | None) -> bool | None:
    return {"1": True, "0": False}.get(value or "")


def set_cookie(response: Any) -> str:
    (value,) = [v for k, v in response.headers.items() if k.lower() == "set-cookie"]
    assert value.startswith(COOKIE + "=")
    return str(value)


def check_attributes(header: str, remember: bool | None) -> None:
    if remember is False:
        assert "Max-Age" not in header
        assert "xpires" not in header
    elif remember is True:
        assert f"Max-Age={14 * 86400}" in header
    else:
        assert f"Max-Age={30 * 86400}" in header


# -- ASGI and FastAPI -------------------------------------------------------------------------------


async def _login(request: Request) -> Response:
    session = asgi.get_session(request.scope)
    session.login(Principal("alice"), remember=_remember(request.query_params.get("remember")))
    return Response("in")


async def _fresh(request: Request) -> Response:
    principal = asgi.require_fresh_login(request.scope, timedelta(minutes=5))
    return JSONResponse({"user": principal.id})


def asgi_client(clock: FakeClock, store: MemoryStore | None = None) -> TestClient:
    manager = SessionManager(store or MemoryStore(clock=clock), POLICY, clock=clock)
    # Inside Starlette's error handling, so a SessionError the endpoint raises is answered.
    app = Starlette(
        routes=[Route("/login", _login), Route("/fresh", _fresh)],
        middleware=[Middleware(asgi.SessionMiddleware, manager=manager, secret_key=SECRET)],
    )
    return TestClient(app)


@pytest.mark.parametrize("remember", [True, False, None])
def test_asgi_cookie_follows_remember(remember: bool | None, clock: FakeClock) -> None:
    client = asgi_client(clock)
    flag = {True: "1", False: "0", None: ""}[remember]
    check_attributes(set_cookie(client.get(f"/login?remember={flag}")), remember)


def test_asgi_stale_login_gets_401_and_passes_after_relogin(clock: FakeClock) -> None:
    client = asgi_client(clock)
    assert client.get("/fresh").status_code == 401  # nobody signed in
    client.get("/login")
    assert client.get("/fresh").json() == {"user": "alice"}
    clock.advance(6 * 60)
    stale = client.get("/fresh")
    assert stale.status_code == 401
    assert stale.json() == {
        "error": "REAUTHENTICATION_REQUIRED",
        "detail": "this route needs a login within the last 300 seconds: sign in again",
        "max_age": 300,
    }
    client.get("/login")
    assert client.get("/fresh").status_code == 200


Fresh = fastapi.require_fresh_login(300)


def test_fastapi_dependency_guards_a_fresh_login(clock: FakeClock) -> None:
    app = FastAPI()
    fastapi.install_error_handlers(app)

    @app.get("/login")
    def login(session: fastapi.SessionDep) -> str:
        session.login(Principal("alice"))
        return "in"

    @app.get("/pay")
    def pay(user: Annotated[Principal, Depends(Fresh)]) -> dict[str, str]:
        return {"paid_by": user.id}

    manager = SessionManager(MemoryStore(clock=clock), POLICY, clock=clock)
    client = TestClient(asgi.SessionMiddleware(app, manager=manager, secret_key=SECRET))
    assert client.get("/pay").json()["error"] == "AUTHENTICATION_REQUIRED"
    client.get("/login")
    assert client.get("/pay").json() == {"paid_by": "alice"}
    clock.advance(301)
    stale = client.get("/pay")
    assert stale.status_code == 401
    assert stale.json()["error"] == "REAUTHENTICATION_REQUIRED"
    assert stale.json()["max_age"] == 300
    client.get("/login")
    assert client.get("/pay").status_code == 200


@pytest.mark.parametrize("bad", [0, -1, "5m", float("nan"), True])
def test_guards_refuse_a_bad_max_age_at_declaration(bad: Any) -> None:
    from sessio import ConfigurationError

    for guard in (fastapi.require_fresh_login, sessio_flask.require_fresh_login):
        with pytest.raises(ConfigurationError):
            guard(bad)


# -- WSGI, on a real threaded server -------------------------------------------------------------------


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    session = environ["sessio.session"]
    query = dict(parse_qsl(environ["QUERY_STRING"]))
    if environ["PATH_INFO"] == "/login":
        session.login(Principal("alice"), remember=_remember(query.get("remember")))
    elif environ["PATH_INFO"] == "/set":
        session.update(query)
    body = json.dumps({"user": session.principal.id if session.principal else None}).encode()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


@pytest.fixture
def wsgi_events() -> list[SessionEvent]:
    return []


def wsgi_server(policy: Policy, events: list[SessionEvent]) -> Any:
    manager = SyncSessionManager(MemoryStore(), policy)
    manager.events.subscribe(events.append)
    return serve(wsgi.SessionMiddleware(wsgi_app, manager=manager, secret_key=SECRET))


@pytest.mark.parametrize("remember", [True, False, None])
def test_wsgi_cookie_follows_remember(remember: bool | None, wsgi_events: Any) -> None:
    flag = {True: "1", False: "0", None: ""}[remember]
    with wsgi_server(POLICY, wsgi_events) as url:
        response = httpx.get(f"{url}/login?remember={flag}", timeout=10)
        check_attributes(set_cookie(response), remember)


def test_wsgi_replayed_session_from_another_agent_is_ended(
    wsgi_events: list[SessionEvent],
) -> None:
    policy = POLICY.replace(bind=("user_agent",), on_client_change="end")
    with wsgi_server(policy, wsgi_events) as url:
        owner = httpx.Client(base_url=url, headers={"user-agent": FIREFOX}, timeout=10)
        owner.get("/login")
        assert owner.get("/").json() == {"user": "alice"}
        thief = httpx.Client(base_url=url, headers={"user-agent": CHROME}, timeout=10)
        thief.cookies.set(COOKIE, owner.cookies[COOKIE])
        assert thief.get("/").json() == {"user": None}
        changed = [e for e in wsgi_events if e.kind is EventKind.CLIENT_CHANGED]
        assert changed[0].detail["user_agent_old"] == "Firefox 126"
        assert changed[0].detail["user_agent_new"] == "Chrome 125"
        assert changed[0].detail["action"] == "end"
        assert owner.get("/").json() == {"user": None}  # ended for every holder
        owner.close()
        thief.close()


def test_wsgi_two_parallel_requests_from_different_agents(
    wsgi_events: list[SessionEvent],
) -> None:
    policy = POLICY.replace(bind=("user_agent",), on_client_change="end")
    with wsgi_server(policy, wsgi_events) as url:
        owner = httpx.Client(base_url=url, headers={"user-agent": FIREFOX}, timeout=10)
        owner.get("/login")
        token = owner.cookies[COOKIE]
        answers: list[Any] = []
        barrier = threading.Barrier(2, timeout=10)

        def replay(agent: str) -> None:
            with httpx.Client(base_url=url, headers={"user-agent": agent}, timeout=10) as c:
                c.cookies.set(COOKIE, token)
                barrier.wait()
                answers.append(c.get("/set?x=1").json())

        threads = [
            threading.Thread(target=replay, args=(a,)) for a in (CHROME, CHROME + " Edg/125")
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        assert answers == [{"user": None}, {"user": None}]
        assert any(e.kind is EventKind.CLIENT_CHANGED for e in wsgi_events)
        owner.close()


# -- Flask ------------------------------------------------------------------------------------------


def flask_app(clock: FakeClock) -> flask.Flask:
    app = flask.Flask(__name__)
    app.secret_key = SECRET
    interface = sessio_flask.SessionInterface(store=MemoryStore(clock=clock), clock=clock)
    interface.init_app(app)

    @app.get("/login")
    def login() -> str:
        remember = _remember(flask.request.args.get("remember"))
        flask.session.login(Principal("alice"), remember=remember)  # type: ignore[attr-defined]
        return "in"

    @app.get("/fresh")
    @sessio_flask.require_fresh_login(timedelta(minutes=5))
    def fresh() -> str:
        return "fresh"

    return app


@pytest.mark.parametrize("remember", [True, False])
def test_flask_cookie_follows_remember(remember: bool, clock: FakeClock) -> None:
    client = flask_app(clock).test_client()
    response = client.get(f"/login?remember={int(remember)}")
    header = response.headers["Set-Cookie"]
    if remember:
        assert "Max-Age=" in header
        assert "Expires=" in header
    else:
        assert "Max-Age" not in header
        assert "Expires" not in header


def test_flask_stale_login_gets_401_and_passes_after_relogin(clock: FakeClock) -> None:
    client = flask_app(clock).test_client()
    assert client.get("/fresh").status_code == 401
    client.get("/login")
    assert client.get("/fresh").text == "fresh"
    clock.advance(301)
    stale = client.get("/fresh")
    assert stale.status_code == 401
    assert stale.json is not None
    assert stale.json["error"] == "REAUTHENTICATION_REQUIRED"
    assert stale.json["max_age"] == 300
    client.get("/login")
    assert client.get("/fresh").status_code == 200
