"""In-process clients: call ASGI and WSGI apps directly with synthetic requests, no sockets.

Each :class:`Client` keeps its own cookie jar (it sends back every ``Set-Cookie`` it got, and
forgets a cookie the server deletes), like a browser tab would. The request objects are built
the same way for every contender, so their cost cancels out against the floor.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["AsgiClient", "Client", "RawClient", "WsgiClient", "cookie_from_set_cookie"]

_BODY = {"type": "http.request", "body": b"", "more_body": False}


def cookie_from_set_cookie(value: str) -> tuple[str, str | None]:
    """``(name, value)`` from a ``Set-Cookie`` value; ``None`` when the server deletes it."""
    first, _, attributes = value.partition(";")
    name, _, cookie = first.strip().partition("=")
    lowered = attributes.lower().replace(" ", "")
    deleted = (
        cookie in ("", '""', "''") or "max-age=0" in lowered or "expires=thu,01jan1970" in lowered
    )
    return name, None if deleted else cookie


class Client:
    """One simulated visitor: a cookie jar and the bytes it has seen."""

    def __init__(self) -> None:
        self.jar: dict[str, str] = {}
        self.set_cookie_bytes = 0
        self.responses = 0

    def cookie_header(self) -> str | None:
        """The ``Cookie`` request header for the jar, or ``None`` when it is empty."""
        if not self.jar:
            return None
        return "; ".join(f"{k}={v}" for k, v in self.jar.items())

    def absorb(self, set_cookies: list[str]) -> None:
        """Update the jar from a response's ``Set-Cookie`` values."""
        self.responses += 1
        for value in set_cookies:
            self.set_cookie_bytes += len(value)
            name, cookie = cookie_from_set_cookie(value)
            if cookie is None:
                self.jar.pop(name, None)
            else:
                self.jar[name] = cookie


class AsgiClient(Client):
    """Calls an ASGI 3 app with an HTTP scope built like uvicorn builds it."""

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.app = app

    async def get(self, path: str) -> int:
        """Send ``GET path``; returns the status code."""
        headers = [(b"host", b"bench.local"), (b"user-agent", b"sessio-bench/1")]
        cookie = self.cookie_header()
        if cookie is not None:
            headers.append((b"cookie", cookie.encode("latin-1")))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        status = 0
        set_cookies: list[str] = []

        async def receive() -> dict[str, Any]:
            return _BODY

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name.lower() == b"set-cookie":
                        set_cookies.append(value.decode("latin-1"))

        await self.app(scope, receive, send)
        self.absorb(set_cookies)
        return status


class WsgiClient(Client):
    """Calls a WSGI app with an environ built like a WSGI server builds it."""

    def __init__(self, app: Any) -> None:
        super().__init__()
        self.app = app

    def get(self, path: str) -> int:
        """Send ``GET path``; returns the status code."""
        environ = {
            "REQUEST_METHOD": "GET",
            "SCRIPT_NAME": "",
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "SERVER_NAME": "bench.local",
            "SERVER_PORT": "80",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "bench.local",
            "HTTP_USER_AGENT": "sessio-bench/1",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        cookie = self.cookie_header()
        if cookie is not None:
            environ["HTTP_COOKIE"] = cookie
        result: dict[str, Any] = {}

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            result["status"] = int(status[:3])
            result["headers"] = headers
            return None

        body = self.app(environ, start_response)
        try:
            for _ in body:
                pass
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
        self.absorb([v for k, v in result["headers"] if k.lower() == "set-cookie"])
        return int(result["status"])


class RawClient(Client):
    """Not a web request: one call of a store client, the physical floor (a raw round trip)."""

    def __init__(
        self,
        call: Callable[[], Awaitable[Any]] | None = None,
        sync: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__()
        self.call = call
        self.sync = sync
