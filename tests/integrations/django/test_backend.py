"""The session-backend contract Django tests its own backends with, on sessio's SessionStore.

Written after Django's ``SessionTestsMixin`` (tests/sessions_tests/tests.py): every test that
takes ``reference`` also runs on Django's database backend, so what passes proves parity;
the tests that take ``backend`` are sessio's additions, where Django's backends fall short.
"""

from __future__ import annotations

import base64
import logging
import threading
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
from django.core import management, signing
from django.test.utils import override_settings
from django.utils import timezone

from sessio import SyncSessionManager
from sessio.integrations.django import store

Backend = type[SessionBase]


def test_new_session(reference: Backend) -> None:
    session = reference()
    assert session.modified is False
    assert session.accessed is False


def test_get_empty(reference: Backend) -> None:
    assert reference().get("cat") is None


def test_store_and_pop(reference: Backend) -> None:
    session = reference()
    session["cat"] = "dog"
    assert session.modified is True
    assert session.pop("cat") == "dog"


def test_pop(reference: Backend) -> None:
    session = reference()
    session["some key"] = "exists"
    session.accessed = session.modified = False
    assert session.pop("some key") == "exists"
    assert session.accessed is True
    assert session.modified is True
    assert session.get("some key") is None


def test_pop_default(reference: Backend) -> None:
    session = reference()
    assert session.pop("some key", "does not exist") == "does not exist"
    assert session.accessed is True
    assert session.modified is False


def test_pop_no_default_raises(reference: Backend) -> None:
    with pytest.raises(KeyError):
        reference().pop("some key")


def test_setdefault(reference: Backend) -> None:
    session = reference()
    assert session.setdefault("foo", "bar") == "bar"
    assert session.setdefault("foo", "baz") == "bar"
    assert session.accessed is True
    assert session.modified is True


def test_update(reference: Backend) -> None:
    session = reference()
    session.update({"update key": 1})
    assert session.accessed is True
    assert session.modified is True
    assert session.get("update key") == 1


def test_has_key_keys_values_items(reference: Backend) -> None:
    session = reference()
    session["x"] = 1
    session.modified = session.accessed = False
    assert "x" in session
    assert session.accessed is True
    assert session.modified is False
    assert list(session.keys()) == ["x"]
    assert list(session.values()) == [1]
    assert list(session.items()) == [("x", 1)]


def test_clear(reference: Backend) -> None:
    session = reference()
    session["x"] = 1
    session.modified = session.accessed = False
    assert list(session.items()) == [("x", 1)]
    session.clear()
    assert list(session.items()) == []
    assert session.accessed is True
    assert session.modified is True


def test_save(reference: Backend) -> None:
    session = reference()
    session.save()
    assert session.exists(session.session_key) is True


def test_save_keeps_data_and_round_trips(reference: Backend) -> None:
    session = reference()
    session["a"] = {"nested": [1, 2.5, "three", None, True]}
    session.save()
    assert session["a"] == {"nested": [1, 2.5, "three", None, True]}
    again = reference(session.session_key)
    assert again["a"] == {"nested": [1, 2.5, "three", None, True]}
    assert again.session_key == session.session_key


def test_delete(reference: Backend) -> None:
    session = reference()
    session.save()
    session.delete(session.session_key)
    assert session.exists(session.session_key) is False


def test_flush(reference: Backend) -> None:
    session = reference()
    session["foo"] = "bar"
    session.save()
    prev_key = session.session_key
    session.flush()
    assert session.exists(prev_key) is False
    assert session.session_key != prev_key
    assert session.session_key is None
    assert session.modified is True
    assert session.accessed is True
    assert reference(prev_key).get("foo") is None


def test_cycle(reference: Backend) -> None:
    session = reference()
    session["a"], session["b"] = "c", "d"
    session.save()
    prev_key = session.session_key
    prev_data = list(session.items())
    session.cycle_key()
    assert session.session_key != prev_key
    assert list(session.items()) == prev_data
    assert session.exists(prev_key) is False
    assert session.exists(session.session_key) is True
    assert dict(reference(session.session_key).items()) == dict(prev_data)


def test_cycle_with_no_session_cache(reference: Backend) -> None:
    session = reference()
    session["a"], session["b"] = "c", "d"
    session.save()
    prev_data = list(session.items())
    session = reference(session.session_key)
    assert hasattr(session, "_session_cache") is False
    session.cycle_key()
    assert sorted(session.items()) == sorted(prev_data)


