"""PostgresStore beyond the contract: round trips, table layout, cleanup batches, configuration,
forked workers. Its writes under parallel logins and hostile input: ``test_postgres_writes.py``."""

from __future__ import annotations

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
from sessio.errors import ConfigurationError, MissingDependency
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
)
from sessio.stores.postgres import PostgresStore

from . import servers

pytestmark = pytest.mark.postgres


def key() -> str:
    return store_key(new_session_id())


LATER = 2.0**40


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


def test_delete_principal_records_takes_the_row_a_rotation_in_flight_inserts(
    store: PostgresStore,
) -> None:
    """A rotation still uncommitted when the deletion starts: its new row is invisible to the
    DELETE's snapshot and its old row is gone by the time the DELETE reaches it. The lock-free
    run sees that (one row seen, none deleted) and the table-locked run takes the new row."""
    old, new = key(), key()
    store.save_sync(old, create({"d:n": "1"}, principal="user:flight"))
    done: list[list[str]] = []
    with psycopg.connect(servers.POSTGRES_URL) as conn:  # one open transaction: the rotation
        conn.execute(f"DELETE FROM {table(store)} WHERE key = %s", (old,))
        conn.execute(
            f"INSERT INTO {table(store)} (key, fields, expires_at, principal) "
            "VALUES (%s, '{}'::jsonb, %s, 'user:flight')",
            (new, time.time() + 3600),
        )
        deleting = threading.Thread(
            target=lambda: done.append(store.delete_principal_records_sync("user:flight"))
        )
        deleting.start()
        waiting: list[Any] = []
        for _ in range(500):  # until the DELETE waits on the rotation's row lock
            waiting = sql(
                "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
                "%DELETE FROM%" + store.schema + "%",
            )
            if waiting:
                break
            time.sleep(0.01)
        assert waiting, "the deletion never waited on the rotation"
        conn.commit()
    deleting.join(10)
    assert done == [[new]]
    assert store.load_sync(new) is None
    assert store.count_sync() == 0


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
            store.save_sync(
                key(), create({"s:meta": '{"c":1,"s":1}', "d:a": "1"}, principal="user:cli")
            )
            store.save_sync(key(), create({"d:a": "1"}, ttl=-5))
        assert main(["stats", "--store", url]) == 0
        assert "live: 1" in capsys.readouterr().out
        assert main(["purge", "--store", url]) == 0
        assert "removed 1 expired session(s)" in capsys.readouterr().out
        assert main(["revoke", "--principal", "cli", "--store", url]) == 0
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
