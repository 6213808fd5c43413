"""SQLiteStore: WAL, indexes the queries really use, and two processes on one file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sessio import ConfigurationError, RecordCorrupt, StoreUnavailable, SyncSessionManager
from sessio.stores import SQLiteStore, Write


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sessions.db"


@pytest.fixture
def store(db: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(db)
    yield store
    store.close_sync()


def save(store: SQLiteStore, key: str, ttl: float = 3600, principal: str | None = None) -> None:
    store.save_sync(key, Write({"d:a": "1"}, time.time() + ttl, principal, replace=True))


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
    assert len(statements) == 4
    reader = sqlite3.connect(db)
    try:
        plans = [
            " | ".join(row[-1] for row in reader.execute("EXPLAIN QUERY PLAN " + sql))
            for sql in statements
        ]
    finally:
        reader.close()
    cleanup, principal, count, load = plans
    assert "INDEX sessio_sessions_expires_at" in cleanup
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
import sys
from sessio import SQLiteStore, SyncSessionManager

store = SQLiteStore(sys.argv[1])
assert store._db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
manager = SyncSessionManager(store)
print("ready", flush=True)
sys.stdin.readline()
for n in range(int(sys.argv[3])):
    s = manager.load(sys.argv[2])
    s[f"child-{n}"] = n
    manager.commit(s)
own = manager.load(None)
own["made by"] = "child"
print(manager.commit(own).token, flush=True)
"""


@pytest.mark.slow
def test_two_processes_share_one_database_file(store: SQLiteStore, db: Path) -> None:
    manager = SyncSessionManager(store)
    shared = manager.load(None)
    shared["seed"] = True
    token = manager.commit(shared).token
    assert token is not None
    rounds = 60
    with subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), token, str(rounds)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as child:
        assert child.stdin is not None
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        child.stdin.write("go\n")
        child.stdin.flush()
        for n in range(rounds):  # both processes write deltas to the same session at once
            s = manager.load(token)
            s[f"parent-{n}"] = n
            manager.commit(s)
        child_token = child.stdout.readline().strip()
        assert child.wait(timeout=60) == 0
    final = manager.load(token)
    assert len(final) == 1 + 2 * rounds  # no update lost on either side
    assert final["child-7"] == 7
    assert final["parent-7"] == 7
    assert manager.load(child_token)["made by"] == "child"