def test_cycle_of_a_new_session_stores_it(reference: Backend) -> None:
    session = reference()
    session["a"] = 1
    session.cycle_key()
    assert session.session_key is not None
    assert reference(session.session_key)["a"] == 1


def test_save_doesnt_clear_data(reference: Backend) -> None:
    session = reference()
    session["a"] = "b"
    session.save()
    assert session["a"] == "b"


def test_invalid_key(reference: Backend) -> None:
    session = reference("1")
    session.save()
    assert session.session_key != "1"
    assert session.get("cat") is None
    session.delete()


def test_session_key_validation(reference: Backend) -> None:
    session = reference()
    session._session_key = ""
    assert session.session_key is None
    session._session_key = "1234567"
    assert session.session_key is None
    session._session_key = "12345678"
    assert session.session_key == "12345678"


def test_session_key_is_read_only(reference: Backend) -> None:
    session = reference()
    with pytest.raises(AttributeError):
        session.session_key = "x" * 43  # type: ignore[misc]


def test_default_expiry(reference: Backend) -> None:
    session = reference()
    assert session.get_expiry_age() == settings.SESSION_COOKIE_AGE
    session.set_expiry(0)
    assert session.get_expiry_age() == settings.SESSION_COOKIE_AGE


@pytest.mark.parametrize("expiry", ["seconds", "timedelta", "datetime"])
def test_custom_expiry(reference: Backend, expiry: str, monkeypatch: pytest.MonkeyPatch) -> None:
    session = reference()
    modification = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: modification)
    value: Any = {
        "seconds": 10,
        "timedelta": timedelta(seconds=10),
        "datetime": modification + timedelta(seconds=10),
    }[expiry]
    session.set_expiry(value)
    assert session.get_expiry_date(modification=modification) == modification + timedelta(
        seconds=10
    )
    assert session.get_expiry_age(modification=modification) == 10


def test_custom_expiry_reset(reference: Backend) -> None:
    session = reference()
    session.set_expiry(None)
    session.set_expiry(10)
    session.set_expiry(None)
    assert session.get_expiry_age() == settings.SESSION_COOKIE_AGE


@pytest.mark.parametrize("at_close", [False, True])
def test_get_expire_at_browser_close(reference: Backend, at_close: bool) -> None:
    with override_settings(SESSION_EXPIRE_AT_BROWSER_CLOSE=at_close):
        session = reference()
        session.set_expiry(10)
        assert session.get_expire_at_browser_close() is False
        session.set_expiry(0)
        assert session.get_expire_at_browser_close() is True
        session.set_expiry(None)
        assert session.get_expire_at_browser_close() is at_close


def test_decode(reference: Backend) -> None:
    session = reference()
    data = {"a test key": "a test value"}
    assert session.decode(session.encode(data)) == data


@pytest.mark.parametrize(
    "encoded", [base64.b64encode(b"flaskdj:alkdjf").decode("ascii"), "bad:encoded:value"]
)
def test_decode_failure_logged_to_security(
    reference: Backend, encoded: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "django.security.SuspiciousSession"):
        assert reference().decode(encoded) == {}
    assert "Session data corrupted" in caplog.text


def test_actual_expiry(reference: Backend) -> None:
    session = reference()
    session["foo"] = "bar"
    session.set_expiry(-timedelta(seconds=10))
    session.save()
    old_key = session.session_key
    later = reference(old_key)
    assert "foo" not in later
    assert later.session_key != old_key


def test_session_load_does_not_create_record(reference: Backend) -> None:
    session = reference("someunknownkey")
    session.load()
    assert session.session_key is None
    assert session.exists(session.session_key) is False
    assert session.session_key != "someunknownkey"


def test_save_does_not_resurrect_session_logged_out_elsewhere(reference: Backend) -> None:
    s1 = reference()
    s1["test_data"] = "value1"
    s1.save(must_create=True)
    s2 = reference(s1.session_key)
    s2.delete()
    s1["test_data"] = "value2"
    with pytest.raises(UpdateError):
        s1.save()
    assert s1.load() == {}


def test_must_create_on_a_stored_session_fails(reference: Backend) -> None:
    session = reference()
    session["a"] = 1
    session.save()
    again = reference(session.session_key)
    again["a"] = 2
    with pytest.raises(CreateError):
        again.save(must_create=True)


