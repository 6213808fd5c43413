"""The request exchange on its own: no server, no framework, only the decisions it hands back."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessio import (
    CSRFFailed,
    EventKind,
    MemoryStore,
    Policy,
    SessionEvent,
    StoreUnavailable,
    SyncSessionManager,
)
from sessio.errors import ConfigurationError, SessionTooLarge
from sessio.exchange import (
    PROCEED,
    UNTOUCHED,
    Answer,
    Edit,
    Exchange,
    Lifecycle,
    ReadForm,
    Request,
    answer_for,
)
from sessio.integrations._common import private_cache_control
from sessio.integrations.csrf import CSRFOptions
from sessio.manager import Commit, CommitAction
from sessio.transports import CookieTransport, HeaderTransport, TokenSigner

SECRET = secrets.token_urlsafe(32)
POLICY = Policy.web().development().replace(transports=("cookie", "header"))


def headers_of(pairs: dict[str, str]) -> Any:
    lowered = {k.lower(): [v] for k, v in pairs.items()}
    return lambda name: lowered.get(name, [])


def lifecycle(**options: Any) -> Lifecycle[SyncSessionManager, Any]:
    options.setdefault("secret_key", SECRET)
    return Lifecycle.configure(SyncSessionManager, store=MemoryStore(), policy=POLICY, **options)


def begin(
    life: Lifecycle[SyncSessionManager, Any],
    method: str = "GET",
    headers: dict[str, str] | None = None,
    **request: Any,
) -> tuple[Exchange[Any], SyncSessionManager]:
    exchange = life.begin(
        Request(method, request.pop("path", "/"), headers_of(headers or {}), **request)
    )
    manager = life.manager
    exchange.loaded(manager.load(exchange.token, ip=exchange.ip, user_agent=exchange.user_agent))
    return exchange, manager


def signed(token: str) -> str:
    return TokenSigner(SECRET).sign(token)


# -- configuration ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"store": None}, "needs a store"),
        ({"manager": SyncSessionManager(MemoryStore())}, "not both"),
        ({"secret_key": None}, "secret_key is required"),
        ({"transports": [CookieTransport(SECRET)]}, "drop secret_key"),
        ({"csrf": {"field": "x"}}, "CSRFOptions"),
        ({"exclude_paths": "/static/*"}, "sequence of path patterns"),
        ({"on_error": "page.html"}, "callable"),
    ],
)
def test_configuration_is_checked_as_a_whole(options: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"store": MemoryStore(), "secret_key": SECRET, **options}
    with pytest.raises(ConfigurationError, match=message):
        Lifecycle.configure(SyncSessionManager, **arguments)


def test_excluded_paths_are_shell_patterns() -> None:
    life = lifecycle(exclude_paths=["/static/*"])
    assert life.excludes("/static/app.css")
    assert not life.excludes("/app")


# -- token and transport ----------------------------------------------------------------------------


def test_no_token_is_answered_by_the_first_transport_alone() -> None:
    exchange, _ = begin(lifecycle())
    assert exchange.token is None
    assert exchange.transport_name is None
    assert isinstance(exchange.writer, CookieTransport)


def test_a_stale_header_token_is_answered_through_the_header() -> None:
    unknown, _ = begin(lifecycle(), headers={"X-Session-ID": signed("x" * 43)})
    assert unknown.session is not None
    assert unknown.session.is_new  # well signed, but it names no stored session...
    assert isinstance(unknown.writer, HeaderTransport)  # ...so the answer goes where it came
    good = signed("x" * 43)
    forged = good[:-1] + ("B" if good.endswith("A") else "A")
    tampered, _ = begin(lifecycle(), headers={"X-Session-ID": forged})
    assert tampered.token is None
    assert isinstance(tampered.writer, HeaderTransport)


def test_the_client_address_comes_from_our_proxy_only_when_trusted() -> None:
    forwarded = {"X-Forwarded-For": "6.6.6.6, 203.0.113.7"}
    trusted, _ = begin(lifecycle(trust_forwarded=True), headers=forwarded, client="10.0.0.1")
    plain, _ = begin(lifecycle(), headers=forwarded, client="10.0.0.1")
    assert (trusted.ip, plain.ip) == ("203.0.113.7", "10.0.0.1")


# -- CSRF ---------------------------------------------------------------------------------------------


def test_a_form_post_without_a_header_asks_for_the_body() -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    exchange, _ = begin(lifecycle(), "POST", form)
    verdict = exchange.csrf()
    assert verdict == ReadForm(CSRFOptions().max_form_bytes)
    token = exchange.session.csrf_token if exchange.session is not None else ""
    assert exchange.form(f"csrf_token={token}".encode()) is PROCEED
    refused = exchange.form(None)
    assert isinstance(refused, Answer)
    assert refused.status == 403
    assert "header" in refused.error.message


def test_a_framework_that_parses_forms_hands_over_the_field() -> None:
    exchange, _ = begin(lifecycle(), "POST")
    token = exchange.session.csrf_token if exchange.session is not None else ""
    assert exchange.form_field(token) is PROCEED
    assert isinstance(exchange.form_field("forged"), Answer)


def test_each_refusal_is_one_event_with_its_reason() -> None:
    events: list[SessionEvent] = []
    life = lifecycle()
    life.manager.events.subscribe(events.append)
    exchange, _ = begin(life, "POST", {"Origin": "https://evil.example"}, path="/pay")
    verdict = exchange.csrf()
    assert isinstance(verdict, Answer)
    assert isinstance(verdict.error, CSRFFailed)
    (event,) = [e for e in events if e.kind is EventKind.CSRF_FAILED]
    assert event.detail == {"reason": "Origin does not match", "method": "POST", "path": "/pay"}


def test_safe_methods_header_sessions_and_exempt_paths_proceed() -> None:
    life = lifecycle(csrf=CSRFOptions(exempt_paths=["/hooks/*"]))
    assert begin(life, "GET")[0].csrf() is PROCEED
    assert begin(life, "POST", path="/hooks/github")[0].csrf() is PROCEED
    stored = life.manager.load(None)
    stored["n"] = 1
    commit = life.manager.commit(stored)
    assert commit.token is not None
    by_header = begin(life, "POST", {"X-Session-ID": signed(commit.token)})[0]
    assert by_header.transport_name == "header"
    assert by_header.csrf() is PROCEED  # no browser sends that header on its own


def test_a_websocket_handshake_gets_the_origin_check() -> None:
    foreign = {"Origin": "https://evil.example", "Host": "app.example"}
    exchange, _ = begin(
        lifecycle(), headers=foreign, scheme="wss", host="app.example", websocket=True
    )
    answer = exchange.csrf()
    assert isinstance(answer, Answer)
    assert answer.hook is None  # a refused handshake is no page an on_error could render
    own = {"Origin": "https://app.example"}
    exchange, _ = begin(lifecycle(), headers=own, scheme="wss", host="app.example", websocket=True)
    assert exchange.csrf() is PROCEED


# -- the response ---------------------------------------------------------------------------------------


def test_a_5xx_commits_nothing_yet_still_varies_on_a_read_session() -> None:
    exchange, _ = begin(lifecycle())
    assert exchange.session is not None
    exchange.session.get("x")
    assert exchange.start(500) is False
    edit = exchange.respond(500, commit=Commit(CommitAction.SET, "t" * 43, 0.0, True, 0.0))
    assert edit == Edit((), "Cookie, X-Session-ID", None)


def test_an_unread_session_without_a_session_header_is_untouched() -> None:
    exchange, manager = begin(lifecycle())
    assert exchange.start(200) is True
    assert exchange.session is not None
    assert exchange.respond(200, commit=manager.commit(exchange.session)) is UNTOUCHED


def test_a_session_header_makes_a_shared_cache_control_private_and_varies() -> None:
    exchange, manager = begin(lifecycle())
    assert exchange.session is not None
    exchange.session["n"] = 1
    assert exchange.start(200)
    edit = exchange.respond(
        200,
        vary="Accept",
        cache_control="public, s-maxage=60",
        commit=manager.commit(exchange.session),
    )
    assert isinstance(edit, Edit)
    assert [name for name, _ in edit.add] == ["set-cookie"]
    assert edit.vary == "Accept, Cookie, X-Session-ID"
    assert edit.cache_control == "private"
    applied = edit.apply([("Vary", "Accept"), ("Content-Type", "text/plain")])
    assert applied[0] == ("Vary", "Accept, Cookie, X-Session-ID")
    assert ("cache-control", "private") in applied


def test_a_cookie_too_large_to_send_becomes_the_answer() -> None:
    class Tiny(CookieTransport):
        def cookie_value(self, commit: Commit) -> str:
            raise SessionTooLarge("the session cookie would be 5000 bytes", size=5000, limit=4096)

    life = Lifecycle(SyncSessionManager(MemoryStore(), POLICY), [Tiny(SECRET)])
    exchange, manager = begin(life)
    assert exchange.session is not None
    exchange.session["n"] = 1
    exchange.start(200)
    answer = exchange.respond(200, commit=manager.commit(exchange.session))
    assert isinstance(answer, Answer)
    assert (answer.status, answer.error.code) == (500, "SESSION_TOO_LARGE")


# -- errors -----------------------------------------------------------------------------------------------


def test_an_answer_is_json_never_cached_and_hides_an_outages_cause() -> None:
    answer = answer_for(StoreUnavailable("postgres at 10.1.2.3 refused"))
    assert answer.status_line == "503 Service Unavailable"
    assert (
        answer.body == b'{"error":"STORE_UNAVAILABLE","detail":"the session store is unavailable"}'
    )
    assert dict(answer.headers) == {
        "content-type": "application/json",
        "content-length": str(len(answer.body)),
        "cache-control": "no-store",
    }


def test_only_client_errors_and_outages_escaping_the_app_are_answered() -> None:
    hook = lambda scope, error: None  # noqa: E731
    exchange, _ = begin(lifecycle(on_error=hook))
    answer = exchange.escaped(CSRFFailed("no"))
    assert answer is not None
    assert answer.hook is hook
    assert exchange.escaped(StoreUnavailable("down")) is not None
    assert exchange.escaped(SessionTooLarge("a programming error")) is None


# -- Cache-Control, as a parser ------------------------------------------------------------------------

_DIRECTIVE = st.sampled_from(
    [
        "public",
        "s-maxage=60",
        "max-age=5",
        "no-cache",
        'no-cache="Set-Cookie, Vary"',
        "must-revalidate",
        "immutable",
        "PUBLIC",
        " S-MaxAge=1 ",
    ]
)


@given(st.lists(_DIRECTIVE, min_size=1, max_size=6))
def test_a_rewritten_cache_control_is_private_and_stays_so(directives: list[str]) -> None:
    value = ", ".join(directives)
    out = private_cache_control(value)
    assert out is not None
    names = [d.split("=")[0].strip().lower() for d in out.split(", ") if '"' not in d]
    assert "public" not in names
    assert "s-maxage" not in names
    assert out.endswith("private")
    assert private_cache_control(out) is None  # once private, left alone


@given(st.text(max_size=40))
def test_any_cache_control_text_is_handled(value: str) -> None:
    out = private_cache_control(value)
    if out is not None:
        assert "private" in out
