"""Structured logging of session events, with field names that stay stable across releases.

::

    from sessio.telemetry import logs

    logs.log_events(manager)          # logger "sessio.audit", level INFO

Each event is one record whose message is ``"session <kind>"`` and whose ``extra`` carries
``sessio_event`` (the kind), ``sessio_session`` (a 12-digit hash of the store key, never the
ID), ``sessio_principal``, ``sessio_at`` (epoch seconds) and every detail of the event as
``sessio_<name>``: JSON formatters (python-json-logger, structlog's stdlib bridge) print them
as fields. Needs no extra.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ..events import SessionEvent

__all__ = ["FIELDS", "event_fields", "log_events"]

#: The fields every event record carries, besides ``sessio_<detail>`` ones.
FIELDS = ("sessio_event", "sessio_session", "sessio_principal", "sessio_at")


def event_fields(event: SessionEvent) -> dict[str, Any]:
    """The ``extra`` of ``event``'s log record."""
    fields: dict[str, Any] = {
        "sessio_event": event.kind.value,
        "sessio_session": event.session,
        "sessio_principal": event.principal,
        "sessio_at": event.at,
    }
    for name, value in event.detail.items():
        fields[f"sessio_{name}"] = value
    return fields


def log_events(
    manager: Any, logger: logging.Logger | None = None, *, level: int = logging.INFO
) -> Callable[[], None]:
    """Log every event of ``manager``; returns the function that stops it."""
    target = logger if logger is not None else logging.getLogger("sessio.audit")

    def listener(event: SessionEvent) -> None:
        if target.isEnabledFor(level):
            target.log(level, "session %s", event.kind.value, extra=event_fields(event))

    return manager.events.subscribe(listener)  # type: ignore[no-any-return]
