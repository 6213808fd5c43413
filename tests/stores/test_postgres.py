"""PostgresStore beyond the contract: round trips, limits under parallel logins, hostile values
and rows, paging, table layout, cleanup batches, configuration."""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg_pool
import pytest

from sessio import Principal, SessionManager
from sessio.errors import ConfigurationError, MissingDependency, RecordCorrupt, ValueNotSerializable
from sessio.ids import new_session_id, store_key
from sessio.stores import postgres, store_from_url
from sessio.stores.base import (
    Create,
    PrincipalLimit,
    Rewrite,
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


# -- round trips, counted from libpq's protocol trace ---------------------------------------------


#: Client messages after which libpq waits for the server: one per round trip. (The server's
#: ``ReadyForQuery`` would say the same, but libpq writes those lines to the trace late.)
_ENDS = (["F", "Sync"], ["F", "Query"])


class Trace:
    """libpq's trace of the store's one pooled connection: round trips and statements sent."""

    def __init__(self, path: str) -> None:
        self.path = path
        open(path, "w").close()
        self.offset = 0
        self.fds: list[int] = []

    def start(self, conn: Any) -> None:
        # An fd of its own (libpq writes through its own FILE*), appending, never truncated.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        self.fds.append(fd)
        conn.pgconn.trace(fd)
        conn.pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)

    async def astart(self, conn: Any) -> None:
        self.start(conn)

    def take(self) -> tuple[int, list[str]]:
        with open(self.path) as f:
            f.seek(self.offset)
            text = f.read()
            self.offset = f.tell()
        statements = []
        for line in text.splitlines():
            parts = line.split("\t")
            if parts[0] == "F" and parts[2] in ("Parse", "Query"):
                # Parse: "<statement name>" "<text>" ...; Query: "<text>"
                text_at = 3 if parts[2] == "Parse" else 1
                statements.append(parts[3].split('"')[text_at].split()[0])
        trips = sum(1 for line in text.splitlines() if line.split("\t")[:3:2] in _ENDS)
        return trips, statements

    @contextmanager
    def measure(self, label: str, results: dict[str, tuple[int, list[str]]]) -> Iterator[None]:
        self.take()
        yield
        results[label] = self.take()


@pytest.fixture
async def traced() -> AsyncIterator[tuple[PostgresStore, Trace]]:
    with tempfile.TemporaryDirectory() as directory:
        trace = Trace(os.path.join(directory, "trace"))
        try:
            # One connection per twin, traced from the start through the public hook.
            async with servers.postgres_store(max_size=1, configure=trace.start) as s:
                yield s, trace
        finally:
            for fd in trace.fds:
                os.close(fd)


def _report(title: str, results: dict[str, tuple[int, list[str]]]) -> None:
    print(f"\n{title}")
    for label, (trips, statements) in results.items():
        print(f"  {label:<44} round trips={trips}  statements={statements}")


async def test_round_trips_per_operation(traced: tuple[PostgresStore, Trace]) -> None:
    store, trace = traced
    report: dict[str, tuple[int, list[str]]] = {}
    limit = PrincipalLimit(1)
    for mode in ("sync", "async"):

        async def call(name: str, *args: Any, mode: str = mode) -> Any:
            if mode == "sync":
                return getattr(store, name + "_sync")(*args)
            return await getattr(store, name)(*args)

        for run in range(8):  # past psycopg's prepare threshold (5): still one round trip
            k, k2, k3 = key(), key(), key()
            later = time.time() + 3600
            results: dict[str, tuple[int, list[str]]] = {}
            with trace.measure(f"{mode} create", results):
                assert await call("save", k, create({"d:a": "1"}))
            with trace.measure(f"{mode} load (hit)", results):
                assert await call("load", k) is not None
            with trace.measure(f"{mode} load (miss)", results):
                assert await call("load", key()) is None
            with trace.measure(f"{mode} update (delta)", results):
                assert await call("save", k, Update({"d:b": "2"}, later, removed={"d:a"}))
            with trace.measure(f"{mode} rewrite", results):
                assert await call("save", k, Rewrite({"d:b": "2"}, later))
            login = Rotate(k, {"d:b": "2"}, later, "user:r", limit, Tombstone(k3, {}, later))
            with trace.measure(f"{mode} login: rotate+tombstone+limit", results):
                assert await call("save", k2, login)
            with trace.measure(f"{mode} page", results):
                await call("page", None, 10)
            with trace.measure(f"{mode} delete", results):
                assert await call("delete", k2)
            await call("delete", k3)
            for label, (trips, _) in results.items():
                assert trips == 1, (run, label, results[label])
        report.update(results)
    _report("PostgresStore round trips (8th run of each statement):", report)
    assert report["async update (delta)"][1] == ["WITH"]
    # The advisory lock and the write travel in one message (a simple query).
    assert report["sync login: rotate+tombstone+limit"][1] == ["SELECT"]


