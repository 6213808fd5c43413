"""Users of Starlette's own SessionMiddleware keep their session across the switch to sessio."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import itsdangerous
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware as StarletteSessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from sessio.errors import ConfigurationError, StoreUnavailable
from sessio.events import EventKind, Events, SessionEvent
from sessio.integrations.starlette import SessionMiddleware
from sessio.legacy import StarletteCookie
from sessio.stores.base import Create, Saved, Write
from sessio.stores.memory import MemoryStore

SECRET = "an-old-starlette-secret-key-of-32-bytes"


async def _write(request: Request) -> JSONResponse:
    request.session.update(await request.json())
    return JSONResponse(dict(request.session))


async def _read(request: Request) -> JSONResponse:
    return JSONResponse(dict(request.session))


ROUTES = [Route("/write", _write, methods=["POST"]), Route("/read", _read)]


def starlette_cookie(data: dict[str, Any], **options: Any) -> str:
    """A cookie issued by Starlette's own SessionMiddleware for ``data``."""
    app = Starlette(routes=ROUTES, middleware=[Middleware(StarletteSessionMiddleware, **options)])
    with TestClient(app) as client:
        response = client.post("/write", json=data)
    value = response.cookies.get("session")
    assert value, response.headers
    return value


def sessio_app(store: Any, **options: Any) -> Starlette:
    options.setdefault("secret_key", SECRET)
    return Starlette(
        routes=ROUTES,
        middleware=[Middleware(SessionMiddleware, store=store, legacy="starlette", **options)],
    )


@pytest.fixture
def store() -> Iterator[MemoryStore]:
    return MemoryStore()


def _sessions(store: MemoryStore) -> int:
    # The migration marks are records too; sessions are the other ones.
    return store.count_sync() - len(_marks(store))


def _marks(store: MemoryStore) -> list[str]:
    return [
        r.key for r in store.page_sync(limit=1000).records if r.key.startswith("sessio-legacy:")
    ]


def _get(app: Starlette, cookie: str) -> httpx.Response:
    """One request carrying exactly ``cookie`` (a fresh client: no jar mixes cookies in)."""
    with TestClient(app) as client:
        return client.get("/read", headers={"cookie": f"session={cookie}"})


def test_a_starlette_user_keeps_the_data_in_a_new_server_side_session(store: MemoryStore) -> None:
    old = starlette_cookie({"n": 3, "cart": ["apple"]}, secret_key=SECRET)
    app = sessio_app(store)
    first = _get(app, old)
    assert first.json() == {"n": 3, "cart": ["apple"]}
    new = first.cookies.get("session")
    assert new
    assert new != old
    assert len(first.headers.get_list("set-cookie")) == 1  # no deletion fighting the new one
    again = _get(app, new)
    assert again.json() == {"n": 3, "cart": ["apple"]}
    assert "set-cookie" not in again.headers  # an ordinary sessio session from here on
    assert _sessions(store) == 1
    assert len(_marks(store)) == 1


def test_replay_of_a_migrated_cookie_imports_nothing(store: MemoryStore) -> None:
    old = starlette_cookie({"n": 3}, secret_key=SECRET)
    app = sessio_app(store)
    assert _get(app, old).json() == {"n": 3}
    replay = _get(app, old)  # the same old cookie, shown again after the migration
    assert replay.json() == {}
    # The spent cookie is deleted, under its own name and path.
    assert replay.headers["set-cookie"].startswith(("session=;", 'session="";'))
    assert "Path=/" in replay.headers["set-cookie"]
    assert "Max-Age=0" in replay.headers["set-cookie"]
    assert _sessions(store) == 1


def test_two_parallel_requests_with_one_legacy_cookie_import_once(store: MemoryStore) -> None:
    old = starlette_cookie({"n": 3}, secret_key=SECRET)
    app = sessio_app(store)

    async def both() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            calls = [client.get("/read", headers={"cookie": f"session={old}"}) for _ in range(2)]
            return list(await asyncio.gather(*calls))

    answers = asyncio.run(both())
    assert sorted(r.json().get("n", 0) for r in answers) == [0, 3]
    assert _sessions(store) == 1


