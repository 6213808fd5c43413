"""Hostile values and damaged records on the SQLite and file stores.

A value a store cannot hold fails the write with ValueNotSerializable and changes nothing
(the SQLite transaction rolled back, the file store's old record kept); a damaged record loads
as RecordCorrupt, never another exception, and housekeeping skips it and cleanup removes it.
"""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessio import RecordCorrupt, ValueNotSerializable
from sessio.stores import FileStore, SQLiteStore
from sessio.stores.base import (
    Create,
    PrincipalLimit,
    Rewrite,
    Rotate,
    Store,
    Tombstone,
    Update,
    Write,
)

LONE = json.loads('"\\ud800"')  # a lone surrogate: valid in a Python str, not in UTF-8
LATER = time.time() + 3600
KINDS = ["sqlite", "file"]


def open_store(kind: str, tmp_path: Path) -> Store:
    if kind == "sqlite":
        return SQLiteStore(tmp_path / "s.db")
    return FileStore(tmp_path / "files")


@pytest.fixture(params=KINDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = open_store(request.param, tmp_path)
    yield opened
    opened.close_sync()


def bad_writes() -> list[tuple[str, Write]]:
    grave = Tombstone("grave", {"s:successor": LONE}, LATER)
    return [
        ("update-field", Update({"d:x": LONE}, LATER, "user:1")),
        ("update-principal", Update({}, LATER, "user:" + LONE)),
        ("rewrite-field", Rewrite({"d:x": LONE}, LATER, "user:1")),
        ("rotate-field", Rotate("old", {"d:x": LONE}, LATER, "user:1")),
        ("rotate-tombstone", Rotate("old", {"d:x": "1"}, LATER, "user:1", tombstone=grave)),
        ("rotate-limited", Rotate("old", {LONE: "1"}, LATER, "user:1", PrincipalLimit(1))),
        ("update-nan", Update({}, math.nan, "user:1")),
        ("rewrite-inf", Rewrite({}, math.inf, "user:1")),
    ]


BAD = bad_writes()


def assert_untouched(store: Store) -> None:
    record = store.load_sync("old")
    assert record is not None, "the good record must survive a bad write"
    assert dict(record.fields) == {"d:x": "good"}
    assert record.principal == "user:1"
    assert store.load_sync("new") is None
    assert store.load_sync("grave") is None
    assert [r.key for r in store.principal_records_sync("user:1")] == ["old"]


@pytest.mark.parametrize(("name", "write"), BAD, ids=[name for name, _ in BAD])
def test_a_value_the_store_cannot_hold_changes_nothing(
    store: Store, name: str, write: Write
) -> None:
    assert store.save_sync("old", Create({"d:x": "good"}, LATER, "user:1"))
    target = "old" if isinstance(write, Update | Rewrite) else "new"
    with pytest.raises(ValueNotSerializable):
        store.save_sync(target, write)
    assert_untouched(store)
    # The store goes on working: the next good write lands.
    assert store.save_sync("old", Update({"d:y": "2"}, LATER, "user:1"))


@pytest.mark.parametrize(("name", "write"), BAD[:4], ids=[name for name, _ in BAD[:4]])
async def test_the_async_path_contains_it_too(store: Store, name: str, write: Write) -> None:
    assert await store.save("old", Create({"d:x": "good"}, LATER, "user:1"))
    target = "old" if isinstance(write, Update | Rewrite) else "new"
    with pytest.raises(ValueNotSerializable):
        await store.save(target, write)
    assert_untouched(store)


def test_a_create_with_a_bad_key_or_field_writes_nothing(store: Store) -> None:
    for key, fields in ((LONE, {"d:x": "1"}), ("k", {"d:x": LONE}), ("k", {"d:" + LONE: "1"})):
        with pytest.raises(ValueNotSerializable):
            store.save_sync(key, Create(fields, LATER, None))
    assert store.count_sync() == 0


READER = """
import sys
from sessio.stores import SQLiteStore
record = SQLiteStore(sys.argv[1]).load_sync("old")
print(record.fields["d:x"] if record else "none")
"""


@pytest.mark.slow
def test_sqlite_rolls_back_so_other_connections_and_processes_go_on(tmp_path: Path) -> None:
    """Today's bug: the shared connection stayed inside BEGIN IMMEDIATE after a bad value."""
    db = tmp_path / "s.db"
    store = SQLiteStore(db, timeout=1.0)
    try:
        assert store.save_sync("old", Create({"d:x": "good"}, LATER, "user:1"))
        with pytest.raises(ValueNotSerializable):
            store.save_sync("new", Rotate("old", {"d:x": LONE}, LATER, "user:1"))
        assert not store._db.in_transaction
        # Another connection takes the write lock at once and commits.
        other = sqlite3.connect(db, timeout=0.5, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("INSERT INTO sessio_sessions VALUES ('third', '{}', ?, NULL)", (LATER,))
            other.execute("COMMIT")
        finally:
            other.close()
        assert store.load_sync("third") is not None
        # A second process sees the earlier good write: it was committed, and stays so.
        seen = subprocess.run(
            [sys.executable, "-c", READER, str(db)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert seen.stdout.strip() == "good"
    finally:
        store.close_sync()


# -- damaged records ------------------------------------------------------------------------------

NESTED = '{"d:x":' + "[" * 50_000 + "]" * 50_000 + "}"

#: name -> (fields, expires_at, principal) as raw SQL values.
SQL_ROWS: dict[str, tuple[object, object, object]] = {
    "blob": (b"\x00\xff", LATER, None),
    "nested": (NESTED, LATER, None),
    "array": ("[1, 2]", LATER, None),
    "number-fields": ('{"d:x": 1}', LATER, None),
    "text-expiry": ("{}", "soon", None),
    "inf-expiry": ("{}", math.inf, None),
    "blob-principal": ("{}", LATER, b"user"),
}

FILES: dict[str, bytes] = {
    "binary": b"\xff\xfe\x00garbage",
    "nested": ('{"fields":' + "[" * 50_000 + "]" * 50_000 + "}").encode(),
    "nan-expiry": b'{"fields": {}, "expires_at": NaN}',
    "inf-expiry": b'{"fields": {}, "expires_at": Infinity}',
    "text-expiry": b'{"fields": {}, "expires_at": "9e99"}',
    "bool-expiry": b'{"fields": {}, "expires_at": true}',
    "list": b"[1, 2, 3]",
    "number-fields": b'{"fields": {"d:x": 1}, "expires_at": 4e9}',
    "number-principal": b'{"fields": {}, "expires_at": 4e9, "principal": 7}',
    "empty": b"",
}


def plant_sqlite(store: SQLiteStore) -> list[str]:
    for key, (fields, expires_at, principal) in SQL_ROWS.items():
        store._db.execute(
            "INSERT INTO sessio_sessions VALUES (?, ?, ?, ?)", (key, fields, expires_at, principal)
        )
    return list(SQL_ROWS)


def plant_files(store: FileStore) -> list[str]:
    for key, raw in FILES.items():
        store._path(key).write_bytes(raw)
    return list(FILES)


@pytest.fixture(params=KINDS)
def damaged(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Store, list[str]]]:
    opened = open_store(request.param, tmp_path)
    if isinstance(opened, SQLiteStore):
        keys = plant_sqlite(opened)
    else:
        assert isinstance(opened, FileStore)
        keys = plant_files(opened)
    opened.save_sync("good", Create({"d:x": "1"}, LATER, None))
    yield opened, keys
    opened.close_sync()


async def test_a_damaged_record_loads_as_record_corrupt(damaged: tuple[Store, list[str]]) -> None:
    store, keys = damaged
    for key in keys:
        with pytest.raises(RecordCorrupt):
            store.load_sync(key)
        with pytest.raises(RecordCorrupt):
            await store.load(key)


async def test_housekeeping_skips_damaged_records(damaged: tuple[Store, list[str]]) -> None:
    store, _ = damaged
    walked = []
    cursor: str | None = None
    while True:
        page = store.page_sync(cursor, 3)
        walked += [r.key for r in page.records]
        if page.cursor is None:
            break
        cursor = page.cursor
    assert walked == ["good"]
    assert [r.key for r in (await store.page()).records] == ["good"]
    assert store.principal_records_sync("user") == []


def test_cleanup_removes_damaged_records_an_expiry_cannot_retire(
    damaged: tuple[Store, list[str]],
) -> None:
    store, keys = damaged
    removed = store.cleanup_sync()
    remaining = [key for key in keys if _present(store, key)]
    if isinstance(store, FileStore):
        assert removed == len(keys)
        assert remaining == []
    else:
        # Rows whose expiry is text or infinite go at once: they would never expire. The others
        # have a real expiry and go when it passes (a load reports them meanwhile).
        assert sorted(remaining) == ["array", "blob", "blob-principal", "nested", "number-fields"]
        assert removed == len(keys) - 5
    assert store.load_sync("good") is not None


def _present(store: Store, key: str) -> bool:
    try:
        return store.load_sync(key) is not None
    except RecordCorrupt:
        return True


def test_a_nan_expiry_never_makes_a_file_immortal(tmp_path: Path) -> None:
    now = [time.time()]
    store = FileStore(tmp_path / "files", clock=lambda: now[0])
    store._path("nan").write_bytes(b'{"fields": {}, "expires_at": NaN, "principal": "user:1"}')
    store._marker("user:1", "nan").parent.mkdir(parents=True)
    store._marker("user:1", "nan").touch()
    assert not store.exists_sync("nan")
    assert store.count_sync() == 0
    assert store.principal_records_sync("user:1") == []
    assert store.cleanup_sync() == 1
    assert list((tmp_path / "files" / "sessions").iterdir()) == []
    assert list((tmp_path / "files" / "principals").iterdir()) == []  # its marker went too


def test_sessio_purge_survives_a_damaged_file(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    plant_files(store)
    store.save_sync("dead", Create({"d:x": "1"}, time.time() - 10, None))
    result = subprocess.run(
        [sys.executable, "-m", "sessio", "purge", "--store", f"file://{tmp_path / 'files'}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"removed {len(FILES) + 1} expired session(s)" in result.stdout
    assert list((tmp_path / "files" / "sessions").iterdir()) == []
