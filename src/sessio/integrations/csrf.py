"""CSRF enforcement for every integration: origin and token checks on unsafe methods.

The checks follow OWASP's CSRF cheat sheet: a synchronizer token (the session's masked
:attr:`~sessio.Session.csrf_token`, sent as a form field or a header) on every unsafe method,
plus verification of ``Origin`` (or, without it, ``Referer``) against the request's own origin
and a list of trusted ones. Sessions carried by a header (``Authorization: Bearer``,
``X-Session-ID``) are exempt: no browser attaches those by itself, so they cannot be forged.
Framework code only gathers the inputs; the decisions are made here, once.

Form bodies are scanned for the token field by :class:`FormScan`: streaming, linear in the
body, bounded in parts, header bytes and value size, and total (a malformed body is simply
"no token"). Call :func:`form_scan_allowed` first: a request whose Origin is already refused
is not worth reading.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import quote_plus, unquote_plus, urlsplit

from ..errors import ConfigurationError, MissingDependency
from ..session import Session
from ..transports.base import Headers

__all__ = [
    "FORM_TYPES",
    "MAX_FIELD_BYTES",
    "MAX_FORM_PARTS",
    "MAX_PART_HEADER_BYTES",
    "SAFE_METHODS",
    "CSRFOptions",
    "FormScan",
    "check_origin",
    "check_request",
    "form_scan_allowed",
    "form_token",
    "is_form",
]

#: Methods that must not change state (RFC 9110 9.2.1), so they need no token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
#: The media types of HTML form posts, whose body may hold the token field.
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})

#: The most parts of a multipart body scanned for the token field (forms have a few dozen).
MAX_FORM_PARTS = 100
#: The most header bytes of one part, and eight times that over the whole body.
MAX_PART_HEADER_BYTES = 2048
#: A field value longer than this is no token (masked tokens are under 100 bytes).
MAX_FIELD_BYTES = 1024

_BOUNDARY = re.compile(r';\s*boundary\s*=\s*(?:"([^"\r\n]{1,70})"|([^\s;"]{1,70}))', re.I)
_DISPOSITION_NAME = re.compile(rb';\s*name\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s"]*))', re.I)
_ESCAPED = re.compile(rb"\\(.)", re.S)


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
    elif [v.strip().lower() for v in headers("sec-fetch-site")] == ["cross-site"]:
        # Over plain HTTP too: browsers send Fetch Metadata to localhost and other
        # potentially trustworthy origins, and a cross-site claim is never a false alarm.
        return "cross-site request without Origin or Referer"
    return None


def form_scan_allowed(headers: Headers, *, scheme: str, host: str, options: CSRFOptions) -> bool:
    """Whether a form body is worth reading: ``False`` when the origin check refuses anyway.

    The exchange calls this before buffering or scanning a body, so a cross-site request
    costs no body read at all.
    """
    return (
        not options.check_origin
        or check_origin(headers, scheme=scheme, host=host, options=options) is None
    )


def is_form(content_type: str) -> bool:
    """Whether a ``Content-Type`` header value names one of :data:`FORM_TYPES`."""
    return content_type.split(";", 1)[0].strip().lower() in FORM_TYPES


def form_token(content_type: str, body: bytes, field: str) -> str | None:
    """The value of form field ``field`` in a urlencoded or multipart ``body``, if present.

    Never raises: a malformed, truncated or hostile body has no token. See :class:`FormScan`
    for the limits; this is its one-chunk form.
    """
    scan = FormScan(content_type, field, max_bytes=max(len(body), 1))
    scan.feed(body)
    return scan.finish()


class _Stop(Exception):
    """Ends a multipart parse from inside a callback: the answer is known."""


class FormScan:
    """Finds form field ``field`` in a body fed chunk by chunk; linear, bounded, never raises.

    The exchange feeds each chunk as it arrives (an ASGI ``http.request`` message, a WSGI
    read) and stops as soon as :meth:`feed` returns ``True``; :meth:`finish` gives the value.
    Multipart bodies go through python-multipart's streaming parser (its part data is
    searched with ``bytes.find``), with at most :data:`MAX_FORM_PARTS` parts,
    :data:`MAX_PART_HEADER_BYTES` of headers per part, and a captured value of at most
    :data:`MAX_FIELD_BYTES`; past any limit, or past ``max_bytes`` in all, the answer is
    "no token". Urlencoded bodies are buffered (within ``max_bytes``) and searched once.
    """

    def __init__(
        self,
        content_type: str,
        field: str,
        *,
        max_bytes: int = 1024 * 1024,
        max_parts: int = MAX_FORM_PARTS,
        max_header_bytes: int = MAX_PART_HEADER_BYTES,
    ) -> None:
        mime = content_type.split(";", 1)[0].strip().lower()
        self.done = False
        self.max_bytes = max_bytes
        self.max_parts = max_parts
        self.max_header_bytes = max_header_bytes
        self._field = field
        self._seen = 0
        self._found: bytes | None = None
        self._buffer: bytearray | None = None
        self._parser: Any = None
        self._watcher: _PartWatcher | None = None
        if mime == "application/x-www-form-urlencoded":
            self._buffer = bytearray()
        elif mime == "multipart/form-data":
            self._parser = self._multipart(content_type, field)
        if self._buffer is None and self._parser is None:
            self.done = True  # not a form, or no usable boundary: nothing to find

    def feed(self, chunk: bytes) -> bool:
        """Scan ``chunk``, the next bytes of the body; ``True`` once the answer is known."""
        if self.done:
            return True
        self._seen += len(chunk)
        if self._seen > self.max_bytes:
            return self._give_up()
        if self._buffer is not None:
            self._buffer += chunk
            return False
        try:
            self._parser.write(chunk)
        except _Stop:
            self.done = True
            if self._watcher is not None:
                self._found = self._watcher.found
        except (ValueError, LookupError, TypeError):  # python-multipart's FormParserError & co.
            return self._give_up()
        return self.done

    def finish(self) -> str | None:
        """The field's value once the whole body (or as much as mattered) has been fed."""
        if self._buffer is not None and not self.done:
            self._found = _urlencoded_value(bytes(self._buffer), self._field)
            self._buffer = None
        self.done = True
        found = self._found
        return None if found is None else found.decode("utf-8", "replace")

    def _give_up(self) -> bool:
        self.done = True
        self._found = self._buffer = self._parser = self._watcher = None
        return True

    def _multipart(self, content_type: str, field: str) -> Any:
        match = _BOUNDARY.search(content_type)
        try:
            wanted = field.encode("utf-8")
            boundary = (match.group(1) or match.group(2)).encode("latin-1") if match else None
        except UnicodeEncodeError:  # not a header a server could have received
            return None
        if boundary is None:
            return None
        try:
            from python_multipart.multipart import MultipartParser
        except ImportError as exc:  # a dependency of sessio itself: a broken install
            raise MissingDependency(
                "python-multipart is missing; reinstall sessio (pip install sessio)",
                module="python_multipart",
            ) from exc
        watcher = self._watcher = _PartWatcher(self, wanted)
        callbacks = {
            "on_part_begin": watcher.part_begin,
            "on_header_field": watcher.header_field,
            "on_header_value": watcher.header_value_data,
            "on_header_end": watcher.header_end,
            "on_headers_finished": watcher.headers_finished,
            "on_part_data": watcher.part_data,
            "on_part_end": watcher.part_end,
        }
        return MultipartParser(boundary, callbacks)  # type: ignore[arg-type]


