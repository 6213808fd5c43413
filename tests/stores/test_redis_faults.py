"""RedisStore under faults, on private servers: bounded pools, retries, frozen nodes, cold starts.

* A retried script (the same request id sent twice, as redis-py's retry does after a timeout
  or a dropped connection) returns the first run's reply: no login comes back MISSING.
* 500 concurrent loads on a pool of 20 never open more than 20 connections (``CLIENT LIST``).
* A cluster node frozen (SIGSTOP) while a rotation runs: the login that succeeds leaves the new
  record live, the old one gone, the tombstone written and no orphaned record.
* A cold async cluster client under 200 concurrent calls: success or StoreUnavailable only.
* Two worker processes logging in against one limit never exceed it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

import sessio
from sessio.errors import StoreUnavailable
from sessio.ids import new_session_id, store_key
from sessio.stores.base import (
    Create,
    PrincipalLimit,
    Rotate,
    Saved,
    SaveOutcome,
    Tombstone,
    Update,
)
from sessio.stores.redis import RedisStore

from . import servers
from .local_servers import RedisServer, redis_cluster, redis_server

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def key() -> str:
    return store_key(new_session_id())


def at(ttl: float) -> float:
    return time.time() + ttl


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    with redis_cluster(tmp_path_factory.mktemp("cluster")) as started:
        yield started


@pytest.fixture(params=["single", "cluster", "cluster-tagged"])
async def any_store(
    request: pytest.FixtureRequest, private: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RedisStore]:
    if request.param == "single":
        url = private.url
        prefix = servers.unique("f") + ":"
    else:
        nodes = request.getfixturevalue("nodes")
        url = f"redis+cluster://127.0.0.1:{nodes[0].port}"
        prefix = servers.unique("f") + ":"
        if request.param == "cluster-tagged":
            prefix = "{" + prefix[:-1] + "}:"
    async with servers.redis_store(url, prefix=prefix) as store:
        yield store


# -- a retried script returns the first run's reply ------------------------------------------------


@contextlib.contextmanager
def every_command_twice(store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Within the block every round trip is sent twice and answered by the second run: what
    redis-py's retry does when a command's first run landed but its reply was lost."""
    driver = store._io
    sync_exec, async_exec = driver.exec_sync, driver.exec

    def twice_sync(batch: list[Any]) -> list[Any]:
        sync_exec(batch)
        return sync_exec(batch)

    async def twice(batch: list[Any]) -> list[Any]:
        await async_exec(batch)
        return await async_exec(batch)

    with monkeypatch.context() as patch:
        patch.setattr(driver, "exec_sync", twice_sync)
        patch.setattr(driver, "exec", twice)
        yield


