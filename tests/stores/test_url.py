"""``store_from_url``: one configuration string for every store."""

from __future__ import annotations

from pathlib import Path

import pytest

from sessio import ConfigurationError, store_from_url
from sessio.stores import FileStore, MemoryStore, SQLiteStore
from sessio.stores.url import SCHEMES


def test_memory() -> None:
    store = store_from_url("memory://")
    assert isinstance(store, MemoryStore)
    assert store.max_sessions == 10_000
    limited = store_from_url("memory://?max_sessions=5")
    assert isinstance(limited, MemoryStore)
    assert limited.max_sessions == 5
    for unbounded in ("memory://?max_sessions=none", "memory://?max_sessions="):
        store = store_from_url(unbounded)
        assert isinstance(store, MemoryStore)
        assert store.max_sessions is None


def test_options_go_to_the_constructor_and_the_url_wins_nothing_it_does_not_name() -> None:
    def clock() -> float:
        return 42.0

    store = store_from_url("memory://?max_sessions=7", clock=clock)
    assert isinstance(store, MemoryStore)
    assert store.clock is clock
    assert store.max_sessions == 7
    explicit = store_from_url("memory://?max_sessions=7", max_sessions=9)
    assert isinstance(explicit, MemoryStore)
    assert explicit.max_sessions == 9


def test_file(tmp_path: Path) -> None:
    store = store_from_url(f"file://{tmp_path}/sessions")
    assert isinstance(store, FileStore)
    assert store.directory == tmp_path / "sessions"
    spaced = store_from_url(f"file://{tmp_path}/my%20sessions")
    assert isinstance(spaced, FileStore)
    assert spaced.directory == tmp_path / "my sessions"


def test_sqlite_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    relative = store_from_url("sqlite:///rel.db")
    absolute = store_from_url(f"sqlite:///{tmp_path}/abs.db")  # four slashes in all
    try:
        assert isinstance(relative, SQLiteStore)
        assert relative.path == "rel.db"
        assert (tmp_path / "rel.db").exists()
        assert isinstance(absolute, SQLiteStore)
        assert absolute.path == f"{tmp_path}/abs.db"
    finally:
        relative.close_sync()
        absolute.close_sync()
    for memory in ("sqlite://:memory:", "sqlite:///:memory:", "sqlite://", "SQLITE://"):
        store = store_from_url(memory)
        assert isinstance(store, SQLiteStore)
        assert store.path == ":memory:"
        store.close_sync()


@pytest.mark.parametrize(
    "url",
    [
        "mysql://localhost/db",
        "",
        "sessions.db",
        "memory://?max_sessions=lots",
        "memory://?max_sessions=0",
        "memory://?size=5",
        "file://",
        "file:///tmp/x?mode=0600",
        "sqlite:///x.db?timeout=5",
    ],
)
def test_bad_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        store_from_url(url)


def test_the_unknown_scheme_error_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match="memory, postgres, postgresql, redis"):
        store_from_url("mongodb://x")


def test_server_stores_are_registered_lazily() -> None:
    """Their modules (and drivers) are imported only when such a URL is used."""
    assert SCHEMES["redis"] == SCHEMES["rediss"] == "sessio.stores.redis:RedisStore"
    assert SCHEMES["redis+cluster"] == SCHEMES["rediss+cluster"] == "sessio.stores.redis:RedisStore"
    assert SCHEMES["postgresql"] == SCHEMES["postgres"] == "sessio.stores.postgres:PostgresStore"
