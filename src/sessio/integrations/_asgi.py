"""ASGI plumbing for the session middleware: header views, JSON answers, body replay, Vary."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Literal

from ._common import forwarded_ip, forwarded_origin, with_vary
from ._types import Message, Receive, Scope, Send

__all__ = [
    "BodyState",
    "HeaderMap",
    "add_vary",
    "client_of",
    "deny_websocket",
    "origin_of",
    "read_body",
    "replay",
    "send_json",
]

BodyState = Literal["complete", "too_large", "disconnected"]


class HeaderMap:
    """A request's headers as ``name -> [values]``; calling it is a :data:`~sessio.transports.Headers` view.

    Values stay bytes until asked for: a request asks for two or three of its headers.
    """

    __slots__ = ("_values",)

    def __init__(self, raw: Any) -> None:
        values: dict[bytes, list[bytes]] = {}
        for name, value in raw:
            values.setdefault(name.lower(), []).append(value)
        self._values = values

    def _raw(self, name: str) -> list[bytes] | None:
        try:
            return self._values.get(name.encode("latin-1"))
        except UnicodeEncodeError:  # no header can have that name
            return None

    def __call__(self, name: str) -> list[str]:
        found = self._raw(name)
        return [value.decode("latin-1") for value in found] if found else []

    def first(self, name: str) -> str | None:
        """The first value of ``name`` (lower-case), or ``None``."""
        found = self._raw(name)
        return found[0].decode("latin-1") if found else None


def client_of(
    scope: Scope, headers: HeaderMap, *, trust_forwarded: bool
) -> tuple[str | None, str | None]:
    """``(ip, user_agent)`` of the client; behind a trusted proxy, the address it forwarded."""
    ip = forwarded_ip(headers) if trust_forwarded else None
    if ip is None:
        client = scope.get("client")
        ip = client[0] if client else None
    return ip, headers.first("user-agent")


def origin_of(scope: Scope, headers: HeaderMap, *, trust_forwarded: bool) -> tuple[str, str]:
    """``(scheme, host)`` the client addressed, as the CSRF origin check compares them."""
    scheme = str(scope.get("scheme", "http"))
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    host = headers.first("host")
    if host is None:
        server = scope.get("server")
        host = f"{server[0]}:{server[1]}" if server else ""
    return forwarded_origin(headers, scheme, host) if trust_forwarded else (scheme, host)


async def send_json(
    send: Send, status: int, data: bytes, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Answer with the JSON ``data`` (never cached: it describes this one request)."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode("latin-1")),
                (b"cache-control", b"no-store"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


async def deny_websocket(scope: Scope, send: Send, status: int, data: bytes) -> None:
    """Refuse a WebSocket handshake: an HTTP answer (JSON ``data``) where the server can send
    one, else a close."""
    if "websocket.http.response" in scope.get("extensions", {}):
        await send(
            {
                "type": "websocket.http.response.start",
                "status": status,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": data})
    else:
        # Before accept, a close becomes HTTP 403 (ASGI spec); 1008 is "policy violation".
        await send({"type": "websocket.close", "code": 1008})


async def read_body(receive: Receive, limit: int) -> tuple[bytes, BodyState]:
    """The request body, read until it ends, passes ``limit`` bytes, or the client leaves."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), "disconnected"
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", "too_large"
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks), "complete"


def replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the app ``body`` (already read) first, then the real channel."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed() -> Message:
        if pending:
            return pending.pop()
        return await receive()

    return replayed


def add_vary(
    headers: list[tuple[bytes, bytes]], names: tuple[str, ...]
) -> list[tuple[bytes, bytes]]:
    """``headers`` with ``names`` in ``Vary``, merged into an existing one, never repeated."""
    for i, (name, value) in enumerate(headers):
        if name.lower() == b"vary":
            merged = with_vary(value.decode("latin-1"), names)
            if merged is None:
                return headers
            out = list(headers)
            out[i] = (name, merged.encode("latin-1"))
            return out
    fresh = _fresh_vary(names)
    return headers if fresh is None else [*headers, (b"vary", fresh)]


@functools.lru_cache(maxsize=64)
def _fresh_vary(names: tuple[str, ...]) -> bytes | None:
    # A response without Vary gets the same value every time: compute it once per middleware.
    merged = with_vary(None, names)
    return None if merged is None else merged.encode("latin-1")
