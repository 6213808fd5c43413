"""WSGI middleware: a session in ``environ["sessio.session"]``, committed before the headers leave.

::

    from sessio.integrations.wsgi import SessionMiddleware

    app = SessionMiddleware(app, store=SQLiteStore("sessions.db"), secret_key=[old, new])

Pure PEP 3333, no framework: the session is loaded with :class:`~sessio.SyncSessionManager`
(the stores' ``*_sync`` methods; no event loop, no thread), and committed inside
``start_response``, so the token headers join the app's own. Unsafe methods are checked for
CSRF (:mod:`sessio.integrations.csrf`); sessio's typed errors become JSON answers with their
status (``StoreUnavailable`` 503, ``ConcurrencyLimitExceeded`` 409, ``CSRFFailed`` 403).
"""

from __future__ import annotations

import http
import io
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError, CSRFFailed, SessionError
from ..manager import SyncSessionManager
from ..policy import Policy
from ..session import Session
from ..stores.base import Store
from ..stores.client import ClientSideStore
from ..transports.base import (
    CookieTransport,
    Headers,
    SecretLike,
    Transport,
    read_token,
    transports_for,
)
from ._common import (
    TRANSPORT_KEY,
    client_transport,
    emit_csrf_failed,
    error_json,
    forwarded_ip,
    forwarded_origin,
    transport_name,
    vary_names,
    with_vary,
)
from .csrf import (
    SAFE_METHODS,
    CSRFOptions,
    check_request,
    form_scan_allowed,
    form_token,
    is_form,
)

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["DEFAULT_CSRF", "SessionMiddleware", "client_ip", "environ_headers"]

logger = logging.getLogger("sessio.wsgi")

#: Frozen, so one shared default is safe.
DEFAULT_CSRF = CSRFOptions()


def environ_headers(environ: WSGIEnvironment) -> Headers:
    """A :data:`~sessio.transports.Headers` view of a WSGI environ (names are case-insensitive).

    WSGI servers fold repeated headers into one value, so each name yields at most one value.
    """

    def get(name: str) -> list[str]:
        key = name.upper().replace("-", "_")
        if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            key = "HTTP_" + key
        value = environ.get(key)
        return [] if value is None else [value]

    return get


def client_ip(environ: WSGIEnvironment, *, trust_forwarded: bool = False) -> str | None:
    """The client's address: ``REMOTE_ADDR``, or with ``trust_forwarded`` the address our
    proxy appended to ``X-Forwarded-For`` (its last entry; anything not an IP is ignored)."""
    if trust_forwarded:
        forwarded = forwarded_ip(environ_headers(environ))
        if forwarded is not None:
            return forwarded
    remote = environ.get("REMOTE_ADDR")
    return remote or None


def _origin(environ: WSGIEnvironment, trust_forwarded: bool) -> tuple[str, str]:
    """``(scheme, host)`` the client addressed, as the CSRF origin check compares them."""
    scheme = str(environ.get("wsgi.url_scheme", "http"))
    host = str(environ.get("HTTP_HOST") or "")
    if not host:
        name, port = str(environ.get("SERVER_NAME", "")), str(environ.get("SERVER_PORT", ""))
        host = name if port in ("", "443" if scheme == "https" else "80") else f"{name}:{port}"
    if trust_forwarded:
        return forwarded_origin(environ_headers(environ), scheme, host)
    return scheme, host


def _error_answer(error: SessionError) -> tuple[str, list[tuple[str, str]], bytes]:
    """The status line, headers and JSON body (:func:`error_json`) that answer ``error``."""
    body = error_json(error)
    status = f"{error.status_code} {http.HTTPStatus(error.status_code).phrase}"
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
        ("Cache-Control", "no-store"),
    ]
    return status, headers, body


def _with_vary(headers: list[tuple[str, str]], names: tuple[str, ...]) -> list[tuple[str, str]]:
    for i, (name, value) in enumerate(headers):
        if name.lower() == "vary":
            merged = with_vary(value, names)
            if merged is not None:
                headers[i] = (name, merged)
            return headers
    merged = with_vary(None, names)
    if merged is not None:
        headers.append(("Vary", merged))
    return headers


