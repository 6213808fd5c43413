"""The ASGI types every integration shares (the shapes of the ASGI 3 specification)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send"]

#: The connection scope: ``type``, ``path``, ``headers``... plus what middlewares add.
Scope = MutableMapping[str, Any]
#: One event, received from or sent to the server.
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