class _PartWatcher:
    """python-multipart's callbacks for one :class:`FormScan`: counts, bounds, captures."""

    def __init__(self, scan: FormScan, wanted: bytes) -> None:
        self.scan = scan
        self.wanted = wanted
        self.parts = 0
        self.header_bytes = 0  # this part's
        self.all_header_bytes = 0
        self.header_name = bytearray()
        self.header_value = bytearray()
        self.name: bytes | None = None
        self.value: bytearray | None = None
        self.found: bytes | None = None

    def part_begin(self) -> None:
        self.parts += 1
        if self.parts > self.scan.max_parts:
            raise _Stop
        self.header_bytes = 0
        self.name = self.value = None

    def _count(self, size: int) -> None:
        self.header_bytes += size
        self.all_header_bytes += size
        limit = self.scan.max_header_bytes
        if self.header_bytes > limit or self.all_header_bytes > 8 * limit:
            raise _Stop

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._count(end - start)
        self.header_name += data[start:end]

    def header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._count(end - start)
        self.header_value += data[start:end]

    def header_end(self) -> None:
        if bytes(self.header_name).strip().lower() == b"content-disposition":
            self.name = _disposition_name(bytes(self.header_value))
        self.header_name.clear()
        self.header_value.clear()

    def headers_finished(self) -> None:
        if self.name == self.wanted:
            self.value = bytearray()

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self.value is not None:
            self.value += data[start:end]
            if len(self.value) > MAX_FIELD_BYTES:
                raise _Stop  # longer than any token: the first such field decides, as none

    def part_end(self) -> None:
        if self.value is not None:
            self.found = bytes(self.value)
            raise _Stop


def _disposition_name(value: bytes) -> bytes | None:
    """The ``name`` parameter of a ``Content-Disposition: form-data; ...`` value (RFC 7578)."""
    kind, _, _ = value.partition(b";")
    if kind.strip().lower() != b"form-data":
        return None
    match = _DISPOSITION_NAME.search(value)
    if match is None:
        return None
    if match.group(1) is not None:
        return _ESCAPED.sub(rb"\1", match.group(1))
    return match.group(2)


def _urlencoded_value(body: bytes, field: str) -> bytes | None:
    """The first value of ``field`` in a urlencoded body, searched in C (no split into pairs)."""
    try:
        name = quote_plus(field, safe="").encode("ascii")
    except UnicodeEncodeError:
        return None
    name += b"="
    if body.startswith(name):
        start = len(name)
    else:
        at = body.find(b"&" + name)
        if at < 0:
            return None
        start = at + 1 + len(name)
    end = body.find(b"&", start)
    raw = body[start:] if end < 0 else body[start:end]
    if len(raw) > 3 * MAX_FIELD_BYTES:
        return None
    return unquote_plus(raw.decode("latin-1")).encode("utf-8", "replace")


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
