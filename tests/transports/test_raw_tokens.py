"""Raw-token mode: sealed client-side tokens travel verbatim, over a real server and browser-like client."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from sessio import ConfigurationError, Policy, SessionManager, SessionTooLarge
from sessio.manager import Commit, CommitAction
from sessio.stores import EncryptedCookieStore, JWTStore, SignedCookieStore
from sessio.stores.client import ClientSideStore
from sessio.transports import (
    CookieTransport,
    RawTokens,
    TokenSigner,
    Transport,
    read_token,
    transports_for,
)
from sessio.transports.signing import MAX_RAW_TOKEN_LENGTH

#: These tests build client-side stores without a revocation list on purpose (what such a store
#: guarantees on its own); the warning that choice raises is tested in tests/security/.
pytestmark = pytest.mark.filterwarnings("ignore::sessio.stores.client.NoRevocationWarning")

KEY = "raw-token-secret-" + "r" * 32


# -- units ---------------------------------------------------------------------------------------


def test_raw_tokens_pass_sealed_shapes_verbatim_and_nothing_else() -> None:
    raw = RawTokens()
    token = "eyJhbGciOiJIUzI1NiJ9.e30.c2ln-_"
    assert raw.sign(token) == token
    assert raw.unsign(token) == token
    for bad in ("", "a b", "a;b", "a=b", "é", "A" * (MAX_RAW_TOKEN_LENGTH + 1)):
        assert raw.unsign(bad) is None, bad


def test_transports_for_raw_needs_no_secret() -> None:
    policy = Policy(transports=("cookie", "header", "bearer"))
    built = transports_for(policy, None, raw=True)
    assert all(isinstance(t.signer, RawTokens) for t in built)
    signed = transports_for(policy, KEY)
    assert all(isinstance(t.signer, TokenSigner) for t in signed)
    with pytest.raises(ConfigurationError, match="raw=True"):
        transports_for(policy, None)


def test_a_signing_transport_refuses_a_sealed_token_instead_of_losing_the_session() -> None:
    from sessio import SyncSessionManager

    manager = SyncSessionManager(SignedCookieStore(KEY))
    session = manager.load(None)
    session["n"] = 1
    commit = manager.commit(session)  # a sealed token, hundreds of bytes long
    signed_transport = transports_for(Policy(), KEY)[0]
    assert isinstance(signed_transport, CookieTransport)
    with pytest.raises(ConfigurationError, match=r"raw=manager\.seals_tokens"):
        signed_transport.cookie_value(commit)


def test_the_cookie_transport_refuses_a_cookie_over_4096_bytes() -> None:
    transport = CookieTransport(RawTokens())
    end = time.time() + 60
    fits = "A" * (4096 - len(transport.options.name + "="))
    assert transport.cookie_value(Commit(CommitAction.SET, fits, end, True, end))
    with pytest.raises(SessionTooLarge) as caught:
        transport.cookie_value(Commit(CommitAction.SET, fits + "A", end, True, end))
    assert caught.value.evidence == {"size": 4097, "limit": 4096}
    assert "4097" in str(caught.value)


# -- over a real server ------------------------------------------------------------------------------


def _app(manager: SessionManager, transports: list[Transport]) -> Callable[..., Any]:
    """A minimal ASGI app: what any middleware does with a manager and its transports."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"

        def headers(name: str) -> list[str]:
            return [v.decode("latin-1") for k, v in scope["headers"] if k.decode() == name]

        token, found_by = read_token(transports, headers)
        session = await manager.load(token)
        if scope["path"] == "/inc":
            session["n"] = session.get("n", 0) + 1
        elif scope["path"] == "/big":
            session["blob"] = secrets.token_hex(3000)
        elif scope["path"] == "/logout":
            session.destroy()
        status, out = 200, []
        body: dict[str, Any] = {"n": session.get("n"), "new": session.is_new}
        try:
            commit = await manager.commit(session)
            # Answer through the transport the token came in by (else the first one).
            transport = found_by or transports[0]
            out = transport.response_headers(commit, had_token=token is not None)
        except SessionTooLarge as exc:
            status, body = 500, exc.to_dict()
        raw = [(k.encode(), v.encode()) for k, v in out]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    return app


@pytest.fixture
def serve() -> Iterator[Callable[[Any], str]]:
    """Starts an app on a real uvicorn server on 127.0.0.1; returns its base URL."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: Any) -> str:
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, lifespan="off", ws="none", log_level="warning"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        servers.append((server, thread))
        port = server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


STORES: dict[str, Callable[[], ClientSideStore]] = {
    "signed": lambda: SignedCookieStore(KEY),
    "encrypted": lambda: EncryptedCookieStore(KEY),
    "jwt": lambda: JWTStore(KEY),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(STORES))
def test_cookie_sessions_round_trip_through_a_real_server(
    name: str, serve: Callable[[Any], str]
) -> None:
    store = STORES[name]()
    policy = Policy.web().development()  # plain HTTP on localhost
    manager = SessionManager(store, policy)
    assert manager.seals_tokens
    url = serve(_app(manager, transports_for(policy, None, raw=manager.seals_tokens)))
    with httpx.Client(base_url=url) as client:
        for n in (1, 2, 3):
            assert client.get("/inc").json() == {"n": n, "new": n == 1}
        cookie = client.cookies["sessio"]
        assert store.open(cookie) is not None  # the cookie IS the sealed token, unsigned
        big = client.get("/big")
        assert big.status_code == 500
        assert big.json()["error"] == "SESSION_TOO_LARGE"
        assert "set-cookie" not in big.headers
        assert client.get("/").json() == {"n": 3, "new": False}
        response = client.get("/logout")
        assert response.headers["set-cookie"].startswith('sessio=""; Path=/; Max-Age=0')
        assert "sessio" not in client.cookies
    with httpx.Client(base_url=url) as bare:  # no cookie jar games: the header as sent
        assert bare.get("/", headers={"cookie": f"sessio={cookie}"}).json()["n"] == 3
        forged = cookie[:-2] + ("AA" if cookie[-2:] != "AA" else "BB")
        assert bare.get("/", headers={"cookie": f"sessio={forged}"}).json()["new"] is True


@pytest.mark.slow
def test_jwt_sessions_over_bearer_headers(serve: Callable[[Any], str]) -> None:
    store = JWTStore(KEY, issuer="sessio-tests", audience="api")
    policy = Policy.api()
    manager = SessionManager(store, policy)
    url = serve(_app(manager, transports_for(policy, None, raw=True)))
    with httpx.Client(base_url=url) as client:
        first = client.get("/inc")
        token = first.headers["x-session-id"]
        assert token.count(".") == 2  # a plain JWT, as any JWT client expects
        bearer = {"authorization": f"Bearer {token}"}
        second = client.get("/inc", headers=bearer)
        assert second.json() == {"n": 2, "new": False}
        refreshed = second.headers["x-session-id"]
        assert client.get("/", headers={"authorization": f"Bearer {refreshed}"}).json()["n"] == 2
        assert client.get("/", headers={"authorization": "Bearer x.y.z"}).json()["new"] is True
