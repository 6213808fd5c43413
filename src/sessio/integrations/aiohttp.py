"""aiohttp: a session middleware with aiohttp-session's calls, the data kept server-side.

An aiohttp-session app switches by changing its ``setup`` line and nothing else::

    # from aiohttp_session import setup, get_session, new_session
    from sessio.integrations.aiohttp import setup, get_session, new_session

    setup(app, store=SQLiteStore("sessions.db"), secret_key=SECRET)

    async def handler(request: web.Request) -> web.Response:
        session = await get_session(request)
        session["visits"] = session.get("visits", 0) + 1
        return web.Response(text=str(session["visits"]))

``get_session`` and ``new_session`` are coroutines, as in aiohttp-session; the session is a
:class:`Session`, a sessio :class:`~sessio.Session` with aiohttp-session's ``new``,
``identity``, ``created``, ``empty``, ``changed()`` and ``invalidate()``. Every decision (token,
CSRF, commit, ``Vary``, ``Cache-Control``, error answers) is made by :mod:`sessio.exchange`;
this module moves aiohttp's objects:

* the middleware loads the session before the handler runs (a request without a token costs
  no store call) and checks CSRF (unsafe methods of cookie sessions; a WebSocket handshake's
  ``Origin``); the form body it may read is kept by aiohttp for ``request.post()``;
* a response the handler returns (or raises, ``HTTPFound`` and friends) is committed before
  it leaves, so a redirect never races its save; a response the handler prepares itself (a
  stream, a ``WebSocketResponse``) is committed in ``on_response_prepare``, when its headers
  are still open, and a WebSocket's session changed after the handshake is saved when the
  handler returns;
* a store outage answers 503 ``{"error": "STORE_UNAVAILABLE"}``, a CSRF refusal 403, and
  ``on_error(request, error)`` (a coroutine returning a response) may answer instead.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeAlias

try:
    from aiohttp import web
except ImportError:  # pragma: no cover - exercised only without the extra
    from ..errors import require

    require("aiohttp", "aiohttp")
    raise

from .. import session as _session
from ..errors import ConfigurationError, SessionError
from ..exchange import DEFAULT_CSRF, UNTOUCHED, Answer, Edit, Exchange, Lifecycle, ReadForm, Request
from ..manager import SessionManager
from ..policy import Policy
from ..stores.base import Store
from ..stores.client import ClientSideStore
from ..transports.base import SecretLike, Transport
from ._aiohttp_session import Manager, Session
from .csrf import CSRFOptions

__all__ = [
    "MANAGER_KEY",
    "SESSION_KEY",
    "TRANSPORT_KEY",
    "ErrorHandler",
    "Manager",
    "Session",
    "SessionMiddleware",
    "get_manager",
    "get_session",
    "new_session",
    "session_middleware",
    "setup",
]

logger = logging.getLogger("sessio.aiohttp")

#: ``await on_error(request, error)`` is the response that answers a session error.
ErrorHandler: TypeAlias = Callable[[web.Request, SessionError], Awaitable[web.StreamResponse]]

# Typed request keys (aiohttp requests are mappings for exactly this; a str key warns).
SESSION_KEY: Final = web.RequestKey("sessio.session", _session.Session)
MANAGER_KEY: Final = web.RequestKey("sessio.manager", SessionManager)
#: The transport that carried the token (``"cookie"``, ``"header"``, ``"bearer"``) or ``None``.
TRANSPORT_KEY: Final = web.RequestKey[str | None]("sessio.transport")
_EXCHANGE: Final = web.RequestKey("sessio.exchange", Exchange)
_COMMITTED: Final = web.RequestKey("sessio.committed", bool)


async def get_session(request: web.Request) -> Session:
    """The request's session, loaded by the middleware (aiohttp-session's call shape)."""
    session = request.get(SESSION_KEY)
    if not isinstance(session, Session):
        if isinstance(session, _session.Session):
            raise ConfigurationError(
                "the middleware's manager builds plain sessions: pass "
                "manager=sessio.integrations.aiohttp.Manager(store, policy) to setup()"
            )
        raise ConfigurationError(
            "no sessio session in this request: call sessio.integrations.aiohttp.setup(app, ...) "
            "and check the path is not in its exclude_paths"
        )
    return session


async def new_session(request: web.Request) -> Session:
    """The request's session started afresh: a new ID, no data (the old record goes at
    commit), as aiohttp-session's ``new_session`` at login."""
    session = await get_session(request)
    session.regenerate(keep_data=False)
    return session


