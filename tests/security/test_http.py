"""The HTTP-facing requirements, end to end, against both middlewares on real servers.

Every test runs twice: on the ASGI SessionMiddleware behind uvicorn and on the WSGI one behind
wsgiref (the ``server`` fixture; the apps are in :mod:`tests.security.agents`). The policy is
the default one (``__Host-`` cookie, Secure): httpx would not send a Secure cookie over plain
HTTP, so :class:`Agent` keeps the cookie itself and sends it exactly as a browser on HTTPS would.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets.exceptions
import websockets.sync.client

from sessio import Policy

from .agents import NAME, Agent, Flavour, Server, served
from .test_cookies import attributes

pytestmark = pytest.mark.slow

#: Run a test on the ASGI middleware only (for what WSGI has no counterpart of).
asgi_only = pytest.mark.parametrize("flavour", ["asgi"])


@pytest.fixture(params=["asgi", "wsgi"])
def flavour(request: pytest.FixtureRequest) -> Flavour:
    """Which middleware serves the app."""
    flavour: Flavour = request.param
    return flavour


@pytest.fixture
def server(flavour: Flavour, tmp_path: Path) -> Iterator[Server]:
    """The shared routes with the default policy, on the middleware ``flavour`` names."""
    with served(flavour, tmp_path) as running:
        yield running


@pytest.fixture
def agent(server: Server) -> Iterator[Agent]:
    agent = server.agent()
    yield agent
    agent.close()


def test_wire_cookie_has_every_flag_by_default(agent: Agent) -> None:
    """ASVS 4.0.3 3.4.1-3.4.4 / ASVS 5.0 3.3.1-3.3.4, on the wire from a real server: the default
    policy's cookie is ``__Host-`` prefixed, Secure, HttpOnly, SameSite=Lax, Path=/, no Domain."""
    agent.csrf()
    attrs = attributes(agent.set_cookies[-1])
    assert attrs["="].startswith("__Host-sessio=")
    assert "secure" in attrs
    assert "httponly" in attrs
    assert attrs["samesite"] == "Lax"
    assert attrs["path"] == "/"
    assert "domain" not in attrs


def test_fixation_over_http(server: Server, agent: Agent) -> None:
    """ASVS 4.0.3 3.2.1 / ASVS 5.0 7.2.4 / cheat sheet "Permissive and Strict Session
    Management": a planted cookie is replaced, and the pre-login cookie dies at login."""
    agent.cookie = "planted-by-attacker"
    agent.csrf()
    assert agent.cookie != "planted-by-attacker"
    pre_login = agent.cookie
    assert agent.login().status_code == 200
    assert agent.cookie != pre_login
    assert not server.exists(pre_login)
    assert agent.user() == "alice"
    assert agent.user(headers={"cookie": f"{NAME}={pre_login}"}) is None


def test_role_change_and_reauthentication_rotate_over_http(server: Server, agent: Agent) -> None:
    """Cheat sheet "Renew the Session ID After Any Privilege Level Change" / ASVS 5.0 7.2.4:
    a promotion and a re-login as the same user each issue a new cookie and kill the old one."""
    agent.login("alice", roles="user")
    for roles in ("user,admin", "user,admin"):
        before = agent.cookie
        agent.login("alice", roles=roles)
        assert agent.cookie != before
        assert not server.exists(before)
        assert agent.user(headers={"cookie": f"{NAME}={before}"}) is None
    assert agent.user() == "alice"


def test_logout_replay_over_http(server: Server, agent: Agent) -> None:
    """ASVS 4.0.3 3.3.1 / ASVS 5.0 7.4.1: after logout, the old cookie replayed gets an anonymous
    session and the server-side record is gone."""
    agent.login()
    before = agent.cookie
    response = agent.post("/logout", headers={"x-csrf-token": agent.csrf()})
    assert response.status_code == 200
    assert agent.cookie != before
    assert not server.exists(before)
    assert agent.user(headers={"cookie": f"{NAME}={before}"}) is None


