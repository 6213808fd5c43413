"""The request exchange: every decision one request makes about its session, with no I/O.

An integration (ASGI, WSGI, Flask, and Django, aiohttp, Litestar or Quart tomorrow) is plumbing:
it moves bytes, awaits or calls the manager, and asks an :class:`Exchange` what to do at each
step, in the style of h11. A :class:`Lifecycle` holds what never changes between requests
(the manager, transports, CSRF options, excluded paths, the ``on_error`` hook); its
:meth:`~Lifecycle.begin` opens one exchange per request::

    lifecycle = Lifecycle.configure(SyncSessionManager, store=store, secret_key=KEY)

    if lifecycle.excludes(path):                        # no session at all
        return app(request)
    exchange = lifecycle.begin(Request(method, path, headers, scheme=..., host=..., client=...))
    try:
        session = manager.load(exchange.token, ip=exchange.ip, user_agent=exchange.user_agent)
    except SessionError as exc:
        return reply(exchange.answer(exc))               # an Answer: status, headers, JSON body
    exchange.loaded(session)
    verdict = exchange.csrf()                            # PROCEED | ReadForm | Answer
    if isinstance(verdict, ReadForm):                    # the token may be in the form body
        verdict = exchange.form(read_at_most(verdict.limit))   # bytes, or None when over it
        # (a framework that parses forms itself: exchange.form_field(request.form.get(...)))
    if isinstance(verdict, Answer):
        return reply(verdict)
    ...the app runs; when its response starts with ``status``:
    commit = manager.commit(session) if exchange.start(status) else None   # (a SessionError:
    result = exchange.respond(status, vary=..., cache_control=..., commit=commit)  # answer it)
    # an Edit (headers to add, new Vary / Cache-Control values), or an Answer that replaces
    # the response (e.g. SessionTooLarge while rendering the cookie)

The rules it applies, the same on every integration:

* **Token.** The transports are tried in order; the answer goes through the transport the
  client used (even with a stale token), else through the first alone.
* **CSRF.** Unsafe methods of cookie-borne sessions (or of requests with no token while a
  cookie transport is in play: login CSRF) need a good ``Origin``/``Referer`` and a token from
  the header or, for form posts, the form field. WebSocket handshakes get the origin check.
* **5xx.** A response with a status of 500 or more commits nothing and sends no session
  header: a failed handler's half-made changes (a login, a logout, a write) are not kept.
* **Vary.** A response varies on the transports' request headers (``Cookie``...) when the
  request read its session (:attr:`~sessio.Session.is_accessed`, as it was when the response
  started) or the response carries a session header.
* **Cache-Control.** A response carrying a session header and a ``Cache-Control`` that lets
  shared caches store it (no ``private``, no ``no-store``) is made ``private``: ``public`` and
  ``s-maxage`` are dropped, so no proxy hands one visitor's cookie to another.
* **Errors.** A :class:`~sessio.errors.SessionError` at load, at commit or while rendering the
  token (``SessionTooLarge``) is answered with its ``status_code`` and JSON ``to_dict()``
  (``no-store``), or by the ``on_error`` hook; one escaping the app before its response
  started is answered so when it is a client error (4xx) or ``StoreUnavailable``.
"""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any, Final, Generic, TypeVar

from ._exchange_events import (
    PROCEED,
    UNTOUCHED,
    Answer,
    Edit,
    Proceed,
    ReadForm,
    Request,
    answer_for,
)
from .errors import ConfigurationError, CSRFFailed, SessionError, StoreUnavailable
from .integrations._common import (
    TransportName,
    client_transport,
    emit_csrf_failed,
    forwarded_ip,
    forwarded_origin,
    private_cache_control,
    transport_name,
    vary_names,
    with_vary,
)
from .integrations.csrf import SAFE_METHODS, CSRFOptions, check_origin, check_request, form_token
from .integrations.csrf import is_form as _is_form
from .manager import Commit, SessionManager, SyncSessionManager
from .policy import Policy
from .session import Session
from .stores.base import Store
from .stores.client import ClientSideStore
from .transports.base import (
    CookieTransport,
    SecretLike,
    Transport,
    read_token,
    transports_for,
)