async def test_round_trips_through_the_manager(traced: tuple[PostgresStore, Trace]) -> None:
    store, trace = traced
    manager = SessionManager(store)
    results: dict[str, tuple[int, list[str]]] = {}
    with trace.measure("commit of a new session", results):
        session = await manager.load(None)
        session["cart"] = [1]
        token = (await manager.commit(session)).token
    with trace.measure("load", results):
        session = await manager.load(token)
    with trace.measure("commit of one changed key (delta)", results):
        session["cart"].append(2)
        await manager.commit(session)
    session = await manager.load(token)
    with trace.measure("commit of a login (rotation)", results):
        session.login(Principal("42"))
        token = (await manager.commit(session)).token
    _report("SessionManager on PostgresStore, round trips:", results)
    assert all(trips == 1 for trips, _ in results.values()), results
    assert (await manager.load(token))["cart"] == [1, 2]


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


# -- layout, cleanup ------------------------------------------------------------------------------


def test_table_layout(store: PostgresStore) -> None:
    columns = sql(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        store.schema,
        store.table,
    )
    assert columns == [
        ("key", "text", "NO"),
        ("fields", "jsonb", "NO"),
        ("expires_at", "double precision", "NO"),
        ("principal", "text", "YES"),
    ]
    indexes = {
        r[0] for r in sql("SELECT indexname FROM pg_indexes WHERE schemaname = %s", store.schema)
    }
    assert indexes == {
        "sessio_sessions_pkey",
        "sessio_sessions_expires_at",
        "sessio_sessions_principal",
    }
    k = key()
    store.save_sync(k, create({"d:a": '"x"'}, principal="user:l"))
    ((fields, principal),) = sql(
        f'SELECT fields, principal FROM "{store.schema}".sessio_sessions WHERE key = %s', k
    )
    assert (fields, principal) == ({"d:a": '"x"'}, "user:l")
    store.create_schema_sync()  # idempotent


def test_cleanup_works_in_batches(store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "_CLEANUP_BATCH", 7)
    for _ in range(23):
        store.save_sync(key(), create({"d:a": "1"}, ttl=-5))
    live = key()
    store.save_sync(live, create({"d:a": "1"}))
    assert store.cleanup_sync() == 23
    assert store.count_sync() == 1
    assert store.load_sync(live) is not None


def test_a_delta_on_an_expired_row_writes_nothing(store: PostgresStore) -> None:
    k = key()
    store.save_sync(k, create({"d:a": "1"}, ttl=-5))
    assert store.save_sync(k, Update({"d:b": "2"}, LATER)).outcome is SaveOutcome.MISSING
    assert store.save_sync(k, Rewrite({"d:b": "2"}, LATER)).outcome is SaveOutcome.MISSING
    ((fields,),) = sql(f'SELECT fields FROM "{store.schema}".sessio_sessions WHERE key = %s', k)
    assert fields == {"d:a": "1"}


# -- configuration --------------------------------------------------------------------------------


@pytest.mark.parametrize("option", [{"schema": "x; DROP"}, {"table": "a.b"}, {"schema": ""}])
def test_identifiers_are_checked(option: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError):
        PostgresStore(servers.POSTGRES_URL, **option)


def test_store_from_url() -> None:
    store = store_from_url("postgresql://postgres@127.0.0.1/test", schema="s1", table="t1")
    assert isinstance(store, PostgresStore)
    assert (store.schema, store.table) == ("s1", "t1")
    assert isinstance(store_from_url("postgres://h/db"), PostgresStore)