def test_clearsessions(reference: Backend) -> None:
    live = reference()
    live["foo"] = "bar"
    live.set_expiry(3600)
    live.save()
    past = reference()
    past["foo"] = "bar"
    past.set_expiry(-3600)
    past.save()
    management.call_command("clearsessions")
    assert live.exists(live.session_key) is True
    assert past.exists(past.session_key) is False


# -- what sessio adds ------------------------------------------------------------------------------


def test_ids_are_hashed_at_rest(backend: Backend) -> None:
    session = backend()
    session["a"] = 1
    session.save()
    key = session.session_key
    assert key is not None
    assert len(key) == 43
    record = store().load_sync(backend(key).sessio_session().key)
    assert record is not None
    assert key not in record.key
    assert all(key not in text for text in record.fields.values())


def test_values_are_django_signed(backend: Backend) -> None:
    session = backend()
    session["cart"] = ["apple"]
    session.save()
    text = backend(session.session_key).sessio_session()["cart"]
    salt = f"{session.key_salt}:cart"
    assert signing.Signer(salt=salt).unsign_object(text) == ["apple"]


def test_two_writers_of_different_keys_both_land(backend: Backend) -> None:
    first = backend()
    first["shared"] = 0
    first.save()
    key = first.session_key
    a, b = backend(key), backend(key)
    assert a["shared"] == b["shared"] == 0  # both loaded before either saves
    a["from_a"] = 1
    b["from_b"] = 2
    a.save()
    b.save()
    final = backend(key)
    assert (final["from_a"], final["from_b"], final["shared"]) == (1, 2, 0)


def test_parallel_threads_of_one_session_lose_nothing(backend: Backend) -> None:
    first = backend()
    first["n"] = 0
    first.save()
    key = first.session_key
    barrier = threading.Barrier(8, timeout=20)
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            session = backend(key)
            session.load()
            barrier.wait()
            session[f"w{i}"] = i
            session.save()
        except BaseException as exc:  # reported below, with the thread's own traceback
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    final = backend(key)
    keys = list(final.keys())  # (SessionBase has no __iter__)
    assert {k: final[k] for k in keys if k.startswith("w")} == {f"w{i}": i for i in range(8)}


def test_a_rotation_after_a_logout_elsewhere_keeps_nothing(backend: Backend) -> None:
    session = backend()
    session["cart"] = ["apple"]
    session.save()
    held = backend(session.session_key)
    assert held["cart"] == ["apple"]
    backend(session.session_key).flush()  # logged out in another request
    held.cycle_key()
    assert held.get("cart") is None
    assert backend(held.session_key).get("cart") is None


def test_a_tampered_value_is_dropped_and_logged(
    backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    session = backend()
    session["role"] = "user"
    session["name"] = "ann"
    session.save()
    attacker = SyncSessionManager(store())  # someone with write access to the store
    raw = attacker.load(session.session_key)
    raw["role"] = signing.Signer(salt="guess").sign_object("admin")
    attacker.commit(raw)
    with caplog.at_level(logging.WARNING, "django.security.SuspiciousSession"):
        loaded = backend(session.session_key)
        assert loaded.get("role") is None
        assert loaded["name"] == "ann"
    assert "Session data corrupted" in caplog.text


@pytest.mark.parametrize(
    "hostile",
    ["", "x" * 43, "../../etc/passwd", "\x00" * 50, "a" * 100_000, "é" * 43, "1; DROP TABLE x"],
)
def test_hostile_keys_give_a_fresh_session(backend: Backend, hostile: str) -> None:
    session = backend(hostile)
    assert session.get("anything") is None
    assert session.session_key is None
    session["a"] = 1
    session.save()
    assert session.session_key != hostile


def test_record_expiry_follows_set_expiry(backend: Backend) -> None:
    session = backend()
    session["a"] = 1
    session.set_expiry(120)
    session.save()
    record = store().load_sync(session.sessio_session().key)
    assert record is not None
    remaining = record.expires_at - timezone.now().timestamp()
    # The record outlives Django's expiry by at most one refresh_interval (60 s): sessio's
    # idle rule is never early; get_expiry_age() and the cookie stay Django's.
    assert 100 < remaining <= 121 + 60
    assert session.get_expiry_age() == 120


def test_serializer_failure_raises_at_save_and_writes_nothing(backend: Backend) -> None:
    session = backend()
    session["ok"] = 1
    session.save()
    session["bad"] = object()
    with pytest.raises(TypeError):
        session.save()
    assert "bad" not in backend(session.session_key)
