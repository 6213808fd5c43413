"""One little app served three ways, ASGI, WSGI and Flask, so every lifecycle behaviour is
checked on each integration by the same test.

:func:`handle` is the app, written once against a sessio :class:`~sessio.Session`; the three
adapters only move its request and response. :func:`site` builds the app of one flavour
around a store and returns an ``httpx`` client for it (a real HTTP client with a cookie jar,
driving the app in process), plus what the tests need to know of that flavour.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl

import flask
import httpx
from starlette.testclient import TestClient

from sessio import (
    AuthenticationRequired,
    PermissionDenied,
    Policy,
    Principal,
    Session,
    SessionManager,
    StoreUnavailable,
    SyncSessionManager,
    ValueNotSerializable,
)
from sessio.integrations import asgi, wsgi
from sessio.integrations.csrf import CSRFOptions
from sessio.integrations.flask import SessionInterface

SECRET = "lifecycle-secret-0123456789-abcdefghijklmnop"
FLAVOURS = ["asgi", "wsgi", "flask"]
#: Development cookies (no ``Secure``: the test client speaks plain HTTP), a short refresh.
POLICY = Policy.web(refresh_interval=timedelta(seconds=60)).development()
CSRF = CSRFOptions(exempt_paths=["/hooks/*"], max_form_bytes=4096)

#: Each way of reading a session, by name (``/read/<name>``).
READS: dict[str, Callable[[Session], Any]] = {
    "get": lambda s: s.get("n"),
    "contains": lambda s: "n" in s,
    "len": len,
    "iter": list,
    "items": lambda s: list(s.items()),
    "principal": lambda s: s.principal,
    "is_authenticated": lambda s: s.is_authenticated,
    "flashes": lambda s: s.peek_flash(),
    "remaining": lambda s: s.remaining,
}

_ERRORS: dict[str, Callable[[], Exception]] = {
    "auth": lambda: AuthenticationRequired("log in first"),
    "denied": lambda: PermissionDenied("admins only"),
    "store": lambda: StoreUnavailable("redis at 10.0.0.9 refused"),
    "value": lambda: ValueNotSerializable("a programming error"),
}


def handle(
    session: Session, method: str, path: str, query: dict[str, str], form: dict[str, str]
) -> tuple[int, list[tuple[str, str]], bytes]:
    """The app: ``(status, headers, body)`` for one request, driving ``session`` by its path."""
    headers = [("Content-Type", "text/plain")]
    body = "ok"
    if path == "/write":
        session.update({k: v for k, v in query.items() if k != "permanent"})
        if "permanent" in query:
            session["_permanent"] = True  # Flask's permanent flag (a plain key elsewhere)
    elif path.startswith("/read/"):
        body = repr(READS[path.removeprefix("/read/")](session))
        headers.append(("X-Accessed", str(session.is_accessed)))
    elif path == "/token":
        body = session.csrf_token
    elif path == "/login":
        session.login(Principal(query.get("user", "alice")))
    elif path == "/destroy":
        session.destroy()
    elif path == "/clear":
        session.clear()
    elif path.startswith("/status/"):
        session["half-done"] = True
        return int(path.removeprefix("/status/")), headers, b"failed"
    elif path.startswith("/raise/"):
        session["half-done"] = True
        raise _ERRORS[path.removeprefix("/raise/")]()
    elif path == "/cache":
        if "write" in query:
            session["w"] = query["write"]
        elif "read" in query:
            session.get("w")
        headers.append(("Cache-Control", query["cc"]))
    elif path == "/vary":
        session.get("n")
        headers.append(("Vary", query["vary"]))
    elif path == "/big":
        session["big"] = query.get("fill", "")
    elif path in ("/form", "/hooks/form", "/slow-write"):
        session.update(form or query)
    elif path != "/ping":
        return 404, headers, b"no such page"
    return 200, headers, body.encode()


# -- the three adapters -------------------------------------------------------------------------


def _form(content_type: str, body: bytes) -> dict[str, str]:
    if content_type.split(";")[0].strip() != "application/x-www-form-urlencoded":
        return {}
    return dict(parse_qsl(body.decode("latin-1")))


async def _asgi_app(scope: Any, receive: Any, send: Any) -> None:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
    if scope["path"] == "/slow-write":
        await asyncio.sleep(0.05)  # holds the request between its load and its commit
    status, out, body = handle(
        asgi.get_session(scope),
        scope["method"],
        scope["path"],
        dict(parse_qsl(scope["query_string"].decode("latin-1"))),
        _form(headers.get("content-type", ""), b"".join(chunks)),
    )
    encoded = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in out]
    await send({"type": "http.response.start", "status": status, "headers": encoded})
    await send({"type": "http.response.body", "body": body})


def _wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    if environ["PATH_INFO"] == "/slow-write":
        time.sleep(0.05)
    status, out, data = handle(
        environ["sessio.session"],
        environ["REQUEST_METHOD"],
        environ["PATH_INFO"],
        dict(parse_qsl(environ.get("QUERY_STRING", ""))),
        _form(environ.get("CONTENT_TYPE", ""), body),
    )
    start_response(f"{status} Whatever", out)
    return [data]


def _flask_app(interface: SessionInterface) -> flask.Flask:
    app = flask.Flask("lifecycle")
    app.secret_key = SECRET
    app.testing = True  # an error the integration does not answer reaches the test
    interface.init_app(app)

    @app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
    @app.route("/<path:path>", methods=["GET", "POST"])
    def view(path: str) -> flask.Response:
        request = flask.request
        if request.path == "/slow-write":
            time.sleep(0.05)
        status, out, body = handle(
            flask.session,  # type: ignore[arg-type]  # sessio's FlaskSession
            request.method,
            request.path,
            request.args.to_dict(),
            request.form.to_dict(),
        )
        return flask.Response(body, status, out)

    return app


# -- sites ------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Site:
    """One flavour's app: a client for it, and the names its session travels under."""

    flavour: str
    client: httpx.Client
    cookie: str  # the session cookie's name
    app: Any
    manager: SessionManager | SyncSessionManager | None

    def token(self) -> str:
        """The session cookie the client holds now."""
        return self.client.cookies[self.cookie]

    def csrf(self) -> dict[str, str]:
        """Headers that pass the CSRF check with this session's token."""
        return {"X-CSRF-Token": self.client.get("/token").text}

    def async_client(self) -> httpx.AsyncClient:
        """A client for concurrent requests (ASGI only: the app runs on the test's loop)."""
        return httpx.AsyncClient(transport=httpx.ASGITransport(self.app), base_url=BASE)