async def test_pools_passed_in_are_used_and_left_open(store: PostgresStore) -> None:
    kwargs = {"autocommit": True}
    with psycopg_pool.ConnectionPool(servers.POSTGRES_URL, kwargs=kwargs, min_size=1) as pool:
        async with psycopg_pool.AsyncConnectionPool(
            servers.POSTGRES_URL, kwargs=kwargs, min_size=1, open=False
        ) as apool:
            mine = PostgresStore(pool=pool, async_pool=apool, schema=store.schema)
            k = key()
            mine.save_sync(k, create({"d:a": "1"}))
            assert (await mine.load(k)) is not None
            await mine.close()
            assert not pool.closed
            assert not apool.closed


def test_missing_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(MissingDependency, match=r"sessio\[postgres\]"):
        PostgresStore()


def test_url_query_names_the_table() -> None:
    store = store_from_url("postgresql://h/db?schema=app&table=web_sessions&connect_timeout=3")
    assert isinstance(store, PostgresStore)
    assert (store.schema, store.table) == ("app", "web_sessions")
    assert store.conninfo == "postgresql://h/db?connect_timeout=3"


def test_the_cli_migrates_then_manages(capsys: pytest.CaptureFixture[str]) -> None:
    from sessio.cli import main

    servers.require_postgres()
    schema = servers.unique("sessio_test_cli")
    url = f"{servers.POSTGRES_URL}?schema={schema}"
    with servers.dropping(schema):
        assert main(["migrate", "--store", url]) == 0
        assert "schema ready for PostgresStore" in capsys.readouterr().out
        store = PostgresStore(servers.POSTGRES_URL, schema=schema)
        with store:
            store.save_sync(key(), create({"d:a": "1"}, principal="user:cli"))
            store.save_sync(key(), create({"d:a": "1"}, ttl=-5))
        assert main(["stats", "--store", url]) == 0
        assert "live sessions: 1" in capsys.readouterr().out
        assert main(["purge", "--store", url]) == 0
        assert "removed 1 expired session(s)" in capsys.readouterr().out
        assert main(["revoke", "cli", "--store", url]) == 0
        assert "revoked 1 session(s)" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("conninfo_query", "options", "expected"),
    [
        ("", {}, "1800ms"),  # 90% of the default socket_timeout
        ("?options=-c%20statement_timeout%3D5s", {}, "5s"),  # conninfo wins over the store
        ("?options=-c%20statement_timeout%3D5s", {"options": "-c statement_timeout=7s"}, "7s"),
    ],
)
async def test_connection_settings_and_who_wins(
    conninfo_query: str, options: dict[str, str], expected: str
) -> None:
    seen: dict[str, str] = {}

    def configure(conn: Any) -> Any:
        if not isinstance(conn, psycopg.AsyncConnection):
            seen["sync"] = conn.execute("SHOW statement_timeout").fetchone()[0]
            return None

        async def show() -> None:
            cur = await conn.execute("SHOW statement_timeout")
            seen["async"] = (await cur.fetchone())[0]

        return show()

    servers.require_postgres()
    url = servers.POSTGRES_URL + conninfo_query
    async with servers.postgres_store(url, connect_options=options, configure=configure) as s:
        assert await s.count() == 0
        assert s.count_sync() == 0
    assert seen == {"sync": expected, "async": expected}


def _in_forked_child(store: PostgresStore, k: str, opened: list[int]) -> None:
    """A forked worker (gunicorn --preload): the parent's store object, its own connections."""
    before = len(opened)
    ok = store.load_sync(k) is not None and bool(store.save_sync(key(), create({"d:c": "1"})))
    os._exit(0 if ok and len(opened) > before else 1)  # served, on a connection of its own


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
async def test_a_forked_child_gets_its_own_connections() -> None:
    opened: list[int] = []
    async with servers.postgres_store(configure=lambda conn: opened.append(1)) as store:
        k = key()
        assert store.save_sync(k, create({"d:a": "1"}))
        assert await store.load(k) is not None  # both twins hold a connection the child inherits
        in_parent = len(opened)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
            child = multiprocessing.get_context("fork").Process(
                target=_in_forked_child, args=(store, k, opened)
            )
            child.start()
        child.join(30)
        assert child.exitcode == 0
        # The child neither closed nor used the parent's connections: they serve on, no new one.
        assert store.load_sync(k) is not None
        assert await store.load(k) is not None
        assert store.count_sync() == 2
        assert len(opened) == in_parent
