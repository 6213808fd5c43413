"""What ASGI and WSGI share: one error body, proxy headers, the transport that carried the token,
and the transport that answers a request that carried none."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from starlette.testclient import TestClient

from sessio import (
    AuthenticationRequired,
    CSRFFailed,
    MemoryStore,
    Policy,
    SessionManager,
    StoreUnavailable,
    SyncSessionManager,
)
from sessio.integrations import asgi, wsgi
from sessio.integrations._common import (
    client_transport,
    error_json,
    forwarded_ip,
    forwarded_origin,
    forwarded_value,
    transport_name,
)
from sessio.manager import Commit
from sessio.transports import BearerTransport, CookieTransport, HeaderTransport, Transport
from sessio.transports.base import Headers

from .apps import SECRET
from .wsgi_support import call


def headers_of(*pairs: tuple[str, str]) -> Headers:
    """A :data:`Headers` view of ``pairs``, repeated names kept in order."""
    return lambda name: [value for key, value in pairs if key.lower() == name]


# -- one error body ---------------------------------------------------------------------------------


def test_error_json_is_to_dict_as_compact_json() -> None:
    error = AuthenticationRequired("log in first")
    assert error_json(error) == b'{"error":"AUTHENTICATION_REQUIRED","detail":"log in first"}'


def test_error_json_keeps_an_outages_cause_out_of_the_answer() -> None:
    body = json.loads(error_json(StoreUnavailable("redis at 10.1.2.3:6379 refused")))
    assert body == {"error": "STORE_UNAVAILABLE", "detail": "the session store is unavailable"}


# -- proxy headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ((), None),
        ((("X-Forwarded-For", "198.51.100.4"),), "198.51.100.4"),
        # The client wrote the left entry itself; our proxy appended the right one.
        ((("X-Forwarded-For", "6.6.6.6, 198.51.100.4"),), "198.51.100.4"),
        ((("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "198.51.100.4")), "198.51.100.4"),
        ((("X-Forwarded-For", "198.51.100.4 ,  "),), None),  # an empty last entry is no entry
    ],
)
def test_forwarded_value_is_the_last_entry(
    pairs: tuple[tuple[str, str], ...], expected: str | None
) -> None:
    assert forwarded_value(headers_of(*pairs), "x-forwarded-for") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("6.6.6.6, 2001:DB8::7", "2001:db8::7"),
        ("198.51.100.4, unknown", None),  # the proxy's own entry is unreadable: no address
        ("198.51.100.4:8080", None),
    ],
)
def test_forwarded_ip_accepts_only_an_address(value: str, expected: str | None) -> None:
    assert forwarded_ip(headers_of(("X-Forwarded-For", value))) == expected


def test_forwarded_origin_reads_the_last_entries_and_keeps_what_it_cannot_use() -> None:
    forged = headers_of(
        ("X-Forwarded-Proto", "http, HTTPS"), ("X-Forwarded-Host", "evil.example, shop.example")
    )
    assert forwarded_origin(forged, "http", "backend:8000") == ("https", "shop.example")
    odd = headers_of(("X-Forwarded-Proto", "gopher"))
    assert forwarded_origin(odd, "http", "backend:8000") == ("http", "backend:8000")


# -- transports -------------------------------------------------------------------------------------


class EnvTransport(Transport):
    """A transport of the app's own making."""

    def read(self, headers: Headers) -> str | None:
        return None

    def response_headers(self, commit: Commit, *, had_token: bool) -> list[tuple[str, str]]:
        return []


def test_transport_name_says_which_kind_carried_the_token() -> None:
    assert transport_name(None) is None
    assert transport_name(CookieTransport(SECRET)) == "cookie"
    assert transport_name(HeaderTransport(SECRET, "X-Api-Session")) == "header"
    assert transport_name(BearerTransport(SECRET)) == "bearer"  # a HeaderTransport subclass
    assert transport_name(EnvTransport(SECRET)) == "other"


def test_client_transport_is_the_carrier_then_a_stale_token_then_none() -> None:
    cookie, header = CookieTransport(SECRET), HeaderTransport(SECRET)
    both = [cookie, header]
    stale = headers_of(("X-Session-ID", "expired.token"))
    assert client_transport(both, headers_of(), header) is header
    assert client_transport(both, stale, None) is header
    assert client_transport(both, headers_of(), None) is None


# -- the same answers from both middlewares -------------------------------------------------------


@dataclasses.dataclass
class Answer:
    """What a request got back: the JSON body and the session's own headers."""

    body: dict[str, Any]
    set_cookie: list[str]
    session_header: list[str]


