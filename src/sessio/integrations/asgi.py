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
  commits nothing: a failed handler's half-made changes are not kept. A response with a session
  header and a shareable ``Cache-Control`` is made ``private``. WebSockets commit at
  ``websocket.accept`` (whose headers can carry ``Set-Cookie``) and again at close if changed.
* **Errors.** A store outage answers 503 ``{"error": "STORE_UNAVAILABLE"}`` and sends no
  session header. An outage at commit may have struck after the store received the write, so
  its outcome is *unknown* (see ``docs/architecture.md``, "Commit outcomes"): the client keeps
  its old token, and retrying is safe. A concurrency limit at login answers 409, a client-side session too large for its
  cookie 500 ``SESSION_TOO_LARGE``. A :class:`~sessio.errors.SessionError`
  with a client status (``AuthenticationRequired``, ``PermissionDenied``...) that escapes the
  app before it responded is answered with its ``status_code`` and ``to_dict()`` (in Starlette,
  list the middleware in ``middleware=[...]``, inside Starlette's error handler, as usual).
  A CSRF refusal answers 403 ``{"error": "CSRF_FAILED"}``. ``on_error`` replaces all these
  HTTP answers with any ASGI app (a Starlette ``Response`` is one), e.g. a friendly HTML 403
  page; it may read ``scope["session"]`` (when loaded), but nothing is committed after an
  error. Refused WebSocket handshakes keep their JSON (or close 1008). Every one of these
  decisions is made by :mod:`sessio.exchange`, shared with the WSGI and Flask integrations;
  this module only moves ASGI messages.

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
from typing import TypeAlias

from ..errors import ConfigurationError, SessionError
from ..exchange import DEFAULT_CSRF, UNTOUCHED, Answer, Exchange, Lifecycle, ReadForm, Request
from ..manager import Commit, SessionManager
from ..policy import Policy
from ..session import Session
from ..stores.base import Store
from ..stores.client import ClientSideStore
from ..transports.base import SecretLike, Transport
from . import _asgi
from ._common import TRANSPORT_KEY
from ._types import ASGIApp, Message, Receive, Scope, Send
from .csrf import CSRFOptions

__all__ = ["ErrorHandler", "SessionMiddleware", "get_manager", "get_session"]

logger = logging.getLogger("sessio.asgi")

#: ``on_error(scope, exc)`` returns the ASGI app that answers instead (e.g. a Response).
ErrorHandler: TypeAlias = Callable[[Scope, SessionError], ASGIApp]

_SESSION_KEY = "session"
_MANAGER_KEY = "sessio.manager"


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


def _request(scope: Scope, headers: _asgi.HeaderMap) -> Request:
    host = headers.first("host")
    if host is None:
        server = scope.get("server")
        host = f"{server[0]}:{server[1]}" if server else ""
    client = scope.get("client")
    return Request(
        str(scope.get("method", "GET")),
        str(scope.get("path", "")),
        headers,
        scheme=str(scope.get("scheme", "http")),
        host=host,
        client=client[0] if client else None,
        websocket=scope["type"] == "websocket",
    )


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
    The WSGI middleware takes the same arguments.
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
        csrf: CSRFOptions | None = DEFAULT_CSRF,
        exclude_paths: Sequence[str] = (),
        trust_forwarded: bool = False,
        on_error: ErrorHandler | None = None,
    ) -> None:
        self.app = app
        self.lifecycle: Lifecycle[SessionManager, ErrorHandler] = Lifecycle.configure(
            SessionManager,
            store=store,
            secret_key=secret_key,
            policy=policy,
            manager=manager,
            transports=transports,
            csrf=csrf,
            exclude_paths=exclude_paths,
            trust_forwarded=trust_forwarded,
            on_error=on_error,
        )
        self.manager: SessionManager = self.lifecycle.manager
        self.transports = self.lifecycle.transports
        self.csrf = self.lifecycle.csrf

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.manager!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or self.lifecycle.excludes(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        headers = _asgi.HeaderMap(scope.get("headers", ()))
        exchange = self.lifecycle.begin(_request(scope, headers))
        try:
            session = await self.manager.load(
                exchange.token, ip=exchange.ip, user_agent=exchange.user_agent
            )
        except SessionError as exc:
            await self._answer(scope, receive, send, exchange.answer(exc))
            return
        exchange.loaded(session)
        scope[_SESSION_KEY] = session
        scope[_MANAGER_KEY] = self.manager
        scope[TRANSPORT_KEY] = exchange.transport_name
        verdict = exchange.csrf()
        if isinstance(verdict, ReadForm):
            body, state = await _asgi.read_body(receive, verdict.limit)
            if state == "disconnected":
                return  # nobody is left to answer
            verdict = exchange.form(None if state == "too_large" else body)
            receive = _asgi.replay(body, receive)
        if isinstance(verdict, Answer):
            await self._answer(scope, receive, send, verdict)
        elif kind == "websocket":
            await self._websocket(scope, receive, send, exchange, session)
        else:
            await self._http(scope, receive, send, exchange, session)

    async def commit(self, session: Session) -> Commit:
        """Commit ``session``; the Starlette drop-in overrides this to keep Starlette's rules."""
        return await self.manager.commit(session)

    async def _respond(
        self, exchange: Exchange[ErrorHandler], session: Session, message: Message
    ) -> Message | Answer[ErrorHandler]:
        """The app's ``http.response.start`` or ``websocket.accept`` with the session's
        headers, or the answer that replaces it."""
        status = message.get("status", 101)
        headers = message.get("headers", ())
        commit = None
        if exchange.start(status):
            try:
                commit = await self.commit(session)
            except SessionError as exc:
                return exchange.answer(exc)
        vary, cache_control = _asgi.cache_headers(headers)
        edit = exchange.respond(status, vary=vary, cache_control=cache_control, commit=commit)
        if isinstance(edit, Answer):
            return edit
        if edit is UNTOUCHED:
            return message
        return {**message, "headers": _asgi.apply(headers, edit)}

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, answer: Answer[ErrorHandler]
    ) -> None:
        if scope["type"] == "websocket":
            await _asgi.deny_websocket(scope, send, answer.status, answer.body)
        elif answer.hook is not None:
            await answer.hook(scope, answer.error)(scope, receive, send)
        else:
            await _asgi.send_answer(send, answer)

    async def _http(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        exchange: Exchange[ErrorHandler],
        session: Session,
    ) -> None:
        started = replaced = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started, replaced
            if replaced:
                return  # the app's own response was replaced by an error answer
            if message["type"] == "http.response.start":
                started = True
                result = await self._respond(exchange, session, message)
                if isinstance(result, Answer):
                    replaced = True
                    await self._answer(scope, receive, send, result)
                    return
                message = result
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except SessionError as exc:
            answer = None if started else exchange.escaped(exc)
            if answer is None:
                raise
            await self._answer(scope, receive, send_wrapper, answer)

    async def _websocket(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        exchange: Exchange[ErrorHandler],
        session: Session,
    ) -> None:
        accepted = refused = False

        async def send_wrapper(message: Message) -> None:
            nonlocal accepted, refused
            if refused:
                return
            if message["type"] == "websocket.accept":
                result = await self._respond(exchange, session, message)
                if isinstance(result, Answer):
                    refused = True
                    await self._answer(scope, receive, send, result)
                    return
                accepted, message = True, result
            elif message["type"] == "websocket.close" and accepted:
                await self._settle(exchange, session)
            await send(message)

        await self.app(scope, receive, send_wrapper)
        if accepted:
            await self._settle(exchange, session)

    async def _settle(self, exchange: Exchange[ErrorHandler], session: Session) -> None:
        # After the handshake no header can reach the client: changes are saved, not sent.
        if exchange.settles():
            try:
                await self.commit(session)
            except SessionError as exc:
                logger.warning("session commit failed at WebSocket close: %s", exc)
