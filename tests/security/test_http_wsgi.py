"""The HTTP-facing requirements through the WSGI SessionMiddleware on a real threaded server.

The server is ``tests/integrations/wsgi_support.serve`` (wsgiref, checked by
``wsgiref.validate``); the app below answers the same routes as the ASGI one, so the same
:class:`~tests.security.agents.Agent` drives both with the default policy.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

from sessio import Policy, Principal, SQLiteStore
from sessio.integrations.csrf import CSRFOptions
from sessio.integrations.wsgi import SessionMiddleware

from ..integrations.wsgi_support import serve
from .agents import NAME, Agent, Server
from .test_cookies import attributes

pytestmark = pytest.mark.slow

SECRET = "wsgi-security-suite-signing-key-0123456789"


def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The shared routes, in plain WSGI."""
    session = environ["sessio.session"]
    path, method = environ["PATH_INFO"], environ["REQUEST_METHOD"]
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    out: Any = {"ok": True}
    if path == "/csrf":
        out = {"token": session.csrf_token}
    elif path == "/whoami":
        principal = session.principal
        out = {"user": principal.id if principal else None, "data": dict(session)}
    elif path == "/login" and method == "POST":
        form = dict(parse_qsl(body.decode()))
        roles = [r for r in form.get("roles", "").split(",") if r]
        session.login(Principal(form["user"], roles=roles))
    elif path == "/logout" and method == "POST":
        session.logout()
    elif path == "/put" and method == "POST":
        session.update(json.loads(body))
    elif path == "/hooks/echo":
        out = {"body": body.decode("latin-1")}
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(out).encode()]


def _serve(tmp_path: Path, policy: Policy | None = None) -> Iterator[Server]:
    store = SQLiteStore(tmp_path / "sessions.db")
    middleware = SessionMiddleware(
        app,
        store=store,
        secret_key=SECRET,
        policy=policy or Policy(),
        csrf=CSRFOptions(exempt_paths=["/hooks/*"]),
    )
    try:
        with serve(middleware) as url:
            yield Server(url, store, middleware.manager, SECRET)
    finally:
        store.close_sync()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    yield from _serve(tmp_path)


@pytest.fixture
def agent(server: Server) -> Iterator[Agent]:
    agent = server.agent()
    yield agent
    agent.close()


def test_wsgi_wire_cookie_has_every_flag_by_default(agent: Agent) -> None:
    """ASVS 4.0.3 3.4.1-3.4.4 / ASVS 5.0 3.3.1-3.3.4, from a real WSGI server: ``__Host-``,
    Secure, HttpOnly, SameSite=Lax, Path=/, no Domain, with the default policy."""
    agent.csrf()
    attrs = attributes(agent.set_cookies[-1])
    assert attrs["="].startswith("__Host-sessio=")
    assert "secure" in attrs
    assert "httponly" in attrs
    assert attrs["samesite"] == "Lax"
    assert attrs["path"] == "/"
    assert "domain" not in attrs


def test_wsgi_fixation_rotation_and_logout(server: Server, agent: Agent) -> None:
    """ASVS 4.0.3 3.2.1 / 3.3.1, ASVS 5.0 7.2.4 / 7.4.1: a planted cookie is replaced; login,
    re-login and logout each kill the cookie before them, server-side."""
    agent.cookie = "planted-by-attacker"
    agent.csrf()
    assert agent.cookie != "planted-by-attacker"
    dead = [agent.cookie]
    agent.login()
    dead.append(agent.cookie)
    agent.login(roles="admin")
    assert agent.user() == "alice"
    dead.append(agent.cookie)
    agent.post("/logout", headers={"x-csrf-token": agent.csrf()})
    assert agent.user() is None
    for cookie in dead:
        assert not server.exists(cookie)
        assert agent.user(headers={"cookie": f"{NAME}={cookie}"}) is None


