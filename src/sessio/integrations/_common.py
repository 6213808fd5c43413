"""What every integration does alike: error bodies, proxy headers, transport choice, CSRF
events, ``Vary`` and ``Cache-Control`` values."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence
from typing import Any, Literal

from .. import ids
from ..errors import SessionError, StoreUnavailable
from ..events import EventKind, SessionEvent
from ..session import Session
from ..transports.base import (
    BearerTransport,
    CookieTransport,
    Headers,
    HeaderTransport,
    Transport,
)
from ..transports.cookies import parse_cookie_header

__all__ = [
    "TRANSPORT_KEY",
    "TransportName",
    "client_transport",
    "emit_csrf_failed",
    "error_json",
    "forwarded_ip",
    "forwarded_origin",
    "forwarded_value",
    "presented",
    "private_cache_control",
    "transport_name",
    "vary_names",
    "with_vary",
]

#: The scope/environ key naming the transport that carried the request's session token.
TRANSPORT_KEY = "sessio.transport"

#: What :data:`TRANSPORT_KEY` holds when a token came: ``"other"`` is a transport class of your own.
TransportName = Literal["cookie", "header", "bearer", "other"]


def error_json(error: SessionError) -> bytes:
    """The JSON body that answers ``error``: ``{"error": code, "detail": message}``.

    An outage's cause (a database path, a host name) is for the log, not for the client.
    """
    data = error.to_dict()
    if isinstance(error, StoreUnavailable):
        data["detail"] = "the session store is unavailable"
    return json.dumps(data, separators=(",", ":")).encode("utf-8")


def forwarded_value(headers: Headers, name: str) -> str | None:
    """The entry of ``X-Forwarded-*`` header ``name`` (lower-case) that our own proxy wrote.

    Proxies append what they saw to these lists, so that entry is the right-most one; anything
    left of it is whatever the client (or a hop before ours) chose to send, and can be forged.
    A header repeated on several lines is one list, in order (RFC 9110 5.3).
    """
    values = headers(name)
    if not values:
        return None
    return values[-1].rsplit(",", 1)[-1].strip() or None


def forwarded_ip(headers: Headers) -> str | None:
    """The client address our proxy put in ``X-Forwarded-For``, if it is an IP address at all."""
    hop = forwarded_value(headers, "x-forwarded-for")
    if hop is None:
        return None
    try:
        return str(ipaddress.ip_address(hop))
    except ValueError:
        return None  # a value we cannot read is no address


def forwarded_origin(headers: Headers, scheme: str, host: str) -> tuple[str, str]:
    """``(scheme, host)`` as our proxy forwarded them (``X-Forwarded-Proto``/``-Host``), each
    falling back to the given one."""
    proto = (forwarded_value(headers, "x-forwarded-proto") or "").lower()
    forwarded_host = forwarded_value(headers, "x-forwarded-host")
    return (proto if proto in ("http", "https") else scheme), (forwarded_host or host)


def transport_name(transport: Transport | None) -> TransportName | None:
    """What :data:`TRANSPORT_KEY` says for a token found by ``transport`` (``None``: no token)."""
    if transport is None:
        return None
    if isinstance(transport, CookieTransport):
        return "cookie"
    if isinstance(transport, BearerTransport):  # before HeaderTransport, its base class
        return "bearer"
    if isinstance(transport, HeaderTransport):
        return "header"
    return "other"


def presented(transport: Transport, headers: Headers) -> bool:
    """Whether the request carries something where ``transport`` looks (valid or not)."""
    if isinstance(transport, CookieTransport):
        return bool(parse_cookie_header(headers("cookie"), transport.options.name))
    if isinstance(transport, BearerTransport):
        return any(v.strip().lower().startswith("bearer ") for v in headers("authorization"))
    if isinstance(transport, HeaderTransport):
        return bool(headers(transport.name.lower()))
    return False


def client_transport(
    transports: Sequence[Transport], headers: Headers, carrier: Transport | None
) -> Transport | None:
    """The transport the client used: ``carrier`` (it found a valid token), else the one
    holding a stale or tampered token, else ``None`` (the request carries no token at all).

    Middlewares answer through this transport, or else through the FIRST of ``transports``
    alone, never through all: a token sent in a readable header beside an ``HttpOnly``
    cookie would undo ``HttpOnly``.
    """
    if carrier is not None:
        return carrier
    return next((t for t in transports if presented(t, headers)), None)


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


def vary_names(transports: Sequence[Transport]) -> tuple[str, ...]:
    """The request headers a response varies on when these transports may carry the session."""
    names: list[str] = []
    for transport in transports:
        if isinstance(transport, CookieTransport):
            names.append("Cookie")
        elif isinstance(transport, BearerTransport):
            names.append("Authorization")
        elif isinstance(transport, HeaderTransport):
            names.append(transport.name)
    return tuple(dict.fromkeys(names))


def with_vary(current: str | None, names: Sequence[str]) -> str | None:
    """The ``Vary`` value that adds ``names`` to ``current``, or ``None`` if nothing is missing."""
    present = {v.strip().lower() for v in current.split(",")} if current else set()
    if "*" in present:
        return None
    missing = [n for n in names if n.lower() not in present]
    if not missing:
        return None
    return ", ".join([current, *missing] if current else missing)


def private_cache_control(value: str | None) -> str | None:
    """The ``Cache-Control`` value that keeps a response with a session header out of shared
    caches, or ``None`` when ``value`` already does (or is absent: nothing marks it cacheable).
    """
    if not value:
        return None
    directives = _directives(value)
    names = {d.split("=", 1)[0].strip().lower() for d in directives}
    if "private" in names or "no-store" in names:
        return None
    kept = [d for d in directives if d.split("=", 1)[0].strip().lower() not in _SHARED]
    return ", ".join([*kept, "private"])


_SHARED = frozenset({"public", "s-maxage"})


def _directives(value: str) -> list[str]:
    # Commas inside a quoted argument (no-cache="Set-Cookie, Vary") do not split directives.
    out: list[str] = []
    current: list[str] = []
    quoted = False
    for char in value:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            out.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    out.append("".join(current).strip())
    return [d for d in out if d]
