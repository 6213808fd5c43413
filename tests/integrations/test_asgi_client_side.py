"""Client-side stores behind the real SessionMiddleware and uvicorn: the cookie is the session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from sessio import EventKind, Policy, SessionEvent, SessionManager
from sessio.integrations.asgi import SessionMiddleware
from sessio.stores import EncryptedCookieStore, JWTStore, MemoryStore, SignedCookieStore
from sessio.stores.client import ClientSideStore
from sessio.transports import transports_for

from .apps import SECRET, serve, starlette_app

pytestmark = pytest.mark.slow

POLICY = Policy.web().development()
COOKIE = POLICY.cookie.name

STORES: dict[str, Callable[[], ClientSideStore]] = {
    "signed": lambda: SignedCookieStore(SECRET, revocation_store=MemoryStore()),
    "encrypted": lambda: EncryptedCookieStore(SECRET, revocation_store=MemoryStore()),
    "jwt": lambda: JWTStore(SECRET, revocation_store=MemoryStore()),
}


@pytest.fixture(params=sorted(STORES))
def site(request: pytest.FixtureRequest) -> Iterator[tuple[str, ClientSideStore, list[Any]]]:
    store = STORES[request.param]()
    manager = SessionManager(store, POLICY)
    events: list[SessionEvent] = []
    manager.events.subscribe(events.append)
    # The middleware's seam for other token formats: raw transports carry the sealed token.
    transports = transports_for(POLICY, None, raw=manager.seals_tokens)
    app = SessionMiddleware(starlette_app(), manager=manager, transports=transports)
    with serve(app) as url:
        yield url, store, events


def _post(client: httpx.Client, path: str, **form: str) -> httpx.Response:
    token = client.get("/csrf").json()["token"]
    return client.post(path, data={**form, "csrf_token": token})


def test_a_browser_session_lives_in_its_cookie(site: tuple[str, ClientSideStore, Any]) -> None:
    url, store, events = site
    with httpx.Client(base_url=url, trust_env=False, follow_redirects=True) as client:
        assert _post(client, "/login", user="ada").json() == {"ok": True}
        assert _post(client, "/cart", item="apple").json() == {"cart": ["apple"]}
        cookie = client.cookies[COOKIE]
        opened = store.open(cookie)  # the cookie is the sealed session, not a signed ID
        assert opened is not None
        assert opened[1].principal == "user:ada"
        assert client.get("/whoami").json()["user"] == "ada"
        assert _post(client, "/logout").json() == {"ok": True}
        assert client.get("/whoami").json()["user"] is None
    with httpx.Client(base_url=url, trust_env=False) as thief:
        # The copy taken before logout was revoked with it.
        stolen = thief.get("/whoami", headers={"cookie": f"{COOKIE}={cookie}"})
        assert stolen.json() == {"user": None, "data": {}}
        forged = cookie[:-4] + ("AAAA" if not cookie.endswith("AAAA") else "BBBB")
        assert thief.get("/whoami", headers={"cookie": f"{COOKIE}={forged}"}).json()["user"] is None
    reasons = [e.detail.get("reason") for e in events if e.kind is EventKind.INVALID]
    assert "revoked" in reasons
    assert "signature" in reasons or "malformed" in reasons