async def test_a_retried_rotation_returns_the_first_runs_reply(
    any_store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = any_store
    old, new = key(), key()
    others = [key() for _ in range(2)]
    for i, k in enumerate(others):
        assert store.save_sync(k, Create({}, at(100 + i), "user:r"))
    assert store.save_sync(old, Create({"d:a": "1"}, at(3600)))
    stone = Tombstone(key(), {"s:successor": new}, at(10))
    login = Rotate(old, {"d:a": "1"}, at(3600), "user:r", PrincipalLimit(2), stone)
    with every_command_twice(store, monkeypatch):
        saved = await store.save(new, login)
    assert saved == Saved(SaveOutcome.APPLIED, (others[0],))  # not MISSING, the victim reported
    assert store.load_sync(old) is None
    assert store.load_sync(new) is not None
    assert store.load_sync(stone.key) is not None
    assert sorted(r.key for r in store.principal_records_sync("user:r")) == sorted([new, others[1]])
    assert sorted(r.key for r in _walk(store)) == sorted([new, others[1], stone.key])


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_retried_creates_and_revocations_return_the_first_runs_reply(
    any_store: RedisStore, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    store = any_store

    async def call(name: str, *args: Any) -> Any:
        if mode == "sync":
            return getattr(store, name + "_sync")(*args)
        return await getattr(store, name)(*args)

    k, extra = key(), key()
    write = Create({"d:a": "1"}, at(3600), "user:c", PrincipalLimit(5))
    with every_command_twice(store, monkeypatch):
        assert (await call("save", k, write)).outcome is SaveOutcome.APPLIED
        assert (await call("save", extra, write)).outcome is SaveOutcome.APPLIED
        assert (await call("save", k, write)).outcome is SaveOutcome.EXISTS  # another request
        removed = await call("delete_principal_records", "user:c")
    assert sorted(removed) == sorted([k, extra])
    assert await call("count") == 0


# -- a bounded pool ---------------------------------------------------------------------------------


def _clients(server: RedisServer, name: str) -> int:
    with server.client() as admin:
        return sum(1 for c in admin.client_list() if c.get("name") == name)


def test_sync_loads_from_100_threads_never_open_more_than_20_connections(
    private: RedisServer,
) -> None:
    name = servers.unique("spool")
    store = RedisStore(
        private.url,
        prefix=servers.unique("f") + ":",
        max_connections=20,
        pool_timeout=10,
        client_options={"client_name": name},
    )
    try:
        k = key()
        store.save_sync(k, Create({"d:a": "1"}, at(60)))
        barrier = threading.Barrier(100)
        misses: list[Any] = []

        def loads() -> None:
            barrier.wait(10)
            misses.extend(r for r in (store.load_sync(k) for _ in range(5)) if r is None)

        threads = [threading.Thread(target=loads) for _ in range(100)]
        for t in threads:
            t.start()
        peak = 0
        while any(t.is_alive() for t in threads):
            peak = max(peak, _clients(private, name))
            time.sleep(0.005)
        for t in threads:
            t.join(30)
        peak = max(peak, _clients(private, name))
        print(f"\n500 loads from 100 threads, max_connections=20: peak {peak} connections")
        assert misses == []
        assert 1 <= peak <= 20
    finally:
        store.clear_sync()
        store.close_sync()


async def test_500_concurrent_async_loads_never_open_more_than_20_connections(
    private: RedisServer,
) -> None:
    name = servers.unique("apool")
    async with servers.redis_store(
        private.url, max_connections=20, pool_timeout=10, client_options={"client_name": name}
    ) as store:
        k = key()
        await store.save(k, Create({"d:a": "1"}, at(60)))
        seen: list[int] = []

        async def sample() -> None:
            while True:
                seen.append(await asyncio.to_thread(_clients, private, name))
                await asyncio.sleep(0.005)

        sampler = asyncio.ensure_future(sample())
        try:
            await asyncio.wait_for(asyncio.gather(*(store.load(k) for _ in range(500))), 60)
        finally:
            sampler.cancel()
        print(f"\n500 concurrent async loads, max_connections=20: peak {max(seen)} connections")
        assert 1 <= max(seen) <= 20
        assert _clients(private, name) <= 20


# -- a frozen cluster node mid-rotation ------------------------------------------------------------


def _node_of(nodes: list[RedisServer], name: str) -> RedisServer:
    with nodes[0].client() as c:
        slot = int(c.execute_command("CLUSTER", "KEYSLOT", name))
        for start, end, primary, *_ in c.execute_command("CLUSTER", "SLOTS"):
            if start <= slot <= end:
                return next(n for n in nodes if n.port == int(primary[1]))
    raise AssertionError("no node serves the slot")  # pragma: no cover


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("frozen", ["superseded", "new"])
async def test_a_node_frozen_mid_rotation_logs_nobody_out(
    nodes: list[RedisServer], mode: str, frozen: str
) -> None:
    """The node holding one record of the rotation stops for longer than a socket timeout and
    comes back: redis-py's cluster client retries; the login succeeds whole, or fails with
    StoreUnavailable leaving the old session live. Never MISSING, never an orphaned record."""
    url = f"redis+cluster://127.0.0.1:{nodes[0].port}"
    async with servers.redis_store(url, socket_timeout=0.4, connect_timeout=0.4) as store:
        old, new = key(), key()
        assert store.save_sync(old, Create({"d:a": "1"}, at(3600)))
        await store.load(old)  # both clients connected
        stone = Tombstone(key(), {"s:successor": new}, at(10))
        login = Rotate(old, {"d:a": "1"}, at(3600), "user:frozen", None, stone)
        node = _node_of(nodes, store.record_key(old if frozen == "superseded" else new))
        node.freeze()
        thaw = threading.Timer(0.9, node.thaw)
        thaw.start()
        try:
            if mode == "sync":
                outcome: Any = await asyncio.to_thread(store.save_sync, new, login)
            else:
                outcome = await asyncio.wait_for(store.save(new, login), 30)
        except StoreUnavailable as exc:
            outcome = exc
        finally:
            thaw.join()
            node.thaw()
        print(f"\nfrozen {frozen} node, {mode}: {outcome!r}")
        live = {k for k in (old, new) if store.load_sync(k) is not None}
        if isinstance(outcome, StoreUnavailable):
            # Nobody logged out: the old session lives, or the rotation went through whole.
            assert old in live or live == {new}
            if old in live and new in live:  # half-way: the new record is provisional
                assert 0 < store._sync().pttl(store.record_key(new)) <= 60_000
                live.discard(new)
        else:
            assert outcome.outcome is SaveOutcome.APPLIED, outcome
            assert live == {new}
            assert store.load_sync(stone.key) is not None
            assert [r.key for r in store.principal_records_sync("user:frozen")] == [new]
        unexpected = {r.key for r in _walk(store)} - live - {stone.key}
        if isinstance(outcome, StoreUnavailable):
            unexpected.discard(new)  # provisional, checked above
        assert unexpected == set()


def _walk(store: RedisStore) -> list[Any]:
    records, cursor = [], None
    for _ in range(1000):
        page = store.page_sync(cursor)
        records += page.records
        if (cursor := page.cursor) is None:
            break
    return records


# -- a cold async cluster client under concurrency -----------------------------------------------


async def test_a_cold_async_cluster_client_under_concurrency(nodes: list[RedisServer]) -> None:
    url = f"redis+cluster://127.0.0.1:{nodes[0].port}"
    for _ in range(3):  # each round a new store: its async client starts cold
        async with servers.redis_store(url) as store:
            calls = [store.load(key()) for _ in range(100)]
            calls += [store.save(key(), Update({"d:a": "1"}, at(60))) for _ in range(50)]
            calls += [
                store.save(key(), Create({"d:a": "1"}, at(60), "user:cold")) for _ in range(50)
            ]
            results = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=True), 60)
            unexpected = [
                r
                for r in results
                if isinstance(r, BaseException) and not isinstance(r, StoreUnavailable)
            ]
            assert unexpected == []
            assert sum(not isinstance(r, BaseException) for r in results) > 0


