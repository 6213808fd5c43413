"""The WSGI middleware's ``legacy=``: the old cookie deleted under its own attributes, and one
import even when two worker processes race with the same cookie."""

from __future__ import annotations

import base64
import json
import multiprocessing
from pathlib import Path
from typing import Any

import httpx
import itsdangerous

from sessio.integrations.wsgi import SessionMiddleware
from sessio.legacy import StarletteCookie
from sessio.policy import CookieOptions, Policy
from sessio.stores.memory import MemoryStore
from sessio.stores.sqlite import SQLiteStore

SECRET = "an-old-starlette-secret-key-of-32-bytes"
NEW_SECRET = "the-new-sessio-secret-key-0123456789abcdef"


def _legacy(data: dict[str, Any]) -> str:
    """A cookie as Starlette's SessionMiddleware signs it (TimestampSigner over base64 JSON)."""
    payload = base64.b64encode(json.dumps(data).encode())
    return itsdangerous.TimestampSigner(SECRET).sign(payload).decode()


def _app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    body = json.dumps(dict(environ["sessio.session"])).encode()
    start_response("200 OK", [("content-type", "application/json")])
    return [body]


def _middleware(store: Any) -> SessionMiddleware:
    policy = Policy.web().replace(cookie=CookieOptions(name="sid", secure=False))
    legacy = StarletteCookie(SECRET, session_cookie="old", path="/app", domain="example.com")
    return SessionMiddleware(
        _app, store=store, secret_key=NEW_SECRET, policy=policy, csrf=None, legacy=legacy
    )


def _get(app: Any, cookie: str) -> httpx.Response:
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://t") as client:
        return client.get("/app/x", headers={"cookie": cookie})


def test_the_old_cookie_is_deleted_under_its_own_name_path_and_domain() -> None:
    store = MemoryStore()
    answer = _get(_middleware(store), f"old={_legacy({'n': 3})}")
    assert answer.json() == {"n": 3}
    cookies = answer.headers.get_list("set-cookie")
    assert len(cookies) == 2
    new, gone = sorted(cookies, key=lambda c: not c.startswith("sid="))
    assert new.startswith("sid=")
    assert gone.startswith("old=")
    assert "Max-Age=0" in gone
    assert "Path=/app" in gone
    assert "Domain=example.com" in gone


def test_a_sessio_token_wins_over_a_legacy_cookie() -> None:
    store = MemoryStore()
    app = _middleware(store)
    first = _get(app, f"old={_legacy({'n': 3})}")
    token = first.cookies["sid"]
    # The user still has another (never imported) old cookie; the sessio session is kept.
    second = _get(app, f"sid={token}; old={_legacy({'n': 99})}")
    assert second.json() == {"n": 3}
    assert "set-cookie" not in second.headers


def _worker(path: str, cookie: str, results: Any) -> None:
    store = SQLiteStore(path)
    try:
        results.put(_get(_middleware(store), cookie).json())
    finally:
        store.close_sync()


def test_two_worker_processes_with_one_legacy_cookie_import_once(tmp_path: Path) -> None:
    path = str(tmp_path / "sessions.db")
    SQLiteStore(path).close_sync()  # the schema exists before the workers race
    cookie = f"old={_legacy({'n': 3})}"
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=_worker, args=(path, cookie, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    answers = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert sorted(a.get("n", 0) for a in answers) == [0, 3]
    store = SQLiteStore(path)
    try:
        keys = [r.key for r in store.page_sync(limit=100).records]
    finally:
        store.close_sync()
    assert sum(not k.startswith("sessio-legacy:") for k in keys) == 1
