"""SessionMiddleware: a pure ASGI middleware that gives every HTTP and WebSocket connection a session.

It imports no framework, so it serves Starlette, FastAPI, Litestar-on-ASGI or a bare ASGI
callable alike::

    app = SessionMiddleware(app, store=SQLiteStore("sessions.db"), secret_key=SECRET)

    async def endpoint(scope, receive, send):
        session = get_session(scope)          # Starlette: request.session
        session["cart"] = ["apple"]

How a request goes:

* **Load.** The transports (cookie, header, bearer) find the token, in the policy's order;
  the manager loads its session, or starts a new one. ``scope["sessio.transport"]`` names
  the transport that carried the token (``"cookie"``, ``"header"``, ``"bearer"``, or
  ``None``), so apps can tell API sessions from browser ones. A request that carries no
  token costs no store call: the new session lives in memory and is stored only if it is
  given something. Paths matching ``exclude_paths`` (static files) get no session at all.
* **CSRF.** On unsafe methods of cookie-borne sessions, the token is read from the header or,
  for form posts, from the body, which is buffered (at most ``max_form_bytes``) and replayed to
  the app unchanged. Sessions carried in a header are exempt: no browser sends those on its
  own. WebSocket handshakes of cookie sessions have their ``Origin`` checked (cross-site
  WebSocket hijacking is CSRF by another name).
* **Commit.** When the app sends ``http.response.start``, the session is committed *before*
  the response leaves, so a redirect never races its own save, and the transport's headers
  (``Set-Cookie``, or ``X-Session-ID`` for header tokens) and ``Vary`` ride along. The
  answer goes through the transport the client used; a request with no token at all is
  answered through the FIRST transport of the policy only, so list ``"cookie"`` first for
  browsers (``("header", "cookie")`` hands a browser's new session out as a header). Streaming
  responses commit once, at their start. A response the app never starts (it raised) or a 5xx
  commits nothing: a failed handler's half-made changes are not kept. WebSockets commit at
  ``websocket.accept`` (whose headers can carry ``Set-Cookie``) and again at close if changed.
* **Errors.** A store outage answers 503 ``{"error": "STORE_UNAVAILABLE"}`` and writes
  nothing; a concurrency limit at login answers 409. A :class:`~sessio.errors.SessionError`
  with a client status (``AuthenticationRequired``, ``PermissionDenied``...) that escapes the
  app before it responded is answered with its ``status_code`` and ``to_dict()`` (in Starlette,
  list the middleware in ``middleware=[...]``, inside Starlette's error handler, as usual).
  A CSRF refusal answers 403 ``{"error": "CSRF_FAILED"}``. ``on_error`` replaces all these
  HTTP answers with any ASGI app (a Starlette ``Response`` is one), e.g. a friendly HTML 403
  page; it may read ``scope["session"]`` (when loaded), but nothing is committed after an
  error. Refused WebSocket handshakes keep their JSON (or close 1008).

Why a session with a token is loaded before the app runs, even if the handler never reads it:
frameworks read ``scope["session"]`` synchronously (Starlette's ``request.session``), so a
network store cannot be awaited on first touch; and a lazily filled ``dict`` is unsound even
for local stores, because C serialisers (``json.dumps``'s empty-dict fast path, orjson,
msgspec) read a dict's storage without calling any method that could fill it, so an unloaded
session would serialise as ``{}``. The load is one round trip; ``exclude_paths`` removes it
where no session is wanted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from fnmatch import fnmatchcase

from ..errors import (
    ConcurrencyLimitExceeded,
    ConfigurationError,
    CSRFFailed,
    SessionError,
    StoreUnavailable,
)
from ..manager import Commit, SessionManager
from ..policy import Policy
from ..session import Session
from ..stores.base import Store
from ..stores.client import ClientSideStore
from ..transports.base import (
    CookieTransport,
    SecretLike,
    Transport,
    read_token,
    transports_for,
)
from . import _asgi
from ._common import (
    TRANSPORT_KEY,
    client_transport,
    emit_csrf_failed,
    error_json,
    transport_name,
    vary_names,
)
from ._types import ASGIApp, Message, Receive, Scope, Send
from .csrf import (
    SAFE_METHODS,
    CSRFOptions,
    check_origin,
    check_request,
    form_scan_allowed,
    form_token,
    is_form,
)

__all__ = ["ErrorHandler", "SessionMiddleware", "get_manager", "get_session"]

logger = logging.getLogger("sessio.asgi")

#: ``on_error(scope, exc)`` returns the ASGI app that answers instead (e.g. a Response).
ErrorHandler = Callable[[Scope, SessionError], ASGIApp]

_SESSION_KEY = "session"
_MANAGER_KEY = "sessio.manager"
_DEFAULT_CSRF = CSRFOptions()
_CLIENT_GONE = "client disconnected"
# Failures the middleware answers itself, at commit time.
_COMMIT_ERRORS = (StoreUnavailable, ConcurrencyLimitExceeded)


def get_session(scope: Scope) -> Session:
    """The session :class:`SessionMiddleware` put in ``scope`` (any ASGI app can call this)."""
    session = scope.get(_SESSION_KEY)
    if not isinstance(session, Session):
        raise ConfigurationError(
            "no sessio session in this scope: install SessionMiddleware, "
            "and check the path is not in its exclude_paths"
        )
    return session


def get_manager(scope: Scope) -> SessionManager:
    """The :class:`~sessio.SessionManager` serving this connection (device lists, revocation)."""
    manager = scope.get(_MANAGER_KEY)
    if not isinstance(manager, SessionManager):
        raise ConfigurationError("no sessio manager in this scope: install SessionMiddleware")
    return manager


class _Exchange:
    """One connection's session and the transport that answers for it."""

    __slots__ = ("channel", "had_token", "session", "writer")

    def __init__(
        self, session: Session, channel: Transport | None, writer: Transport, had_token: bool
    ) -> None:
        self.session = session
        self.channel = channel  # the transport the client used (or tried), if any
        self.writer = writer  # that one, or else the first of the policy
        self.had_token = had_token