BASE = "http://testserver"


@contextmanager
def site(
    flavour: str,
    store: Any,
    *,
    policy: Policy = POLICY,
    clock: Callable[[], float] = time.time,
    on_error: Any = None,
) -> Iterator[Site]:
    """The app of ``flavour`` over ``store``; ``on_error`` is passed to ASGI and WSGI only."""
    manager: SessionManager | SyncSessionManager | None
    if flavour == "asgi":
        manager = SessionManager(store, policy, clock=clock)
        app: Any = asgi.SessionMiddleware(
            _asgi_app, manager=manager, secret_key=SECRET, csrf=CSRF, on_error=on_error
        )
        client = TestClient(app, base_url=BASE)  # (no lifespan: the app serves HTTP only)
        try:
            yield Site(flavour, client, policy.cookie.name, app, manager)
        finally:
            client.close()
        return
    if flavour == "wsgi":
        manager = SyncSessionManager(store, policy, clock=clock)
        app = wsgi.SessionMiddleware(
            _wsgi_app, manager=manager, secret_key=SECRET, csrf=CSRF, on_error=on_error
        )
        cookie = policy.cookie.name
    else:
        interface = SessionInterface(store, policy=policy, csrf=CSRF, clock=clock)
        app = _flask_app(interface)
        manager, cookie = None, "session"
    with httpx.Client(transport=httpx.WSGITransport(app), base_url=BASE) as client:
        yield Site(flavour, client, cookie, app, manager)


def stored(web: Site) -> str:
    """Give the client a stored session (``n=1``); its cookie value."""
    assert web.client.get("/write?n=1").status_code == 200
    return web.token()


def vary(response: httpx.Response) -> list[str]:
    """Every name in the response's ``Vary`` lines."""
    return [v.strip() for line in response.headers.get_list("vary") for v in line.split(",")]
