"""Every lifecycle decision of :mod:`sessio.exchange`, checked through ASGI, WSGI and Flask alike.

Each test takes ``flavour`` (see ``conftest.py``) and runs once per integration against the same
app (:mod:`.lifecycle_apps`): token and transport choice, CSRF verdicts, 5xx responses, ``Vary``
on each kind of read, ``Cache-Control`` and the deletion cookie. Failures, parallel requests
and construction are in ``test_lifecycle_failures.py``.
"""

from __future__ import annotations

import json
import secrets

import httpx
import pytest

from sessio import MemoryStore
from sessio.transports import TokenSigner, render_delete_cookie

from ..conftest import FakeClock
from .lifecycle_apps import POLICY, READS, SECRET, Site, site, stored, vary

DATA_READS = {"get", "contains", "len", "iter", "items"}


# -- token and transport --------------------------------------------------------------------------


def test_a_write_sets_the_cookie_and_the_next_request_reads_it(web: Site) -> None:
    first = web.client.get("/write?n=7")
    assert len(first.headers.get_list("set-cookie")) == 1
    assert web.client.get("/read/get").text == "'7'"


@pytest.mark.parametrize("flavour", ["asgi", "wsgi"])  # Flask's session travels by cookie only
def test_the_answer_goes_back_through_the_transport_the_client_used(flavour: str) -> None:
    policy = POLICY.replace(transports=("cookie", "header"))
    with site(flavour, MemoryStore(), policy=policy) as web:
        fresh = web.client.get("/write?n=1")  # no token: the first transport answers alone
        assert fresh.headers.get_list("set-cookie")
        assert "x-session-id" not in fresh.headers
        token = web.token()
        web.client.cookies.clear()
        by_header = {"X-Session-ID": token}
        # A header-borne session is no ambient credential: no CSRF token is asked for.
        assert web.client.post("/form", data={"k": "v"}, headers=by_header).status_code == 200
        login = web.client.get("/login", headers=by_header)  # rotates: a new token goes out
        assert "set-cookie" not in login.headers
        assert login.headers["x-session-id"] not in ("", token)
        stale = {"X-Session-ID": TokenSigner(SECRET).sign(secrets.token_urlsafe(32))}
        answered = web.client.get("/write?n=2", headers=stale)  # the transport it tried
        assert answered.headers["x-session-id"]
        assert "set-cookie" not in answered.headers


# -- CSRF -------------------------------------------------------------------------------------------


def _csrf_case(web: Site, case: str) -> httpx.Response:
    token = web.client.get("/token").text
    post = web.client.post
    if case == "header token":
        return post("/form", data={"k": "v"}, headers={"X-CSRF-Token": token})
    if case == "form field":
        return post("/form", data={"k": "v", "csrf_token": token})
    if case == "no token":
        return post("/form", data={"k": "v"})
    if case == "forged token":
        forged = token[:10] + ("B" if token[10] != "B" else "C") + token[11:]
        return post("/form", data={"k": "v", "csrf_token": forged})
    if case == "hostile field":
        return post("/form", content=b"csrf_token=%ZZ%00&k=\xff", headers=_FORM)
    if case == "foreign origin":
        headers = {"X-CSRF-Token": token, "Origin": "https://evil.example"}
        return post("/form", data={"k": "v"}, headers=headers)
    if case == "opaque origin":
        return post("/form", data={"k": "v"}, headers={"X-CSRF-Token": token, "Origin": "null"})
    if case == "oversized form":
        return post("/form", data={"k": "v" * 5000, "csrf_token": token})
    if case == "exempt path":
        return post("/hooks/form", data={"k": "v"})
    raise AssertionError(case)


_FORM = {"Content-Type": "application/x-www-form-urlencoded"}
CSRF_CASES = {
    "header token": 200,
    "form field": 200,
    "exempt path": 200,
    "no token": 403,
    "forged token": 403,
    "hostile field": 403,
    "foreign origin": 403,
    "opaque origin": 403,
    "oversized form": 403,
}


@pytest.mark.parametrize(("case", "status"), CSRF_CASES.items())
def test_csrf_verdicts(web: Site, case: str, status: int) -> None:
    response = _csrf_case(web, case)
    assert response.status_code == status
    if status == 403:
        assert response.json()["error"] == "CSRF_FAILED"
        assert response.headers["cache-control"] == "no-store"
        assert "k" not in web.client.get("/read/items").text  # the app never ran


# -- 5xx ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_5xx_commits_nothing_and_sends_no_session_header(web: Site, status: int) -> None:
    fresh = web.client.get(f"/status/{status}")  # a new session, written, then a failure
    assert fresh.status_code == status
    assert "set-cookie" not in fresh.headers
    assert "Cookie" in vary(fresh)  # the handler touched the session
    stored(web)
    failed = web.client.get(f"/status/{status}")
    assert "set-cookie" not in failed.headers
    assert "half-done" not in web.client.get("/read/items").text


