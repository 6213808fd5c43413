"""PostgresStore beyond the contract: round trips, table layout, cleanup batches, configuration."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
import psycopg_pool
import pytest

from sessio import Principal, SessionManager
from sessio.errors import ConfigurationError, MissingDependency, RecordCorrupt
from sessio.ids import new_session_id, store_key
from sessio.stores import Write, postgres, store_from_url
from sessio.stores.postgres import PostgresStore

from . import servers

pytestmark = pytest.mark.postgres


def key() -> str:
    return store_key(new_session_id())


def write(fields: dict[str, str], *, ttl: float = 3600, **kw: Any) -> Write:
    return Write(fields, time.time() + ttl, **kw)


@pytest.fixture
async def store() -> AsyncIterator[PostgresStore]:
    async with servers.postgres_store() as s:
        yield s


def sql(query: str, *params: Any) -> list[Any]:
    with psycopg.connect(servers.POSTGRES_URL, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


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
                statements.append(parts[3].split('"')[3].split()[0])
        trips = sum(1 for line in text.splitlines() if line.split("\t")[:3:2] in _ENDS)
        return trips, statements

    @contextmanager
    def measure(self, label: str, results: dict[str, tuple[int, list[str]]]) -> Iterator[None]:
        self.take()
        yield
        results[label] = self.take()


@pytest.fixture
async def traced() -> AsyncIterator[tuple[PostgresStore, Trace]]:
    options = {"min_size": 1, "max_size": 1}
    with tempfile.TemporaryDirectory() as directory:
        trace = Trace(os.path.join(directory, "trace"))
        try:
            async with _traced_store(trace, options) as traced:
                yield traced
        finally:
            for fd in trace.fds:
                os.close(fd)


@asynccontextmanager
async def _traced_store(
    trace: Trace, options: dict[str, Any]
) -> AsyncIterator[tuple[PostgresStore, Trace]]:
    async with servers.postgres_store(**options) as s:
        # One traced connection per pool: the store's own, created with tracing on.
        s.close_sync()
        s._pool = psycopg_pool.ConnectionPool(
            servers.POSTGRES_URL, open=True, configure=trace.start, **s._pool_options | options
        )
        s._async_pool = psycopg_pool.AsyncConnectionPool(
            servers.POSTGRES_URL, open=False, configure=trace.astart, **s._pool_options | options
        )
        await s._async_pool.open()
        yield s, trace


def _report(title: str, results: dict[str, tuple[int, list[str]]]) -> None:
    print(f"\n{title}")
    for label, (trips, statements) in results.items():
        print(f"  {label:<44} round trips={trips}  statements={statements}")


async def test_round_trips_per_operation(traced: tuple[PostgresStore, Trace]) -> None:
    store, trace = traced
    report: dict[str, tuple[int, list[str]]] = {}
    for mode in ("sync", "async"):

        async def call(name: str, *args: Any, mode: str = mode) -> Any:
            if mode == "sync":
                return getattr(store, name + "_sync")(*args)
            return await getattr(store, name)(*args)

        for run in range(8):  # past psycopg's prepare threshold (5): still one round trip
            k, k2 = key(), key()
            results: dict[str, tuple[int, list[str]]] = {}
            with trace.measure(f"{mode} save replace, new", results):
                await call("save", k, write({"d:a": "1"}, replace=True))
            with trace.measure(f"{mode} load (hit)", results):
                assert await call("load", k) is not None
            with trace.measure(f"{mode} load (miss)", results):
                assert await call("load", key()) is None
            with trace.measure(f"{mode} save delta", results):
                await call("save", k, write({"d:b": "2"}, removed={"d:a"}))
            with trace.measure(f"{mode} save rewrite (resave)", results):
                await call("save", k, write({"d:b": "2"}, replace=True, supersedes=k))
            with trace.measure(f"{mode} save login: replace+principal+supersedes", results):
                await call(
                    "save", k2, write({"d:b": "2"}, principal="user:r", replace=True, supersedes=k)
                )
            with trace.measure(f"{mode} delete", results):
                assert await call("delete", k2)
            for label, (trips, _) in results.items():
                assert trips == 1, (run, label, results[label])
        report.update(results)
    _report("PostgresStore round trips (8th run of each statement):", report)
    assert report["sync save login: replace+principal+supersedes"][1] == ["WITH"]
    assert report["async save delta"][1] == ["UPDATE"]
    assert report["async save rewrite (resave)"][1] == ["UPDATE"]


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


# -- layout, cleanup, garbage ---------------------------------------------------------------------


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
    store.save_sync(k, write({"d:a": '"x"'}, principal="user:l", replace=True))
    ((fields, principal),) = sql(
        f'SELECT fields, principal FROM "{store.schema}".sessio_sessions WHERE key = %s', k
    )
    assert (fields, principal) == ({"d:a": '"x"'}, "user:l")
    store.create_schema_sync()  # idempotent


def test_cleanup_works_in_batches(store: PostgresStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "_CLEANUP_BATCH", 7)
    for _ in range(23):
        store.save_sync(key(), write({"d:a": "1"}, ttl=-5, replace=True))
    live = key()
    store.save_sync(live, write({"d:a": "1"}, replace=True))
    assert store.cleanup_sync() == 23
    assert store.count_sync() == 1
    assert store.load_sync(live) is not None


@pytest.mark.parametrize("garbage", ['"a string"', "[1, 2]", '{"d:a": 1}', '{"d:a": null}'])
async def test_garbage_is_record_corrupt(store: PostgresStore, garbage: str) -> None:
    k = key()
    store.save_sync(k, write({"d:a": "1"}, principal="user:g", replace=True))
    sql(
        f'UPDATE "{store.schema}".sessio_sessions SET fields = %s::jsonb WHERE key = %s', garbage, k
    )
    with pytest.raises(RecordCorrupt):
        store.load_sync(k)
    with pytest.raises(RecordCorrupt):
        await store.load(k)
    assert store.principal_records_sync("user:g") == []  # listing skips it


def test_a_delta_on_an_expired_row_writes_nothing(store: PostgresStore) -> None:
    k = key()
    store.save_sync(k, write({"d:a": "1"}, ttl=-5, replace=True))
    store.save_sync(k, write({"d:b": "2"}))
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
            mine.save_sync(k, write({"d:a": "1"}, replace=True))
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
            store.save_sync(key(), write({"d:a": "1"}, principal="user:cli", replace=True))
            store.save_sync(key(), write({"d:a": "1"}, ttl=-5, replace=True))
        assert main(["stats", "--store", url]) == 0
        assert "live sessions: 1" in capsys.readouterr().out
        assert main(["purge", "--store", url]) == 0
        assert "removed 1 expired session(s)" in capsys.readouterr().out
        assert main(["revoke", "cli", "--store", url]) == 0
        assert "revoked 1 session(s)" in capsys.readouterr().out