def get_manager(request: web.Request) -> SessionManager:
    """The :class:`~sessio.SessionManager` serving this request (device lists, revocation)."""
    manager = request.get(MANAGER_KEY)
    if not isinstance(manager, SessionManager):
        raise ConfigurationError("no sessio manager in this request: call setup(app, ...)")
    return manager


def _request(request: web.BaseRequest) -> Request:
    headers = request.headers
    upgrade = headers.get("upgrade", "")
    return Request(
        request.method,
        request.path,
        lambda name: headers.getall(name, []),
        scheme=request.scheme,
        host=request.host,
        client=request.remote,
        websocket=upgrade.lower() == "websocket",
    )


def _edit(response: web.StreamResponse, edit: Edit) -> None:
    headers = response.headers
    if edit.vary is not None:
        headers["Vary"] = edit.vary
    if edit.cache_control is not None:
        headers["Cache-Control"] = edit.cache_control
    for name, value in edit.add:
        headers.add(name, value)


class _Refused(Exception):
    """Raised from ``on_response_prepare`` so the handler's own ``prepare()`` stops before any
    byte is sent, and the middleware answers (a commit failed while the headers were open)."""

    def __init__(self, answer: Answer[ErrorHandler], *, chunked: bool) -> None:
        super().__init__(answer.error.code)
        self.answer = answer
        #: The connection was already set up for a chunked body (a stream of no length):
        #: the answer must be framed the same way.
        self.chunked = chunked


