"""A Django app whose only change is SESSION_ENGINE, driven through its middleware and test client.

Login, messages across a redirect, logout, the admin, key rotation with SECRET_KEY_FALLBACKS,
parallel requests of one session, the device list and the per-user session limit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.base import SessionBase
from django.test import Client
from django.test.utils import override_settings

from sessio import ConcurrencyPolicy, EventKind, Policy, SessionEvent
from sessio.integrations.django import SessionStore, events

from . import urls

COOKIE = "sessionid"
Backend = type[SessionBase]


@pytest.fixture(scope="module")
def users() -> Iterator[dict[str, Any]]:
    model = get_user_model()
    ann = model.objects.create_superuser("ann", "ann@example.com", "ann-password")
    bob = model.objects.create_user("bob", "bob@example.com", "bob-password")
    yield {"ann": ann, "bob": bob}
    model.objects.filter(pk__in=[ann.pk, bob.pk]).delete()


def sign_in(client: Client, name: str) -> None:
    response = client.post("/login/", {"username": name})
    assert response.status_code == 302


def key_of(client: Client) -> str:
    return client.cookies[COOKIE].value


def in_parallel(*calls: Any) -> list[Any]:
    """Run each call in a thread of its own; their results, in order (bounded in time)."""
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except BaseException as exc:  # handed back to the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
        assert not thread.is_alive()
    return results


def test_login_carries_a_message_across_the_redirect(backend: Backend, users: Any) -> None:
    client = Client()
    client.get("/put/cart/apple/")
    anonymous = key_of(client)
    sign_in(client, "ann")
    key = key_of(client)
    assert len(key) == 43
    assert key != anonymous
    assert SessionStore().exists(anonymous) is False
    page = client.get("/after/")
    assert page.json() == {"messages": ["Welcome, ann"], "user": "ann"}
    assert "Cookie" in page["Vary"]
    assert client.get("/after/").json()["messages"] == []  # consumed
    assert client.get("/show/").json()["data"] == {"cart": "apple"}  # anonymous data kept


def test_logout_ends_the_session(backend: Backend, users: Any) -> None:
    client = Client()
    sign_in(client, "ann")
    key = key_of(client)
    assert client.get("/private/").status_code == 200
    assert client.get("/logout/").status_code == 302
    assert SessionStore().exists(key) is False
    assert client.get("/after/").json() == {"messages": ["Signed out"], "user": None}
    assert client.get("/private/").status_code == 302
    # The old cookie, replayed, is worthless.
    replay = Client()
    replay.cookies[COOKIE] = key
    assert replay.get("/private/").status_code == 302


def test_the_admin_logs_in(backend: Backend, users: Any) -> None:
    client = Client(enforce_csrf_checks=True)
    page = client.get("/admin/login/?next=/admin/")
    assert page.status_code == 200
    token = page.context["csrf_token"] if page.context else client.cookies["csrftoken"].value
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "ann", "password": "ann-password", "csrfmiddlewaretoken": str(token)},
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/auth/user/").status_code == 200


def test_re_login_as_the_same_user_rotates_the_key(backend: Backend, users: Any) -> None:
    client = Client()
    sign_in(client, "ann")
    first = key_of(client)
    sign_in(client, "ann")
    second = key_of(client)
    assert second != first
    assert SessionStore().exists(first) is False
    assert client.get("/private/").status_code == 200


def test_secret_key_rotation(
    backend: Backend, users: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = Client()
    with override_settings(SECRET_KEY="old-" + "k" * 40):
        sign_in(client, "ann")
        client.get("/put/cart/apple/")
    with override_settings(SECRET_KEY="new-" + "k" * 40, SECRET_KEY_FALLBACKS=["old-" + "k" * 40]):
        assert client.get("/private/").status_code == 200  # verified by the fallback
        client.get("/put/seen/yes/")  # a save signs every value with the new key
    with override_settings(SECRET_KEY="new-" + "k" * 40, SECRET_KEY_FALLBACKS=[]):
        assert client.get("/private/").status_code == 200
        assert client.get("/show/").json()["data"] == {"cart": "apple", "seen": "yes"}
    with (
        override_settings(SECRET_KEY="other-" + "k" * 40),
        caplog.at_level(logging.WARNING, "django.security.SuspiciousSession"),
    ):
        assert client.get("/private/").status_code == 302
    assert "Session data corrupted" in caplog.text


def test_two_parallel_requests_writing_different_keys_both_land(backend: Backend) -> None:
    first = Client()
    first.get("/put/start/1/")
    second = Client()
    second.cookies[COOKIE] = key_of(first)
    urls.GATE["held"] = threading.Barrier(2, timeout=20)
    a, b = in_parallel(lambda: first.get("/held-put/a/1/"), lambda: second.get("/held-put/b/2/"))
    assert (a.status_code, b.status_code) == (200, 200)
    assert first.get("/show/").json()["data"] == {"start": "1", "a": "1", "b": "2"}


def test_a_write_after_a_parallel_logout_is_refused(backend: Backend, users: Any) -> None:
    writer = Client()
    sign_in(writer, "ann")
    key = key_of(writer)
    other = Client()
    other.cookies[COOKIE] = key
    urls.GATE["held"] = threading.Barrier(2, timeout=20)
    urls.LATER.clear()

    def log_out() -> Any:
        try:
            return other.get("/held-logout/")
        finally:
            urls.LATER.set()

    late, out = in_parallel(lambda: writer.get("/late-put/cart/apple/"), log_out)
    assert out.status_code == 200
    assert late.status_code == 400  # SessionInterrupted: the session stays logged out
    assert SessionStore().exists(key) is False
    replay = Client()
    replay.cookies[COOKIE] = key
    assert replay.get("/show/").json() == {"data": {}, "user": None}


def test_device_list_and_logout_everywhere_else(backend: Backend, users: Any) -> None:
    phone, laptop = Client(HTTP_USER_AGENT="Phone/1.0"), Client(HTTP_USER_AGENT="Laptop/2.0")
    sign_in(phone, "ann")
    sign_in(laptop, "ann")
    sign_in(Client(), "bob")
    rows = laptop.get("/devices/").json()["sessions"]
    assert sorted(r["agent"] for r in rows) == ["Laptop/2.0", "Phone/1.0"]
    assert [r["agent"] for r in rows if r["current"]] == ["Laptop/2.0"]
    assert all(r["ip"] == "127.0.0.1" for r in rows)
    assert laptop.post("/others-out/").json() == {"ended": 1}
    assert phone.get("/private/").status_code == 302
    assert laptop.get("/private/").status_code == 200
    assert len(laptop.get("/devices/").json()["sessions"]) == 1


def test_the_policy_limits_sessions_per_user(backend: Backend, users: Any) -> None:
    limit = Policy(ttl=None, concurrency=ConcurrencyPolicy(max_sessions_per_principal=1))
    with override_settings(SESSIO_POLICY=limit):
        first, second = Client(), Client()
        sign_in(first, "bob")
        sign_in(second, "bob")
        assert first.get("/private/").status_code == 302  # the oldest was evicted
        assert second.get("/private/").status_code == 200


def test_a_rejected_login_is_forbidden_and_saves_nothing(backend: Backend, users: Any) -> None:
    limit = ConcurrencyPolicy(max_sessions_per_principal=1, on_limit="reject")
    with override_settings(SESSIO_POLICY=Policy(ttl=None, concurrency=limit)):
        first, second = Client(), Client(raise_request_exception=False)
        sign_in(first, "bob")
        response = second.post("/login/", {"username": "bob"})
        assert response.status_code == 403
        assert second.get("/private/").status_code == 302
        assert first.get("/private/").status_code == 200  # the first login keeps its session


def test_events_announce_the_login(backend: Backend, users: Any) -> None:
    seen: list[SessionEvent] = []
    unsubscribe = events.subscribe(seen.append)
    try:
        sign_in(Client(), "ann")
    finally:
        unsubscribe()
    logins = [e for e in seen if e.kind is EventKind.AUTHENTICATED]
    assert [e.principal for e in logins] == [f"user:{users['ann'].pk}"]
    assert all(key_part not in str(e.as_dict()) for e in seen for key_part in ("sessionid",))


@pytest.mark.parametrize(
    "cookie", ["", "x" * 43, "A" * 4096, "\u00e9" * 43, "a;b=c", "1' OR '1'='1", "../" * 20]
)
def test_a_hostile_cookie_gives_a_fresh_session(backend: Backend, cookie: str) -> None:
    client = Client()
    client.cookies[COOKIE] = cookie
    assert client.get("/show/").json() == {"data": {}, "user": None}
    client.get("/put/a/1/")
    assert key_of(client) != cookie
    assert len(key_of(client)) == 43
    assert client.get("/show/").json()["data"] == {"a": "1"}


def test_logout_is_announced_as_destroyed(backend: Backend, users: Any) -> None:
    client = Client()
    sign_in(client, "ann")
    seen: list[SessionEvent] = []
    unsubscribe = events.subscribe(seen.append)
    try:
        client.get("/logout/")
    finally:
        unsubscribe()
    assert EventKind.DESTROYED in [e.kind for e in seen]


def test_save_every_request_and_cookie_settings(backend: Backend) -> None:
    with override_settings(
        SESSION_SAVE_EVERY_REQUEST=True, SESSION_COOKIE_SECURE=True, SESSION_COOKIE_AGE=600
    ):
        client = Client()
        client.get("/put/a/1/")
        morsel = client.cookies[COOKIE]
        assert morsel["secure"] is True
        assert morsel["httponly"] is True
        assert morsel["max-age"] == 600
        response = client.get("/show/")
        assert response.cookies[COOKIE].value == morsel.value  # saved again, same key
