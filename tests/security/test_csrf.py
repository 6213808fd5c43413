"""CSRF: the synchronizer token (masked per render) and the origin checks every integration runs."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from sessio import ConfigurationError, Policy, Session
from sessio.csrf import verify_token
from sessio.integrations.csrf import SAFE_METHODS, CSRFOptions, check_request

from .conftest import Browser, Site, header_view

HOST = "app.example"
OWN = f"https://{HOST}"


def session_with_token(site: Site) -> tuple[Session, str]:
    """A stored session and one token rendered for it."""
    browser = Browser(site)
    token = browser.visit(lambda s: s.csrf_token).result
    session = browser.visit().session  # as the next request loads it
    return session, token


def check(
    session: Session,
    submitted: str | None,
    headers: Mapping[str, str] | None = None,
    *,
    method: str = "POST",
    path: str = "/transfer",
    options: CSRFOptions | None = None,
) -> str | None:
    return check_request(
        method=method,
        path=path,
        headers=header_view(headers if headers is not None else {"origin": OWN}),
        scheme="https",
        host=HOST,
        session=session,
        submitted=submitted,
        options=options or CSRFOptions(),
    )


def test_csrf_protection_is_on_by_default() -> None:
    """ASVS 4.0.3 4.2.2 / ASVS 5.0 3.5.1: browser-session presets enforce CSRF without setup;
    only the header-token API preset turns it off (no ambient credential to forge)."""
    assert Policy().csrf
    assert Policy.web().csrf
    assert Policy.ephemeral().csrf
    assert not Policy.api().csrf
    assert "cookie" not in Policy.api().transports


def test_missing_token_is_refused(site: Site) -> None:
    """CSRF cheat sheet "Synchronizer Token Pattern": an unsafe request without a token fails."""
    session, _ = session_with_token(site)
    assert check(session, None) == "CSRF token missing"


def test_wrong_token_is_refused(site: Site) -> None:
    """CSRF cheat sheet "Synchronizer Token Pattern": a token that is not this session's fails."""
    session, token = session_with_token(site)
    for wrong in ("", "x", token[:-1], token + "A", token[::-1], "A" * len(token)):
        assert check(session, wrong) == "CSRF token invalid"


def test_another_sessions_token_is_refused(site: Site) -> None:
    """CSRF cheat sheet "Synchronizer Token Pattern": tokens are per session: the attacker's own
    valid token does not work on the victim's session."""
    victim, _ = session_with_token(site)
    _, attackers = session_with_token(site)
    assert check(victim, attackers) == "CSRF token invalid"


def test_a_session_that_never_rendered_a_token_accepts_none(site: Site) -> None:
    """CSRF cheat sheet "Possible CSRF Vulnerabilities in Login Forms": a fresh session has no
    secret, so no token (guessed or borrowed) passes; login forms are protected too."""
    fresh = site.request(()).session
    _, other = session_with_token(site)
    assert check(fresh, other) == "CSRF token invalid"


def test_masked_tokens_differ_per_render_and_all_verify(site: Site) -> None:
    """CSRF cheat sheet "Synchronizer Token Pattern" / BREACH mitigation: every render shows
    different bytes (the secret never appears), and every one of them verifies."""
    session, _ = session_with_token(site)
    tokens = [session.csrf_token for _ in range(200)]
    assert len(set(tokens)) == len(tokens)
    secret = session._csrf()
    assert all(secret not in token for token in tokens)
    assert all(check(session, token) is None for token in tokens)
    assert all(verify_token(secret, token) for token in tokens)


