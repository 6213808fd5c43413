"""A served app and a browser-like agent, so one HTTP suite drives the ASGI and the WSGI middleware.

Both apps answer the same routes: ``GET /csrf`` (``{"token"}``), ``POST /login`` (form ``user``,
``roles``), ``POST /logout``, ``POST /put`` (a JSON object merged into the session),
``GET /whoami`` (``{"user", "data"}``) and ``POST /hooks/echo`` (CSRF-exempt). The ASGI one is
``tests/integrations/apps.py`` behind uvicorn; the WSGI one is :func:`wsgi_app` behind wsgiref
(checked by ``wsgiref.validate``).
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl

import httpx

from sessio import Policy, Principal, SessionManager, SQLiteStore, Store
from sessio.ids import store_key
from sessio.integrations import asgi, wsgi
from sessio.integrations.csrf import CSRFOptions
from sessio.transports import TokenSigner

from ..integrations import apps, wsgi_support
from .conftest import cookie_value

#: The two middlewares the HTTP suite runs against.
Flavour = Literal["asgi", "wsgi"]

#: The default policy's cookie name (``__Host-sessio``).
NAME = Policy().cookie.name


class Server:
    """A served app: its URL, store and manager."""

    def __init__(self, url: str, store: Store, manager: Any, secret: str) -> None:
        self.url = url
        self.store = store
        self.manager = manager
        self.secret = secret
        self.signer = TokenSigner(secret)

    def agent(self) -> Agent:
        return Agent(self)

    def exists(self, token: str | None) -> bool:
        session_id = self.signer.unsign(token or "")
        return session_id is not None and self.store.exists_sync(store_key(session_id))

    def revoke_all_but(self, user: str, token: str | None) -> int:
        """Revoke every session of ``user`` but the one ``token`` names, through the app's own
        manager (async for ASGI, sync for WSGI)."""
        keep = self.signer.unsign(token or "")
        assert keep is not None
        count = self.manager.revoke_all(Principal(user), except_=store_key(keep))
        if inspect.isawaitable(count):
            count = asyncio.run(count)  # type: ignore[arg-type]
        assert isinstance(count, int)
        return count


class Agent:
    """A browser on HTTPS, reduced to what matters: one cookie jar entry, sent back as is."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.cookie: str | None = None
        self.http = httpx.Client(base_url=server.url, trust_env=False)
        self.set_cookies: list[str] = []

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if self.cookie is not None and "cookie" not in headers:
            headers["cookie"] = f"{NAME}={self.cookie}"
        response = self.http.request(method, path, headers=headers, **kwargs)
        self.http.cookies.clear()
        for set_cookie in response.headers.get_list("set-cookie"):
            self.set_cookies.append(set_cookie)
            value = cookie_value(set_cookie, NAME)
            self.cookie = None if "Max-Age=0" in set_cookie else value
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def csrf(self) -> str:
        token = self.get("/csrf").json()["token"]
        assert isinstance(token, str)
        return token

    def login(self, user: str = "alice", roles: str = "") -> httpx.Response:
        token = self.csrf()
        return self.post(
            "/login", data={"user": user, "roles": roles}, headers={"x-csrf-token": token}
        )

    def user(self, **kwargs: Any) -> Any:
        return self.get("/whoami", **kwargs).json()["user"]


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
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


@contextmanager
def served(flavour: Flavour, tmp_path: Path, policy: Policy | None = None) -> Iterator[Server]:
    """The shared routes behind ``flavour``'s SessionMiddleware on a real server, on a SQLite
    store, with ``/hooks/*`` exempt from CSRF."""
    store = SQLiteStore(tmp_path / "sessions.db")
    policy = policy or Policy()
    csrf = CSRFOptions(exempt_paths=["/hooks/*"])
    try:
        if flavour == "asgi":
            manager = SessionManager(store, policy)
            app = asgi.SessionMiddleware(
                apps.starlette_app(), manager=manager, secret_key=apps.SECRET, csrf=csrf
            )
            with apps.serve(app) as url:
                yield Server(url, store, manager, apps.SECRET)
        else:
            middleware = wsgi.SessionMiddleware(
                wsgi_app, store=store, secret_key=apps.SECRET, policy=policy, csrf=csrf
            )
            with wsgi_support.serve(middleware) as url:
                yield Server(url, store, middleware.manager, apps.SECRET)
    finally:
        store.close_sync()
