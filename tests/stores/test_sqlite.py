"""SQLiteStore: WAL, indexes the queries really use, and two processes on one file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessio import ConfigurationError, RecordCorrupt, StoreUnavailable
from sessio.stores import SQLiteStore
from sessio.stores.base import Create, Rewrite, SaveOutcome, Update


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


@pytest.fixture
def store(db: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(db)
    yield store
    store.close_sync()


def save(store: SQLiteStore, key: str, ttl: float = 3600, principal: str | None = None) -> None:
    """Write ``{"d:a": "1"}`` under ``key``: a Create, or a Rewrite where a record is live."""
    at = time.time() + ttl
    saved = store.save_sync(key, Create({"d:a": "1"}, at, principal))
    if saved.outcome is SaveOutcome.EXISTS:
        saved = store.save_sync(key, Rewrite({"d:a": "1"}, at, principal))
    assert saved


def test_the_database_runs_in_wal_mode(store: SQLiteStore, db: Path) -> None:
    save(store, "k")
    other = sqlite3.connect(db)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        other.close()


def test_expiry_and_principal_are_indexed(store: SQLiteStore) -> None:
    indexes = dict(
        store._db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?",
            (store.table,),
        )
    )
    assert "(expires_at)" in indexes["sessio_sessions_expires_at"]
    assert "(principal)" in indexes["sessio_sessions_principal"]


def test_cleanup_and_principal_lookups_use_the_indexes(store: SQLiteStore, db: Path) -> None:
    for n in range(50):
        save(store, f"live-{n}", principal=f"user:{n % 5}")
        save(store, f"dead-{n}", ttl=-10)
    statements: list[str] = []
    store._db.set_trace_callback(statements.append)
    store.cleanup_sync()
    store.principal_records_sync("user:1")
    store.count_sync()
    store.load_sync("live-1")
    store._db.set_trace_callback(None)
    assert len(statements) == 5
    reader = sqlite3.connect(db)
    try:
        plans = [
            " | ".join(row[-1] for row in reader.execute("EXPLAIN QUERY PLAN " + sql))
            for sql in statements
        ]
    finally:
        reader.close()
    cleanup, damaged, principal, count, load = plans
    assert "INDEX sessio_sessions_expires_at" in cleanup
    assert "INDEX sessio_sessions_expires_at" in damaged
    assert "INDEX sessio_sessions_principal" in principal
    assert "INDEX sessio_sessions_expires_at" in count
    assert "PRIMARY KEY" in load
    for plan in plans:
        assert "SCAN" not in plan  # no statement reads the whole table


def test_cleanup_removes_large_backlogs_in_batches(store: SQLiteStore) -> None:
    past = time.time() - 10
    store._db.executemany(
        f"INSERT INTO {store.table} VALUES (?, '{{}}', ?, NULL)",
        [(f"k{n}", past) for n in range(2500)],
    )
    save(store, "live")
    assert store.cleanup_sync() == 2500
    assert store.count_sync() == 1


def test_a_custom_table_and_only_identifiers(db: Path) -> None:
    store = SQLiteStore(db, table="app_sessions")
    save(store, "k")
    assert store.load_sync("k") is not None
    assert "app_sessions" in repr(store)
    store.close_sync()
    for bad in ("x; DROP TABLE users", "1abc", "a-b", ""):
        with pytest.raises(ConfigurationError):
            SQLiteStore(db, table=bad)


def test_an_in_memory_database() -> None:
    store = SQLiteStore(":memory:")
    save(store, "k")
    assert store.count_sync() == 1
    store.close_sync()


def test_an_unopenable_file_is_store_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable):
        SQLiteStore(tmp_path)  # a directory


def test_garbage_in_a_row_is_record_corrupt(store: SQLiteStore) -> None:
    store._db.execute(
        f"INSERT INTO {store.table} VALUES ('bad', '[1, 2]', ?, NULL)", (time.time() + 60,)
    )
    with pytest.raises(RecordCorrupt):
        store.load_sync("bad")


CHILD = """
import sys, time
from sessio.stores import SQLiteStore
from sessio.stores.base import Create, Update

store = SQLiteStore(sys.argv[1])
assert store.page_sync().records  # the parent's record is there
print("ready", flush=True)
sys.stdin.readline()
for n in range(int(sys.argv[3])):
    assert store.save_sync(sys.argv[2], Update({f"d:child-{n}": str(n)}, time.time() + 3600))
assert store.save_sync("made-by-child", Create({"d:a": "child"}, time.time() + 3600))
print("done", flush=True)
"""


@pytest.mark.slow
def test_two_processes_share_one_database_file(store: SQLiteStore, db: Path) -> None:
    store.save_sync("shared", Create({"d:seed": "1"}, time.time() + 3600))
    rounds = 60
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), "shared", str(rounds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdin is not None
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        child.stdin.write("go\n")
        child.stdin.flush()
        for n in range(rounds):  # both processes write deltas to the same record at once
            assert store.save_sync("shared", Update({f"d:parent-{n}": str(n)}, time.time() + 3600))
        assert child.stdout.readline().strip() == "done"
        assert child.wait(timeout=60) == 0
    final = store.load_sync("shared")
    assert final is not None
    assert len(final.fields) == 1 + 2 * rounds  # no update lost on either side
    assert final.fields["d:child-7"] == "7"
    assert final.fields["d:parent-7"] == "7"
    made = store.load_sync("made-by-child")
    assert made is not None
    assert made.fields == {"d:a": "child"}