def test_an_expired_starlette_cookie_imports_nothing(
    store: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    issued = int(time.time()) - 3600
    monkeypatch.setattr(itsdangerous.TimestampSigner, "get_timestamp", lambda self: issued)
    old = starlette_cookie({"n": 3}, secret_key=SECRET, max_age=600)
    monkeypatch.undo()
    assert _get(sessio_app(store, max_age=600), old).json() == {}
    assert store.count_sync() == 0  # not even a mark


@pytest.mark.parametrize(
    "forge",
    [
        lambda v: v[:-1] + ("A" if v[-1] != "A" else "B"),  # the signature
        lambda v: base64.b64encode(b'{"n": 4, "admin": true}').decode() + v[v.index(".") :],
        lambda v: v.replace(".", "", 1),
        lambda v: "",
        lambda v: "%E2%98%83." * 50 + v,
    ],
)
def test_a_tampered_starlette_cookie_imports_nothing(store: MemoryStore, forge: Any) -> None:
    old = starlette_cookie({"n": 3}, secret_key=SECRET)
    assert _get(sessio_app(store), forge(old)).json() == {}
    assert store.count_sync() == 0


def test_another_key_or_another_format_imports_nothing(store: MemoryStore) -> None:
    other = starlette_cookie({"n": 3}, secret_key="another-secret-key-entirely-0123456789")
    signer = itsdangerous.TimestampSigner(SECRET)
    not_a_dict = signer.sign(base64.b64encode(json.dumps([1, 2]).encode())).decode()
    nan = signer.sign(base64.b64encode(b'{"n": NaN}')).decode()
    for value in (other, not_a_dict, nan):
        assert _get(sessio_app(store), value).json() == {}
    assert store.count_sync() == 0


def test_hostile_values_are_skipped_and_the_rest_imported(store: MemoryStore) -> None:
    signer = itsdangerous.TimestampSigner(SECRET)
    payload = b'{"ok": 1, "bad": "\\ud800"}'  # a lone surrogate JSON lets through
    value = signer.sign(base64.b64encode(payload)).decode()
    assert _get(sessio_app(store), value).json() == {"ok": 1}


def test_the_migration_is_announced_as_an_event() -> None:
    from sessio.exchange import Lifecycle
    from sessio.exchange import Request as ExchangeRequest
    from sessio.legacy import adopt_sync
    from sessio.manager import SyncSessionManager

    seen: list[SessionEvent] = []
    events = Events()
    events.subscribe(seen.append)
    store = MemoryStore()
    manager = SyncSessionManager(store, events=events)
    old = starlette_cookie({"n": 3}, secret_key=SECRET)
    life: Lifecycle[SyncSessionManager, Any] = Lifecycle.configure(
        SyncSessionManager, manager=manager, secret_key=SECRET, legacy=StarletteCookie(SECRET)
    )
    headers = {"cookie": [f"session={old}"]}
    exchange = life.begin(ExchangeRequest("GET", "/", lambda n: headers.get(n, []), host="t"))
    session = manager.load(exchange.token)
    adopt_sync(manager, exchange, session)
    assert dict(session) == {"n": 3}
    migrated = [e for e in seen if e.kind is EventKind.MIGRATED]
    assert len(migrated) == 1
    assert migrated[0].detail["keys"] == 1


class _StalledMarks(MemoryStore):
    """A store whose writes of migration marks fail as an outage would."""

    async def save(self, key: str, write: Write) -> Saved:
        if isinstance(write, Create) and key.startswith("sessio-legacy:"):
            raise StoreUnavailable("the store stalled")
        return await super().save(key, write)

    def save_sync(self, key: str, write: Write) -> Saved:
        if isinstance(write, Create) and key.startswith("sessio-legacy:"):
            raise StoreUnavailable("the store stalled")
        return super().save_sync(key, write)


def test_a_stalled_store_answers_503_and_keeps_the_legacy_cookie() -> None:
    old = starlette_cookie({"n": 3}, secret_key=SECRET)
    store = _StalledMarks()
    answer = _get(sessio_app(store), old)
    assert answer.status_code == 503
    if True:
        assert "set-cookie" not in answer.headers  # the user can retry with the same cookie
    assert store.count_sync() == 0


def test_legacy_must_be_a_reader() -> None:
    with pytest.raises(ConfigurationError):
        SessionMiddleware(lambda *a: None, SECRET, store=MemoryStore(), legacy="flask")  # type: ignore[arg-type]
