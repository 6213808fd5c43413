"""PostgresStore's writes beyond the contract: principal limits under parallel logins (threads,
tasks, two processes), hostile values (typed data errors, nothing written), hostile rows (never
live, cleaned up) and page walks."""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest

from sessio.errors import ConfigurationError, RecordCorrupt, ValueNotSerializable
from sessio.ids import new_session_id, store_key
from sessio.stores.base import (
    Create,
    PrincipalLimit,
    Rotate,
    SaveOutcome,
    Tombstone,
    Update,
    Write,
)
from sessio.stores.postgres import PostgresStore

from . import servers

pytestmark = pytest.mark.postgres


def key() -> str:
    return store_key(new_session_id())


def create(fields: dict[str, str], *, ttl: float = 3600, **kw: Any) -> Create:
    return Create(fields, time.time() + ttl, **kw)


@pytest.fixture
async def store() -> AsyncIterator[PostgresStore]:
    async with servers.postgres_store() as s:
        yield s


def sql(query: str, *params: Any) -> list[Any]:
    with psycopg.connect(servers.POSTGRES_URL, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def table(store: PostgresStore) -> str:
    return f'"{store.schema}"."{store.table}"'


# -- principal limits under parallel logins --------------------------------------------------------

LOGINS = 8


def _parallel_logins_sync(store: PostgresStore, principal: str, limit: PrincipalLimit) -> list[Any]:
    barrier = threading.Barrier(LOGINS)

    def login(_: int) -> Any:
        k = key()
        barrier.wait(10)
        return k, store.save_sync(k, create({"d:a": "1"}, principal=principal, limit=limit))

    with concurrent.futures.ThreadPoolExecutor(LOGINS) as pool:
        return list(pool.map(login, range(LOGINS)))


async def _parallel_logins(
    store: PostgresStore, principal: str, limit: PrincipalLimit
) -> list[Any]:
    async def login() -> Any:
        k = key()
        return k, await store.save(k, create({"d:a": "1"}, principal=principal, limit=limit))

    return await asyncio.gather(*(login() for _ in range(LOGINS)))


def _check_limit(
    store: PostgresStore, principal: str, results: list[Any], limit: PrincipalLimit
) -> None:
    live = {r.key for r in store.principal_records_sync(principal)}
    applied = {k for k, saved in results if saved}
    evicted = [e for _, saved in results for e in saved.evicted]
    assert len(live) <= limit.max_sessions, live
    if limit.on_limit == "reject":
        assert applied == live
        rejected = [k for k, saved in results if saved.outcome is SaveOutcome.REJECTED]
        assert len(rejected) == LOGINS - limit.max_sessions
        assert evicted == []
    else:
        assert len(applied) == LOGINS
        assert len(evicted) == len(set(evicted)) == LOGINS - limit.max_sessions
        assert live == applied - set(evicted)


@pytest.mark.parametrize("on_limit", ["evict_oldest", "reject"])
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_parallel_logins_respect_the_limit(
    store: PostgresStore, mode: str, on_limit: Any
) -> None:
    limit = PrincipalLimit(2, on_limit)
    for round_ in range(3):
        principal = f"user:parallel-{mode}-{round_}"
        if mode == "sync":
            results = _parallel_logins_sync(store, principal, limit)
        else:
            results = await _parallel_logins(store, principal, limit)
        _check_limit(store, principal, results, limit)


def _worker_logins(schema: str, principal: str, n: int) -> list[tuple[str, list[str], str]]:
    """One worker process: ``n`` logins in parallel threads (run through ``spawn``)."""
    with PostgresStore(servers.POSTGRES_URL, schema=schema) as store:
        limit = PrincipalLimit(2)
        barrier = threading.Barrier(n)

        def login(_: int) -> tuple[str, list[str], str]:
            k = key()
            barrier.wait(30)
            saved = store.save_sync(k, create({"d:a": "1"}, principal=principal, limit=limit))
            return k, list(saved.evicted), saved.outcome.value

        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            return list(pool.map(login, range(n)))


@pytest.mark.slow
def test_parallel_logins_from_two_processes(store: PostgresStore) -> None:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        futures = [pool.submit(_worker_logins, store.schema, "user:two", 4) for _ in range(2)]
        results = [row for f in futures for row in f.result(timeout=60)]
    live = {r.key for r in store.principal_records_sync("user:two")}
    evicted = [e for _, keys, _ in results for e in keys]
    assert all(outcome == "applied" for _, _, outcome in results)
    assert len(live) == 2
    assert sorted(evicted + list(live)) == sorted(k for k, _, _ in results)


async def test_two_parallel_rotations_of_one_session(store: PostgresStore) -> None:
    old = key()
    store.save_sync(old, create({"d:a": "1"}))
    later = time.time() + 3600
    first, second = key(), key()
    results = await asyncio.gather(
        store.save(first, Rotate(old, {"d:a": "1"}, later, "user:rot", PrincipalLimit(3))),
        store.save(second, Rotate(old, {"d:a": "1"}, later, "user:rot", PrincipalLimit(3))),
    )
    assert sorted(r.outcome.value for r in results) == ["applied", "missing"]
    assert store.count_sync() == 1
    assert store.load_sync(old) is None


# -- hostile values: typed data errors, nothing written, the connection still serves --------------

NUL, SURROGATE = "\x00", "\ud800"
LATER = 2.0**40


async def _maybe(result: Any) -> Any:
    return (await result) if asyncio.iscoroutine(result) else result


def _hostile_writes() -> list[Any]:
    writes: list[Any] = []
    for bad, name in ((NUL, "nul"), (SURROGATE, "surrogate")):
        writes += [
            pytest.param("key", bad, Create({"d:a": "1"}, LATER), id=f"{name}-in-key"),
            pytest.param("name", None, Create({f"d:{bad}": "1"}, LATER), id=f"{name}-in-name"),
            pytest.param("value", None, Create({"d:a": f"x{bad}"}, LATER), id=f"{name}-in-value"),
            pytest.param(
                "principal",
                None,
                Create({"d:a": "1"}, LATER, f"user:{bad}"),
                id=f"{name}-principal",
            ),
            pytest.param(
                "limited principal",
                None,
                Create({"d:a": "1"}, LATER, f"user:{bad}", PrincipalLimit(1)),
                id=f"{name}-limited-principal",
            ),
            pytest.param(
                "removed", None, Update({}, LATER, removed={f"d:{bad}"}), id=f"{name}-in-removed"
            ),
            pytest.param(
                "tombstone",
                None,
                Rotate("OLD", {}, LATER, None, None, Tombstone("t", {"s": bad}, LATER)),
                id=f"{name}-in-tombstone",
            ),
        ]
    huge = "user:" + os.urandom(4000).hex()  # past the principal index's row size, compressed
    writes += [
        pytest.param("principal", None, Create({"d:a": "1"}, LATER, huge), id="huge-principal"),
        # Refused by the server after the advisory lock, in the same transaction: rolled back.
        pytest.param(
            "limited principal",
            None,
            Create({"d:a": "1"}, LATER, huge, PrincipalLimit(1)),
            id="huge-limited-principal",
        ),
        pytest.param(
            "value",
            None,
            Create({"d:a": "\x00"}, LATER, "user:v", PrincipalLimit(1)),
            id="nul-limited",
        ),
        pytest.param("expiry", None, Create({"d:a": "1"}, float("nan")), id="nan-expiry"),
        pytest.param("expiry", None, Create({"d:a": "1"}, float("inf")), id="inf-expiry"),
        pytest.param("expiry", None, Update({}, float("nan")), id="nan-update"),
        pytest.param(
            "tombstone",
            None,
            Rotate("OLD", {}, LATER, None, None, Tombstone("t", {}, float("nan"))),
            id="nan-tombstone",
        ),
    ]
    return writes


@pytest.mark.parametrize(("where", "bad_key", "write"), _hostile_writes())
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_hostile_values_are_data_errors(
    store: PostgresStore, mode: str, where: str, bad_key: str | None, write: Write
) -> None:
    old, target = key(), key()
    store.save_sync(old, create({"d:keep": "1"}))
    if isinstance(write, Update):
        target = old
    if isinstance(write, Rotate):
        write = Rotate(old, write.fields, write.expires_at, None, None, write.tombstone)
    k = bad_key if bad_key is not None else target
    before = sql(f"SELECT key, fields FROM {table(store)} ORDER BY key")
    save = store.save_sync if mode == "sync" else store.save
    with pytest.raises(ValueNotSerializable) as info:
        await _maybe(save(k, write))
    assert info.value.code == "VALUE_NOT_SERIALIZABLE"
    assert "\x00" not in info.value.message  # the evidence never quotes the value
    assert "user:" not in info.value.message
    assert sql(f"SELECT key, fields FROM {table(store)} ORDER BY key") == before
    # The same connections serve on: a data error is not an outage, and no lock outlives it.
    assert store.load_sync(old) is not None
    assert await store.load(old) is not None
    assert store.save_sync(key(), Create({"d:a": "1"}, LATER, "user:v", PrincipalLimit(5)))
    assert await store.save(key(), Create({"d:a": "1"}, LATER, "user:v", PrincipalLimit(5)))


async def test_hostile_keys_on_reads(store: PostgresStore) -> None:
    for bad in (NUL, SURROGATE):
        with pytest.raises(ValueNotSerializable):
            store.load_sync(f"k{bad}")
        with pytest.raises(ValueNotSerializable):
            await store.delete(f"k{bad}")
        with pytest.raises(ValueNotSerializable):
            await store.principal_records(f"user:{bad}")


# -- hostile rows: written by someone else, straight into the table -------------------------------


@pytest.mark.parametrize("expiry", ["NaN", "Infinity", "-Infinity"])
async def test_a_non_finite_expiry_is_never_live(store: PostgresStore, expiry: str) -> None:
    k = key()
    sql(f"INSERT INTO {table(store)} VALUES (%s, '{{}}'::jsonb, %s::float8, 'user:nan')", k, expiry)
    assert store.load_sync(k) is None
    assert await store.load(k) is None
    assert not store.exists_sync(k)
    assert store.count_sync() == 0
    assert store.principal_records_sync("user:nan") == []
    assert store.page_sync().records == []
    assert store.save_sync(k, Update({"d:a": "1"}, LATER)).outcome is SaveOutcome.MISSING
    assert store.cleanup_sync() == 1
    assert sql(f"SELECT count(*) FROM {table(store)}") == [(0,)]
    sql(f"INSERT INTO {table(store)} VALUES (%s, '{{}}'::jsonb, %s::float8, NULL)", k, expiry)
    assert store.save_sync(k, create({"d:a": "1"}))  # a dead row's key may be created anew
    assert store.load_sync(k) is not None


@pytest.mark.parametrize("garbage", ['"a string"', "[1, 2]", '{"d:a": 1}', '{"d:a": null}'])
async def test_garbage_is_record_corrupt_and_cleaned_up(store: PostgresStore, garbage: str) -> None:
    k, good = key(), key()
    store.save_sync(k, create({"d:a": "1"}, principal="user:g"))
    store.save_sync(good, create({"d:a": "1"}, principal="user:g"))
    sql(f"UPDATE {table(store)} SET fields = %s::jsonb WHERE key = %s", garbage, k)
    with pytest.raises(RecordCorrupt):
        store.load_sync(k)
    with pytest.raises(RecordCorrupt):
        await store.load(k)
    assert [r.key for r in store.principal_records_sync("user:g")] == [good]  # listing skips it
    assert [r.key for r in (await store.page()).records] == [good]
    assert await store.cleanup() == 1
    assert store.load_sync(k) is None
    assert store.load_sync(good) is not None


# -- pages ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_page_walk_sees_every_live_record_once(store: PostgresStore, mode: str) -> None:
    live = {key() for _ in range(23)}
    for k in live:
        store.save_sync(k, create({"d:a": "1"}))
    store.save_sync(key(), create({"d:a": "1"}, ttl=-5))
    corrupt = sorted(live)[7]  # the last row of a page: the walk must go on past it
    sql(f"UPDATE {table(store)} SET fields = '[]'::jsonb WHERE key = %s", corrupt)
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        page = store.page_sync(cursor, 8) if mode == "sync" else await store.page(cursor, 8)
        assert len(page.records) <= 8
        seen += [r.key for r in page.records]
        cursor = page.cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(live - {corrupt})
    with pytest.raises(ConfigurationError):
        store.page_sync(None, 0)
