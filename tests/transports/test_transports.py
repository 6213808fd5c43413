"""Transports: reading tokens from cookies and headers, answering with headers, end to end."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sessio import Commit, CommitAction, CookieOptions, MemoryStore, Policy, Principal
from sessio import SyncSessionManager as Manager
from sessio.ids import new_session_id
from sessio.transports import (
    BearerTransport,
    CookieTransport,
    Headers,
    HeaderTransport,
    TokenSigner,
    read_token,
    render_delete_cookie,
    transports_for,
)

from ..conftest import FakeClock

SECRET = "s" * 32
signer = TokenSigner(SECRET)


def headers(**values: str | list[str]) -> Headers:
    """A request's headers, looked up by lower-case name as ASGI and WSGI adapters do."""
    table = {
        k.replace("_", "-").lower(): v if isinstance(v, list) else [v] for k, v in values.items()
    }
    return lambda name: list(table.get(name, []))


def commit(action: CommitAction, token: str | None = None, end: float | None = None) -> Commit:
    return Commit(action, token, end, True, end)


# -- cookies ---------------------------------------------------------------------------------------------


def test_a_signed_cookie_is_read() -> None:
    session_id = new_session_id()
    transport = CookieTransport(SECRET)
    assert (
        transport.read(headers(cookie=f"a=1; __Host-sessio={signer.sign(session_id)}"))
        == session_id
    )


@pytest.mark.parametrize(
    "request_headers",
    [
        headers(),
        headers(cookie="other=1"),
        headers(cookie=f"__Host-sessio={new_session_id()}"),  # unsigned
        headers(
            cookie=f"__Host-sessio={TokenSigner('t' * 32).sign(new_session_id())}"
        ),  # other key
        headers(cookie=f"__Host-sessio={signer.sign(new_session_id())}x"),  # tampered
    ],
)
def test_missing_unsigned_or_tampered_cookies_are_no_token(request_headers: Headers) -> None:
    assert CookieTransport(SECRET).read(request_headers) is None


def test_two_cookies_of_one_name_are_no_token() -> None:
    """A sibling subdomain can toss a second cookie: refusing both defeats fixation."""
    one, two = signer.sign(new_session_id()), signer.sign(new_session_id())
    assert (
        CookieTransport(SECRET).read(headers(cookie=f"__Host-sessio={one}; __Host-sessio={two}"))
        is None
    )
    assert (
        CookieTransport(SECRET).read(
            headers(cookie=[f"__Host-sessio={one}", f"__Host-sessio={one}"])
        )
        is None
    )


def test_the_cookie_answers_each_commit(clock: FakeClock) -> None:
    transport = CookieTransport(SECRET, CookieOptions(name="sid"), clock=clock)
    session_id = new_session_id()
    [(name, value)] = transport.response_headers(
        commit(CommitAction.SET, session_id, clock.now + 3600), had_token=False
    )
    assert name == "set-cookie"
    assert value.startswith(f"sid={signer.sign(session_id)}; Path=/; Max-Age=3600; ")
    clear = transport.response_headers(commit(CommitAction.CLEAR), had_token=True)
    assert clear == [("set-cookie", render_delete_cookie(CookieOptions(name="sid")))]
    assert transport.response_headers(commit(CommitAction.CLEAR), had_token=False) == []
    assert transport.response_headers(commit(CommitAction.NONE, session_id), had_token=True) == []
    with pytest.raises(ValueError, match="token"):
        transport.cookie_value(commit(CommitAction.SET))


@pytest.mark.parametrize(("max_age", "expected"), [(120, "Max-Age=120;"), ("session", None)])
def test_a_fixed_or_browser_session_lifetime(
    clock: FakeClock, max_age: int | str, expected: str | None
) -> None:
    transport = CookieTransport(SECRET, CookieOptions(max_age=max_age), clock=clock)  # type: ignore[arg-type]
    value = transport.cookie_value(commit(CommitAction.SET, new_session_id(), clock.now + 9999))
    if expected is None:
        assert "Max-Age" not in value
        assert "Expires" not in value
    else:
        assert expected in value


# -- headers ----------------------------------------------------------------------------------------------