__all__ = [
    "DEFAULT_CSRF",
    "PROCEED",
    "UNTOUCHED",
    "Answer",
    "Edit",
    "Exchange",
    "Lifecycle",
    "Proceed",
    "ReadForm",
    "Request",
    "answer_for",
]

H = TypeVar("H")  # the on_error hook's type, whatever the integration makes of it
M = TypeVar("M", SessionManager, SyncSessionManager)

#: Frozen, so one shared default is safe.
DEFAULT_CSRF: Final = CSRFOptions()


class Lifecycle(Generic[M, H]):
    """What every request of one middleware shares; :meth:`begin` opens a request's exchange.

    ``manager`` is only read (its policy, events and clock), never called: the plumbing calls
    it. ``on_error`` is handed back in every :class:`Answer` for the plumbing to call.
    """

    def __init__(
        self,
        manager: M,
        transports: Sequence[Transport],
        *,
        csrf: CSRFOptions | None = DEFAULT_CSRF,
        exclude_paths: Sequence[str] = (),
        trust_forwarded: bool = False,
        on_error: H | None = None,
    ) -> None:
        if not transports or not all(isinstance(t, Transport) for t in transports):
            raise ConfigurationError("transports must be a non-empty list of Transport")
        if csrf is not None and not isinstance(csrf, CSRFOptions):
            raise ConfigurationError("csrf must be a CSRFOptions or None")
        if isinstance(exclude_paths, str) or not all(
            isinstance(p, str) and p for p in exclude_paths
        ):
            raise ConfigurationError("exclude_paths must be a sequence of path patterns")
        if on_error is not None and not callable(on_error):
            raise ConfigurationError("on_error must be callable")
        self.manager: M = manager
        self.transports: tuple[Transport, ...] = tuple(transports)
        self.csrf = csrf if manager.policy.csrf else None
        self.exclude_paths = tuple(exclude_paths)
        self.trust_forwarded = trust_forwarded
        self.on_error: H | None = on_error
        #: What ``sessio.transport`` says for a token each transport found (looked up, not
        #: recomputed, on every request).
        self.names: dict[Transport | None, TransportName | None] = {
            t: transport_name(t) for t in (None, *self.transports)
        }
        self.vary = vary_names(self.transports)
        self._fresh_vary = with_vary(None, self.vary)  # a response without Vary: every time
        self.cookies = any(isinstance(t, CookieTransport) for t in self.transports)

    @classmethod
    def configure(
        cls,
        manager_class: type[M],
        *,
        store: Store | ClientSideStore | None = None,
        secret_key: SecretLike | None = None,
        policy: Policy | None = None,
        manager: M | None = None,
        transports: Sequence[Transport] | None = None,
        csrf: CSRFOptions | None = DEFAULT_CSRF,
        exclude_paths: Sequence[str] = (),
        trust_forwarded: bool = False,
        on_error: H | None = None,
    ) -> Lifecycle[M, H]:
        """The lifecycle a middleware's keyword arguments describe, checked as a whole.

        Give ``store`` (and optionally ``policy``) or a ready ``manager`` of ``manager_class``;
        ``secret_key`` signs the tokens of the transports the policy names, unless
        ``transports`` are given ready-made (they sign their own).
        """
        if manager is None:
            if store is None:
                raise ConfigurationError("the middleware needs a store (or a manager)")
            manager = manager_class(store, policy)
        elif store is not None or policy is not None:
            raise ConfigurationError("pass a manager, or a store and policy, not both")
        elif not isinstance(manager, manager_class):
            kind = "the async one" if manager_class is SessionManager else "no event loop"
            raise ConfigurationError(
                f"manager must be a {manager_class.__name__} ({kind}), got {type(manager).__name__}"
            )
        if transports is None:
            if secret_key is None and not manager.seals_tokens:
                raise ConfigurationError("secret_key is required to sign session tokens")
            built = transports_for(manager.policy, secret_key, raw=manager.seals_tokens)
        else:
            if secret_key is not None:
                raise ConfigurationError("transports sign their own tokens: drop secret_key")
            built = list(transports)
        return cls(
            manager,
            built,
            csrf=csrf,
            exclude_paths=exclude_paths,
            trust_forwarded=trust_forwarded,
            on_error=on_error,
        )

    def excludes(self, path: str) -> bool:
        """Whether ``path`` matches ``exclude_paths`` (it then gets no session at all)."""
        return bool(self.exclude_paths) and any(
            fnmatchcase(path, pattern) for pattern in self.exclude_paths
        )

    def begin(self, request: Request) -> Exchange[H]:
        """The exchange of one request."""
        return Exchange(self, request)


