"""``store_from_url``: one configuration string for every store."""

from __future__ import annotations

from pathlib import Path

import pytest

from sessio import ConfigurationError, store_from_url
from sessio.stores import FileStore, MemoryStore, SQLiteStore
from sessio.stores.url import SCHEMES, redact_url


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


@pytest.mark.parametrize(
    "url",
    [
        "redis://[",
        "redis://:hunter2@[",
        "postgresql://u:hunter2@[::1",
        "redis://h:notaport/0",
        "redis://h:99999/0",
        "redis://h/notadb",
        "rediss://h/-1",
        "sqlite:////proc/no-such-dir/x.db",
    ],
)
def test_every_malformed_url_is_a_configuration_error(url: str) -> None:
    """Not a ValueError or an OSError from deep inside: one typed error, at construction."""
    with pytest.raises(ConfigurationError) as caught:
        store_from_url(url)
    assert "hunter2" not in str(caught.value)


def test_a_store_url_that_is_no_text_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        store_from_url(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://user:hunter2@host/0", "redis://user:***@host/0"),
        ("redis://:hunter2@host", "redis://:***@host"),
        (
            "postgresql://host/db?password=hunter2&schema=s",
            "postgresql://host/db?password=***&schema=s",
        ),
        (
            "postgresql://u:p%40ss@h/db?sslpassword=hunter2",
            "postgresql://u:***@h/db?sslpassword=***",
        ),
        ("redis://:hunter2@[", "redis://:***@["),
        ("redis://a@b:hunter2@host/0", "redis://a@b:***@host/0"),  # urlsplit's last '@'
        ("redis://u:hun@ter2@host/0", "redis://u:***@host/0"),
        ("redis://nobody@host/0", "redis://nobody@host/0"),
        ("memory://", "memory://"),
    ],
)
def test_redact_url_hides_every_secret(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    "url",
    [
        "mysql://u:hunter2@h/db",
        "memory://?max_sessions=lots&password=hunter2",
        "memory://?password=hunter2",
        "postgresql://u:hunter2@h/db?schema=hunter2-",
    ],
)
def test_errors_never_show_the_urls_secrets(url: str) -> None:
    """A password in the URL or in ``?password=`` never reaches an error message (or a log)."""
    with pytest.raises(ConfigurationError) as caught:
        store_from_url(url)
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in repr(caught.value.evidence)