def test_rotating_the_csrf_secret_kills_every_earlier_token(site: Site) -> None:
    """CSRF cheat sheet "Synchronizer Token Pattern": ``rotate_csrf()`` (and every login) makes
    tokens rendered before it worthless."""
    session, token = session_with_token(site)
    session.rotate_csrf()
    assert check(session, token) == "CSRF token invalid"
    assert check(session, session.csrf_token) is None


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://app.example",  # scheme downgrade
        "https://app.example:8443",  # another port is another origin
        "https://app.example.evil.example",  # suffix trick
        "https://evil.example/https://app.example",
        "https://app.example, https://evil.example",  # a list is not an origin
    ],
)
def test_foreign_origin_is_refused_even_with_a_valid_token(site: Site, origin: str) -> None:
    """CSRF cheat sheet "Verifying Origin With Standard Headers": a cross-origin request fails,
    token or not (a leaked token alone is not enough)."""
    session, token = session_with_token(site)
    assert check(session, token, {"origin": origin}) == "Origin does not match"


def test_null_or_repeated_origin_is_refused(site: Site) -> None:
    """CSRF cheat sheet "Verifying Origin With Standard Headers": ``Origin: null`` (sandboxed
    frames, some redirects) and a repeated Origin are refused."""
    session, token = session_with_token(site)
    assert check(session, token, {"origin": "null"}) is not None
    repeated = header_view([("origin", OWN), ("origin", OWN)])
    reason = check_request(
        method="POST",
        path="/",
        headers=repeated,
        scheme="https",
        host=HOST,
        session=session,
        submitted=token,
        options=CSRFOptions(),
    )
    assert reason is not None


def test_referer_is_the_fallback_without_origin(site: Site) -> None:
    """CSRF cheat sheet "Identifying Source Origin (via Origin/Referer Header)": without Origin,
    the Referer's origin must be ours; an opaque Referer is refused."""
    session, token = session_with_token(site)
    assert check(session, token, {"referer": f"{OWN}/form?x=1"}) is None
    assert check(session, token, {"referer": "https://evil.example/app.example"}) is not None
    assert check(session, token, {"referer": "about:blank"}) is not None
    # Neither header (a non-browser client): the token alone decides.
    assert check(session, token, {}) is None
    assert check(session, "forged", {}) == "CSRF token invalid"


def test_cross_site_fetch_metadata_without_origin_is_refused(site: Site) -> None:
    """CSRF cheat sheet "Fetch Metadata headers": over HTTPS, ``Sec-Fetch-Site: cross-site``
    with neither Origin nor Referer is refused."""
    session, token = session_with_token(site)
    assert check(session, token, {"sec-fetch-site": "cross-site"}) is not None
    assert check(session, token, {"sec-fetch-site": "same-origin"}) is None


def test_trusted_origins_are_exact(site: Site) -> None:
    """CSRF cheat sheet "Verifying Origin With Standard Headers": an allow-listed origin passes,
    its look-alikes do not, and a malformed entry fails at construction."""
    session, token = session_with_token(site)
    options = CSRFOptions(trusted_origins=["https://admin.example"])
    assert check(session, token, {"origin": "https://admin.example"}, options=options) is None
    for origin in ("https://admin.example.evil", "http://admin.example"):
        assert check(session, token, {"origin": origin}, options=options) is not None
    for bad in ("admin.example", "https://admin.example/path", "javascript:alert(1)"):
        with pytest.raises(ConfigurationError):
            CSRFOptions(trusted_origins=[bad])


def test_exempt_paths_and_safe_methods_need_no_token(site: Site) -> None:
    """CSRF cheat sheet (webhooks, safe methods): an exempt path and GET/HEAD/OPTIONS/TRACE pass
    without a token; unsafe methods elsewhere still need one."""
    session, _ = session_with_token(site)
    options = CSRFOptions(exempt_paths=["/webhooks/*"])
    assert check(session, None, path="/webhooks/stripe", options=options) is None
    assert check(session, None, path="/webhooks", options=options) is not None
    for method in SAFE_METHODS:
        assert check(session, None, {"origin": "https://evil.example"}, method=method) is None
    for method in ("POST", "PUT", "PATCH", "DELETE", "post"):
        assert check(session, None, method=method) is not None
