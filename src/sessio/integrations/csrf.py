"""CSRF enforcement for every integration: origin and token checks on unsafe methods.

The checks follow OWASP's CSRF cheat sheet: a synchronizer token (the session's masked
:attr:`~sessio.Session.csrf_token`, sent as a form field or a header) on every unsafe method,
plus verification of ``Origin`` (or, without it, ``Referer``) against the request's own origin
and a list of trusted ones. Sessions carried by a header (``Authorization: Bearer``,
``X-Session-ID``) are exempt: no browser attaches those by itself, so they cannot be forged.
Framework code only gathers the inputs; the decisions are made here, once.
"""

from __future__ import annotations

import dataclasses
import email.parser
import email.policy
from collections.abc import Sequence
from fnmatch import fnmatchcase
from urllib.parse import parse_qs, urlsplit

from ..errors import ConfigurationError
from ..session import Session
from ..transports.base import Headers

__all__ = [
    "FORM_TYPES",
    "SAFE_METHODS",
    "CSRFOptions",
    "check_origin",
    "check_request",
    "form_token",
    "is_form",
]

#: Methods that must not change state (RFC 9110 9.2.1), so they need no token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
#: The media types of HTML form posts, whose body may hold the token field.
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


@dataclasses.dataclass(frozen=True, kw_only=True)
class CSRFOptions:
    """Where tokens are looked for and which requests are spared.

    ``exempt_paths`` are shell-style patterns (``"/webhooks/*"``). ``trusted_origins`` are
    full origins (``"https://app.example.com"``) allowed besides the request's own.
    ``max_form_bytes`` bounds how much of a form body is read to find the token field.
    """

    field_name: str = "csrf_token"
    header_name: str = "X-CSRF-Token"
    trusted_origins: Sequence[str] = ()
    exempt_paths: Sequence[str] = ()
    check_origin: bool = True
    max_form_bytes: int = 1024 * 1024

    def __post_init__(self) -> None:
        for origin in self.trusted_origins:
            parts = urlsplit(origin)
            if (
                parts.scheme not in ("http", "https")
                or not parts.netloc
                or parts.path not in ("", "/")
            ):
                raise ConfigurationError(
                    f"trusted origin must look like https://host[:port]: {origin!r}"
                )
        if self.max_form_bytes < 1:
            raise ConfigurationError("max_form_bytes must be positive")
        object.__setattr__(
            self, "trusted_origins", tuple(o.rstrip("/") for o in self.trusted_origins)
        )
        object.__setattr__(self, "exempt_paths", tuple(self.exempt_paths))

    def is_exempt(self, path: str) -> bool:
        """Whether ``path`` matches one of :attr:`exempt_paths`."""
        return any(fnmatchcase(path, pattern) for pattern in self.exempt_paths)


def _origin_of(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_origin(headers: Headers, *, scheme: str, host: str, options: CSRFOptions) -> str | None:
    """Why the request's ``Origin``/``Referer`` is not acceptable, or ``None`` if it is.

    A request with neither header passes this check (non-browser clients send none); it still
    needs a valid token.
    """
    own = f"{scheme}://{host}".lower()
    allowed = {own, *(o.lower() for o in options.trusted_origins)}
    origins = headers("origin")
    if origins:
        if len(origins) != 1 or origins[0] == "null":
            return "opaque or repeated Origin header"
        if origins[0].rstrip("/").lower() not in allowed:
            return "Origin does not match"
        return None
    referers = headers("referer")
    if referers:
        origin = _origin_of(referers[0])
        if origin is None or origin not in allowed:
            return "Referer does not match"
    elif scheme == "https" and headers("sec-fetch-site") == ["cross-site"]:
        return "cross-site request without Origin or Referer"
    return None


def is_form(content_type: str) -> bool:
    """Whether a ``Content-Type`` header value names one of :data:`FORM_TYPES`."""
    return content_type.split(";", 1)[0].strip().lower() in FORM_TYPES


def form_token(content_type: str, body: bytes, field: str) -> str | None:
    """The value of form field ``field`` in a urlencoded or multipart ``body``, if present."""
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime == "application/x-www-form-urlencoded":
        try:
            values = parse_qs(body.decode("latin-1"), keep_blank_values=True).get(field)
        except ValueError:
            return None
        return values[0] if values else None
    if mime == "multipart/form-data":
        try:
            head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
        except UnicodeEncodeError:  # not a header a server could have received
            return None
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        if not message.is_multipart():
            return None
        for part in message.iter_parts():
            if part.get_param("name", header="content-disposition") == field:
                payload = part.get_payload(decode=True)
                return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else None
    return None


def check_request(
    *,
    method: str,
    path: str,
    headers: Headers,
    scheme: str,
    host: str,
    session: Session,
    submitted: str | None,
    options: CSRFOptions,
) -> str | None:
    """Why this request fails CSRF protection, or ``None`` when it may proceed.

    ``submitted`` is the token from the header or form field (integrations find it; see
    :func:`form_token`).
    """
    if method.upper() in SAFE_METHODS or options.is_exempt(path):
        return None
    if options.check_origin:
        reason = check_origin(headers, scheme=scheme, host=host, options=options)
        if reason is not None:
            return reason
    if submitted is None:
        return "CSRF token missing"
    if not session.verify_csrf(submitted):
        return "CSRF token invalid"
    return None
