"""Cookie wire text: the one Set-Cookie renderer, and the Cookie parser that refuses nothing."""

from __future__ import annotations

import string
from http.cookies import SimpleCookie

from hypothesis import given
from hypothesis import strategies as st

from sessio import CookieOptions
from sessio.transports import parse_cookie_header, render_delete_cookie, render_set_cookie

NOW = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT


def test_the_default_cookie() -> None:
    assert render_set_cookie(CookieOptions(), "tok.mac", max_age=3600, now=NOW) == (
        "__Host-sessio=tok.mac; Path=/; Max-Age=3600; Expires=Tue, 14 Nov 2023 23:13:20 GMT; "
        "Secure; HttpOnly; SameSite=Lax"
    )


def test_every_attribute() -> None:
    options = CookieOptions(
        name="__Secure-sid",
        path="/app",
        domain="example.com",
        samesite="none",
        partitioned=True,
    )
    assert render_set_cookie(options, "v", max_age=59.2, now=0) == (
        "__Secure-sid=v; Path=/app; Max-Age=60; Expires=Thu, 01 Jan 1970 00:01:00 GMT; "
        "Domain=example.com; Secure; HttpOnly; SameSite=None; Partitioned"
    )
    plain = CookieOptions(secure=False, httponly=False, samesite="strict")
    assert render_set_cookie(plain, "v", max_age=None) == "sessio=v; Path=/; SameSite=Strict"


def test_a_negative_lifetime_is_zero() -> None:
    assert "Max-Age=0;" in render_set_cookie(CookieOptions(), "v", max_age=-5, now=NOW)


def test_the_delete_cookie_matches_the_set_cookie() -> None:
    options = CookieOptions(name="sid", path="/app", domain="example.com")
    assert render_delete_cookie(options) == (
        'sid=""; Path=/app; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; '
        "Domain=example.com; Secure; HttpOnly; SameSite=Lax"
    )


def test_the_standard_library_reads_what_we_write() -> None:
    text = render_set_cookie(CookieOptions(domain="example.com"), "a.b-c_d", max_age=60, now=NOW)
    jar: SimpleCookie = SimpleCookie()
    jar.load(text)
    morsel = jar["__Secure-sessio"]  # a Domain rules out __Host-
    assert morsel.value == "a.b-c_d"
    assert morsel["path"] == "/"
    assert morsel["max-age"] == "60"
    assert morsel["domain"] == "example.com"
    assert morsel["secure"] is True
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"


def test_parse_finds_every_value_of_one_name_in_order() -> None:
    headers = ["theme=dark; sessio=one; other=x", "sessio=two", "  sessio = no ;sessio=three"]
    assert parse_cookie_header(headers, "sessio") == ["one", "two", "three"]
    assert parse_cookie_header(["xsessio=1; sessio2=2; SESSIO=3"], "sessio") == []
    assert parse_cookie_header(["sessio="], "sessio") == [""]
    assert parse_cookie_header(["sessio"], "sessio") == []
    assert parse_cookie_header([], "sessio") == []


def test_a_quoted_value_is_kept_as_sent() -> None:
    """One spelling per token: quotes are part of the value, so a quoted token is no token."""
    assert parse_cookie_header(['sessio="one"'], "sessio") == ['"one"']
    assert parse_cookie_header(['sessio=""'], "sessio") == ['""']


@given(st.lists(st.text()), st.text())
def test_parse_never_raises(headers: list[str], name: str) -> None:
    for value in parse_cookie_header(headers, name):
        assert isinstance(value, str)


@given(
    st.text(alphabet=string.ascii_letters + string.digits + "-_.", max_size=100),
    st.lists(st.text(alphabet=string.ascii_letters + "=", min_size=1), max_size=3),
)
def test_what_is_rendered_parses_back(value: str, noise: list[str]) -> None:
    pair = render_set_cookie(CookieOptions(), value, max_age=None).split(";")[0]
    name = CookieOptions().name
    header = "; ".join([n for n in noise if not n.startswith(name + "=")] + [pair])
    assert parse_cookie_header([header], name) == [value]