def test_revoke_all_except_current_over_http(server: Server) -> None:
    """ASVS 4.0.3 3.3.3 / ASVS 5.0 7.4.3: "log out everywhere else" ends the other devices'
    sessions; their cookies get anonymous sessions, this device stays in."""
    laptop, phone = server.agent(), server.agent()
    try:
        laptop.login()
        phone.login()
        assert server.revoke_all_but("alice", laptop.cookie) == 1
        assert laptop.user() == "alice"
        assert phone.user() is None
    finally:
        laptop.close()
        phone.close()


@pytest.mark.parametrize(
    "cookie",
    [
        "x" * 4000,  # oversized
        "A" * 43 + "." + "B" * 43,  # well-formed, forged
        "\u00e9t\u00e9",  # non-ASCII (latin-1 on the wire)
        "a\tb",
        '""',
        "%00",
    ],
    ids=["oversized", "forged", "non-ascii", "tab", "quotes", "percent-nul"],
)
def test_hostile_cookies_get_an_anonymous_session_not_an_error(agent: Agent, cookie: str) -> None:
    """Cheat sheet "Manage Session ID as Any Other User Input": garbage in the cookie is answered
    like no cookie at all (200, anonymous), never with a server error."""
    header = f"{NAME}={cookie}".encode()  # raw UTF-8 bytes, as a hostile client sends them
    response = agent.get("/whoami", headers={"cookie": header})
    assert response.status_code == 200
    assert response.json()["user"] is None


def test_tampered_and_duplicated_cookies_over_http(agent: Agent) -> None:
    """ASVS 5.0 9.1.1 / cheat sheet "Considerations When Using Multiple Cookies": one changed
    character, or the cookie sent twice, names no session."""
    agent.login()
    token = agent.cookie or ""
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert agent.user(headers={"cookie": f"{NAME}={tampered}"}) is None
    assert agent.user(headers={"cookie": f"{NAME}={token}; {NAME}={token}"}) is None
    assert agent.user() == "alice"  # control


def test_a_token_in_the_url_is_ignored(agent: Agent) -> None:
    """ASVS 4.0.3 3.1.1 / cheat sheet "Used vs. Accepted Session ID Exchange Mechanisms": a token
    in a URL parameter is never accepted, so links cannot fixate or leak sessions."""
    agent.login()
    token = agent.cookie
    url_only = httpx.Client(base_url=agent.server.url, trust_env=False)
    try:
        response = url_only.get("/whoami", params={NAME: token, "session": token, "sid": token})
        assert response.json()["user"] is None
    finally:
        url_only.close()


# -- CSRF ---------------------------------------------------------------------------------------


def test_csrf_matrix_over_http(server: Server) -> None:
    """ASVS 4.0.3 4.2.2 / ASVS 5.0 3.5.1 / CSRF cheat sheet "Synchronizer Token Pattern" and
    "Verifying Origin With Standard Headers": missing, wrong and another session's tokens, a
    foreign or ``null`` Origin, and a foreign Referer are refused with 403; the own origin with
    the session's token passes."""
    victim, attacker = server.agent(), server.agent()
    try:
        victim.login()
        own = server.url
        good = victim.csrf()
        theirs = attacker.csrf()
        refused = [
            {},
            {"x-csrf-token": "wrong"},
            {"x-csrf-token": theirs},
            {"x-csrf-token": good, "origin": "https://evil.example"},
            {"x-csrf-token": good, "origin": "null"},
            {"x-csrf-token": good, "referer": "https://evil.example/page"},
        ]
        for headers in refused:
            response = victim.post("/put", json={"owned": True}, headers=headers)
            assert response.status_code == 403, headers
            assert response.json()["error"] == "CSRF_FAILED"
        assert "owned" not in victim.get("/whoami").json()["data"]
        for headers in ({"origin": own}, {"referer": f"{own}/form"}, {}):
            response = victim.post(
                "/put", json={"ok": 1}, headers={"x-csrf-token": good, **headers}
            )
            assert response.status_code == 200, headers
    finally:
        victim.close()
        attacker.close()


