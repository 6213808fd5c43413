"""Every route of the demo over real HTTP: httpx against uvicorn, sessions in a real SQLite file."""

from __future__ import annotations

import httpx
import pytest

from sessio import ids

from .conftest import Demo, csrf_from
from .forms import PASSWORD, device_rows, flashes, login, post_form, register, signed_in_as


@pytest.fixture
def ada(demo: Demo) -> httpx.Client:
    """A browser signed in as ada (registered just now)."""
    client = demo.client()
    assert register(client, "ada").status_code == 303
    assert login(client, "ada").status_code == 303
    return client


# -- pages ---------------------------------------------------------------------------------------


def test_pages_carry_security_headers_and_the_stylesheet_no_session(demo: Demo) -> None:
    client = demo.client()
    page = client.get("/")
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    assert "<script" not in page.text
    css = demo.client().get("/static/demo.css")
    assert css.status_code == 200
    assert css.headers["content-type"].startswith("text/css")
    assert css.headers["cache-control"] == "public, max-age=3600"
    assert "set-cookie" not in css.headers


def test_register_login_cart_and_logout(demo: Demo) -> None:
    client = demo.client()
    # A guest fills a cart first: the cart must survive the login's ID rotation.
    assert post_form(client, "/cart", {"item": "Tea"}).status_code == 303
    assert flashes(client.get("/").text) == [("success", "Added Tea to your cart.")]
    guest_cookie = client.cookies["sessio"]

    created = register(client, "Ada")
    assert created.status_code == 303
    assert created.headers["location"] == "/login?username=ada"
    form = client.get(created.headers["location"]).text
    assert flashes(form) == [("success", "Account ada created. Log in to start.")]
    assert 'value="ada"' in form

    done = login(client, "ada")
    assert done.status_code == 303
    assert done.headers["location"] == "/"
    assert client.cookies["sessio"] != guest_cookie  # rotated at login
    guest_id = guest_cookie.rsplit(".", 1)[0]
    assert not demo.store.exists_sync(ids.store_key(guest_id))  # the old record is gone
    home = client.get("/").text
    assert flashes(home) == [
        ("success", "Welcome, ada! You are signed in, under a brand-new session ID.")
    ]
    assert 'id="whoami">ada<' in home
    assert "<span>Tea</span>" in home
    assert flashes(client.get("/").text) == []  # a flash is shown once

    post_form(client, "/cart", {"item": "Tea"})
    post_form(client, "/cart", {"item": "Muffin"})
    home = client.get("/").text
    assert '<span>Tea</span><span class="badge muted">&times; 2</span>' in home
    assert "<span>Muffin</span>" in home

    signed_in_id = client.cookies["sessio"].rsplit(".", 1)[0]
    out = post_form(client, "/logout", {})
    assert out.status_code == 303
    assert not demo.store.exists_sync(ids.store_key(signed_in_id))
    home = client.get("/").text
    assert flashes(home) == [
        ("success", "You are signed out; that session no longer exists anywhere.")
    ]
    assert signed_in_as(client) is None
    assert "Empty, for now." in home  # logout drops the session's data


def test_unknown_item_and_needless_logout_are_flashed(demo: Demo) -> None:
    client = demo.client()
    post_form(client, "/cart", {"item": "Caviar"})
    assert flashes(client.get("/").text) == [("error", "That is not something this shop sells.")]
    post_form(client, "/logout", {})
    assert flashes(client.get("/").text) == [("info", "You were not signed in.")]


def test_registration_errors_are_flashed_on_the_form(demo: Demo) -> None:
    client = demo.client()
    register(client, "ada")
    taken = register(client, "ADA", "another password")
    assert taken.status_code == 400
    assert flashes(taken.text) == [("error", "That username is taken; choose another.")]
    short = register(client, "bob", "short")
    assert short.status_code == 400
    assert flashes(short.text) == [
        ("error", "Passwords need 8 to 1024 characters; that one has 5.")
    ]
    assert 'value="bob"' in short.text


def test_failed_logins_do_not_reveal_which_accounts_exist(demo: Demo) -> None:
    client = demo.client()
    register(client, "ada")
    wrong_password = login(client, "ada", "not the password")
    no_such_user = login(client, "nobody", "not the password")
    assert wrong_password.status_code == no_such_user.status_code == 400
    assert (
        flashes(wrong_password.text)
        == flashes(no_such_user.text)
        == [("error", "Wrong username or password.")]
    )
    assert signed_in_as(client) is None


def test_repeated_failures_are_throttled_even_for_the_right_password(demo: Demo) -> None:
    client = demo.client()
    register(client, "ada")
    for _ in range(5):
        login(client, "ada", "guess guess guess")
    refused = login(client, "ada")
    assert refused.status_code == 400
    assert flashes(refused.text) == [
        ("error", "Too many failed attempts; wait a few minutes and try again.")
    ]
    assert signed_in_as(client) is None


