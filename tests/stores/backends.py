"""Every store the contract suite runs, in one registry: add a new store here and it is tested.

A backend opens a fresh, empty store (its own file, directory, key prefix or schema), yields
it, and removes every trace afterwards. ``corrupt`` writes garbage under a key the way only
that store can, so the suite can prove garbage never crashes a load.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from sessio.stores import EncryptedStore, FileStore, MemoryStore, SQLiteStore, Store
from sessio.stores.base import Record, Rewrite

from . import servers


@dataclasses.dataclass(frozen=True)
class Backend:
    """How to open one kind of store for a test."""

    name: str
    open: Callable[[Path], AbstractAsyncContextManager[Store]]
    corrupt: Callable[[Store, str], Awaitable[None]]
    marks: tuple[Any, ...] = ()
    #: The store expires records on its own clock (Redis): it ignores an injected clock.
    native_ttl: bool = False


# -- memory --------------------------------------------------------------------------------------


@asynccontextmanager
async def _memory(tmp_path: Path) -> AsyncIterator[Store]:
    yield MemoryStore(max_sessions=None)


async def _corrupt_memory(store: Store, key: str) -> None:
    assert isinstance(store, MemoryStore)
    record = Record(key, {"s:meta": "{not json", "d:x": "\x00"}, 2**40, None)
    store._records[key] = record


# -- file ----------------------------------------------------------------------------------------


@asynccontextmanager
async def _file(tmp_path: Path) -> AsyncIterator[Store]:
    yield FileStore(tmp_path / "sessions")


async def _corrupt_file(store: Store, key: str) -> None:
    assert isinstance(store, FileStore)
    store._path(key).write_bytes(b"\xff\xfe garbage {")


# -- sqlite --------------------------------------------------------------------------------------


@asynccontextmanager
async def _sqlite(tmp_path: Path) -> AsyncIterator[Store]:
    store = SQLiteStore(tmp_path / "sessions.db")
    try:
        yield store
    finally:
        store.close_sync()


async def _corrupt_sqlite(store: Store, key: str) -> None:
    assert isinstance(store, SQLiteStore)
    store._db.execute(
        f"INSERT OR REPLACE INTO {store.table} VALUES (?, ?, ?, NULL)",
        (key, "][ garbage", 2.0**40),
    )


# -- encrypted at rest (EncryptedStore around another store) ------------------------------------

ENCRYPTION_KEY = "encryption-at-rest-" + "e" * 32


def _encrypted(
    inner: Callable[[Path], AbstractAsyncContextManager[Store]],
) -> Callable[[Path], AbstractAsyncContextManager[Store]]:
    @asynccontextmanager
    async def open_(tmp_path: Path) -> AsyncIterator[Store]:
        async with inner(tmp_path) as store:
            yield EncryptedStore(store, ENCRYPTION_KEY)

    return open_


async def _corrupt_encrypted(store: Store, key: str) -> None:
    # A well-formed record whose values were sealed for another session: they must not open.
    assert isinstance(store, EncryptedStore)
    foreign = EncryptedStore(MemoryStore(), ENCRYPTION_KEY)
    write = Rewrite({"s:meta": '{"c":1,"s":1}', "d:x": "1"}, 2.0**40, None)
    sealed = foreign._seal("another-key", write)
    await store.inner.save(key, sealed)


# -- redis and postgres (tests/stores/servers.py: own prefix / schema per test) -----------------


@asynccontextmanager
async def _redis(tmp_path: Path) -> AsyncIterator[Store]:
    async with servers.redis_store() as store:
        yield store


@asynccontextmanager
async def _postgres(tmp_path: Path) -> AsyncIterator[Store]:
    async with servers.postgres_store() as store:
        yield store


BACKENDS: list[Backend] = [
    Backend("memory", _memory, _corrupt_memory),
    Backend("file", _file, _corrupt_file),
    Backend("sqlite", _sqlite, _corrupt_sqlite),
    Backend("encrypted-memory", _encrypted(_memory), _corrupt_encrypted),
    Backend("encrypted-sqlite", _encrypted(_sqlite), _corrupt_encrypted),
    Backend("redis", _redis, servers.corrupt_redis, (pytest.mark.redis,), native_ttl=True),
    Backend("postgres", _postgres, servers.corrupt_postgres, (pytest.mark.postgres,)),
    # The wrapper around a network store with native TTL, too: one round trip stays one.
    Backend(
        "encrypted-redis",
        _encrypted(_redis),
        _corrupt_encrypted,
        (pytest.mark.redis,),
        native_ttl=True,
    ),
]


def backend_params() -> list[Any]:
    """``pytest.param`` for each backend, with its marks and id."""
    return [pytest.param(b, id=b.name, marks=b.marks) for b in BACKENDS]
