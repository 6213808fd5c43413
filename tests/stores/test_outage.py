"""Store outages: private servers are killed, frozen and restarted under a live store object.

What must hold: an operation on a dead or frozen server raises ``StoreUnavailable`` promptly
(never a miss, so the manager never hands out a fresh session instead); nothing is
half-written; and once the server is back, the same store object works again. PostgreSQL's
outages are in ``test_postgres_outage.py``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sessio import SessionManager, SyncSessionManager
from sessio.errors import StoreUnavailable
from sessio.ids import new_session_id, store_key
from sessio.stores import Store
from sessio.stores.base import Create, Update
from sessio.stores.redis import RedisStore

from .local_servers import RedisServer, redis_server

pytestmark = pytest.mark.slow

#: How long a failing call may take: socket/pool timeouts are set to 0.5-1 s below.
PROMPT = 4.0


def key() -> str:
    return store_key(new_session_id())


def update(fields: dict[str, str], **kw: Any) -> Update:
    return Update(fields, time.time() + 3600, **kw)


async def fails_promptly(call: Callable[[], Any]) -> StoreUnavailable:
    """Run ``call`` (sync, or returning an awaitable) and return the StoreUnavailable it raised."""
    started = time.monotonic()

    async def run() -> None:
        result = call()
        if isinstance(result, Awaitable):
            await result

    with pytest.raises(StoreUnavailable) as info:
        await run()
    elapsed = time.monotonic() - started
    assert elapsed < PROMPT, f"took {elapsed:.1f}s"
    assert info.value.code == "STORE_UNAVAILABLE"
    return info.value


async def everything_fails(store: Store, token: str, k: str, *, quick: bool = False) -> None:
    """Every operation, both twins, and both managers, raise StoreUnavailable promptly.

    ``quick`` keeps to loads and saves (each call against a frozen server waits its timeouts).
    """
    delta = update({f"d:{i}": "new" for i in range(200)}, removed={"d:keep"})
    calls: list[Callable[[], Any]] = [
        lambda: store.load_sync(k),
        lambda: store.load(k),
        lambda: store.save_sync(k, delta),
        lambda: store.save(k, delta),
        lambda: store.principal_records_sync("user:o"),
        lambda: store.principal_records("user:o"),
        lambda: store.delete_principal_records_sync("user:o"),
        lambda: store.delete_principal_records("user:o"),
        lambda: store.count_sync(),
        lambda: store.delete(k),
        lambda: SyncSessionManager(store).load(token),
        lambda: SessionManager(store).load(token),
    ]
    for call in calls[:4] if quick else calls:
        await fails_promptly(call)


def seed(store: Store) -> tuple[str, str, dict[str, str]]:
    """A session with many fields, written by the store itself; its token, key and fields."""
    token = new_session_id()
    k = store_key(token)
    fields = {"d:keep": '"kept"', **{f"d:{i}": '"old"' for i in range(200)}}
    store.save_sync(k, Create(fields, time.time() + 3600))
    record = store.load_sync(k)
    assert record is not None
    return token, k, dict(record.fields)


# -- Redis ---------------------------------------------------------------------------------------


@pytest.fixture
def durable_redis(tmp_path: Path) -> Iterator[RedisServer]:
    with redis_server(tmp_path / "redis", durable=True) as server:
        yield server


@pytest.mark.redis
async def test_redis_killed_and_restarted(durable_redis: RedisServer) -> None:
    store = RedisStore(durable_redis.url, socket_timeout=0.5, connect_timeout=0.5)
    try:
        token, k, before = seed(store)
        assert await store.load(k) is not None  # the async client is connected too
        durable_redis.kill()
        await everything_fails(store, token, k)
        durable_redis.start()  # same port, same AOF
        record = store.load_sync(k)
        assert record is not None
        assert dict(record.fields) == before  # nothing from the failed writes
        assert dict((await store.load(k)).fields) == before
        store.save_sync(k, update({"d:after": "1"}))
        await store.save(k, update({"d:after2": "1"}))
        assert {"d:after", "d:after2"} <= set(store.load_sync(k).fields)
    finally:
        await store.close()


@pytest.mark.redis
async def test_redis_frozen_mid_write_then_thawed(durable_redis: RedisServer) -> None:
    store = RedisStore(durable_redis.url, socket_timeout=0.5, connect_timeout=0.5)
    try:
        token, k, before = seed(store)
        assert await store.load(k) is not None
        durable_redis.freeze()
        try:
            await everything_fails(store, token, k, quick=True)
        finally:
            durable_redis.thaw()
        # The frozen server still had the writes in its socket buffers; each one ran whole or
        # not at all: every one of the 200 fields is "old" or every one is "new".
        fields = dict(store.load_sync(k).fields)
        values = {fields.get(f"d:{i}") for i in range(200)}
        assert values in ({before["d:0"]}, {"new"})
        assert ("d:keep" in fields) == (values == {before["d:0"]})
        assert (await store.load(k)) is not None
    finally:
        await store.close()