async def test_driver_errors_become_store_unavailable() -> None:
    """Whatever the client raises (here the AttributeError redis-py's async cluster client has
    raised on a cold start) becomes StoreUnavailable, never a bare exception."""

    class Broken:
        async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
            raise AttributeError("'NoneType' object has no attribute 'name'")

    store = RedisStore(async_client=Broken(), prefix="broken:")
    with pytest.raises(StoreUnavailable) as info:
        await store.load(key())
    assert "AttributeError" in str(info.value)
    with pytest.raises(StoreUnavailable):
        await store.save(key(), Create({}, at(60)))


# -- two worker processes --------------------------------------------------------------------------

_WORKER = """
import sys, time
from sessio.stores.base import Create, PrincipalLimit
from sessio.stores.redis import RedisStore
from sessio.ids import new_session_id, store_key
url, prefix, principal = sys.argv[1:4]
store = RedisStore(url, prefix=prefix)
limit = PrincipalLimit(2, "reject")
while time.time() < float(sys.argv[4]):
    time.sleep(0.005)
for _ in range(10):
    saved = store.save_sync(store_key(new_session_id()), Create({}, time.time() + 600, principal, limit))
    print(saved.outcome.value)
store.close_sync()
"""


@pytest.mark.parametrize("where", ["single", "cluster"])
def test_two_worker_processes_never_exceed_a_limit(
    private: RedisServer, request: pytest.FixtureRequest, where: str
) -> None:
    """Twenty logins of one principal from two processes at once, limit 2: two live at the end."""
    if where == "single":
        url = private.url
    else:
        url = f"redis+cluster://127.0.0.1:{request.getfixturevalue('nodes')[0].port}"
    prefix = servers.unique("w") + ":"
    start = str(time.time() + 2.0)  # both processes begin together
    args = [sys.executable, "-c", _WORKER, url, prefix, "user:workers", start]
    # The workers import the sessio under test, wherever it was imported from here.
    env = {**os.environ, "PYTHONPATH": str(Path(sessio.__file__).parents[1])}
    workers = [subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outcomes = [line for w in workers for line in w.communicate(timeout=60)[0].split()]
    store = RedisStore(url, prefix=prefix)
    try:
        assert [w.returncode for w in workers] == [0, 0]
        assert sorted(set(outcomes)) == ["applied", "rejected"]
        assert outcomes.count("applied") == 2
        assert len(store.principal_records_sync("user:workers")) == 2
    finally:
        store.clear_sync()
        store.close_sync()
