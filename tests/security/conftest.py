"""The security suite's site: the request cycle every integration runs, with no framework.

:class:`Site` reads the token from request headers with the real transports, loads the
session, runs a handler, commits, and answers with the transports' real response headers, so
an attack here is an attack on the same code a middleware calls. :class:`Browser` keeps the
cookie the way a browser's jar would. Tests that need the wire itself (a real server) live in
``test_http_*.py``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from http.cookies import SimpleCookie
from typing import Any

import pytest

from sessio import (
    Commit,
    EventKind,
    MemoryStore,
    Policy,
    Session,
    SessionEvent,
    Store,
    SyncSessionManager,
)
from sessio.transports import TokenSigner, Transport, read_token, transports_for

from ..conftest import FakeClock

#: Two signing keys of the required length; tests never use a real secret.
KEY_OLD = "old-signing-key-for-the-security-suite-0001"
KEY_NEW = "new-signing-key-for-the-security-suite-0002"

Handler = Callable[[Session], Any]


def header_view(pairs: Sequence[tuple[str, str]] | Mapping[str, str]) -> Callable[[str], list[str]]:
    """A :data:`~sessio.transports.Headers` view over request header pairs."""
    items = list(pairs.items()) if isinstance(pairs, Mapping) else list(pairs)
    return lambda name: [v for k, v in items if k.lower() == name]


@dataclasses.dataclass
class Response:
    """What one request produced: the session the handler saw, the commit, the headers."""

    session: Session
    commit: Commit
    headers: list[tuple[str, str]]
    result: Any = None

    def set_cookie(self) -> str | None:
        """The one ``Set-Cookie`` value, or ``None``."""
        values = [v for k, v in self.headers if k == "set-cookie"]
        assert len(values) <= 1, values
        return values[0] if values else None

    def header(self, name: str) -> str | None:
        """The value of response header ``name`` (lower-case), or ``None``."""
        values = [v for k, v in self.headers if k == name]
        return values[0] if values else None


class Site:
    """A server-side session stack: a manager, its policy's transports, one signer."""

    def __init__(
        self,
        *,
        clock: FakeClock,
        store: Store | None = None,
        policy: Policy | None = None,
        keys: Sequence[str] = (KEY_NEW,),
    ) -> None:
        self.clock = clock
        self.store = store if store is not None else MemoryStore(max_sessions=None, clock=clock)
        self.policy = policy if policy is not None else Policy()
        self.events: list[SessionEvent] = []
        self.manager = SyncSessionManager(self.store, self.policy, clock=clock)
        self.manager.events.subscribe(self.events.append)
        self.rekey(keys)

    def rekey(self, keys: Sequence[str]) -> None:
        """Restart with another key list (a deploy that rotates secrets)."""
        self.signer = TokenSigner(list(keys))
        self.transports: list[Transport] = transports_for(self.policy, self.signer)
        for transport in self.transports:
            if hasattr(transport, "clock"):
                transport.clock = self.clock  # type: ignore[attr-defined]

    def request(
        self,
        headers: Sequence[tuple[str, str]] | Mapping[str, str] = (),
        handler: Handler | None = None,
    ) -> Response:
        """One request: what a middleware does around ``handler``."""
        view = header_view(headers)
        token, _ = read_token(self.transports, view)
        session = self.manager.load(token, ip="203.0.113.7", user_agent="security-suite")
        result = handler(session) if handler is not None else None
        commit = self.manager.commit(session)
        out: list[tuple[str, str]] = []
        for transport in self.transports:
            out.extend(transport.response_headers(commit, had_token=token is not None))
        return Response(session, commit, out, result)

    @property
    def name(self) -> str:
        """The session cookie's name (``__Host-sessio`` by default)."""
        return self.policy.cookie.name

    def cookie(self, value: str) -> tuple[str, str]:
        """A ``Cookie`` request header carrying ``value`` as the session cookie."""
        return ("cookie", f"{self.name}={value}")

    def sign(self, session_id: str) -> str:
        """The token the client gets for ``session_id``."""
        return self.signer.sign(session_id)

    def kinds(self) -> list[EventKind]:
        """The kinds of every event so far."""
        return [e.kind for e in self.events]


def cookie_value(set_cookie: str, name: str) -> str:
    """The value a ``Set-Cookie`` header gives cookie ``name``, parsed by the stdlib."""
    jar: SimpleCookie = SimpleCookie()
    jar.load(set_cookie)
    return jar[name].value


class Browser:
    """One cookie jar on one site: sends its cookie, keeps what ``Set-Cookie`` says."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.cookie: str | None = None

    def visit(
        self, handler: Handler | None = None, headers: Sequence[tuple[str, str]] = ()
    ) -> Response:
        """A request carrying the jar's cookie (and ``headers``)."""
        headers = list(headers)
        if self.cookie is not None:
            headers.append(self.site.cookie(self.cookie))
        response = self.site.request(headers, handler)
        set_cookie = response.set_cookie()
        if set_cookie is not None:
            value = cookie_value(set_cookie, self.site.name)
            self.cookie = value if "Max-Age=0" not in set_cookie else None
        return response


def write(key: str, value: Any) -> Handler:
    """A handler that stores ``value`` under ``key``."""

    def handler(session: Session) -> None:
        session[key] = value

    return handler


@pytest.fixture
def site(clock: FakeClock) -> Site:
    """A :class:`Site` on a memory store with the default policy."""
    return Site(clock=clock)


@pytest.fixture
def browser(site: Site) -> Browser:
    """A :class:`Browser` on :func:`site`."""
    return Browser(site)


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record of every logger, at DEBUG."""
    with caplog.at_level(logging.DEBUG):
        yield caplog