def test_a_header_token_is_read_and_echoed() -> None:
    session_id = new_session_id()
    transport = HeaderTransport(SECRET)
    assert transport.read(headers(x_session_id=signer.sign(session_id))) == session_id
    assert transport.read(headers(x_session_id=[signer.sign(session_id)] * 2)) is None
    assert transport.response_headers(
        commit(CommitAction.SET, session_id, 1.0), had_token=False
    ) == [("x-session-id", signer.sign(session_id))]
    assert transport.response_headers(commit(CommitAction.CLEAR), had_token=True) == [
        ("x-session-id", "")
    ]
    assert transport.response_headers(commit(CommitAction.NONE), had_token=True) == []
    custom = HeaderTransport(SECRET, "X-Api-Session")
    assert custom.read(headers(x_api_session=signer.sign(session_id))) == session_id


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("Bearer {t}", True),
        ("bearer {t}", True),
        ("  BEARER   {t}  ", True),
        ("Basic {t}", False),
        ("Bearer", False),
        ("{t}", False),
        ("Bearer {t} extra", False),
    ],
)
def test_bearer_tokens(value: str, found: bool) -> None:
    session_id = new_session_id()
    request = headers(authorization=value.format(t=signer.sign(session_id)))
    assert BearerTransport(SECRET).read(request) == (session_id if found else None)


def test_two_authorization_headers_are_no_token() -> None:
    token = "Bearer " + signer.sign(new_session_id())
    assert BearerTransport(SECRET).read(headers(authorization=[token, token])) is None


# -- choosing and combining -----------------------------------------------------------------------------------


def test_read_token_tries_transports_in_order() -> None:
    cookie_id, header_id = new_session_id(), new_session_id()
    transports = [CookieTransport(signer), HeaderTransport(signer)]
    both = headers(
        cookie=f"__Host-sessio={signer.sign(cookie_id)}", x_session_id=signer.sign(header_id)
    )
    assert read_token(transports, both) == (cookie_id, transports[0])
    only_header = headers(cookie="__Host-sessio=forged", x_session_id=signer.sign(header_id))
    assert read_token(transports, only_header) == (header_id, transports[1])
    assert read_token(transports, headers()) == (None, None)


def test_transports_for_a_policy() -> None:
    [cookie] = transports_for(Policy.web(cookie=CookieOptions(name="sid")), SECRET)
    assert isinstance(cookie, CookieTransport)
    assert cookie.options.name == "sid"
    bearer, header = transports_for(Policy.api(header_name="X-Token"), [SECRET])
    assert isinstance(bearer, BearerTransport)
    assert type(header) is HeaderTransport
    assert header.name == bearer.name == "X-Token"
    assert bearer.signer is header.signer  # one signer, derived once
    assert transports_for(Policy(), signer)[0].signer is signer


# -- end to end: a browser that keeps cookies -----------------------------------------------------------------


class CookieJar:
    """Just enough of a browser: stores what Set-Cookie says and sends it back."""

    def __init__(self, manager: Manager, transport: CookieTransport) -> None:
        self.manager = manager
        self.transport = transport
        self.cookie: str | None = None

    def request(self, handler: Callable[..., object]) -> list[tuple[str, str]]:
        sent = headers(cookie=self.cookie) if self.cookie else headers()
        token, _ = read_token([self.transport], sent)
        session = self.manager.load(token)
        handler(session)
        response = self.transport.response_headers(
            self.manager.commit(session), had_token=token is not None
        )
        for name, value in response:
            assert name == "set-cookie"
            pair = value.split(";")[0]
            self.cookie = None if "Max-Age=0" in value else pair
        return response


@pytest.fixture
def jar(clock: FakeClock) -> CookieJar:
    manager = Manager(MemoryStore(clock=clock), Policy(), clock=clock)
    return CookieJar(manager, CookieTransport(SECRET, clock=clock))


def test_a_flash_survives_exactly_one_redirect_through_real_cookies(jar: CookieJar) -> None:
    seen: list[object] = []
    assert jar.request(lambda s: s.flash("success", "Saved!")) != []  # POST, then 303
    assert jar.request(lambda s: seen.append(s.pop_flash("success"))) == []  # GET after redirect
    jar.request(lambda s: seen.append(s.pop_flash("success")))  # reload
    assert seen == [["Saved!"], []]


def test_login_and_logout_through_real_cookies(jar: CookieJar) -> None:
    jar.request(lambda s: s.update(cart=["apple"]))
    anonymous = jar.cookie
    jar.request(lambda s: s.login(Principal("42")))
    assert jar.cookie != anonymous
    logged_in = jar.cookie
    states: list[bool] = []
    jar.request(lambda s: states.append(s.is_authenticated))
    jar.request(lambda s: s.logout())
    assert jar.cookie not in (anonymous, logged_in)
    jar.request(lambda s: states.append(s.is_authenticated))
    jar.cookie = logged_in  # replaying the old cookie
    jar.request(lambda s: states.append(s.is_authenticated))
    assert states == [True, False, False]


def test_destroy_deletes_the_cookie(jar: CookieJar) -> None:
    jar.request(lambda s: s.update(a=1))
    [(_, value)] = jar.request(lambda s: s.destroy())
    assert "Max-Age=0" in value
    assert jar.cookie is None