# -- CSRF ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/cart", "/logout", "/login", "/register", "/devices/revoke", "/devices/revoke-others"]
)
def test_every_form_needs_a_csrf_token(ada: httpx.Client, path: str) -> None:
    response = ada.post(path, data={"item": "Tea", "username": "ada", "password": PASSWORD})
    assert response.status_code == 403
    assert response.json()["error"] == "CSRF_FAILED"
    assert signed_in_as(ada) == "ada"


def test_csrf_tokens_are_per_session_and_checked_against_the_origin(
    demo: Demo, ada: httpx.Client
) -> None:
    stranger = demo.client()
    foreign_token = csrf_from(stranger.get("/").text)
    stolen = ada.post("/cart", data={"item": "Tea", "csrf_token": foreign_token})
    assert stolen.status_code == 403
    token = csrf_from(ada.get("/").text)
    cross_site = ada.post(
        "/cart",
        data={"item": "Tea", "csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert cross_site.status_code == 403
    same_site = ada.post(
        "/cart", data={"item": "Tea", "csrf_token": token}, headers={"Origin": demo.url}
    )
    assert same_site.status_code == 303
    header = ada.post(
        "/cart", data={"item": "Fig"}, headers={"X-CSRF-Token": csrf_from(ada.get("/").text)}
    )
    assert header.status_code == 303


# -- devices -------------------------------------------------------------------------------------


def test_devices_needs_a_login(demo: Demo) -> None:
    client = demo.client()
    response = client.get("/devices")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert flashes(client.get("/login").text) == [
        ("info", "Log in to see the devices signed in to your account.")
    ]
    for path in ("/devices/revoke", "/devices/revoke-others"):
        assert post_form(client, path, {"session": "0" * 64}).headers["location"] == "/login"


def test_devices_lists_the_users_sessions_with_this_one_marked(
    demo: Demo, ada: httpx.Client
) -> None:
    phone = demo.client(
        headers={
            "User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) Safari/604.1"
        }
    )
    login(phone, "ada")
    page = ada.get("/devices").text
    assert "Safari on iPhone" in page
    assert "httpx" in page
    assert "127.0.0.1" in page
    rows = device_rows(ada)
    assert len(rows) == 2
    assert [current for current, _ in rows].count(True) == 1
    own_key = ids.store_key(ada.cookies["sessio"].rsplit(".", 1)[0])
    assert (True, own_key[:12]) in rows


def test_revoke_ends_one_of_your_sessions_and_never_someone_elses(
    demo: Demo, ada: httpx.Client
) -> None:
    laptop = demo.client()
    login(laptop, "ada")
    bob = demo.client()
    register(bob, "bob")
    login(bob, "bob")
    bob_key = ids.store_key(bob.cookies["sessio"].rsplit(".", 1)[0])
    laptop_key = ids.store_key(laptop.cookies["sessio"].rsplit(".", 1)[0])
    ada_key = ids.store_key(ada.cookies["sessio"].rsplit(".", 1)[0])

    refused = post_form(ada, "/devices/revoke", {"session": bob_key}, via="/devices")
    assert refused.headers["location"] == "/devices"
    assert flashes(ada.get("/devices").text) == [
        ("error", "No such session among yours; it may have ended already.")
    ]
    assert signed_in_as(bob) == "bob"

    for garbage in ("", "not-a-key", "0" * 64):
        post_form(ada, "/devices/revoke", {"session": garbage}, via="/devices")
        assert flashes(ada.get("/devices").text)[0][0] == "error"

    post_form(ada, "/devices/revoke", {"session": ada_key}, via="/devices")
    assert flashes(ada.get("/devices").text) == [
        ("info", "That is this device: use Log out to end it.")
    ]

    post_form(ada, "/devices/revoke", {"session": laptop_key}, via="/devices")
    assert flashes(ada.get("/devices").text) == [("success", "That device is signed out.")]
    assert signed_in_as(laptop) is None
    assert signed_in_as(ada) == "ada"
    assert len(device_rows(ada)) == 1


def test_log_out_everywhere_else(demo: Demo, ada: httpx.Client) -> None:
    others = [demo.client() for _ in range(2)]
    for other in others:
        login(other, "ada")
    assert len(device_rows(ada)) == 3
    post_form(ada, "/devices/revoke-others", {}, via="/devices")
    page = ada.get("/devices").text
    assert flashes(page) == [("success", "Signed out 2 other sessions; only this device remains.")]
    assert "Log out everywhere else" not in page  # nothing else left to end
    assert [signed_in_as(other) for other in others] == [None, None]
    assert device_rows(ada) == [(True, ids.store_key(ada.cookies["sessio"].rsplit(".", 1)[0])[:12])]


def test_a_sixth_login_ends_the_oldest_session(demo: Demo, ada: httpx.Client) -> None:
    later = [demo.client() for _ in range(5)]
    for client in later:
        login(client, "ada")
    assert signed_in_as(ada) is None  # the oldest of six
    assert all(signed_in_as(client) == "ada" for client in later)
    assert len(device_rows(later[-1])) == 5


# -- JSON API ------------------------------------------------------------------------------------


def test_api_session_serves_single_page_apps(demo: Demo, ada: httpx.Client) -> None:
    guest = demo.client().get("/api/session")
    assert guest.headers["cache-control"] == "no-store"
    body = guest.json()
    assert body["authenticated"] is False
    assert body["user"] is None
    assert 0 < body["expires_in"] <= 31 * 60  # idle, plus at most one refresh_interval
    state = ada.get("/api/session").json()
    assert state["authenticated"] is True
    assert state["user"] == "ada"
    # The token it hands out works as the X-CSRF-Token header of a JSON client.
    assert (
        ada.post(
            "/cart", data={"item": "Coffee"}, headers={"X-CSRF-Token": state["csrf_token"]}
        ).status_code
        == 303
    )
    assert "<span>Coffee</span>" in ada.get("/").text


def test_api_login_gives_a_bearer_token_for_a_new_session(demo: Demo, ada: httpx.Client) -> None:
    api = demo.client()
    issued = api.post("/api/login", json={"username": "ada", "password": PASSWORD})
    assert issued.status_code == 200
    body = issued.json()
    assert body["token_type"] == "Bearer"
    assert 0 < body["expires_in"] <= 31 * 60  # idle, plus at most one refresh_interval
    assert "set-cookie" not in issued.headers
    token = body["token"]

    me = api.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["user"] == "ada"
    assert me.json()["roles"] == ["customer"]
    assert api.get("/api/me", headers={"X-Session-ID": token}).json()["user"] == "ada"
    # A header-borne session needs no CSRF token: no browser sends that header by itself.
    assert (
        api.post(
            "/cart", data={"item": "Tea"}, headers={"Authorization": f"Bearer {token}"}
        ).status_code
        == 303
    )
    # The browser's device list shows the API session too, and can end it.
    assert len(device_rows(ada)) == 2
    post_form(ada, "/devices/revoke-others", {}, via="/devices")
    assert api.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic YWRhOnB3"},
        {"X-Session-ID": "forged.signature"},
    ],
)
def test_api_me_needs_a_valid_header_token(demo: Demo, headers: dict[str, str]) -> None:
    response = demo.client().get("/api/me", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "AUTHENTICATION_REQUIRED"
    assert response.headers["www-authenticate"] == "Bearer"


def test_api_me_refuses_a_cookie_session(ada: httpx.Client) -> None:
    response = ada.get("/api/me")
    assert response.status_code == 401
    assert response.json()["error"] == "AUTHENTICATION_REQUIRED"


def test_api_me_refuses_a_tampered_token(demo: Demo, ada: httpx.Client) -> None:
    token = (
        demo.client()
        .post("/api/login", json={"username": "ada", "password": PASSWORD})
        .json()["token"]
    )
    session_id, mac = token.rsplit(".", 1)
    tampered = f"{session_id}.{'A' if mac[0] != 'A' else 'B'}{mac[1:]}"
    assert (
        demo.client().get("/api/me", headers={"Authorization": f"Bearer {tampered}"}).status_code
        == 401
    )


@pytest.mark.parametrize(
    ("content", "content_type", "status", "error"),
    [
        (
            '{"username": "ada", "password": "wrong password"}',
            "application/json",
            401,
            "INVALID_CREDENTIALS",
        ),
        (
            '{"username": "nobody", "password": "wrong password"}',
            "application/json",
            401,
            "INVALID_CREDENTIALS",
        ),
        (
            "username=ada&password=x",
            "application/x-www-form-urlencoded",
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        ('{"username": "ada", "password": "x"}', "text/plain", 415, "UNSUPPORTED_MEDIA_TYPE"),
        ("{not json", "application/json", 400, "INVALID_REQUEST"),
        ('{"username": "ada"}', "application/json", 400, "INVALID_REQUEST"),
        ('{"username": 1, "password": 2}', "application/json", 400, "INVALID_REQUEST"),
        ('["ada", "pw"]', "application/json", 400, "INVALID_REQUEST"),
    ],
)
def test_api_login_refusals(
    demo: Demo, ada: httpx.Client, content: str, content_type: str, status: int, error: str
) -> None:
    response = demo.client().post(
        "/api/login", content=content, headers={"Content-Type": content_type}
    )
    assert response.status_code == status
    assert response.json()["error"] == error
    assert "token" not in response.json()
