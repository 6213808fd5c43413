"""One request's exchange: the session decisions it makes, step by step, with no I/O."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

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
from .errors import CSRFFailed, SessionError, StoreUnavailable, ValueNotSerializable
from .events import EventKind, SessionEvent
from .integrations._common import (
    client_transport,
    emit_csrf_failed,
    forwarded_ip,
    forwarded_origin,
    private_cache_control,
    with_vary,
)
from .integrations.csrf import (
    SAFE_METHODS,
    check_origin,
    check_request,
    form_scan_allowed,
    form_token,
)
from .integrations.csrf import is_form as _is_form
from .manager import Commit
from .session import Session
from .transports.base import CookieTransport, Transport, read_token
from .transports.cookies import render_delete_cookie

if TYPE_CHECKING:
    from ._lifecycle import Lifecycle
    from .legacy import Found

__all__ = ["Exchange"]

H = TypeVar("H")  # the on_error hook's type, whatever the integration makes of it


class Exchange(Generic[H]):
    """One request's session decisions, in the order the plumbing meets them (module docs).

    ``token``, ``ip`` and ``user_agent`` are what to load the session with;
    ``transport_name`` is what ``scope``/``environ["sessio.transport"]`` says.
    """

    __slots__ = (
        "_accessed",
        "_life",
        "_spent",
        "channel",
        "ip",
        "legacy",
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
        # A legacy cookie counts only when no sessio token verified: under the same name (the
        # Starlette drop-in's "session") the two are told apart by their signed format.
        legacy = lifecycle.legacy
        #: The verified legacy cookie to import (``None``: none, or a sessio token came).
        self.legacy: Found | None = (
            legacy.read(headers, now=lifecycle.manager.clock())
            if legacy is not None and self.token is None
            else None
        )
        self._spent = False

    def __repr__(self) -> str:
        return f"Exchange({self.request.method} {self.request.path!r})"

    def loaded(self, session: Session) -> None:
        """The manager loaded (or started) ``session`` for this request."""
        self.session = session

    def migrated(self, session: Session, *, claimed: bool) -> None:
        """The legacy cookie's mark was written (``claimed``) or found (a replay): import its
        data into the new ``session`` only in the first case; delete the cookie in both."""
        found = self.legacy
        if found is None:
            return
        self._spent = True
        if not claimed:
            return
        skipped = 0
        for key, value in found.data.items():
            try:
                session[key] = value
            except ValueNotSerializable:  # e.g. a lone surrogate JSON let through
                skipped += 1
        manager = self._life.manager
        if manager.events:
            detail = {"format": type(found.reader).__name__, "keys": len(found.data) - skipped}
            manager.events.emit(
                SessionEvent(EventKind.MIGRATED, None, None, manager.clock(), detail)
            )

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
            # A body is read only if the request could pass the origin check at all: a
            # cross-site form post is refused before a byte of it is parsed.
            scheme, host = self._origin()
            if form_scan_allowed(request.headers, scheme=scheme, host=host, options=options):
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
        if self._spent and self.legacy is not None:
            sent = self._forget_legacy(self.legacy, sent, transport or self.writer)
        if not sent and not self._accessed:
            return UNTOUCHED
        return Edit(
            tuple(sent),
            self._life.fresh_vary if vary is None else with_vary(vary, self._life.vary),
            private_cache_control(cache_control) if sent else None,
        )

    @staticmethod
    def _forget_legacy(
        found: Found, sent: list[tuple[str, str]], writer: Transport
    ) -> list[tuple[str, str]]:
        """``sent`` plus the deletion of the imported legacy cookie, unless the new token's
        cookie, sent under the very same name, path and domain, overwrites it anyway (two
        Set-Cookie of one cookie in one response would leave the outcome to the browser)."""
        reader = found.reader
        if sent and isinstance(writer, CookieTransport):
            options = writer.options
            if (options.name, options.path, options.domain) == (
                reader.name,
                reader.path,
                reader.domain,
            ):
                return sent
        return [*sent, ("set-cookie", render_delete_cookie(reader.delete_options()))]

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
