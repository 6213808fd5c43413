"""The SESSIO_* settings: each mistake raises ImproperlyConfigured naming the setting; a store
that stalls fails the requests that use the session, within the store's timeout, and no other."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.test.utils import override_settings

from sessio import MemoryStore, Policy, StoreUnavailable
from sessio.integrations.django import SessionStore, store


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"SESSIO_STORE": None}, "SESSIO_STORE is required"),
        ({"SESSIO_STORE": "nosuch://x"}, "unknown store URL scheme"),
        ({"SESSIO_STORE": 42}, "SESSIO_STORE must be a store URL"),
        ({"SESSIO_STORE_OPTIONS": "prefix"}, "SESSIO_STORE_OPTIONS must be a dict"),
        (
            {"SESSIO_STORE": "memory://", "SESSIO_STORE_OPTIONS": {"nope": 1}},
            "SESSIO_STORE_OPTIONS",
        ),
        (
            {"SESSIO_STORE": MemoryStore(), "SESSIO_STORE_OPTIONS": {"a": 1}},
            "applies to a store URL",
        ),
        ({"SESSIO_STORE": "memory://", "SESSIO_POLICY": {"ttl": 5}}, "must be a sessio.Policy"),
        ({"SESSIO_STORE": "sqlite:///x.db?bogus=1"}, "unknown store URL option"),
    ],
)
def test_bad_settings_are_named(changes: dict[str, Any], message: str) -> None:
    with override_settings(**changes), pytest.raises(ImproperlyConfigured, match=message):
        SessionStore()


def test_a_store_instance_and_a_policy_are_taken_as_given() -> None:
    memory = MemoryStore()
    with override_settings(SESSIO_STORE=memory, SESSIO_POLICY=Policy(ttl=3600)):
        assert store() is memory
        session = SessionStore()
        session["a"] = 1
        session.save()
        assert memory.count_sync() == 1
    assert store() is not memory  # the settings changed back: the store was rebuilt


@contextmanager
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a stalled Redis)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


def test_a_stalled_store_fails_only_the_requests_that_use_the_session() -> None:
    pytest.importorskip("redis")
    with (
        silent_server() as port,
        override_settings(
            SESSIO_STORE=f"redis://127.0.0.1:{port}/0",
            SESSIO_STORE_OPTIONS={"socket_timeout": 0.3, "connect_timeout": 0.3},
        ),
    ):
        client = Client(raise_request_exception=False)
        client.cookies["sessionid"] = "A" * 43
        assert client.get("/nope/").status_code == 404  # never touches the session
        with pytest.raises(StoreUnavailable):
            Client().get("/put/a/1/")
        assert client.get("/show/").status_code == 500
