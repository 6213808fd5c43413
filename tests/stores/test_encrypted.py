"""EncryptedStore specifics: nothing readable at rest, values bound to their place, rotation."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sessio import ConfigurationError, EventKind, Principal, RecordCorrupt, SyncSessionManager
from sessio.errors import ValueNotSerializable
from sessio.stores import EncryptedStore, JWTStore, MemoryStore, SQLiteStore
from sessio.stores.base import Create, Rewrite, Update

OLD = "old-at-rest-" + "o" * 32
NEW = "new-at-rest-" + "n" * 32


def _write(fields: dict[str, str], principal: str | None = None) -> Create:
    return Create(fields, time.time() + 3600, principal)


def test_nothing_readable_reaches_the_database(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    inner = SQLiteStore(path)
    manager = SyncSessionManager(EncryptedStore(inner, NEW))
    session = manager.load(None, ip="203.0.113.9", user_agent="Firefox/140")
    session["card"] = "4111-1111-1111-1111"
    session.login(Principal("ada", attributes={"email": "ada@example.com"}))
    token = manager.commit(session).token
    inner.close_sync()
    dump = path.read_bytes()
    for plain in (b"4111", b"ada@example.com", b"203.0.113.9", b"Firefox", token.encode()):
        assert plain not in dump
    again = SyncSessionManager(EncryptedStore(SQLiteStore(path), NEW)).load(token)
    assert again["card"] == "4111-1111-1111-1111"
    assert again.principal is not None
    assert again.principal.id == "ada"


def test_a_value_moved_to_another_field_or_session_does_not_decrypt() -> None:
    inner = MemoryStore()
    store = EncryptedStore(inner, NEW)
    store.save_sync("key-a", _write({"d:x": '"secret a"', "d:y": '"y"'}))
    store.save_sync("key-b", _write({"d:x": '"secret b"'}))
    a, b = inner.load_sync("key-a"), inner.load_sync("key-b")
    assert a is not None
    assert b is not None
    inner.save_sync(
        "key-b", Rewrite({"d:x": a.fields["d:x"]}, a.expires_at)
    )  # swapped between sessions
    with pytest.raises(RecordCorrupt) as caught:
        store.load_sync("key-b")
    assert caught.value.evidence["field"] == "d:x"
    inner.save_sync(
        "key-a", Rewrite({"d:x": a.fields["d:y"], "d:y": a.fields["d:x"]}, a.expires_at)
    )
    with pytest.raises(RecordCorrupt):
        store.load_sync("key-a")  # swapped between fields


def test_rotation_keeps_old_values_readable_and_writes_under_the_newest_key() -> None:
    inner = MemoryStore()
    EncryptedStore(inner, OLD).save_sync("k1", _write({"d:n": "1"}))
    rotated = EncryptedStore(inner, [OLD, NEW])
    assert dict(rotated.load_sync("k1").fields) == {"d:n": "1"}
    rotated.save_sync("k2", _write({"d:n": "2"}))
    new_only = EncryptedStore(inner, NEW)
    assert dict(new_only.load_sync("k2").fields) == {"d:n": "2"}
    with pytest.raises(RecordCorrupt):
        new_only.load_sync("k1")  # its key was dropped


def test_a_dropped_key_gives_a_fresh_session_and_an_event() -> None:
    inner = MemoryStore()
    before = SyncSessionManager(EncryptedStore(inner, OLD))
    session = before.load(None)
    session["n"] = 1
    token = before.commit(session).token
    after = SyncSessionManager(EncryptedStore(inner, NEW))
    events: list[EventKind] = []
    after.events.subscribe(lambda e: events.append(e.kind))
    fresh = after.load(token)
    assert fresh.is_new
    assert EventKind.CORRUPT in events
    assert inner.count_sync() == 0  # the undecryptable record was discarded


def test_the_device_list_survives_an_undecryptable_value() -> None:
    inner = MemoryStore()
    store = EncryptedStore(inner, NEW)
    manager = SyncSessionManager(store)
    session = manager.load(None)
    session.login(Principal("eve"))
    manager.commit(session)
    record = inner.load_sync(session.key)
    assert record is not None
    inner.save_sync(session.key, Update({"s:meta": "garbage"}, record.expires_at, "user:eve"))
    listed = manager.sessions_of("eve")
    assert [info.key for info in listed] == [session.key]  # still listed, so still revocable
    assert manager.revoke(session.key, principal="eve")


def test_values_and_key_names_round_trip_whatever_their_text() -> None:
    store = EncryptedStore(MemoryStore(), NEW)
    fields = {"d:\x00ü/🍪": '"\\u0000 \\ud800 ü"', "d:big": '"' + "x" * 50_000 + '"', "d:e": '""'}
    store.save_sync("k", _write(fields))
    assert dict(store.load_sync("k").fields) == fields


def test_a_lone_surrogate_is_refused_before_it_is_sealed() -> None:
    # Sealed, it would be base64 that any inner store takes, and no other store could hold it.
    inner = MemoryStore()
    store = EncryptedStore(inner, NEW)
    with pytest.raises(ValueNotSerializable):
        store.save_sync("k", _write({"d:x": '"\ud800"'}))
    with pytest.raises(ValueNotSerializable):
        store.save_sync("k", _write({"d:\udfff": "1"}))
    assert inner.count_sync() == 0
    store.save_sync("k", _write({"d:x": "1"}))
    assert dict(store.load_sync("k").fields) == {"d:x": "1"}


def test_only_server_side_stores_can_be_wrapped() -> None:
    with pytest.raises(ConfigurationError):
        EncryptedStore(JWTStore("j" * 32), NEW)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        EncryptedStore(MemoryStore(), "short")
    assert "MemoryStore" in repr(EncryptedStore(MemoryStore(), NEW))
    assert NEW not in repr(EncryptedStore(MemoryStore(), NEW))


async def test_async_and_sync_paths_agree() -> None:
    store = EncryptedStore(MemoryStore(), NEW)
    await store.save("k", _write({"d:a": "1"}, principal="user:x"))
    assert dict(store.load_sync("k").fields) == {"d:a": "1"}
    assert [r.key for r in await store.principal_records("user:x")] == ["k"]
    assert await store.exists("k")
    assert await store.count() == 1
    assert await store.delete("k")
    assert await store.load("k") is None
