"""The Flask drop-in over client-side stores: the cookie is the sealed session, not a signed ID."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from typing import Any

import flask
import pytest

from sessio import ConcurrencyPolicy, ConfigurationError, Policy
from sessio.integrations.flask import SessionInterface
from sessio.stores import EncryptedCookieStore, JWTStore, MemoryStore, SignedCookieStore
from sessio.stores.client import ClientSideStore

from .test_flask import SECRET, make_app

STORES: dict[str, Callable[[], ClientSideStore]] = {
    "signed": lambda: SignedCookieStore(SECRET, revocation_store=MemoryStore()),
    "encrypted": lambda: EncryptedCookieStore(SECRET, revocation_store=MemoryStore()),
    "jwt": lambda: JWTStore(SECRET, revocation_store=MemoryStore()),
}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest) -> ClientSideStore:
    return STORES[request.param]()


@pytest.fixture
def app(store: ClientSideStore) -> flask.Flask:
    app = make_app(SessionInterface(store))

    @app.get("/big")
    def big() -> str:
        # Random bytes do not compress: sealed, they cannot fit a 4 KB cookie.
        flask.session["blob"] = base64.b64encode(os.urandom(4000)).decode()
        return "stored?"

    @app.get("/clear")
    def clear() -> str:
        flask.session.clear()
        return "cleared"

    return app


def cookie_of(response: Any) -> str:
    (header,) = response.headers.getlist("Set-Cookie")
    return str(header.split(";", 1)[0].split("=", 1)[1])


def test_the_cookie_is_the_session_and_reads_back(app: flask.Flask, store: ClientSideStore) -> None:
    client = app.test_client()
    cookie = cookie_of(client.get("/set?cart=apple&n=2"))
    opened = store.open(cookie)  # the store's own keys open it: no signed ID around it
    assert opened is not None
    assert opened[1].fields["d:cart"] == '"apple"'
    assert client.get("/get").json == {"cart": "apple", "n": "2"}
    # A read changes nothing, so no new token goes out.
    assert "Set-Cookie" not in client.get("/get").headers


def test_a_tampered_cookie_gives_an_empty_session(app: flask.Flask) -> None:
    client = app.test_client()
    cookie = cookie_of(client.get("/set?cart=apple"))
    forged = cookie[:-4] + ("AAAA" if not cookie.endswith("AAAA") else "BBBB")
    thief = app.test_client()
    thief.set_cookie("session", forged)
    assert thief.get("/get").json == {}


def test_clearing_deletes_the_cookie_and_revokes_the_copy(app: flask.Flask) -> None:
    client = app.test_client()
    cookie = cookie_of(client.get("/set?cart=apple"))
    gone = client.get("/clear").headers["Set-Cookie"]
    assert "Max-Age=0" in gone or "Expires=Thu, 01 Jan 1970" in gone
    thief = app.test_client()
    thief.set_cookie("session", cookie)  # the copy taken before: on the revocation list now
    assert thief.get("/get").json == {}


def test_a_session_too_large_for_a_cookie_is_refused_loudly(app: flask.Flask) -> None:
    response = app.test_client().get("/big")
    assert response.status_code == 500
    assert response.json is not None
    assert response.json["error"] == "SESSION_TOO_LARGE"
    assert "Set-Cookie" not in response.headers  # never a truncated session


def test_a_login_limit_needs_a_server_side_store(store: ClientSideStore) -> None:
    limited = Policy(ttl=None, concurrency=ConcurrencyPolicy(max_sessions_per_principal=2))
    app = make_app(SessionInterface(store, policy=limited))
    with pytest.raises(ConfigurationError, match="server-side state"):
        app.test_client().get("/get")


def test_anything_else_is_refused_at_construction() -> None:
    with pytest.raises(TypeError, match="Store or ClientSideStore"):
        SessionInterface(object())  # type: ignore[arg-type]
