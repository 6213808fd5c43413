"""Error answers: a page for a browser on the shop, JSON for the API and for scripts."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import httpx
import pytest

from sessio.demo import create_app
from sessio.stores.redis import RedisStore
from tests.integrations.apps import serve

from .conftest import SECRET, Demo, csrf_from
from .forms import flashes, login, post_form, register, signed_in_as

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def heading(page: str) -> str:
    start = page.index("<h1>") + 4
    return page[start : page.index("</h1>", start)]


def assert_error_page(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert f'data-code="{code}"' in response.text
    assert "<script" not in response.text
    assert '<link rel="stylesheet" href="/static/demo.css">' in response.text
    return response.text


@pytest.fixture
def browser(demo: Demo) -> httpx.Client:
    """A visitor whose requests say, like a browser's, that they would like HTML."""
    return demo.client(headers=BROWSER)


def test_a_form_without_its_token_gets_a_page_not_json(browser: httpx.Client) -> None:
    browser.get("/")
    page = assert_error_page(browser.post("/cart", data={"item": "Tea"}), 403, "CSRF_FAILED")
    assert heading(page) == "This form has expired"
    assert "Go back, reload the page and try again." in page


def test_scripts_and_the_api_keep_json(demo: Demo, browser: httpx.Client) -> None:
    script = demo.client()
    script.get("/")
    refused = script.post("/cart", data={"item": "Tea"})
    assert refused.status_code == 403
    assert refused.json()["error"] == "CSRF_FAILED"
    missing = browser.get("/api/nothing-here")
    assert missing.status_code == 404
    assert missing.json() == {"error": "NOT_FOUND", "detail": "Not Found"}
    assert browser.get("/api/me").json()["error"] == "AUTHENTICATION_REQUIRED"


def test_a_session_revoked_elsewhere_says_so(demo: Demo) -> None:
    laptop = demo.client(headers=BROWSER)
    phone = demo.client(headers=BROWSER)
    register(laptop, "ada")
    for device in (laptop, phone):
        assert login(device, "ada").status_code == 303
    token = csrf_from(laptop.get("/").text)
    post_form(phone, "/devices/revoke-others", {}, via="/devices")

    # The laptop's open page posts its (now dead) form...
    refused = laptop.post("/cart", data={"item": "Tea", "csrf_token": token})
    page = assert_error_page(refused, 403, "CSRF_FAILED")
    assert heading(page) == "You were signed out"
    assert "signed out on another device" in page
    assert 'href="/login"' in page
    # ...and a page loaded with the dead cookie says it once, then carries on as a guest.
    home = laptop.get("/").text
    assert flashes(home) == [
        ("info", "You were signed out on another device, or your session expired.")
    ]
    assert signed_in_as(laptop) is None
    assert flashes(laptop.get("/").text) == []


def test_the_device_list_of_a_revoked_session_says_why_it_is_gone(demo: Demo) -> None:
    laptop, phone = demo.client(), demo.client()
    register(laptop, "ada")
    for device in (laptop, phone):
        login(device, "ada")
    post_form(phone, "/devices/revoke-others", {}, via="/devices")
    sent_away = laptop.get("/devices")
    assert sent_away.headers["location"] == "/login"
    assert flashes(laptop.get("/login").text) == [
        ("info", "You were signed out on another device, or your session expired.")
    ]


def test_a_forged_cookie_is_not_called_a_signed_out_session(demo: Demo) -> None:
    visitor = demo.client(headers=BROWSER, cookies={"sessio": "forged.value"})
    assert flashes(visitor.get("/").text) == []


def test_no_such_page_and_wrong_method(browser: httpx.Client, demo: Demo) -> None:
    page = assert_error_page(browser.get("/no/such/page"), 404, "NOT_FOUND")
    assert heading(page) == "No such page"
    assert 'href="/"' in page
    wrong = browser.get("/logout")
    assert_error_page(wrong, 405, "METHOD_NOT_ALLOWED")
    assert wrong.headers["allow"] == "POST"
    script = demo.client().get("/no/such/page")
    assert script.status_code == 404
    assert script.json()["error"] == "NOT_FOUND"


def test_a_crash_gets_a_calm_page_and_keeps_nothing(demo: Demo, browser: httpx.Client) -> None:
    token = csrf_from(browser.get("/login").text)
    demo.users.close()  # the account database goes away under the running app
    crashed = browser.post(
        "/login", data={"username": "ada", "password": "x" * 12, "csrf_token": token}
    )
    page = assert_error_page(crashed, 500, "INTERNAL_ERROR")
    assert heading(page) == "Something went wrong on our side"
    assert "Traceback" not in page
    assert "set-cookie" not in crashed.headers
    as_json = demo.client().post("/api/login", json={"username": "ada", "password": "x" * 12})
    assert as_json.status_code == 500
    assert as_json.json()["error"] == "INTERNAL_ERROR"
    assert "default-src 'none'" in as_json.headers["content-security-policy"]


@pytest.fixture
def stalled_demo() -> Iterator[str]:
    """The demo on a Redis that accepts connections and never answers (a frozen server)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # the kernel completes handshakes; nobody ever reads
        port = silent.getsockname()[1]
        store = RedisStore(
            url=f"redis://127.0.0.1:{port}/0", socket_timeout=0.3, connect_timeout=0.3
        )
        with serve(create_app(store, secret_key=SECRET)) as url:
            yield url


def test_a_stalled_store_gets_a_page_for_people(demo: Demo, stalled_demo: str) -> None:
    # A cookie signed with the same key, from a demo whose store works: its session must load.
    cookie = demo.client().get("/").cookies["sessio"]
    with httpx.Client(base_url=stalled_demo, timeout=30, cookies={"sessio": cookie}) as client:
        page = assert_error_page(client.get("/", headers=BROWSER), 503, "STORE_UNAVAILABLE")
        assert heading(page) == "The shop is briefly unavailable"
        as_json = client.get("/api/session")
        assert as_json.status_code == 503
        assert as_json.json() == {
            "error": "STORE_UNAVAILABLE",
            "detail": "the session store is unavailable",
        }