def test_wsgi_csrf_matrix(server: Server) -> None:
    """ASVS 4.0.3 4.2.2 / ASVS 5.0 3.5.1 / CSRF cheat sheet "Synchronizer Token Pattern" and
    "Verifying Origin With Standard Headers": missing, wrong and another session's tokens, a
    foreign or ``null`` Origin and a foreign Referer get 403; an exempt path does not."""
    victim, attacker = server.agent(), server.agent()
    try:
        victim.login()
        good, theirs = victim.csrf(), attacker.csrf()
        for headers in (
            {},
            {"x-csrf-token": "wrong"},
            {"x-csrf-token": theirs},
            {"x-csrf-token": good, "origin": "https://evil.example"},
            {"x-csrf-token": good, "origin": "null"},
            {"x-csrf-token": good, "referer": "https://evil.example/page"},
        ):
            response = victim.post("/put", content=b'{"owned": 1}', headers=headers)
            assert response.status_code == 403, headers
        assert "owned" not in victim.get("/whoami").json()["data"]
        response = victim.post("/put", content=b'{"ok": 1}', headers={"x-csrf-token": good})
        assert response.status_code == 200
        assert victim.post("/hooks/echo", content=b"payload").status_code == 200
    finally:
        victim.close()
        attacker.close()


def test_wsgi_bearer_carried_sessions_are_exempt_from_csrf(tmp_path: Path) -> None:
    """CSRF cheat sheet "Employing Custom Request Headers for AJAX/API": a bearer-carried
    session needs no token; the same session in the cookie does."""
    for server in _serve(tmp_path, Policy(transports=("cookie", "bearer"))):
        agent = server.agent()
        try:
            agent.login()
            bearer = {"authorization": f"Bearer {agent.cookie}", "cookie": ""}
            assert agent.post("/put", content=b'{"via": 1}', headers=bearer).status_code == 200
            assert agent.post("/put", content=b'{"via": 2}').status_code == 403
            assert agent.get("/whoami").json()["data"]["via"] == 1
        finally:
            agent.close()


@pytest.mark.parametrize("cookie", ["x" * 4000, "A" * 43 + "." + "B" * 43, '""', "%00"])
def test_wsgi_hostile_cookies_get_an_anonymous_session(agent: Agent, cookie: str) -> None:
    """Cheat sheet "Manage Session ID as Any Other User Input": garbage is answered like no
    cookie (200, anonymous), never with an error."""
    response = agent.get("/whoami", headers={"cookie": f"{NAME}={cookie}"})
    assert response.status_code == 200
    assert response.json()["user"] is None


def test_wsgi_no_token_in_the_servers_logs(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """ASVS 4.0.3 7.1.1 / ASVS 5.0 16.2.5: sessio's loggers and an audit log of every session
    event, at DEBUG, across login, CSRF refusals and logout, show no cookie, ID or token."""
    audit = logging.getLogger("app.audit")
    server.manager.events.subscribe(lambda e: audit.info("session event %s", e.as_dict()))
    seen: set[str] = set()
    with caplog.at_level(logging.DEBUG):
        agent = server.agent()
        try:
            seen.add(agent.csrf())
            agent.login()
            seen.add(agent.cookie or "")
            agent.post("/put", content=b"{}", headers={"x-csrf-token": "wrong"})
            agent.post("/logout", headers={"x-csrf-token": agent.csrf()})
            seen.add(agent.cookie or "")
        finally:
            agent.close()
    records = [r for r in caplog.records if r.name.split(".")[0] not in ("httpx", "httpcore")]
    assert any(r.name == "app.audit" and "csrf_failed" in r.getMessage() for r in records)
    secrets = {s for s in seen if s} | {s.partition(".")[0] for s in seen if "." in s} | {SECRET}
    for record in records:
        text = record.getMessage() + repr(record.args) + (record.exc_text or "")
        for secret in secrets:
            assert secret not in text
