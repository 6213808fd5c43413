"""What every integration answers alike: sessio errors as JSON, CSRF refusals as events."""

from __future__ import annotations

import http
import json
from typing import Any

from .. import ids
from ..errors import SessionError, StoreUnavailable
from ..events import EventKind, SessionEvent
from ..session import Session

__all__ = ["emit_csrf_failed", "error_body", "error_json"]


def error_json(error: SessionError) -> bytes:
    """The JSON body for ``error``: ``{"error": code, "detail": message}``.

    An outage's cause (a database path, a host name) is for the log, not for the client.
    """
    data = error.to_dict()
    if isinstance(error, StoreUnavailable):
        data["detail"] = "the session store is unavailable"
    return json.dumps(data).encode("utf-8")


def error_body(error: SessionError) -> tuple[str, list[tuple[str, str]], bytes]:
    """The status line, headers and JSON body that answer ``error`` (``{"error": code, ...}``)."""
    body = error_json(error)
    status = f"{error.status_code} {http.HTTPStatus(error.status_code).phrase}"
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
    ]
    return status, headers, body


def emit_csrf_failed(manager: Any, session: Session, reason: str, **detail: Any) -> None:
    """Announce a refused request as an :attr:`EventKind.CSRF_FAILED` event of ``manager``."""
    if not manager.events:
        return
    key = None if session.is_new else ids.short_hash(session.key)
    principal = session.principal.key if session.principal is not None else None
    event = SessionEvent(
        EventKind.CSRF_FAILED, key, principal, manager.clock(), {"reason": reason, **detail}
    )
    manager.events.emit(event)