def test_a_4xx_keeps_what_the_handler_wrote(web: Site) -> None:
    assert web.client.get("/status/404").headers.get_list("set-cookie")
    assert "half-done" in web.client.get("/read/items").text


# -- Vary -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", READS)
def test_vary_follows_every_kind_of_read(web: Site, kind: str) -> None:
    stored(web)
    response = web.client.get(f"/read/{kind}")
    accessed = response.headers["x-accessed"] == "True"
    if kind in DATA_READS:
        assert accessed
    assert ("Cookie" in vary(response)) is accessed
    assert "set-cookie" not in response.headers


def test_an_untouched_session_adds_no_vary(web: Site) -> None:
    stored(web)
    response = web.client.get("/ping")
    assert "vary" not in response.headers
    assert "set-cookie" not in response.headers


def test_a_refreshed_cookie_varies_though_the_request_never_read_the_session(
    flavour: str, clock: FakeClock
) -> None:
    # ASGI and WSGI slide a rolling session's cookie; Flask re-sends a permanent one.
    policy = POLICY.replace(rolling=True)
    with site(flavour, MemoryStore(clock=clock), policy=policy, clock=clock) as web:
        web.client.get("/write?n=1&permanent=1")
        clock.advance(120)  # past the refresh interval: the expiry is pushed
        response = web.client.get("/ping")
        assert response.headers.get_list("set-cookie")
        assert vary(response) == ["Cookie"]


def test_vary_joins_the_apps_own(web: Site) -> None:
    response = web.client.get("/vary?vary=Accept-Encoding")
    assert response.headers.get_list("vary") == ["Accept-Encoding, Cookie"]
    assert web.client.get("/vary?vary=*").headers.get_list("vary") == ["*"]


# -- Cache-Control ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "received"),
    [
        ("public, max-age=60", "max-age=60, private"),
        ("s-maxage=300, max-age=60", "max-age=60, private"),
        ("max-age=60", "max-age=60, private"),
        ('no-cache="Set-Cookie, Vary", public', 'no-cache="Set-Cookie, Vary", private'),
        ("private, max-age=5", "private, max-age=5"),
        ("no-store", "no-store"),
    ],
)
def test_a_session_cookie_never_rides_a_publicly_cacheable_response(
    web: Site, sent: str, received: str
) -> None:
    response = web.client.get("/cache", params={"write": "1", "cc": sent})
    assert response.headers.get_list("set-cookie")
    assert response.headers["cache-control"] == received


def test_a_response_without_a_session_header_keeps_its_cache_control(web: Site) -> None:
    stored(web)
    response = web.client.get("/cache", params={"read": "1", "cc": "public, max-age=60"})
    assert "set-cookie" not in response.headers
    assert response.headers["cache-control"] == "public, max-age=60"
    assert vary(response) == ["Cookie"]  # shared caches keep one copy per session cookie


# -- the deletion cookie ---------------------------------------------------------------------------


def test_a_destroyed_session_is_deleted_with_the_integrations_own_cookie_text(web: Site) -> None:
    stored(web)
    (deletion,) = web.client.get("/destroy").headers.get_list("set-cookie")
    if web.flavour == "flask":  # Werkzeug's text, as Flask's own interface writes it
        assert (
            deletion
            == "session=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/"
        )
    else:
        assert deletion == render_delete_cookie(POLICY.cookie)
    assert web.client.get("/read/len").text == "0"


def test_a_destroyed_session_without_a_cookie_sends_no_deletion(web: Site) -> None:
    response = web.client.get("/destroy")
    assert "set-cookie" not in response.headers


def test_hostile_cookies_give_a_fresh_session(web: Site) -> None:
    token = stored(web)
    web.client.cookies.clear()
    for cookie in (f"{web.cookie}={token}; {web.cookie}={token}", f"{web.cookie}={'a' * 5000}"):
        response = web.client.get("/read/len", headers={"Cookie": cookie})
        assert response.text == "0"


def test_the_error_body_is_json_with_its_code(web: Site) -> None:
    response = web.client.post("/form", data={"k": "v"})
    assert json.loads(response.content) == {"error": "CSRF_FAILED", "detail": "CSRF token missing"}


def test_a_policy_without_csrf_checks_nothing(flavour: str) -> None:
    with site(flavour, MemoryStore(), policy=POLICY.replace(csrf=False)) as web:
        assert web.client.post("/form", data={"k": "v"}).status_code == 200