class Exchange(Generic[H]):
    """One request's session decisions, in the order the plumbing meets them (module docs).

    ``token``, ``ip`` and ``user_agent`` are what to load the session with;
    ``transport_name`` is what ``scope``/``environ["sessio.transport"]`` says.
    """

    __slots__ = (
        "_accessed",
        "_life",
        "channel",
        "ip",
        "request",
        "session",
        "token",
        "transport_name",
        "user_agent",
        "writer",
    )

    def __init__(self, lifecycle: Lifecycle[Any, H], request: Request) -> None:
        self._life = lifecycle
        self.request = request
        headers = request.headers
        transports = lifecycle.transports
        self.token, carrier = read_token(transports, headers)
        self.transport_name = lifecycle.names[carrier]
        #: The transport the client used (or tried, with a stale token), if any.
        self.channel = client_transport(transports, headers, carrier)
        #: The transport that answers: that one, or else the first alone.
        self.writer: Transport = self.channel or transports[0]
        ip = forwarded_ip(headers) if lifecycle.trust_forwarded else None
        self.ip = ip if ip is not None else request.client
        agents = headers("user-agent")
        self.user_agent = agents[0] if agents else None
        self.session: Session | None = None
        self._accessed = False

    def __repr__(self) -> str:
        return f"Exchange({self.request.method} {self.request.path!r})"

    def loaded(self, session: Session) -> None:
        """The manager loaded (or started) ``session`` for this request."""
        self.session = session

    # -- CSRF ----------------------------------------------------------------------------------

    def csrf(self) -> Proceed | ReadForm | Answer[H]:
        """The verdict before the app runs: :data:`PROCEED`, :class:`ReadForm`, or a refusal."""
        options, request = self._life.csrf, self.request
        if options is None:
            return PROCEED
        websocket = request.websocket
        # (Most requests are safe ones: they are spared everything below.)
        if not websocket and request.method.upper() in SAFE_METHODS:
            return PROCEED
        if options.is_exempt(request.path) or not self._cookie_borne():
            return PROCEED
        if websocket:  # a handshake carries no token: its origin is what can be checked
            if not options.check_origin:
                return PROCEED
            scheme, host = self._origin()
            reason = check_origin(request.headers, scheme=scheme, host=host, options=options)
            return PROCEED if reason is None else self._refuse(reason)
        sent = request.headers(options.header_name.lower())
        if not sent and _is_form(self._content_type()):
            return ReadForm(options.max_form_bytes)
        return self._verdict(sent[0] if sent else None)

    def form(self, body: bytes | None) -> Proceed | Answer[H]:
        """The verdict once the form ``body`` is read (``None``: it passed the limit)."""
        options = self._life.csrf
        if options is None:
            return PROCEED
        if body is None:
            return self._refuse(
                f"form body over {options.max_form_bytes} bytes: "
                f"send the token in the {options.header_name} header"
            )
        return self._verdict(form_token(self._content_type(), body, options.field_name))

    def form_field(self, token: str | None) -> Proceed | Answer[H]:
        """The verdict from the form field's value, for frameworks that parse forms themselves."""
        return self._verdict(token)

    def _verdict(self, submitted: str | None) -> Proceed | Answer[H]:
        options, request, session = self._life.csrf, self.request, self._session()
        if options is None:
            return PROCEED
        scheme, host = self._origin()
        reason = check_request(
            method=request.method,
            path=request.path,
            headers=request.headers,
            scheme=scheme,
            host=host,
            session=session,
            submitted=submitted,
            options=options,
        )
        return PROCEED if reason is None else self._refuse(reason)

    def _refuse(self, reason: str) -> Answer[H]:
        request = self.request
        session = self._session()
        emit_csrf_failed(
            self._life.manager, session, reason, method=request.method, path=request.path
        )
        return self.answer(CSRFFailed(reason))

    def _cookie_borne(self) -> bool:
        # No token at all still counts when cookies are in play: that is login CSRF.
        channel = self.channel
        return isinstance(channel, CookieTransport) or (channel is None and self._life.cookies)

    def _origin(self) -> tuple[str, str]:
        request = self.request
        scheme = {"ws": "http", "wss": "https"}.get(request.scheme, request.scheme)
        if self._life.trust_forwarded:
            return forwarded_origin(request.headers, scheme, request.host)
        return scheme, request.host

    def _content_type(self) -> str:
        values = self.request.headers("content-type")
        return values[0] if values else ""

    def _session(self) -> Session:
        if self.session is None:
            raise RuntimeError("Exchange.loaded(session) comes before the CSRF verdict")
        return self.session

    # -- the response ------------------------------------------------------------------------------

    def start(self, status: int) -> bool:
        """The app's response starts with ``status``: whether to commit the session now.

        Remembers whether the session was read so far (the commit reads it too).
        """
        session = self.session
        if session is None:
            return False
        self._accessed = session.is_accessed
        return status < 500

    def respond(
        self,
        status: int,
        *,
        vary: str | None = None,
        cache_control: str | None = None,
        commit: Commit | None,
        transport: Transport | None = None,
    ) -> Edit | Answer[H]:
        """How the response that :meth:`start` announced changes, once ``commit`` is done.

        ``vary`` and ``cache_control`` are the response's current values; ``commit`` is
        ``None`` when nothing was committed; ``transport`` overrides :attr:`writer` (Flask
        writes a permanent session's cookie with another expiry).
        """
        sent: list[tuple[str, str]] = []
        if commit is not None and status < 500:
            writer = transport if transport is not None else self.writer
            try:
                sent = writer.response_headers(commit, had_token=self.channel is not None)
            except SessionError as exc:  # a client-side session grown past what a cookie holds
                return self.answer(exc)
        if not sent and not self._accessed:
            return UNTOUCHED
        return Edit(
            tuple(sent),
            self._life._fresh_vary if vary is None else with_vary(vary, self._life.vary),
            private_cache_control(cache_control) if sent else None,
        )

    def settles(self) -> bool:
        """Whether a WebSocket's session, changed after its handshake, is saved at close (no
        header reaches the client any more, so the commit is silent)."""
        return self.session is not None and self.session.is_modified

    # -- errors ------------------------------------------------------------------------------------

    def answer(self, error: SessionError) -> Answer[H]:
        """The response that answers ``error`` (at load, at commit, or refused)."""
        return answer_for(error, None if self.request.websocket else self._life.on_error)

    def escaped(self, error: SessionError) -> Answer[H] | None:
        """The answer to ``error`` escaping the app before its response started, or ``None``
        when it must propagate (a programming error is not dressed as an answer)."""
        if error.status_code < 500 or isinstance(error, StoreUnavailable):
            return self.answer(error)
        return None
