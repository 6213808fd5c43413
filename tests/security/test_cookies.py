"""Cookie attributes and prefixes: on the wire text, and enforced when the options are built."""

from __future__ import annotations

from http.cookies import SimpleCookie

import pytest

from sessio import ConfigurationError, CookieOptions, Policy
from sessio.transports import render_delete_cookie

from ..conftest import FakeClock
from .conftest import Browser, Site, write


def attributes(set_cookie: str) -> dict[str, str]:
    """``Set-Cookie`` attributes by lower-case name (flags map to ``""``); the pair under ``=``."""
    pair, *rest = [part.strip() for part in set_cookie.split(";")]
    out = {"=": pair}
    for part in rest:
        name, _, value = part.partition("=")
        assert name.lower() not in out, f"attribute {name} repeated"
        out[name.lower()] = value
    return out


def test_default_cookie_has_every_flag_on_the_wire(site: Site) -> None:
    """ASVS 4.0.3 3.4.1-3.4.5 / ASVS 5.0 3.3.1-3.3.4 / cheat sheet "Cookies": by default the
    session cookie is ``__Host-`` prefixed, Secure, HttpOnly, SameSite=Lax, Path=/, host-only."""
    set_cookie = site.request((), write("k", 1)).set_cookie()
    assert set_cookie is not None
    attrs = attributes(set_cookie)
    assert attrs["="].startswith("__Host-sessio=")
    assert attrs["secure"] == ""
    assert attrs["httponly"] == ""
    assert attrs["samesite"] == "Lax"
    assert attrs["path"] == "/"
    assert "domain" not in attrs
    jar: SimpleCookie = SimpleCookie()
    jar.load(set_cookie)  # the stdlib parses it back with the same flags
    morsel = jar["__Host-sessio"]
    assert morsel["secure"]
    assert morsel["httponly"]
    assert morsel["samesite"] == "Lax"


def test_default_name_takes_the_strongest_prefix_that_fits() -> None:
    """ASVS 5.0 3.3.1 / 3.3.3: ``__Host-`` unless the cookie is shared (a Domain or a narrower
    path: then ``__Secure-``); no prefix only for a deliberately insecure (plain-HTTP) cookie."""
    assert CookieOptions().name == "__Host-sessio"
    assert CookieOptions(domain="example.com").name == "__Secure-sessio"
    assert CookieOptions(path="/app").name == "__Secure-sessio"
    assert CookieOptions(secure=False).name == "sessio"
    assert Policy().replace(cookie={"domain": "example.com"}).cookie.name == "__Secure-sessio"
    assert CookieOptions().replace(secure=False).name == "sessio"
    assert CookieOptions(name="sid").name == "sid"  # a name given is used as given


@pytest.mark.parametrize(
    "options",
    [
        {"name": "__Host-sid", "secure": False},
        {"name": "__Host-sid", "path": "/app"},
        {"name": "__Host-sid", "domain": "example.com"},
        {"name": "__host-sid", "domain": "example.com"},  # browsers fold the prefix's case
        {"name": "__Secure-sid", "secure": False},
        {"name": "__SECURE-sid", "secure": False},
        {"samesite": "none", "secure": False},
        {"partitioned": True, "secure": False},
        {"samesite": "sometimes"},
    ],
)
def test_prefix_and_flag_rules_are_enforced_at_construction(options: dict[str, object]) -> None:
    """ASVS 4.0.3 3.4.4 / ASVS 5.0 3.3.1 (RFC 6265bis cookie prefixes): a cookie the browser
    would silently drop, or one weaker than its name promises, fails when the app starts."""
    with pytest.raises(ConfigurationError):
        CookieOptions(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "options",
    [
        {"name": "sid; Domain=evil.example"},
        {"name": "sid=x"},
        {"path": "/; Domain=evil.example"},
        {"path": "/\r\nSet-Cookie: x=y"},
        {"path": "relative"},
        {"domain": "example.com; Secure"},
        {"domain": "example.com\r\nX: y"},
        {"domain": ""},
        # Control characters and non-ASCII: each a different cookie to each browser and server.
        {"name": "sid\x00"},
        {"name": "sid\x7f"},
        {"name": "s\u00efd"},
        {"path": "/app\x00"},
        {"path": "/a\tb"},
        {"path": "/a\x7f"},
        {"path": "/caf\u00e9"},
        {"path": "/\u2028"},
        {"domain": "example.com\x00"},
        {"domain": "exa\tmple.com"},
        {"domain": "example.com\x7f"},
        {"domain": "b\u00fccher.example"},
        {"domain": "example..com"},
        {"domain": "example.com/path"},
    ],
)
def test_attribute_injection_is_refused(options: dict[str, str]) -> None:
    """Cheat sheet "Domain and Path Attributes": no option can smuggle attributes or headers
    into the ``Set-Cookie`` text."""
    with pytest.raises(ConfigurationError):
        CookieOptions(**options)  # type: ignore[arg-type]


