"""Cookie wire text: one tested renderer for ``Set-Cookie`` and one parser for ``Cookie``."""

from __future__ import annotations

import functools
import math
import time
from email.utils import formatdate
from typing import Literal

from ..policy import CookieOptions

__all__ = ["CookieStyle", "parse_cookie_header", "render_delete_cookie", "render_set_cookie"]

_SAMESITE = {"lax": "Lax", "strict": "Strict", "none": "None"}

#: ``"sessio"``: RFC 6265 spelling with ``Max-Age`` and ``Expires``. ``"starlette"``: the exact
#: text Starlette's SessionMiddleware writes (lower-case names, no ``Expires``), so the drop-in
#: in :mod:`sessio.integrations.starlette` changes nothing a client or a test can see.
#: ``"werkzeug"``: the text of Werkzeug's ``dump_cookie`` (Flask's cookies, and its deletion
#: ``name=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; ...``), for the Flask drop-in.
CookieStyle = Literal["sessio", "starlette", "werkzeug"]


def render_set_cookie(
    options: CookieOptions,
    value: str,
    *,
    max_age: float | None,
    now: float | None = None,
    style: CookieStyle = "sessio",
) -> str:
    """The ``Set-Cookie`` value for ``value``; ``max_age=None`` makes a browser-session cookie.

    ``value`` must already be cookie-safe (sessio tokens are base64url and dots).
    """
    if style == "starlette":
        head = [f"{options.name}={value}", f"path={options.path}"]
        if max_age is not None:
            head.append(f"Max-Age={int(max_age)}")
        return "; ".join(head + _starlette_flags(options))
    if style == "werkzeug":
        return _werkzeug(options, value, max_age, time.time() if now is None else now)
    parts = [f"{options.name}={value}", f"Path={options.path}"]
    if max_age is not None:
        seconds = max(0, math.ceil(max_age))
        now = time.time() if now is None else now
        parts.append(f"Max-Age={seconds}")
        parts.append(f"Expires={_http_date(int(now + seconds))}")
    if options.domain is not None:
        parts.append(f"Domain={options.domain}")
    if options.secure:
        parts.append("Secure")
    if options.httponly:
        parts.append("HttpOnly")
    if options.samesite is not None:
        parts.append(f"SameSite={_SAMESITE[options.samesite]}")
    if options.partitioned:
        parts.append("Partitioned")
    return "; ".join(parts)


@functools.lru_cache(maxsize=16)
def _http_date(epoch_seconds: int) -> str:
    # The date changes once a second while every response of that second renders it.
    return formatdate(epoch_seconds, usegmt=True)


def render_delete_cookie(options: CookieOptions, *, style: CookieStyle = "sessio") -> str:
    """A ``Set-Cookie`` value that makes the browser forget the cookie."""
    if style == "starlette":
        head = [f"{options.name}=null", f"path={options.path}"]
        return "; ".join(
            [*head, "expires=Thu, 01 Jan 1970 00:00:00 GMT", *_starlette_flags(options)]
        )
    if style == "werkzeug":
        return _werkzeug(options, "", 0, 0)
    return render_set_cookie(options, '""', max_age=0, now=0)


def _werkzeug(options: CookieOptions, value: str, max_age: float | None, now: float) -> str:
    # Werkzeug's attribute order; Partitioned implies Secure there, so it does here.
    parts = [f"{options.name}={value}"]
    if options.domain is not None:
        parts.append(f"Domain={options.domain}")
    if max_age is not None:
        seconds = max(0, math.ceil(max_age))
        parts.append(f"Expires={_http_date(int(now + seconds))}")
        parts.append(f"Max-Age={seconds}")
    if options.secure or options.partitioned:
        parts.append("Secure")
    if options.httponly:
        parts.append("HttpOnly")
    parts.append(f"Path={options.path}")
    if options.samesite is not None:
        parts.append(f"SameSite={_SAMESITE[options.samesite]}")
    if options.partitioned:
        parts.append("Partitioned")
    return "; ".join(parts)


def _starlette_flags(options: CookieOptions) -> list[str]:
    flags = ["httponly"] if options.httponly else []
    if options.samesite is not None:
        flags.append(f"samesite={options.samesite}")
    if options.secure:
        flags.append("secure")
    if options.domain is not None:
        flags.append(f"domain={options.domain}")
    if options.partitioned:
        flags.append("partitioned")
    return flags


def parse_cookie_header(headers: list[str], name: str) -> list[str]:
    """Every value of cookie ``name`` in the ``Cookie`` header(s), in order.

    Returns all occurrences so callers can refuse ambiguity (two cookies of one name are a
    classic cookie-tossing trick from a sibling subdomain). Values come back exactly as sent:
    sessio never writes a quoted cookie, so ``name="<token>"`` is not a second spelling of the
    token (its quotes make it no token at all).
    """
    found = []
    prefix = name + "="
    for header in headers:
        for chunk in header.split(";"):
            chunk = chunk.strip(" \t")  # HTTP whitespace only: one spelling per token
            if chunk.startswith(prefix):
                found.append(chunk[len(prefix) :])
    return found
