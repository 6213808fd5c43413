"""ASGI plumbing for the session middleware: header views, JSON answers, body replay, edits."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from ._types import Message, Receive, Scope, Send

if TYPE_CHECKING:
    from ..exchange import Answer, Edit

__all__ = [
    "BodyState",
    "HeaderMap",
    "apply",
    "cache_headers",
    "deny_websocket",
    "read_body",
    "replay",
    "send_answer",
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


async def send_answer(send: Send, answer: Answer[Any]) -> None:
    """Send the exchange's JSON ``answer`` (status, headers, body)."""
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


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


def cache_headers(headers: Sequence[tuple[bytes, bytes]]) -> tuple[str | None, str | None]:
    """The first ``Vary`` and ``Cache-Control`` values among response ``headers`` (or ``None``)."""
    vary = cache_control = None
    for key, value in headers:
        name = key.lower()
        if name == b"vary":
            if vary is None:
                vary = value.decode("latin-1")
        elif name == b"cache-control" and cache_control is None:
            cache_control = value.decode("latin-1")
    return vary, cache_control


def apply(headers: Sequence[tuple[bytes, bytes]], edit: Edit) -> list[tuple[bytes, bytes]]:
    """``headers`` with the exchange's ``edit`` made (:meth:`Edit.apply`, on bytes)."""
    out = list(headers)
    for name, value in ((b"vary", edit.vary), (b"cache-control", edit.cache_control)):
        if value is None:
            continue
        encoded = value.encode("latin-1")
        for i, (key, _) in enumerate(out):
            if key.lower() == name:
                out[i] = (key, encoded)
                break
        else:
            out.append((name, encoded))
    out.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in edit.add)
    return out