def test_ordinary_paths_and_domains_are_accepted() -> None:
    """Cheat sheet "Domain and Path Attributes", the control for the refusals above: ordinary
    paths and (IDNA-encoded) domains still pass."""
    for path in ("/", "/app", "/app/v1", "/a b", "/~user/x-y_z.html", "/%C3%A9"):
        assert CookieOptions(path=path, domain="example.com").path == path
    for domain in ("example.com", ".example.com", "a-b.example", "xn--bcher-kva.example"):
        assert CookieOptions(domain=domain).domain == domain


def test_production_and_development_presets() -> None:
    """ASVS 5.0 3.3.1: ``production()`` forces a Secure host-only ``__Host-`` cookie;
    ``development()`` is the one explicit way to drop Secure (plain-HTTP localhost)."""
    prod = Policy.web(cookie={"domain": "example.com"}).production().cookie
    assert (prod.name, prod.secure, prod.domain, prod.path) == ("__Host-sessio", True, None, "/")
    dev = Policy.web().development().cookie
    assert (dev.name, dev.secure) == ("sessio", False)
    assert dev.httponly
    assert dev.samesite == "lax"
    named = Policy.web(cookie={"name": "sid"}).production().cookie
    assert named.name == "__Host-sid"


def test_delete_cookie_matches_the_cookie_it_deletes() -> None:
    """Cheat sheet "Manual Session Expiration": the browser forgets the cookie only if the
    deletion names the same cookie (name, path, domain, prefix rules)."""
    for options in (CookieOptions(), CookieOptions(domain="example.com", path="/app")):
        attrs = attributes(render_delete_cookie(options))
        assert attrs["="] == f'{options.name}=""'
        assert attrs["max-age"] == "0"
        assert attrs["path"] == options.path
        assert attrs.get("domain") == options.domain
        assert "secure" in attrs
        assert "httponly" in attrs


def test_the_token_travels_only_in_set_cookie(site: Site) -> None:
    """ASVS 5.0 3.3.4: a session cookie's value reaches the client only through ``Set-Cookie``
    (no echo in another header or body)."""
    response = site.request((), lambda s: s.__setitem__("k", 1))
    set_cookie = response.set_cookie()
    assert set_cookie is not None
    token = site.sign(response.session.id)
    assert token in set_cookie
    for name, value in response.headers:
        if name != "set-cookie":
            assert response.session.id not in value


def test_the_cookie_stays_under_4096_bytes(site: Site) -> None:
    """ASVS 5.0 3.3.5: name and value together stay far below the 4096-byte browser limit,
    however much data the session holds (the data is on the server)."""
    response = site.request((), write("blob", "x" * 100_000))
    set_cookie = response.set_cookie()
    assert set_cookie is not None
    pair = attributes(set_cookie)["="]
    assert len(pair.encode()) < 200


def test_cookie_lifetime_never_outlives_the_absolute_timeout(clock: FakeClock) -> None:
    """Cheat sheet "Expire and Max-Age Attributes": the cookie expires with the session's
    absolute end; the ephemeral preset sends a non-persistent cookie."""
    site = Site(clock=clock)
    attrs = attributes(site.request((), write("k", 1)).set_cookie() or "")
    assert int(attrs["max-age"]) == 7 * 86400
    ephemeral = Site(clock=clock, policy=Policy.ephemeral())
    attrs = attributes(ephemeral.request((), write("k", 1)).set_cookie() or "")
    assert "max-age" not in attrs
    assert "expires" not in attrs


def test_no_cookie_for_a_visitor_who_stored_nothing(site: Site) -> None:
    """Cheat sheet "Session ID Life Cycle": no session ID is handed out (or stored) before there
    is something to keep, so drive-by visits cannot fill the store."""
    browser = Browser(site)
    response = browser.visit(lambda s: s.get("anything"))
    assert response.set_cookie() is None
    assert site.store.count_sync() == 0
