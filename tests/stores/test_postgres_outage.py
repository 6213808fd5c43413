"""PostgresStore under faults: a private cluster is frozen, crashed and restarted under a live store.

What must hold, on the sync and the async path: a frozen server (every process SIGSTOPped: the
port still accepts, nothing answers) costs a statement at most ``socket_timeout`` and a new
connection at most ``connect_timeout``; a stopped server fails at once, never after the pool's
wait; a restarted one serves the very next request; a statement stuck on a lock is cancelled by
the server and its connection serves on; nothing is ever half-written.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import psycopg
import pytest

from sessio.errors import StoreUnavailable
from sessio.ids import new_session_id, store_key
from sessio.stores.base import Create, PrincipalLimit, Rotate, SaveOutcome, Tombstone, Update
from sessio.stores.postgres import PostgresStore

from . import servers
from .local_servers import PostgresServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

#: The stores' socket_timeout and connect_timeout here.
TIMEOUT = 1.0
#: libpq's (and psycopg's) floor for connect_timeout, which the sync path cannot go below.
SYNC_CONNECT = 2.0
#: What a bound may be overrun by: the sync watchdog's tick (TIMEOUT / 10) and the scheduling
#: of a loaded, shared 2-core machine.
SLACK = 1.0
#: "At once" for a server that refuses connections: far below the pool wait (``timeout=5``).
FAST = 1.0


def key() -> str:
    return store_key(new_session_id())


LATER = time.time() + 3600


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        yield server.start()
    finally:
        server.destroy()


async def fails_within(bound: float, call: Callable[[], Any]) -> float:
    """Run ``call`` (sync, or returning an awaitable); it must raise StoreUnavailable within
    ``bound`` seconds. Returns the time it took."""

    async def run() -> None:
        result = call()
        if isinstance(result, Awaitable):
            await result

    started = time.monotonic()
    with pytest.raises(StoreUnavailable) as info:
        await run()
    elapsed = time.monotonic() - started
    assert elapsed < bound, f"took {elapsed:.2f}s, bound {bound}s"
    assert info.value.code == "STORE_UNAVAILABLE"
    return elapsed


def seed(store: PostgresStore) -> tuple[str, dict[str, str]]:
    k = key()
    fields = {f"d:{i}": "old" for i in range(200)} | {"d:keep": "kept"}
    assert store.save_sync(k, Create(fields, LATER, "user:o"))
    return k, fields


#: 200 changed fields and one removed: a frozen server must apply all of it or none.
DELTA = Update({f"d:{i}": "new" for i in range(200)}, LATER, "user:o", removed={"d:keep"})


def whole(fields: dict[str, str], before: dict[str, str]) -> bool:
    """Every field old (and d:keep there) or every one new (and d:keep gone)."""
    values = {fields.get(f"d:{i}") for i in range(200)}
    return (values == {"old"} and fields == before) or (
        values == {"new"} and "d:keep" not in fields
    )


async def test_a_frozen_server_costs_at_most_socket_timeout(server: PostgresServer) -> None:
    store = PostgresStore(server.url, socket_timeout=TIMEOUT, connect_timeout=TIMEOUT, timeout=5)
    report: dict[str, float] = {}
    try:
        store.create_schema_sync()
        k, before = seed(store)
        assert await store.load(k) is not None  # both twins hold a connection now
        pids = server.freeze()
        try:
            # Statements on open connections: the socket deadline cuts them.
            report["sync delta, open connection"] = await fails_within(
                TIMEOUT + SLACK, lambda: store.save_sync(k, DELTA)
            )
            report["async delta, open connection"] = await fails_within(
                TIMEOUT + SLACK, lambda: store.save(k, DELTA)
            )
            # New connections: connect_timeout (whole seconds, at least 2, on the sync path).
            report["sync load, new connection"] = await fails_within(
                SYNC_CONNECT + SLACK, lambda: store.load_sync(k)
            )
            report["async load, new connection"] = await fails_within(
                TIMEOUT + SLACK, lambda: store.load(k)
            )
            # Two parallel requests of one session: each is bounded on its own.
            started = time.monotonic()
            results = await asyncio.gather(
                store.load(k), store.save(k, DELTA), return_exceptions=True
            )
            report["two parallel async requests"] = time.monotonic() - started
            assert all(isinstance(r, StoreUnavailable) for r in results), results
            assert report["two parallel async requests"] < TIMEOUT + SLACK
        finally:
            server.thaw(pids)
        # The very next request on each twin is served (the spent connections are gone).
        record = store.load_sync(k)
        assert record is not None
        assert whole(dict(record.fields), before)
        record = await store.load(k)
        assert record is not None
        assert whole(dict(record.fields), before)
    finally:
        await store.close()
    print("\nfrozen PostgreSQL, time to StoreUnavailable:")
    for label, seconds in report.items():
        print(f"  {label:<32} {seconds:.3f}s")


async def test_a_stopped_server_fails_fast_and_a_restarted_one_serves_at_once(
    server: PostgresServer,
) -> None:
    store = PostgresStore(server.url, timeout=5.0)
    report: dict[str, float] = {}
    try:
        store.create_schema_sync()
        k, before = seed(store)
        old = key()
        assert store.save_sync(old, Create({"d:a": "1"}, LATER, "user:o"))
        assert await store.load(k) is not None
        server.crash()
        new = key()
        rotation = Rotate(
            old, {"d:a": "1"}, LATER, "user:o", PrincipalLimit(1), Tombstone(key(), {}, LATER)
        )
        calls: dict[str, Callable[[], Any]] = {
            "sync load": lambda: store.load_sync(k),
            "async load": lambda: store.load(k),
            "sync delta": lambda: store.save_sync(k, DELTA),
            "async delta": lambda: store.save(k, DELTA),
            "sync login": lambda: store.save_sync(new, rotation),
            "async login": lambda: store.save(new, rotation),
            "sync principal_records": lambda: store.principal_records_sync("user:o"),
            "async delete_principal_records": lambda: store.delete_principal_records("user:o"),
            "sync count": store.count_sync,
            "async page": lambda: store.page(),
            "sync cleanup": store.cleanup_sync,
            "async delete": lambda: store.delete(k),
        }
        for label, call in calls.items():
            report[label] = await fails_within(FAST, call)
        started = time.monotonic()
        results = await asyncio.gather(store.load(k), store.load(k), return_exceptions=True)
        assert all(isinstance(r, StoreUnavailable) for r in results), results
        assert time.monotonic() - started < FAST
        server.start()
        # The first request after the restart is served, on each twin: no retry, no backoff.
        started = time.monotonic()
        record = store.load_sync(k)
        report["sync first load after restart"] = time.monotonic() - started
        assert record is not None
        assert dict(record.fields) == before  # nothing from the failed writes
        started = time.monotonic()
        record = await store.load(k)
        report["async first load after restart"] = time.monotonic() - started
        assert record is not None
        # The failed login did neither half: the old record lives, the new one does not.
        assert store.load_sync(old) is not None
        assert store.load_sync(new) is None
        assert (await store.save(new, rotation)).outcome is SaveOutcome.APPLIED
        assert store.load_sync(old) is None
    finally:
        await store.close()
    print("\nstopped PostgreSQL, time to StoreUnavailable (pool wait 5 s):")
    for label, seconds in report.items():
        print(f"  {label:<36} {seconds:.3f}s")


async def test_a_statement_stuck_on_a_lock_is_cancelled_and_its_connection_serves_on() -> None:
    async with servers.postgres_store(socket_timeout=TIMEOUT) as store:
        k = key()
        assert store.save_sync(k, Create({"d:a": "1"}, LATER))
        table = f'"{store.schema}"."{store.table}"'
        with psycopg.connect(servers.POSTGRES_URL) as blocker:  # holds the row lock
            blocker.execute(f"SELECT 1 FROM {table} WHERE key = %s FOR UPDATE", (k,))
            await fails_within(TIMEOUT + SLACK, lambda: store.save_sync(k, DELTA))
            await fails_within(TIMEOUT + SLACK, lambda: store.save(k, DELTA))
            blocker.rollback()
        assert await store.save(k, DELTA)
        assert store.save_sync(k, DELTA)


async def test_a_missing_table_says_how_to_fix_it(server: PostgresServer) -> None:
    store = PostgresStore(server.url, schema="nowhere")
    try:
        with pytest.raises(StoreUnavailable, match="sessio migrate"):
            store.load_sync(key())
        await store.create_schema()
        assert await store.load(key()) is None
    finally:
        await store.close()


async def _until_waiting_on_a_lock(schema: str, within: float = 10.0) -> None:
    """Until a statement on ``schema`` waits for a lock (a bound, not a pace)."""
    deadline = time.monotonic() + within
    with psycopg.connect(servers.POSTGRES_URL, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND position(%s in query) > 0",
                (schema,),
            ).fetchone()
            if row is not None and row[0] > 0:
                return
            await asyncio.sleep(0.02)
    pytest.fail(f"no statement on {schema} waited for a lock within {within}s")


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_busy_pool_waits_at_most_its_timeout(mode: str) -> None:
    wait = 0.5
    async with servers.postgres_store(max_size=1, timeout=wait, socket_timeout=5.0) as store:
        k = key()
        assert store.save_sync(k, Create({"d:a": "1"}, LATER))
        table = f'"{store.schema}"."{store.table}"'
        with psycopg.connect(servers.POSTGRES_URL) as blocker:  # holds the row lock
            blocker.execute(f"SELECT 1 FROM {table} WHERE key = %s FOR UPDATE", (k,))
            if mode == "sync":
                stuck = asyncio.create_task(asyncio.to_thread(store.save_sync, k, DELTA))
                await _until_waiting_on_a_lock(store.schema)  # the one connection is taken
                await fails_within(wait + SLACK, lambda: store.load_sync(k))
            else:
                stuck = asyncio.create_task(store.save(k, DELTA))
                await _until_waiting_on_a_lock(store.schema)
                await fails_within(wait + SLACK, lambda: store.load(k))
            blocker.rollback()
        assert await stuck  # released: the stuck save goes through, and the pool serves on
        assert store.load_sync(k) is not None
        assert await store.load(k) is not None
