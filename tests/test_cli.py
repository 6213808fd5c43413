"""The ``sessio`` command, run as users run it: a subprocess, against a real SQLite file."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from sessio import Principal, SQLiteStore, SyncSessionManager
from sessio.stores.base import Write


def sessio(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sessio", *args], capture_output=True, text=True, check=False
    )


def test_purge_removes_only_expired_sessions(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db)
    manager = SyncSessionManager(store)
    live = manager.load(None)
    live["k"] = 1
    manager.commit(live)
    for i in range(3):
        store.save_sync(f"dead{i}", Write({"s:meta": "{}"}, time.time() - 10, None, replace=True))
    result = sessio("purge", "--store", f"sqlite:///{db}")
    assert result.returncode == 0, result.stderr
    assert "removed 3 expired session(s)" in result.stdout
    assert store.count_sync() == 1


def test_stats_and_revoke(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    manager = SyncSessionManager(SQLiteStore(db))
    for _ in range(2):
        s = manager.load(None)
        s.login(Principal("ada"))
        manager.commit(s)
    assert "live sessions: 2" in sessio("stats", "--store", f"sqlite:///{db}").stdout
    result = sessio("revoke", "ada", "--store", f"sqlite:///{db}")
    assert "revoked 2 session(s) of user 'ada'" in result.stdout
    assert manager.sessions_of("ada") == []


def test_migrate_on_a_store_without_schema_steps(tmp_path: Path) -> None:
    result = sessio("migrate", "--store", "memory://")
    assert result.returncode == 0
    assert "MemoryStore needs no migration" in result.stdout


def test_secret_prints_a_fresh_key() -> None:
    a, b = sessio("secret").stdout.strip(), sessio("secret").stdout.strip()
    assert len(a) == 43
    assert a != b


def test_errors_are_reported_with_their_code(tmp_path: Path) -> None:
    result = sessio("stats", "--store", "nosuch://x")
    assert result.returncode == 2
    assert "[CONFIGURATION_ERROR] unknown store URL scheme 'nosuch'" in result.stderr