def _read_exactly(stream: Any, size: int) -> bytes:
    chunks, left = [], size
    while left > 0:
        chunk = stream.read(left)
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _buffer_form(environ: WSGIEnvironment, limit: int) -> bytes | None:
    """The request body if it fits in ``limit`` bytes, put back for the app; else ``None``.

    The body is replaced by a ``BytesIO`` and ``CONTENT_LENGTH`` set to what was really read,
    so the app (and any framework parser) sees the same request.
    """
    length_text = str(environ.get("CONTENT_LENGTH") or "").strip()
    stream = environ["wsgi.input"]
    if length_text:
        try:
            length = int(length_text)
        except ValueError:
            return None
        if length < 0 or length > limit:
            return None
        body = _read_exactly(stream, length)
    elif environ.get("wsgi.input_terminated"):
        # A chunked body the server has de-chunked and will end: read one byte past the limit.
        body = _read_exactly(stream, limit + 1)
        if len(body) > limit:
            return None  # refused: the app never runs, so what was consumed needs no putting back
    else:
        return b""  # PEP 3333: no CONTENT_LENGTH means no body to read
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


class SessionMiddleware:
    """Gives every request a :class:`~sessio.Session` in ``environ[environ_key]``.

    * ``store`` and ``policy`` (default :class:`~sessio.Policy`) build a
      :class:`~sessio.SyncSessionManager`; or pass your own ``manager`` (then ``store`` must be
      its store, and ``policy`` ``None``).
    * ``secret_key`` -- one key or a list, oldest first (the newest signs); it builds the
      transports ``policy.transports`` names, unless ``transports`` are given.
    * ``csrf`` -- how unsafe methods are checked, or ``None`` to check nothing; also off when
      ``policy.csrf`` is false. Requests whose session travels in a header are exempt.
    * ``exclude_paths`` -- shell patterns (``"/static/*"``) of paths that get no session at all.
    * ``trust_forwarded`` -- the app runs behind exactly one proxy that sets
      ``X-Forwarded-For``/``-Proto``/``-Host``: read the client address, scheme and host from
      the entry that proxy wrote (the last one, as Werkzeug's ``ProxyFix`` reads it).

    Transports are tried in the policy's order; ``environ["sessio.transport"]`` names the one
    that carried the token (``"cookie"``, ``"header"``, ``"bearer"``, or ``None``), so apps can
    tell API sessions from browser ones. A request with no token is answered through the FIRST
    transport alone: list ``"cookie"`` first for browsers. A request without a token costs no
    store call; a malformed, oversized, duplicated or tampered token gives a fresh session.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        store: Store | ClientSideStore,
        secret_key: SecretLike | None,
        policy: Policy | None = None,
        manager: SyncSessionManager | None = None,
        transports: Sequence[Transport] | None = None,
        csrf: CSRFOptions | None = DEFAULT_CSRF,
        exclude_paths: Sequence[str] = (),
        trust_forwarded: bool = False,
        environ_key: str = "sessio.session",
    ) -> None:
        if manager is None:
            manager = SyncSessionManager(store, policy)
        elif not isinstance(manager, SyncSessionManager):
            raise TypeError(
                f"WSGI needs a SyncSessionManager (no event loop), got {type(manager).__name__}"
            )
        elif manager.store is not store:
            raise ConfigurationError("store must be the manager's own store")
        elif policy is not None and policy is not manager.policy:
            raise ConfigurationError("pass the policy to the manager, not beside it")
        if isinstance(exclude_paths, str):
            raise ConfigurationError("exclude_paths is a list of patterns, not one string")
        if csrf is not None and not isinstance(csrf, CSRFOptions):
            raise ConfigurationError("csrf must be a CSRFOptions or None")
        self.app = app
        self.manager = manager
        self.policy = manager.policy
        if transports is None:
            transports = transports_for(self.policy, secret_key, raw=manager.seals_tokens)
        self.transports = list(transports)
        self.vary = vary_names(self.transports)
        if not self.transports:
            raise ConfigurationError("at least one transport is required")
        self.csrf = csrf if self.policy.csrf else None
        self.exclude_paths = tuple(exclude_paths)
        self.trust_forwarded = trust_forwarded
        self.environ_key = environ_key

    def __repr__(self) -> str:
        return f"SessionMiddleware({self.app!r}, manager={self.manager!r})"

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path = str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", ""))
        if any(fnmatchcase(path, pattern) for pattern in self.exclude_paths):
            return self.app(environ, start_response)
        return _Exchange(self, environ, start_response, path).run()


class _Exchange:
    """One request through the middleware: load, check, call the app, commit at start."""

    def __init__(
        self,
        middleware: SessionMiddleware,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        path: str,
    ) -> None:
        self.mw = middleware
        self.environ = environ
        self.start_response = start_response
        self.path = path
        self.headers = environ_headers(environ)
        self.carrier: Transport | None = None  # the transport that found a valid token
        self.writer: Transport = middleware.transports[0]  # the one that answers
        self.session: Session | None = None
        self.extra: list[tuple[str, str]] | None = None  # session headers, once committed
        self.vary = False
        self.started = False
        self.failure: bytes | None = None  # body that replaces the app's after a failed commit

    def run(self) -> Iterable[bytes]:
        mw, environ = self.mw, self.environ
        token, self.carrier = read_token(mw.transports, self.headers)
        self.writer = client_transport(mw.transports, self.headers, self.carrier) or self.writer
        try:
            self.session = session = mw.manager.load(
                token,
                ip=client_ip(environ, trust_forwarded=mw.trust_forwarded),
                user_agent=environ.get("HTTP_USER_AGENT"),
            )
        except SessionError as exc:
            logger.warning("session load failed: %s", exc)
            return self.refuse(exc)
        environ[mw.environ_key] = session
        environ[TRANSPORT_KEY] = transport_name(self.carrier)
        if mw.csrf is not None:
            reason = self.csrf_failure(mw.csrf, session)
            if reason is not None:
                method = str(environ.get("REQUEST_METHOD", ""))
                emit_csrf_failed(mw.manager, session, reason, method=method, path=self.path)
                return self.refuse(CSRFFailed(reason))
        try:
            app_iter = mw.app(environ, self.start)
        except SessionError as exc:
            if self.started:
                raise
            return self.refuse(exc)
        if self.started and self.failure is None:
            return app_iter  # the common case: untouched, so wsgi.file_wrapper etc. survive
        return _Body(self, app_iter)

    def refuse(self, error: SessionError) -> list[bytes]:
        status, headers, body = _error_answer(error)
        self.start_response(status, headers)
        return [body]

    def csrf_failure(self, options: CSRFOptions, session: Session) -> str | None:
        environ = self.environ
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        if method in SAFE_METHODS or options.is_exempt(self.path):
            return None
        if self.carrier is not None and not isinstance(self.carrier, CookieTransport):
            return None  # a header-borne session is no ambient credential: nothing to forge
        sent = self.headers(options.header_name.lower())
        submitted = sent[0] if sent else None
        scheme, host = _origin(environ, self.mw.trust_forwarded)
        if submitted is None:
            content_type = str(environ.get("CONTENT_TYPE", ""))
            if is_form(content_type) and form_scan_allowed(
                self.headers, scheme=scheme, host=host, options=options
            ):
                body = _buffer_form(environ, options.max_form_bytes)
                if body is None:
                    return "form too large to look for a CSRF token; send the header"
                submitted = form_token(content_type, body, options.field_name)
        return check_request(
            method=method,
            path=self.path,
            headers=self.headers,
            scheme=scheme,
            host=host,
            session=session,
            submitted=submitted,
            options=options,
        )

    def commit(self) -> list[tuple[str, str]]:
        """Commit the session and return the headers that carry the outcome."""
        session = self.session
        if session is None:  # run() loads it before the app can start; this only narrows the type
            return []
        commit = self.mw.manager.commit(session)
        out = self.writer.response_headers(commit, had_token=self.carrier is not None)
        self.vary = session.is_accessed or bool(out)
        return out

    def start(
        self, status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
    ) -> Callable[[bytes], object]:
        if self.extra is None:
            try:
                self.extra = self.commit()
            except SessionError as exc:
                logger.warning("session commit failed: %s", exc)
                self.extra = []
                status, headers, self.failure = _error_answer(exc)
                self.started = True
                self.start_response(status, headers)
                return _discard
        if self.failure is not None:
            return _discard  # the app's later calls meet an answer already given
        headers = [*headers, *self.extra]
        if self.vary:
            headers = _with_vary(headers, self.mw.vary)
        self.started = True
        if exc_info is not None:
            return self.start_response(status, headers, exc_info)
        return self.start_response(status, headers)


def _discard(data: bytes) -> None:
    """The ``write`` callable handed out once the app's own answer has been replaced."""


class _Body:
    """The app's iterable, watched: a commit that fails while it starts swaps in the error body.

    ``close()`` always reaches the app's iterable, even when iteration never began.
    """

    def __init__(self, exchange: _Exchange, app_iter: Iterable[bytes]) -> None:
        self._exchange = exchange
        self._app_iter = app_iter
        self._iter: Iterator[bytes] | None = None
        self._replaced = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        exchange = self._exchange
        if exchange.failure is None:
            if self._iter is None:
                self._iter = iter(self._app_iter)
            try:
                chunk = next(self._iter)
            except SessionError as exc:
                if exchange.started:
                    raise
                status, headers, exchange.failure = _error_answer(exc)
                exchange.started = True
                exchange.start_response(status, headers)
            else:
                if exchange.failure is None:
                    return chunk
        if self._replaced:
            raise StopIteration
        self._replaced = True
        return exchange.failure

    def close(self) -> None:
        close = getattr(self._app_iter, "close", None)
        if close is not None:
            close()
