"""A stolen store dump yields no usable token: IDs are stored only as SHA-256 hashes."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from sessio import Principal, Store
from sessio.stores import FileStore, MemoryStore, SQLiteStore

from ..conftest import FakeClock
from ..stores.backends import Backend, backend_params
from .conftest import Browser, Site

#: Anything in a dump that could be a token, an ID, a hash or a MAC.
CANDIDATE = re.compile(rb"[A-Za-z0-9_\-.]{16,}")


def _dump_memory(store: Store, tmp_path: Path) -> bytes:
    assert isinstance(store, MemoryStore)
    return repr(store._records).encode() + repr(store._index).encode()  # a heap dump, in effect


def _dump_files(store: Store, tmp_path: Path) -> bytes:
    assert isinstance(store, (FileStore, SQLiteStore))
    # Every byte under the store's directory, file names included (SQLite: the db, WAL, SHM).
    parts = []
    for path in sorted(tmp_path.rglob("*")):
        parts.append(str(path.relative_to(tmp_path)).encode())
        if path.is_file():
            parts.append(path.read_bytes())
    return b"\n".join(parts)


def _dump_redis(store: Store, tmp_path: Path) -> bytes:
    # What `redis-cli --scan` + TYPE + HGETALL/SMEMBERS/ZRANGE/GET of the store's keys shows.
    client = store._sync()  # type: ignore[attr-defined]
    prefix = store.prefix  # type: ignore[attr-defined]
    parts: list[bytes] = []
    for name in client.scan_iter(match=prefix + "*", count=1000):
        parts.append(name if isinstance(name, bytes) else name.encode())
        kind = client.type(name)
        kind = kind.decode() if isinstance(kind, bytes) else kind
        if kind == "hash":
            value: object = client.hgetall(name)
        elif kind == "set":
            value = client.smembers(name)
        elif kind == "zset":
            value = client.zrange(name, 0, -1, withscores=True)
        elif kind == "string":
            value = client.get(name)
        else:
            value = kind
        parts.append(repr(value).encode())
    return b"\n".join(parts)


def _dump_postgres(store: Store, tmp_path: Path) -> bytes:
    # Every row of the store's schema, as `pg_dump --data-only` would show it.
    import psycopg

    from ..stores.servers import POSTGRES_URL

    schema = store.schema  # type: ignore[attr-defined]
    parts: list[bytes] = []
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
        for (table,) in tables:
            for row in conn.execute(f'SELECT * FROM "{schema}"."{table}"').fetchall():
                parts.append(repr(row).encode())
    return b"\n".join(parts)


def _dump_encrypted(store: Store, tmp_path: Path) -> bytes:
    from sessio.stores import EncryptedStore

    assert isinstance(store, EncryptedStore)
    return DUMPS[_INNER[type(store.inner).__name__]](store.inner, tmp_path)


DUMPS: dict[str, Callable[[Store, Path], bytes]] = {
    "memory": _dump_memory,
    "file": _dump_files,
    "sqlite": _dump_files,
    "redis": _dump_redis,
    "postgres": _dump_postgres,
    "encrypted-memory": _dump_encrypted,
    "encrypted-sqlite": _dump_encrypted,
    "encrypted-redis": _dump_encrypted,
}
_INNER = {
    "MemoryStore": "memory",
    "SQLiteStore": "sqlite",
    "FileStore": "file",
    "RedisStore": "redis",
    "PostgresStore": "postgres",
}

#: A value no dump of an encrypting store may show.
MARKER = "card-4111-1111-1111-1111-exp-12/30"


@pytest.fixture(params=backend_params())
async def store_and_dump(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Store, Callable[[], bytes]]]:
    backend: Backend = request.param
    dump = DUMPS.get(backend.name)
    if dump is None:
        pytest.fail(f"no dump for store {backend.name!r}: add one to {__file__}")
    async with backend.open(tmp_path) as store:
        yield store, lambda: dump(store, tmp_path)


@pytest.fixture(params=[b for b in backend_params() if b.id.startswith("encrypted-")])
async def encrypted_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    backend: Backend = request.param
    async with backend.open(tmp_path) as store:
        yield store


def test_a_store_dump_contains_no_usable_token(
    store_and_dump: tuple[Store, Callable[[], bytes]], clock: FakeClock
) -> None:
    """ASVS 5.0 16.2.5 / cheat sheet "Built-in Session Management Implementations" (the session
    repository must protect session IDs against disclosure): every string in a dump of the
    store, tried as a cookie as-is and even signed with the app's own key (a leaked config),
    gives a fresh anonymous session; no issued ID or token appears in the dump at all."""
    store, dump = store_and_dump
    site = Site(clock=clock, store=store)
    browsers = [Browser(site) for _ in range(4)]
    issued: set[str] = set()
    for n, browser in enumerate(browsers):
        browser.visit(lambda s: s.__setitem__("cart", ["apple"]))
        response = browser.visit(lambda s, n=n: s.login(Principal(f"user{n}", roles={"user"})))
        issued.update({response.session.id, browser.cookie or ""})
        issued.add(browser.visit(lambda s: s.csrf_token).result)
    data = dump()
    assert len(data) > 200  # the dump really holds the sessions
    for secret in issued:
        assert secret.encode() not in data
    candidates = {m.group().decode() for m in CANDIDATE.finditer(data)}
    assert len(candidates) >= len(browsers)  # the stored keys are there, hashed
    for candidate in candidates:
        for value in (candidate, site.sign(candidate)):
            session = site.request([site.cookie(value)]).session
            assert session.is_new, candidate
            assert not session.is_authenticated
    for browser in browsers:  # control: the real tokens still work
        assert browser.visit().session.is_authenticated


def test_an_encrypting_store_dump_holds_no_plaintext_value(
    encrypted_store: Store, tmp_path: Path, clock: FakeClock
) -> None:
    """Cheat sheet "Session ID Content (or Value)" (encrypt a session repository that holds
    sensitive data) / ASVS 5.0 11.3.3 (authenticated encryption): through ``EncryptedStore``,
    no stored value, principal attribute or CSRF secret appears in a dump of the inner store."""
    site = Site(clock=clock, store=encrypted_store)
    browser = Browser(site)
    browser.visit(lambda s: s.__setitem__("payment", MARKER))
    principal = Principal("alice", roles={"user"}, attributes={"email": "alice@example.org"})
    browser.visit(lambda s: s.login(principal))
    session = browser.visit(lambda s: s.csrf_token).session
    data = _dump_encrypted(encrypted_store, tmp_path)
    assert len(data) > 200
    for plain in (MARKER, "alice@example.org", session._csrf(), '"apple"'):
        assert plain.encode() not in data
    assert browser.visit().session["payment"] == MARKER  # control: it does decrypt