class SessionMiddleware:
    """Loads a session for each HTTP/WebSocket connection into ``scope["session"]`` and commits it.

    Give either ``store`` (and optionally ``policy``, default :meth:`Policy.web`) or a ready
    ``manager``. Tokens are signed with ``secret_key`` (one key or a list, oldest first) by
    the transports the policy names, unless ``transports`` are given ready-made (the seam for
    other token formats). ``csrf`` sets how CSRF is enforced when ``policy.csrf`` is on
    (``None`` turns it off). ``exclude_paths`` are shell patterns (``"/static/*"``) that get
    no session. ``trust_forwarded`` reads the client IP, scheme and host from the last entry
    of ``X-Forwarded-For``/``-Proto``/``-Host``, the one our proxy appended (entries before it
    come from the client and can be forged): enable it only behind one proxy that sets them.
    ``on_error(scope, error)`` returns the ASGI app that answers a session error, CSRF
    refusals included (see the module docs). A request without a token is answered through
    the first transport only: put ``"cookie"`` first in ``policy.transports`` for browsers.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        store: Store | ClientSideStore | None = None,
        secret_key: SecretLike | None = None,
        policy: Policy | None = None,
        manager: SessionManager | None = None,
        transports: Sequence[Transport] | None = None,
        csrf: CSRFOptions | None = _DEFAULT_CSRF,
        exclude_paths: Sequence[str] = (),
        trust_forwarded: bool = False,
        on_error: ErrorHandler | None = None,
    ) -> None:
        if manager is None:
            if store is None:
                raise ConfigurationError("SessionMiddleware needs a store (or a manager)")
            manager = SessionManager(store, policy)
        elif store is not None or policy is not None:
            raise ConfigurationError("pass a manager, or a store and policy, not both")
        elif not isinstance(manager, SessionManager):
            raise ConfigurationError("manager must be a SessionManager (the async one)")
        if transports is None:
            if secret_key is None and not manager.seals_tokens:
                raise ConfigurationError("secret_key is required to sign session tokens")
            built = transports_for(manager.policy, secret_key, raw=manager.seals_tokens)
        else:
            if secret_key is not None:
                raise ConfigurationError("transports sign their own tokens: drop secret_key")
            built = list(transports)
            if not built or not all(isinstance(t, Transport) for t in built):
                raise ConfigurationError("transports must be a non-empty list of Transport")
        if csrf is not None and not isinstance(csrf, CSRFOptions):
            raise ConfigurationError("csrf must be a CSRFOptions or None")
        if isinstance(exclude_paths, str) or not all(
            isinstance(p, str) and p for p in exclude_paths
        ):
            raise ConfigurationError("exclude_paths must be a sequence of path patterns")
        if on_error is not None and not callable(on_error):
            raise ConfigurationError("on_error must be callable")
        self.app = app
        self.manager = manager
        self.transports: tuple[Transport, ...] = tuple(built)
        self.csrf = csrf if manager.policy.csrf else None
        self.exclude_paths = tuple(exclude_paths)
        self.trust_forwarded = trust_forwarded
        self.on_error = on_error
        self._cookies = any(isinstance(t, CookieTransport) for t in self.transports)
        self._vary = vary_names(self.transports)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.manager!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or self._excluded(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        headers = _asgi.HeaderMap(scope.get("headers", ()))
        token, carrier = read_token(self.transports, headers)
        channel = client_transport(self.transports, headers, carrier)
        ip, agent = _asgi.client_of(scope, headers, trust_forwarded=self.trust_forwarded)
        try:
            session = await self.manager.load(token, ip=ip, user_agent=agent)
        except StoreUnavailable as exc:
            if kind == "websocket":
                logger.warning("session store unavailable at handshake: %s", exc)
                await _asgi.deny_websocket(scope, send, exc.status_code, error_json(exc))
            else:
                await self._answer(scope, receive, send, exc)
            return
        scope[_SESSION_KEY] = session
        scope[_MANAGER_KEY] = self.manager
        scope[TRANSPORT_KEY] = transport_name(carrier)
        exchange = _Exchange(session, channel, channel or self.transports[0], token is not None)
        if kind == "websocket":
            await self._websocket(scope, receive, send, headers, exchange)
        else:
            await self._http(scope, receive, send, headers, exchange)

    def _excluded(self, path: str) -> bool:
        return bool(self.exclude_paths) and any(
            fnmatchcase(path, pattern) for pattern in self.exclude_paths
        )

    def _cookie_borne(self, channel: Transport | None) -> bool:
        # No token at all still counts when cookies are in play: that is login CSRF.
        return isinstance(channel, CookieTransport) or (channel is None and self._cookies)

    # -- HTTP -------------------------------------------------------------------------------------

    async def _http(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: _asgi.HeaderMap,
        exchange: _Exchange,
    ) -> None:
        if (
            self.csrf is not None
            and scope.get("method") not in SAFE_METHODS  # (spares most requests a coroutine)
            and self._cookie_borne(exchange.channel)
        ):
            receive, reason = await self._check_csrf(scope, receive, headers, exchange.session)
            if reason is _CLIENT_GONE:
                return
            if reason is not None:
                self._csrf_failed(scope, exchange.session, reason)
                await self._answer(scope, receive, send, CSRFFailed(reason))
                return
        started = replaced = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started, replaced
            if replaced:
                return  # the app's own response was replaced by an error answer
            if message["type"] == "http.response.start":
                started = True
                accessed = exchange.session.is_accessed
                try:
                    extra = await self._finish(exchange, message["status"])
                except _COMMIT_ERRORS as exc:
                    replaced = True
                    await self._answer(scope, receive, send, exc)
                    return
                out = [*message.get("headers", ()), *extra]
                if accessed:
                    out = _asgi.add_vary(out, self._vary)
                message = {**message, "headers": out}
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except SessionError as exc:
            if started or not (exc.status_code < 500 or isinstance(exc, StoreUnavailable)):
                raise
            await self._answer(scope, receive, send_wrapper, exc)

    async def _check_csrf(
        self, scope: Scope, receive: Receive, headers: _asgi.HeaderMap, session: Session
    ) -> tuple[Receive, str | None]:
        options = self.csrf
        method = scope.get("method", "GET").upper()
        path = scope.get("path", "")
        if options is None or method in SAFE_METHODS or options.is_exempt(path):
            return receive, None
        submitted = headers.first(options.header_name.lower())
        content_type = headers.first("content-type") or ""
        scheme, host = _asgi.origin_of(scope, headers, trust_forwarded=self.trust_forwarded)
        if (
            submitted is None
            and is_form(content_type)
            and form_scan_allowed(headers, scheme=scheme, host=host, options=options)
        ):
            body, state = await _asgi.read_body(receive, options.max_form_bytes)
            if state == "disconnected":
                return receive, _CLIENT_GONE
            if state == "too_large":
                return receive, (
                    f"form body over {options.max_form_bytes} bytes: "
                    f"send the token in the {options.header_name} header"
                )
            submitted = form_token(content_type, body, options.field_name)
            receive = _asgi.replay(body, receive)
        reason = check_request(
            method=method,
            path=path,
            headers=headers,
            scheme=scheme,
            host=host,
            session=session,
            submitted=submitted,
            options=options,
        )
        return receive, reason

    def _csrf_failed(self, scope: Scope, session: Session, reason: str) -> None:
        method, path = scope.get("method"), scope.get("path")
        emit_csrf_failed(self.manager, session, reason, method=method, path=path)

    # -- commit -----------------------------------------------------------------------------------

    async def _commit(self, session: Session) -> Commit:
        """Commit ``session``; the Starlette drop-in overrides this to keep Starlette's rules."""
        return await self.manager.commit(session)

    async def _finish(self, exchange: _Exchange, status: int) -> list[tuple[bytes, bytes]]:
        if status >= 500:
            return []
        commit = await self._commit(exchange.session)
        pairs = exchange.writer.response_headers(commit, had_token=exchange.had_token)
        return [(name.encode("latin-1"), value.encode("latin-1")) for name, value in pairs]

    async def _answer(self, scope: Scope, receive: Receive, send: Send, exc: SessionError) -> None:
        if isinstance(exc, StoreUnavailable):
            logger.warning("session store unavailable: %s", exc)
        if self.on_error is not None:
            await self.on_error(scope, exc)(scope, receive, send)
        else:
            await _asgi.send_json(send, exc.status_code, error_json(exc))

    # -- WebSocket --------------------------------------------------------------------------------

    async def _websocket(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: _asgi.HeaderMap,
        exchange: _Exchange,
    ) -> None:
        options = self.csrf
        if (
            options is not None
            and options.check_origin
            and self._cookie_borne(exchange.channel)
            and not options.is_exempt(scope.get("path", ""))
        ):
            scheme, host = _asgi.origin_of(scope, headers, trust_forwarded=self.trust_forwarded)
            reason = check_origin(headers, scheme=scheme, host=host, options=options)
            if reason is not None:
                self._csrf_failed(scope, exchange.session, reason)
                await _asgi.deny_websocket(scope, send, 403, error_json(CSRFFailed(reason)))
                return
        accepted = refused = False

        async def send_wrapper(message: Message) -> None:
            nonlocal accepted, refused
            if refused:
                return
            if message["type"] == "websocket.accept":
                try:
                    extra = await self._finish(exchange, 101)
                except _COMMIT_ERRORS as exc:
                    refused = True
                    logger.warning("session commit failed at handshake: %s", exc)
                    await _asgi.deny_websocket(scope, send, exc.status_code, error_json(exc))
                    return
                accepted = True
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            elif message["type"] == "websocket.close" and accepted:
                await self._settle(exchange.session)
            await send(message)

        await self.app(scope, receive, send_wrapper)
        if accepted:
            await self._settle(exchange.session)

    async def _settle(self, session: Session) -> None:
        # After the handshake no header can reach the client: changes are saved, not sent.
        if not session.is_modified:
            return
        try:
            await self._commit(session)
        except SessionError as exc:
            logger.warning("session commit failed at WebSocket close: %s", exc)
