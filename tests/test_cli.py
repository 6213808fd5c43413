"""The ``sessio`` command, run as operators run it: a subprocess, against real SQLite, Redis and
PostgreSQL stores, with ``--json`` output parsed and every bad input answered in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sessio import Principal, SyncSessionManager, store_from_url
from sessio.stores.base import Create

from .stores.servers import (
    POSTGRES_URL,
    REDIS_URL,
    dropping,
    require_postgres,
    require_redis,
    unique,
)


def sessio(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Any:
    environ = {k: v for k, v in os.environ.items() if k != "SESSIO_STORE_URL"}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "sessio", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cwd,
        env=environ,
        timeout=60,
    )


def as_json(result: Any) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def one_clean_line(result: Any) -> str:
    """The single stderr line of a refused command: no traceback, no driver noise."""
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


# -- the store under test: one per kind, each in its own namespace ---------------------------------


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        db = tmp_path / "sessions.db"
        store_from_url(f"sqlite:///{db}").close_sync()  # the application created it
        yield f"sqlite:///{db}"
    elif request.param == "redis":
        require_redis()
        prefix = unique("sessio-cli") + ":"
        yield f"{REDIS_URL}?prefix={prefix}"
        with store_from_url(f"{REDIS_URL}?prefix={prefix}") as store:
            store.clear_sync()
    else:
        require_postgres()
        schema = unique("sessio_cli")
        with dropping(schema):
            full = f"{POSTGRES_URL}?schema={schema}"
            assert sessio("migrate", "--store", full).returncode == 0
            yield full


def sign_in(url: str, user: str, **data: Any) -> str:
    """Store one session of ``user`` holding ``data``; its store key."""
    with store_from_url(url) as store:
        manager = SyncSessionManager(store)
        session = manager.load(None, ip="192.0.2.7", user_agent="Firefox/140")
        session.update(data)
        session.login(Principal(user))
        manager.commit(session)
        return session.key


def test_list_show_revoke_and_stats(url: str) -> None:
    ada = sign_in(url, "ada", cart=["apple"], password="hunter2")
    sign_in(url, "ada")
    bob = sign_in(url, "bob")

    rows = as_json(sessio("list", "--store", url, "--json"))
    assert {r["hash"] for r in rows} >= {ada, bob}
    assert {r["principal"] for r in rows} == {"user:ada", "user:bob"}
    row = next(r for r in rows if r["hash"] == ada)
    assert row["ip"] == "192.0.2.7"
    assert row["user_agent"] == "Firefox/140"
    assert row["created"]
    assert row["last_seen"]
    assert row["expires"]

    only_ada = as_json(sessio("list", "--store", url, "--principal", "ada", "--json"))
    assert len(only_ada) == 2
    assert len(as_json(sessio("list", "--store", url, "--limit", "1", "--json"))) == 1

    shown = as_json(sessio("show", ada[:12], "--store", url, "--json"))
    assert shown["hash"] == ada
    assert shown["data"] == {"cart": ["apple"], "password": "********"}
    table = sessio("show", ada[:12], "--store", url)
    assert "hunter2" not in table.stdout
    assert "apple" in table.stdout

    stats = as_json(sessio("stats", "--store", url, "--json"))
    assert stats["live"] == 3
    assert stats["authenticated"] == 3
    assert stats["anonymous"] == 0
    assert stats["top_principals"][0] == {"principal": "user:ada", "sessions": 2}

    assert as_json(sessio("revoke", bob[:10], "--store", url, "--json"))["revoked"] == 1
    assert as_json(sessio("revoke", "--principal", "ada", "--store", url, "--json")) == {
        "revoked": 2,
        "principal": "user:ada",
    }
    assert as_json(sessio("list", "--store", url, "--json")) == []
    missing = sessio("show", ada, "--store", url)
    assert missing.returncode == 1
    assert "no live session" in one_clean_line(missing)


def test_purge_counts_what_it_removed(url: str) -> None:
    sign_in(url, "ada")
    result = as_json(sessio("purge", "--store", url, "--json"))
    assert result["removed"] >= 0
    assert as_json(sessio("stats", "--store", url, "--json"))["live"] == 1


def test_purge_removes_expired_sqlite_rows(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    url = f"sqlite:///{db}"
    sign_in(url, "ada")
    with store_from_url(url) as store:
        for i in range(3):
            store.save_sync(f"{i:064x}", Create({"s:meta": '{"c":1,"s":1}'}, time.time() - 10))
    assert as_json(sessio("purge", "--store", url, "--json"))["removed"] == 3
    assert "removed 0 expired session(s)" in sessio("purge", "--store", url).stdout


def test_doctor_reports_a_healthy_store(url: str) -> None:
    report = as_json(sessio("doctor", "--store", url, "--json"))
    assert report["healthy"] is True
    assert {c["check"] for c in report["checks"]} == {"url", "reachable", "schema"}


def test_doctor_names_the_fix_for_an_unreachable_server() -> None:
    result = sessio("doctor", "--store", "redis://127.0.0.1:1/0?socket_timeout=0.5", "--json")
    assert result.returncode == 3
    report = json.loads(result.stdout)
    assert report["healthy"] is False
    failed = [c for c in report["checks"] if not c["ok"]]
    assert failed[0]["fix"]
    assert "Traceback" not in result.stderr


def test_the_store_url_comes_from_the_environment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    sign_in(url, "ada")
    rows = as_json(sessio("list", "--json", env={"SESSIO_STORE_URL": url}))
    assert len(rows) == 1


# -- what operators get wrong, each answered in one line -----------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["stats"], "--store"),
        (["stats", "--store", ""], "empty"),
        (["stats", "--store", "sqlite:///"], "names no database"),
        (["stats", "--store", "sqlite:///nonexistent.db"], "no SQLite database"),
        (["list", "--store", "sqlite:///tmp/x.db"], "relative"),
        (["stats", "--store", "file:///no/such/dir"], "no file store directory"),
        (["stats", "--store", "nosuch://x"], "unknown store URL scheme"),
        (["secret", "--bytes", "8"], "32"),
        (["secret", "--bytes", "-5"], "32"),
        (["demo", "--port", "99999"], "65535"),
        (["show", "zz", "--store", "memory://"], "not a session hash"),
        (["revoke", "--store", "memory://"], "HASH or --principal"),
    ],
)
def test_bad_input_is_one_line_and_creates_nothing(
    tmp_path: Path, args: list[str], needle: str
) -> None:
    result = sessio(*args, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert needle in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # no sessio.db, no tmp/ tree, nothing


def test_an_unreachable_server_is_one_line_with_its_cause() -> None:
    result = sessio("stats", "--store", "redis://127.0.0.1:1/0?socket_timeout=0.5")
    assert result.returncode == 3
    assert "STORE_UNAVAILABLE" in one_clean_line(result)


def test_version_and_plain_help() -> None:
    from sessio import __version__

    version = sessio("--version")
    assert version.stdout.strip() == f"sessio {__version__}"
    for command in ([], ["list"], ["show"], ["revoke"], ["purge"], ["stats"], ["doctor"]):
        text = sessio(*command, "--help").stdout
        assert "``" not in text
        assert ":class:" not in text
    assert "Exit codes" in sessio("--help").stdout


def test_secret_prints_a_fresh_key_sessio_accepts() -> None:
    from sessio.keys import Secret

    a, b = sessio("secret").stdout.strip(), sessio("secret").stdout.strip()
    assert len(a) == 43
    assert a != b
    assert Secret(a)  # long enough for every keyed constructor
    assert len(sessio("secret", "--bytes", "64").stdout.strip()) == 86


def test_migrate_on_a_store_without_schema_steps() -> None:
    result = sessio("migrate", "--store", "memory://")
    assert result.returncode == 0
    assert "MemoryStore needs no migration" in result.stdout