def test_masked_tokens_differ_per_render_and_all_work_over_http(agent: Agent) -> None:
    """CSRF cheat sheet "Synchronizer Token Pattern" (BREACH): each render differs; each works."""
    tokens = [agent.csrf() for _ in range(5)]
    assert len(set(tokens)) == 5
    for token in tokens:
        assert agent.post("/put", json={"k": 1}, headers={"x-csrf-token": token}).status_code == 200


def test_csrf_exempt_path_over_http(agent: Agent) -> None:
    """CSRF cheat sheet (webhooks): an exempt path takes a token-less POST; others do not."""
    agent.csrf()
    assert agent.post("/hooks/echo", content=b"payload").status_code == 200
    assert agent.post("/echo", content=b"payload").status_code == 403


def test_bearer_carried_sessions_are_exempt_from_csrf(flavour: Flavour, tmp_path: Path) -> None:
    """CSRF cheat sheet "Employing Custom Request Headers for AJAX/API": a session carried in
    ``Authorization: Bearer`` (which no browser attaches by itself) needs no CSRF token; the
    same session carried by the cookie does."""
    policy = Policy(transports=("cookie", "bearer"))
    with served(flavour, tmp_path, policy) as server:
        agent = server.agent()
        try:
            agent.login()
            token = agent.cookie
            bearer = {"authorization": f"Bearer {token}", "cookie": ""}
            assert agent.post("/put", json={"via": "bearer"}, headers=bearer).status_code == 200
            assert agent.post("/put", json={"via": "cookie"}).status_code == 403
            assert agent.get("/whoami").json()["data"]["via"] == "bearer"
        finally:
            agent.close()


@asgi_only
def test_websocket_from_a_foreign_origin_is_refused(server: Server, agent: Agent) -> None:
    """ASVS 5.0 4.4.2 (cross-site WebSocket hijacking): a cookie-carrying handshake whose Origin
    is not the app's own is refused with 403 before the app sees it."""
    agent.login()
    ws_url = "ws" + server.url.removeprefix("http") + "/ws"
    cookie = f"{NAME}={agent.cookie}"
    with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
        websockets.sync.client.connect(
            ws_url, additional_headers={"cookie": cookie}, origin="https://evil.example"
        )
    assert refused.value.response.status_code == 403
    with websockets.sync.client.connect(
        ws_url, additional_headers={"cookie": cookie}, origin=server.url
    ) as ws:
        assert ws.recv() is not None  # control: the own origin is let in


def test_no_token_in_any_log_over_a_full_http_flow(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """ASVS 4.0.3 7.1.1 / ASVS 5.0 16.2.5: the server's loggers (uvicorn and Starlette for ASGI,
    sessio, and an audit log of every session event) at DEBUG, across login, CSRF refusals and
    logout, show no cookie value, ID or CSRF token. The test client's own loggers (httpx,
    httpcore) are not the server's and are left out."""
    audit = logging.getLogger("app.audit")
    server.manager.events.subscribe(lambda e: audit.info("session event %s", e.as_dict()))
    seen: set[str] = set()
    for name in ("uvicorn", "uvicorn.error", "starlette", "sessio", "app.audit"):
        caplog.set_level(logging.DEBUG, logger=name)
    with caplog.at_level(logging.DEBUG):
        agent = server.agent()
        try:
            for step in range(2):
                seen.add(agent.csrf())
                agent.login(roles="admin" if step else "")
                seen.add(agent.cookie or "")
                agent.post("/put", json={"x": 1}, headers={"x-csrf-token": "wrong"})
                agent.post("/put", json={"x": 1}, headers={"origin": "https://evil.example"})
                agent.post("/logout", headers={"x-csrf-token": agent.csrf()})
                seen.add(agent.cookie or "")
        finally:
            agent.close()
    records = [r for r in caplog.records if r.name.split(".")[0] not in ("httpx", "httpcore")]
    assert any(r.name == "app.audit" and "csrf_failed" in r.getMessage() for r in records)
    texts = [repr(r.args) + r.getMessage() + (r.exc_text or "") for r in records]
    secrets = {s for s in seen if s} | {s.partition(".")[0] for s in seen if "." in s}
    secrets.add(server.secret)
    assert len(secrets) >= 6
    for text in texts:
        for secret in secrets:
            assert secret not in text
