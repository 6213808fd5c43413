"""Running the demo: its files, its persistent secret key, and ``sessio demo`` as a process."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest

from sessio import MemoryStore, SQLiteStore
from sessio.demo.server import SECRET_ENV, data_files, load_secret_key, redact_url, serve
from sessio.errors import ConfigurationError

from .conftest import csrf_from, sessio_demo


def test_data_files_sit_beside_a_sqlite_store(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "shop.db") as store:
        assert data_files(store) == (tmp_path / "shop.users.db", tmp_path / "shop.secret")
    assert data_files(MemoryStore()) == (Path("sessio-demo.users.db"), Path("sessio-demo.secret"))


def test_secret_key_is_made_once_private_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    path = tmp_path / "demo.secret"
    keys, origin = load_secret_key(path)
    assert origin.startswith(f"generated and saved to {path} (mode 0600)")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(keys) == 1
    assert len(keys[0]) == 43
    assert keys[0] not in origin
    again, origin = load_secret_key(path)
    assert again == keys
    assert origin == f"read from {path}"


def test_secret_key_file_readable_by_others_is_flagged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    path = tmp_path / "demo.secret"
    load_secret_key(path)
    path.chmod(0o644)
    _, origin = load_secret_key(path)
    assert "WARNING: others can read it" in origin


def test_empty_secret_key_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_ENV, raising=False)
    path = tmp_path / "demo.secret"
    path.write_text("\n")
    with pytest.raises(ConfigurationError, match="holds no key"):
        load_secret_key(path)


def test_environment_key_wins_and_may_list_old_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        SECRET_ENV, "old-key-old-key-old-key-old-key-old, new-key-new-key-new-key-new-key-new"
    )
    keys, origin = load_secret_key(tmp_path / "unused.secret")
    assert keys == ["old-key-old-key-old-key-old-key-old", "new-key-new-key-new-key-new-key-new"]
    assert origin == f"from ${SECRET_ENV} (2 keys)"
    assert not (tmp_path / "unused.secret").exists()


def _log_in(client: httpx.Client, username: str, password: str) -> None:
    for path in ("/register", "/login"):
        token = csrf_from(client.get(path).text)
        form = {"username": username, "password": password, "csrf_token": token}
        assert client.post(path, data=form).status_code == 303


@pytest.mark.slow
def test_sessio_demo_command_survives_a_restart(tmp_path: Path) -> None:
    """The README's command: it says where its key is (never the key); restarts log nobody out."""
    store_url = f"sqlite:///{tmp_path / 'shop.db'}"
    with sessio_demo(tmp_path, store_url) as first:
        with httpx.Client(base_url=first.url, timeout=60) as client:
            _log_in(client, "ada", "correct horse battery")
            assert 'id="whoami">ada<' in client.get("/").text
            cookies = client.cookies
        out = first.stop()
    key = (tmp_path / "shop.secret").read_text().strip()
    assert f"secret key: generated and saved to {tmp_path / 'shop.secret'} (mode 0600)" in out
    assert f"accounts: {tmp_path / 'shop.users.db'}" in out
    assert key not in out
    assert stat.S_IMODE(os.stat(tmp_path / "shop.secret").st_mode) == 0o600

    with sessio_demo(tmp_path, store_url) as second:
        with httpx.Client(base_url=second.url, cookies=cookies, timeout=60) as client:
            # Same key, same store: still signed in after the restart.
            assert 'id="whoami">ada<' in client.get("/").text
        out = second.stop()
    assert f"secret key: read from {tmp_path / 'shop.secret'}" in out
    assert key not in out


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@db:6379/0", "redis://:***@db:6379/0"),
        ("redis://ada:s3cret@db/0", "redis://ada:***@db/0"),
        ("postgresql://ada:p%40ss@db/shop", "postgresql://ada:***@db/shop"),
        ("redis://db/0?password=s3cret&ssl=1", "redis://db/0?password=***&ssl=1"),
        ("redis://ada@db/0", "redis://ada@db/0"),
        ("sqlite:///shop.db", "sqlite:///shop.db"),
        ("redis://[::1", "<unparseable store URL>"),
    ],
)
def test_store_urls_are_redacted(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_a_refused_store_url_does_not_print_its_password() -> None:
    with pytest.raises(ConfigurationError) as info:
        serve(store_url="mysql://ada:s3cret@db/shop")
    assert "s3cret" not in str(info.value)
    assert "mysql://ada:***@db/shop" in str(info.value)


@pytest.mark.slow
def test_the_startup_banner_hides_the_store_password(tmp_path: Path) -> None:
    # Redis is only reached on the first session request; the banner and /static need none.
    url = "redis://:s3cret-pw@127.0.0.1:6379/15?password=s3cret-too"
    with sessio_demo(tmp_path, url) as running:
        out = running.stop()
    assert "sessions: redis://:***@127.0.0.1:6379/15?password=*** (RedisStore)" in out
    assert "s3cret" not in out
