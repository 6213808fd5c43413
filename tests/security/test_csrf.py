"""CSRF: the synchronizer token (masked per render) and the origin checks every integration runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from sessio import ConfigurationError, Policy, Session
from sessio.csrf import verify_token
from sessio.integrations.csrf import (
    SAFE_METHODS,
    CSRFOptions,
    check_origin,
    check_request,
    form_scan_allowed,
    form_token,
)

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


# -- the form scan: bounded, linear, total; skipped when the Origin is refused -------------------


def multipart(*parts: tuple[str, bytes], boundary: bytes = b"B") -> bytes:
    """A multipart/form-data body of ``(field name, value)`` parts."""
    body = b"".join(
        b'--%s\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
        % (boundary, name.encode(), value)
        for name, value in parts
    )
    return body + b"--%s--\r\n" % boundary


MULTIPART = "multipart/form-data; boundary=B"
TOKEN = "t0ken-value_for.the-test"


def test_hostile_form_bodies_hold_no_token_and_raise_nothing() -> None:
    """CSRF cheat sheet "Synchronizer Token Pattern"; ASVS 5.0 16.5.3: no body an anonymous
    client sends can make the token scan raise (5,000 '(' in a part header raised
    RecursionError in the stdlib email parser: a 500) or run for long (it is linear; the
    1 MB worst case is measured by ``python -m benchmarks.csrf_scan``)."""
    from benchmarks.csrf_scan import bodies

    for name, (content_type, body) in bodies(256 * 1024).items():
        assert form_token(content_type, body, "csrf_token") is None, name
    hostile = [
        b"--B\r\nContent-Disposition: form-data; name=" + b"(" * 5000 + b"\r\n\r\nx\r\n--B--",
        b"--B\r\nContent-Disposition: form-data; name*=utf-8''%ff%fe\r\n\r\nx\r\n--B--",
        b"--B\r\n\r\n\r\n--B--",
        b"--B--\r\n" * 1000,
        b"\xff" * 10_000,
        b"",
    ]
    for body in hostile:
        assert form_token(MULTIPART, body, "csrf_token") is None
    for content_type in (
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=\u00e9",
    ):
        assert form_token(content_type, multipart(("csrf_token", b"x")), "csrf_token") is None


def test_the_form_scan_stops_at_its_limits() -> None:
    """CSRF cheat sheet "Synchronizer Token Pattern" (read from the body, within bounds):
    at most ``MAX_FORM_PARTS`` parts, ``MAX_PART_HEADER_BYTES`` of headers per
    part, a value of at most ``MAX_FIELD_BYTES``; past a limit the body simply has no token."""
    from sessio.integrations.csrf import MAX_FIELD_BYTES, MAX_FORM_PARTS, MAX_PART_HEADER_BYTES

    field = ("csrf_token", TOKEN.encode())
    assert form_token(MULTIPART, multipart(field), "csrf_token") == TOKEN  # the control
    early = [("f", b"x")] * (MAX_FORM_PARTS - 1)
    assert form_token(MULTIPART, multipart(*early, field), "csrf_token") == TOKEN
    assert form_token(MULTIPART, multipart(*early, ("f", b"x"), field), "csrf_token") is None
    long_value = ("csrf_token", b"x" * (MAX_FIELD_BYTES + 1))
    assert form_token(MULTIPART, multipart(long_value, field), "csrf_token") is None
    padded = b'--B\r\nContent-Disposition: form-data; name="csrf_token"\r\nX-Pad: '
    padded += b"p" * MAX_PART_HEADER_BYTES + b"\r\n\r\n" + TOKEN.encode() + b"\r\n--B--\r\n"
    assert form_token(MULTIPART, padded, "csrf_token") is None
    big_file = ("upload", b"\r\n--C" * 100_000)  # a large part that is not the token: skipped
    assert form_token(MULTIPART, multipart(big_file, field), "csrf_token") == TOKEN


def test_a_form_scan_fed_in_chunks_finds_what_one_scan_finds() -> None:
    """CSRF cheat sheet "Synchronizer Token Pattern": the exchange feeds each chunk as it
    arrives (ASGI messages, WSGI reads) and may stop as soon as the answer is known."""
    from sessio.integrations.csrf import FormScan

    body = multipart(("a", b"1"), ("csrf_token", TOKEN.encode()), ("b", b"x" * 5000))
    for size in (1, 7, 64, len(body)):
        scan = FormScan(MULTIPART, "csrf_token")
        for start in range(0, len(body), size):
            if scan.feed(body[start : start + size]):
                break
        assert scan.finish() == TOKEN, size
        assert start < len(body) - 5000  # it stopped at the token, before the big part
    urlencoded = FormScan("application/x-www-form-urlencoded", "csrf_token")
    for piece in (b"a=1&csrf_", b"token=", TOKEN.encode(), b"&b=2"):
        urlencoded.feed(piece)
    assert urlencoded.finish() == TOKEN
    too_long = FormScan(MULTIPART, "csrf_token", max_bytes=100)
    assert too_long.feed(body)
    assert too_long.finish() is None


def test_cross_site_fetch_metadata_is_refused_over_plain_http_too() -> None:
    """CSRF cheat sheet "Fetch Metadata headers": browsers send ``Sec-Fetch-Site`` to
    localhost and other plain-HTTP trustworthy origins; a cross-site claim is honoured there."""
    options = CSRFOptions()
    for scheme in ("http", "https"):
        for value in ("cross-site", "Cross-Site", " cross-site "):
            headers = header_view({"sec-fetch-site": value})
            reason = check_origin(headers, scheme=scheme, host="localhost:8000", options=options)
            assert reason is not None, (scheme, value)
        for value in ("same-origin", "same-site", "none"):
            headers = header_view({"sec-fetch-site": value})
            assert check_origin(headers, scheme=scheme, host="localhost", options=options) is None


async def asgi_post(headers: dict[str, str], body: bytes) -> tuple[int, int]:
    """A POST through the ASGI middleware: its status and how many body messages were read."""
    from sessio import MemoryStore
    from sessio.integrations.asgi import SessionMiddleware

    from .conftest import KEY_NEW

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = SessionMiddleware(
        app, store=MemoryStore(), secret_key=KEY_NEW, policy=Policy.web().development()
    )
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)] or [b""]
    reads = 0

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        if reads <= len(chunks):
            more = reads < len(chunks)
            return {"type": "http.request", "body": chunks[reads - 1], "more_body": more}
        return {"type": "http.disconnect"}

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    wire = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/form",
        "raw_path": b"/form",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"app.example"), *wire],
        "client": ("203.0.113.7", 5000),
        "server": ("app.example", 80),
    }
    await middleware(scope, receive, send)
    return statuses[0], reads


async def test_a_cross_site_form_is_refused_without_reading_its_body() -> None:
    """CSRF cheat sheet "Verifying Origin With Standard Headers": a request the Origin check
    refuses anyway costs no body read and no scan (a cross-site attacker burns no CPU); a
    same-origin hostile body is read, scanned within its limits and refused (403, not 500)."""
    hostile = b"--B\r\nContent-Disposition: form-data; name=" + b"(" * 5000 + b"\r\n\r\n"
    form = {"content-type": MULTIPART}
    for origin in ({"origin": "https://evil.example"}, {"sec-fetch-site": "cross-site"}):
        assert (
            form_scan_allowed(
                header_view(origin), scheme="http", host="app.example", options=CSRFOptions()
            )
            is False
        )
        assert await asgi_post({**form, **origin}, hostile) == (403, 0)
    status, reads = await asgi_post({**form, "origin": "http://app.example"}, hostile)
    assert (status, reads) == (403, 1)


def test_a_cross_site_wsgi_form_is_refused_without_reading_its_body() -> None:
    """CSRF cheat sheet "Verifying Origin With Standard Headers", over WSGI: ``wsgi.input``
    is not read for a refused Origin."""
    import io

    from sessio import MemoryStore
    from sessio.integrations.wsgi import SessionMiddleware

    from .conftest import KEY_NEW

    class CountingInput(io.BytesIO):
        reads = 0

        def read(self, size: int | None = -1) -> bytes:
            CountingInput.reads += 1
            return super().read(size)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b"ok"]

    middleware = SessionMiddleware(
        app, store=MemoryStore(), secret_key=KEY_NEW, policy=Policy.web().development()
    )
    body = multipart(("csrf_token", b"x"))
    statuses: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        statuses.append(status)

    for origin, reads in (("https://evil.example", 0), ("http://app.example", 1)):
        CountingInput.reads = 0
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/form",
            "SERVER_NAME": "app.example",
            "SERVER_PORT": "80",
            "HTTP_HOST": "app.example",
            "HTTP_ORIGIN": origin,
            "CONTENT_TYPE": MULTIPART,
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": CountingInput(body),
            "wsgi.url_scheme": "http",
        }
        statuses.clear()
        b"".join(middleware(environ, start_response))
        assert statuses[0].startswith("403"), origin
        assert min(CountingInput.reads, 1) == reads, origin


def test_the_multipart_parser_is_imported_only_by_the_form_scan() -> None:
    """CSRF cheat sheet "Synchronizer Token Pattern" (the form parser): python-multipart is a
    dependency of sessio, but only the scan imports it, lazily, so the core stays lean."""
    import subprocess
    import sys

    code = (
        "import sys, sessio, sessio.transports, sessio.stores\n"
        "import sessio.integrations.asgi, sessio.integrations.wsgi\n"
        "before = 'python_multipart' in sys.modules\n"
        "from sessio.integrations.csrf import form_token\n"
        "form_token('multipart/form-data; boundary=B', b'--B--', 'f')\n"
        "print(before, 'python_multipart' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