class SessionMiddleware:
    """The aiohttp middleware: give it to :func:`setup` rather than to ``middlewares=``, so its
    ``on_response_prepare`` hook is installed too.

    Takes :class:`~sessio.integrations.asgi.SessionMiddleware`'s arguments (``store`` or a
    ready ``manager``, ``secret_key``, ``policy``, ``transports``, ``csrf``,
    ``exclude_paths``, ``trust_forwarded``), with ``on_error(request, error)`` a coroutine
    returning the response that answers a session error.
    """

    __middleware_version__ = 1  # aiohttp's mark of a new-style middleware

    def __init__(
        self,
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
        if manager is None and store is not None:
            manager = Manager(store, policy)
            store = policy = None
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
        self._told = False  # whether the missing on_response_prepare hook was reported

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.manager!r})"

    async def __call__(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if self.lifecycle.excludes(request.path):
            return await handler(request)
        exchange = self.lifecycle.begin(_request(request))
        try:
            session = await self.manager.load(
                exchange.token, ip=exchange.ip, user_agent=exchange.user_agent
            )
        except SessionError as exc:
            return await _reply(request, exchange.answer(exc))
        exchange.loaded(session)
        request[SESSION_KEY] = session
        request[MANAGER_KEY] = self.manager
        request[_EXCHANGE] = exchange
        request[TRANSPORT_KEY] = exchange.transport_name
        verdict = exchange.csrf()
        if isinstance(verdict, ReadForm):
            verdict = exchange.form(await _read_at_most(request, verdict.limit))
        if isinstance(verdict, Answer):
            return await _reply(request, verdict)
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # a raised response (HTTPFound...) is still one
            if request.get(_COMMITTED):  # (raised after a response of its own had started)
                raise
            answer = await self._finish(request, exchange, exc)
            if answer is not None:
                return await _reply(request, answer)
            raise
        except _Refused as refused:
            return await _reply(request, refused.answer, chunked=refused.chunked)
        except SessionError as exc:
            escaped = None if request.get(_COMMITTED) else exchange.escaped(exc)
            if escaped is None:
                raise
            return await _reply(request, escaped)
        if response.prepared:  # streamed or a WebSocket: committed at prepare
            if not request.get(_COMMITTED):
                await self._unhooked(request, exchange, response)
            elif exchange.request.websocket:
                await self._settle(request, exchange)
            return response
        answer = await self._finish(request, exchange, response)
        return response if answer is None else await _reply(request, answer)

    async def on_response_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """The ``on_response_prepare`` hook: commit a response the handler prepared itself."""
        exchange = request.get(_EXCHANGE)
        if isinstance(exchange, Exchange) and not request.get(_COMMITTED):
            answer = await self._finish(request, exchange, response)
            if answer is not None:
                chunked = response.headers.get("Transfer-Encoding", "").lower() == "chunked"
                raise _Refused(answer, chunked=chunked)

    async def _finish(
        self, request: web.Request, exchange: Exchange[ErrorHandler], response: web.StreamResponse
    ) -> Answer[ErrorHandler] | None:
        """Commit (once) and edit ``response``; the answer that replaces it, if any."""
        request[_COMMITTED] = True
        session = request[SESSION_KEY]
        status = response.status
        commit = None
        if exchange.start(status):
            try:
                commit = await self.manager.commit(session)
            except SessionError as exc:
                return exchange.answer(exc)
        headers = response.headers
        vary = ", ".join(headers.getall("Vary", [])) or None
        edit = exchange.respond(
            status, vary=vary, cache_control=headers.get("Cache-Control"), commit=commit
        )
        if isinstance(edit, Answer):
            return edit
        if edit is not UNTOUCHED:
            _edit(response, edit)
        return None

    async def _unhooked(
        self, request: web.Request, exchange: Exchange[ErrorHandler], response: web.StreamResponse
    ) -> None:
        # Installed by middlewares=[...] alone: a response the handler prepared left without
        # its session header. What changed is still saved, and the fix is said once.
        request[_COMMITTED] = True
        if not self._told:
            self._told = True
            logger.warning(
                "a streamed response or WebSocket left without its session cookie: install "
                "sessio with setup(app, ...), which adds the on_response_prepare hook"
            )
        if exchange.start(response.status) and exchange.settles():
            try:
                await self.manager.commit(request[SESSION_KEY])
            except SessionError as exc:
                logger.warning("session commit failed after the response started: %s", exc)

    async def _settle(self, request: web.Request, exchange: Exchange[ErrorHandler]) -> None:
        # After a WebSocket's handshake no header reaches the client: changes are saved, not
        # sent (a stream committed once, at its start, as on ASGI).
        if request.get(_COMMITTED) and exchange.settles():
            try:
                await self.manager.commit(request[SESSION_KEY])
            except SessionError as exc:
                logger.warning("session commit failed after the response started: %s", exc)


async def _read_at_most(request: web.Request, limit: int) -> bytes | None:
    """The body for the CSRF form check, or ``None`` past ``limit``; aiohttp keeps what it
    read, so the handler's ``request.post()`` still sees it."""
    length = request.content_length
    if length is not None and length > limit:
        return None
    body = await request.read()  # bounded by the application's client_max_size
    return None if len(body) > limit else body


async def _reply(
    request: web.Request, answer: Answer[ErrorHandler], *, chunked: bool = False
) -> web.StreamResponse:
    request[_COMMITTED] = True  # an answer is no response of the app's: nothing to commit
    if answer.hook is not None:
        response = await answer.hook(request, answer.error)
    else:
        response = web.Response(status=answer.status, body=answer.body, headers=answer.headers)
    if chunked:
        response.headers.popall("Content-Length", None)
        response.enable_chunked_encoding()
    return response


def session_middleware(**options: Any) -> SessionMiddleware:
    """aiohttp-session's ``session_middleware``, for ``web.Application(middlewares=[...])``;
    takes :func:`setup`'s keyword arguments. Prefer :func:`setup`: without its
    ``on_response_prepare`` hook, a response the handler prepares itself (a stream, a
    WebSocket) leaves before it could carry a new cookie (its changes are still saved)."""
    return SessionMiddleware(**options)


def setup(
    app: web.Application,
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
) -> SessionMiddleware:
    """Install sessio on ``app`` (aiohttp-session's ``setup``, with sessio's arguments; see
    :class:`SessionMiddleware`), and return the middleware."""
    middleware = SessionMiddleware(
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
    app.middlewares.append(middleware)
    app.on_response_prepare.append(middleware.on_response_prepare)
    return middleware
