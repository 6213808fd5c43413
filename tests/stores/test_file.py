"""FileStore: readable files, atomic writes, and no name that reaches outside its directory."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from sessio import StoreUnavailable
from sessio.ids import new_session_id, store_key
from sessio.stores import FileStore
from sessio.stores.base import Create, Rewrite, SaveOutcome, Update

LIVE = 3600.0


def put(
    store: FileStore,
    key: str,
    fields: dict[str, str],
    *,
    principal: str | None = None,
    expires_at: float | None = None,
) -> None:
    """Write exactly ``fields`` under ``key``: a Create, or a Rewrite where a record is live."""
    at = time.time() + LIVE if expires_at is None else expires_at
    saved = store.save_sync(key, Create(fields, at, principal))
    if saved.outcome is SaveOutcome.EXISTS:
        saved = store.save_sync(key, Rewrite(fields, at, principal))
    assert saved


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "store")


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


def test_one_readable_json_file_per_session(store: FileStore) -> None:
    key = store_key(new_session_id())
    put(store, key, {"d:cart": '["apple"]'}, principal="user:1")
    path = store.directory / "sessions" / f"{key}.json"
    data = json.loads(path.read_text("utf-8"))
    assert data["fields"] == {"d:cart": '["apple"]'}
    assert data["principal"] == "user:1"
    assert data["key"] == key
    assert data["expires_at"] == pytest.approx(time.time() + LIVE, abs=5)
    assert repr(store) == f"FileStore({str(store.directory)!r})"


def test_writes_leave_no_temporary_files(store: FileStore) -> None:
    key = store_key(new_session_id())
    for n in range(5):
        put(store, key, {"d:n": str(n)})
    assert [p.name for p in (store.directory / "sessions").iterdir()] == [f"{key}.json"]


def test_a_failed_write_keeps_the_previous_record_whole(
    store: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = store_key(new_session_id())
    put(store, key, {"d:n": '"before"'})

    def crash(src: Any, dst: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(StoreUnavailable, match="No space"):
        put(store, key, {"d:n": '"after"', "d:big": '"' + "x" * 100_000 + '"'})
    monkeypatch.undo()
    record = store.load_sync(key)
    assert record is not None
    assert dict(record.fields) == {"d:n": '"before"'}
    assert [p.name for p in (store.directory / "sessions").iterdir()] == [f"{key}.json"]


def test_readers_only_ever_see_whole_files(
    store: FileStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The new text goes to a temporary file that replaces the old one in one rename."""
    key = store_key(new_session_id())
    put(store, key, {"d:n": '"v1"'})
    seen: list[Any] = []
    real_replace = os.replace

    def replace_and_look(src: Any, dst: Any) -> None:
        seen.append(json.loads(Path(dst).read_text("utf-8"))["fields"])  # still the old file
        seen.append(json.loads(Path(src).read_text("utf-8"))["fields"])  # the new one, whole
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_and_look)
    put(store, key, {"d:n": '"v2"'})
    assert seen == [{"d:n": '"v1"'}, {"d:n": '"v2"'}]


TRICKY = [
    "../escape",
    "../../../../tmp/owned",
    "/etc/passwd",
    "a/b",
    "..",
    ".",
    "",
    "nul\x00byte",
    "back\\slash",
    "x" * 129,
    "y" * 10_000,
    "ünïcödé",
    "con",  # reserved on Windows, harmless here, still must round-trip
    "new\nline",
    "h-" + "0" * 64,
]


@pytest.mark.parametrize("name", TRICKY, ids=range(len(TRICKY)))
def test_no_key_or_principal_reaches_outside_the_directory(tmp_path: Path, name: str) -> None:
    store = FileStore(tmp_path / "store")
    principal = "user:" + name
    put(store, name, {"d:a": "1"}, principal=principal)
    record = store.load_sync(name)
    assert record is not None
    assert record.key == name
    assert store.exists_sync(name)
    [listed] = store.principal_records_sync(principal)
    assert listed.key == name
    assert listed.principal == principal
    assert store.count_sync() == 1
    # Everything lives under sessions/ and principals/, with plain names.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]
    for path in files_under(tmp_path / "store"):
        relative = path.relative_to(tmp_path / "store")
        assert relative.parts[0] in ("sessions", "principals", ".lock")
        assert all(len(part) <= 140 and "\x00" not in part for part in relative.parts)
    assert store.delete_sync(name) is True
    assert store.load_sync(name) is None
    assert store.principal_records_sync(principal) == []
    put(store, name, {"d:a": "1"}, principal=principal)
    assert store.delete_principal_records_sync(principal) == [name]
    assert store.load_sync(name) is None


def test_a_key_shaped_like_another_keys_hashed_name_gets_nothing(store: FileStore) -> None:
    import hashlib

    victim = "../victim"
    put(store, victim, {"d:secret": '"s"'}, principal="user:v")
    lookalike = "h-" + hashlib.sha256(victim.encode()).hexdigest()
    assert store.load_sync(lookalike) is None
    assert not store.exists_sync(lookalike)
    assert store.load_sync(victim) is not None


def test_every_file_is_visible_to_count_cleanup_and_clear(tmp_path: Path) -> None:
    now = [time.time()]
    store = FileStore(tmp_path / "store", clock=lambda: now[0])
    for name in ["plain", "../hashed", "z" * 300]:
        put(store, name, {"d:a": "1"}, principal="user:1", expires_at=now[0] + 10)
    put(store, "stays", {"d:a": "1"}, expires_at=now[0] + 100)
    assert store.count_sync() == 4
    now[0] += 50
    assert store.count_sync() == 1
    assert store.cleanup_sync() == 3
    assert store.principal_records_sync("user:1") == []
    assert not list((tmp_path / "store" / "principals").rglob("*.json"))
    assert store.clear_sync() == 1
    assert files_under(tmp_path / "store" / "sessions") == []


def test_two_stores_on_one_directory_share_sessions(tmp_path: Path) -> None:
    one = FileStore(tmp_path / "shared")
    two = FileStore(tmp_path / "shared")
    key = store_key(new_session_id())
    put(one, key, {"d:a": "1"})
    assert two.save_sync(key, Update({"d:b": "2"}, time.time() + LIVE))
    record = one.load_sync(key)
    assert record is not None
    assert dict(record.fields) == {"d:a": "1", "d:b": "2"}


def test_an_unusable_directory_is_store_unavailable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(StoreUnavailable):
        FileStore(blocker / "sessions")