class Site:
    """One app behind sessio's ASGI or WSGI middleware; ``/write`` stores, ``/read`` reads.

    Both answer ``{"transport": <scope/environ "sessio.transport">, "data": ...}``.
    """

    def __init__(self, kind: str, policy: Policy) -> None:
        self.kind = kind
        self.policy = policy
        store = MemoryStore()
        if kind == "asgi":
            self.app: Any = asgi.SessionMiddleware(
                self._asgi_app, manager=SessionManager(store, policy), secret_key=SECRET
            )
        else:
            self.app = wsgi.SessionMiddleware(
                self._wsgi_app, manager=SyncSessionManager(store, policy), secret_key=SECRET
            )

    @staticmethod
    def _answer(path: str, session: Any, transport: Any) -> bytes:
        if path == "/write":
            session["visits"] = session.get("visits", 0) + 1
        return json.dumps({"transport": transport, "data": dict(session)}).encode()

    async def _asgi_app(self, scope: Any, receive: Any, send: Any) -> None:
        body = self._answer(scope["path"], asgi.get_session(scope), scope["sessio.transport"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    def _wsgi_app(self, environ: Any, start_response: Any) -> list[bytes]:
        session = environ["sessio.session"]
        body = self._answer(environ["PATH_INFO"], session, environ["sessio.transport"])
        start_response("200 OK", [("Content-Type", "application/json")])
        return [body]

    def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        """A GET (no CSRF token needed) with exactly ``headers``; no cookie jar."""
        name = (self.policy.header_name or "X-Session-ID").lower()
        if self.kind == "asgi":
            response = TestClient(self.app).get(path, headers=headers)
            return Answer(
                response.json(),
                response.headers.get_list("set-cookie"),
                response.headers.get_list(name),
            )
        result = call(self.app, "GET", path, headers=headers)
        return Answer(json.loads(result.body), result.header("set-cookie"), result.header(name))

    def token(self, answer: Answer) -> str:
        """The signed token an answer handed out, by cookie or by header."""
        if answer.session_header:
            return answer.session_header[0]
        (cookie,) = answer.set_cookie
        return cookie.split(";", 1)[0].split("=", 1)[1]


BROWSER_FIRST = Policy.web().development().replace(transports=("cookie", "header", "bearer"))


@pytest.fixture(params=["asgi", "wsgi"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_the_transport_that_carried_the_token_is_named_for_the_app(kind: str) -> None:
    site = Site(kind, BROWSER_FIRST)
    assert site.get("/read").body["transport"] is None  # no token: a fresh session
    token = site.token(site.get("/write"))
    cookie = {"Cookie": f"{BROWSER_FIRST.cookie.name}={token}"}
    by_cookie = site.get("/read", cookie).body
    assert by_cookie == {"transport": "cookie", "data": {"visits": 1}}
    assert site.get("/read", {"X-Session-ID": token}).body["transport"] == "header"
    assert site.get("/read", {"Authorization": f"Bearer {token}"}).body["transport"] == "bearer"
    # The policy's order decides when several are valid; a bad token carries nothing.
    assert site.get("/read", {**cookie, "X-Session-ID": token}).body["transport"] == "cookie"
    assert site.get("/read", {"X-Session-ID": token[:-2] + "xx"}).body["transport"] is None


@pytest.mark.parametrize(
    ("transports", "by_cookie"),
    [(("cookie", "header"), True), (("header", "cookie"), False), (("bearer", "cookie"), False)],
)
def test_a_request_without_a_token_is_answered_by_the_first_transport_only(
    kind: str, transports: tuple[Any, ...], by_cookie: bool
) -> None:
    site = Site(kind, Policy.web().development().replace(transports=transports))
    answer = site.get("/write")
    assert bool(answer.set_cookie) is by_cookie
    assert bool(answer.session_header) is not by_cookie  # never both: HttpOnly would be moot


def test_a_stale_header_token_is_answered_in_that_header_even_behind_a_cookie(kind: str) -> None:
    site = Site(kind, BROWSER_FIRST)
    answer = site.get("/write", {"X-Session-ID": "long-gone.token"})
    assert answer.set_cookie == []
    (token,) = answer.session_header
    assert site.get("/read", {"X-Session-ID": token}).body["data"] == {"visits": 1}


def test_a_csrf_refusal_is_the_shared_error_body(kind: str) -> None:
    site = Site(kind, BROWSER_FIRST)
    if kind == "asgi":
        response = TestClient(site.app).post("/write")
        status, body = response.status_code, response.content
    else:
        result = call(site.app, "POST", "/write")
        status, body = result.status, result.body
    assert status == 403
    assert body == error_json(CSRFFailed("CSRF token missing"))
