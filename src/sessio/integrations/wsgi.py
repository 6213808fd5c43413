"""WSGI middleware: a session in ``environ["sessio.session"]``, committed before the headers leave.

::

    from sessio.integrations.wsgi import SessionMiddleware

    app = SessionMiddleware(app, store=SQLiteStore("sessions.db"), secret_key=[old, new])

Pure PEP 3333, no framework: the session is loaded with :class:`~sessio.SyncSessionManager`
(the stores' ``*_sync`` methods; no event loop, no thread), and committed inside
``start_response``, so the token headers join the app's own. The decisions (token, CSRF,
commit, ``Vary``/``Cache-Control``, error answers, 5xx) are :mod:`sessio.exchange`'s, the
same as the ASGI middleware's, which takes the same arguments: sessio's typed errors become
JSON answers with their status (``StoreUnavailable`` 503, ``ConcurrencyLimitExceeded`` 409,
``CSRFFailed`` 403, ``SessionTooLarge`` 500), or whatever WSGI app ``on_error`` returns.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

from ..errors import SessionError
from ..exchange import DEFAULT_CSRF, UNTOUCHED, Answer, Exchange, Lifecycle, ReadForm, Request
from ..legacy import LegacyCookie, adopt_sync
from ..manager import Commit, SyncSessionManager
from ..policy import Policy
from ..session import Session
from ..stores.base import Store
from ..stores.client import ClientSideStore
from ..transports.base import Headers, SecretLike, Transport
from ._common import TRANSPORT_KEY, forwarded_ip
from .csrf import CSRFOptions

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = [
    "DEFAULT_CSRF",
    "ErrorHandler",
    "SessionMiddleware",
    "client_ip",
    "environ_headers",
    "environ_request",
]

#: ``on_error(environ, exc)`` returns the WSGI app that answers instead (an error page).
ErrorHandler: TypeAlias = Callable[[Any, SessionError], Callable[..., Iterable[bytes]]]


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


def environ_request(environ: WSGIEnvironment) -> Request:
    """What the exchange needs of a WSGI request (the path includes ``SCRIPT_NAME``)."""
    return Request(
        str(environ.get("REQUEST_METHOD", "GET")),
        str(environ.get("SCRIPT_NAME", "")) + str(environ.get("PATH_INFO", "")),
        environ_headers(environ),
        scheme=str(environ.get("wsgi.url_scheme", "http")),
        host=_host(environ),
        client=environ.get("REMOTE_ADDR") or None,
    )


def _host(environ: WSGIEnvironment) -> str:
    """The host the client addressed (PEP 3333's URL reconstruction)."""
    host = str(environ.get("HTTP_HOST") or "")
    if host:
        return host
    scheme = str(environ.get("wsgi.url_scheme", "http"))
    name, port = str(environ.get("SERVER_NAME", "")), str(environ.get("SERVER_PORT", ""))
    return name if port in ("", "443" if scheme == "https" else "80") else f"{name}:{port}"


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

    The arguments are the ASGI middleware's (:class:`sessio.integrations.asgi.SessionMiddleware`):

    * ``store`` (and ``policy``, default :class:`~sessio.Policy`) or a ready ``manager`` (a
      :class:`~sessio.SyncSessionManager`), not both.
    * ``secret_key`` -- one key or a list, oldest first (the newest signs); it builds the
      transports ``policy.transports`` names, unless ``transports`` are given.
    * ``csrf`` -- how unsafe methods are checked, or ``None`` to check nothing; also off when
      ``policy.csrf`` is false. Requests whose session travels in a header are exempt.
    * ``exclude_paths`` -- shell patterns (``"/static/*"``) of paths that get no session at all.
    * ``trust_forwarded`` -- the app runs behind exactly one proxy that sets
      ``X-Forwarded-For``/``-Proto``/``-Host``: read the client address, scheme and host from
      the entry that proxy wrote (the last one, as Werkzeug's ``ProxyFix`` reads it).
    * ``on_error(environ, error)`` -- returns the WSGI app that answers a session error (CSRF
      refusals included) instead of the JSON one.

    ``environ["sessio.transport"]`` names the transport that carried the token (``"cookie"``,
    ``"header"``, ``"bearer"``, or ``None``). A request with no token is answered through the
    FIRST transport alone: list ``"cookie"`` first for browsers. A request without a token
    costs no store call; a malformed, oversized, duplicated or tampered token gives a fresh
    session.
    """

    def __init__(
        self,
        app: WSGIApplication,
        *,
        store: Store | ClientSideStore | None = None,
        secret_key: SecretLike | None = None,
        policy: Policy | None = None,
        manager: SyncSessionManager | None = None,
        transports: Sequence[Transport] | None = None,
        csrf: CSRFOptions | None = DEFAULT_CSRF,
        exclude_paths: Sequence[str] = (),
        trust_forwarded: bool = False,
        on_error: ErrorHandler | None = None,
        environ_key: str = "sessio.session",
        legacy: LegacyCookie | None = None,
    ) -> None:
        self.app = app
        self.lifecycle: Lifecycle[SyncSessionManager, ErrorHandler] = Lifecycle.configure(
            SyncSessionManager,
            store=store,
            secret_key=secret_key,
            policy=policy,
            manager=manager,
            transports=transports,
            csrf=csrf,
            exclude_paths=exclude_paths,
            trust_forwarded=trust_forwarded,
            on_error=on_error,
            legacy=legacy,
        )
        self.manager: SyncSessionManager = self.lifecycle.manager
        self.transports = self.lifecycle.transports
        self.csrf = self.lifecycle.csrf
        self.environ_key = environ_key

    def __repr__(self) -> str:
        return f"SessionMiddleware({self.app!r}, manager={self.manager!r})"

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = environ_request(environ)
        if self.lifecycle.excludes(request.path):
            return self.app(environ, start_response)
        return _Call(self, environ, start_response, self.lifecycle.begin(request)).run()


class _Call:
    """One request through the middleware: load, check, call the app, commit at start."""

    def __init__(
        self,
        middleware: SessionMiddleware,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        exchange: Exchange[ErrorHandler],
    ) -> None:
        self.mw = middleware
        self.environ = environ
        self.start_response = start_response
        self.exchange = exchange
        self.session: Session | None = None
        self.first: tuple[int, Commit | None] | None = None  # (status, commit) at the first start
        self.started = False
        self.replacement: Iterable[bytes] | None = None  # the answer that replaced the app's

    def run(self) -> Iterable[bytes]:
        mw, environ, exchange = self.mw, self.environ, self.exchange
        try:
            self.session = session = mw.manager.load(
                exchange.token, ip=exchange.ip, user_agent=exchange.user_agent
            )
            adopt_sync(mw.manager, exchange, session)  # a no-op unless legacy= found a cookie
        except SessionError as exc:
            return self.reply(exchange.answer(exc), self.start_response)
        exchange.loaded(session)
        environ[mw.environ_key] = session
        environ[TRANSPORT_KEY] = exchange.transport_name
        verdict = exchange.csrf()
        if isinstance(verdict, ReadForm):
            verdict = exchange.form(_buffer_form(environ, verdict.limit))
        if isinstance(verdict, Answer):
            return self.reply(verdict, self.start_response)
        try:
            app_iter = mw.app(environ, self.start)
        except SessionError as exc:
            answer = None if self.started else exchange.escaped(exc)
            if answer is None:
                raise
            return self.escaped(answer)
        if self.started and self.replacement is None:
            return app_iter  # the common case: untouched, so wsgi.file_wrapper etc. survive
        return _Body(self, app_iter)

    def reply(self, answer: Answer[ErrorHandler], start: StartResponse) -> Iterable[bytes]:
        """Answer with the exchange's ``answer`` (through ``on_error`` when set)."""
        if answer.hook is not None:
            return answer.hook(self.environ, answer.error)(self.environ, start)
        start(answer.status_line, list(answer.headers))
        return [answer.body]

    def escaped(self, answer: Answer[ErrorHandler]) -> Iterable[bytes]:
        """Answer an error that escaped the app, through :meth:`start` (so a 4xx still
        commits); a commit failing there answers instead."""
        out = self.reply(answer, self.start)
        if self.replacement is None:
            return out
        close = getattr(out, "close", None)
        if close is not None:
            close()
        return self.replacement

    def replace(self, answer: Answer[ErrorHandler]) -> Callable[[bytes], object]:
        """Answer with ``answer`` instead of the response the app is starting."""
        self.started = True
        self.replacement = self.reply(answer, self.start_response)
        return _discard

    def start(
        self, status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
    ) -> Callable[[bytes], object]:
        if self.replacement is not None:
            return _discard  # the app's later calls meet an answer already given
        exchange = self.exchange
        if self.first is None:
            code, commit = int(status[:3]), None
            if exchange.start(code) and self.session is not None:
                try:
                    commit = self.mw.manager.commit(self.session)
                except SessionError as exc:
                    return self.replace(exchange.answer(exc))
            self.first = (code, commit)
        # A response restarted (an error page, with exc_info) keeps what the first one committed.
        code, commit = self.first
        vary = cache_control = None
        for name, value in headers:
            lowered = name.lower()
            if lowered == "vary" and vary is None:
                vary = value
            elif lowered == "cache-control" and cache_control is None:
                cache_control = value
        edit = exchange.respond(code, vary=vary, cache_control=cache_control, commit=commit)
        if isinstance(edit, Answer):
            return self.replace(edit)
        if edit is not UNTOUCHED:
            headers = edit.apply(headers)
        self.started = True
        if exc_info is not None:
            return self.start_response(status, headers, exc_info)
        return self.start_response(status, headers)


def _discard(data: bytes) -> None:
    """The ``write`` callable handed out once the app's own answer has been replaced."""


class _Body:
    """The app's iterable, watched: an answer that replaces it (a failed commit, a session
    error raised while it starts) is sent instead. ``close()`` always reaches the app's
    iterable (and the replacement's), even when iteration never began.
    """

    def __init__(self, call: _Call, app_iter: Iterable[bytes]) -> None:
        self._call = call
        self._app_iter = app_iter
        self._iter: Iterator[bytes] | None = None
        self._replay: Iterator[bytes] | None = None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        call = self._call
        if self._replay is None:
            if call.replacement is None:
                if self._iter is None:
                    self._iter = iter(self._app_iter)
                try:
                    chunk = next(self._iter)
                except SessionError as exc:
                    answer = None if call.started else call.exchange.escaped(exc)
                    if answer is None:
                        raise
                    call.replacement = call.escaped(answer)
                else:
                    if call.replacement is None:  # (a commit may have failed as it started)
                        return chunk
            self._replay = iter(call.replacement)
        return next(self._replay)

    def close(self) -> None:
        for iterable in (self._app_iter, self._call.replacement):
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
