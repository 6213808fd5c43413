"""A served app and a browser-like agent, shared by the ASGI and WSGI halves of the HTTP suite.

Both apps answer the same routes: ``GET /csrf`` (``{"token"}``), ``POST /login`` (form ``user``,
``roles``), ``POST /logout``, ``POST /put`` (a JSON object merged into the session),
``GET /whoami`` (``{"user", "data"}``) and ``POST /hooks/echo`` (CSRF-exempt).
"""

from __future__ import annotations

from typing import Any

import httpx

from sessio import Policy, Store
from sessio.ids import store_key
from sessio.transports import TokenSigner

from .conftest import cookie_value

#: The default policy's cookie name (``__Host-sessio``).
NAME = Policy().cookie.name


class Server:
    """A served app: its URL, store and manager."""

    def __init__(self, url: str, store: Store, manager: Any, secret: str) -> None:
        self.url = url
        self.store = store
        self.manager = manager
        self.signer = TokenSigner(secret)

    def agent(self) -> Agent:
        return Agent(self)

    def exists(self, token: str | None) -> bool:
        session_id = self.signer.unsign(token or "")
        return session_id is not None and self.store.exists_sync(store_key(session_id))


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
