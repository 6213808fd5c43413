"""Scale: does a load + commit stay as fast with a million stored sessions as with ten thousand?

For each server store (SQLite, PostgreSQL, Redis) and each size, a separate store is filled in
bulk with clones of one real session record under random keys (SQLite: one ``INSERT ... SELECT``
over a recursive counter; PostgreSQL: ``INSERT ... SELECT`` over ``generate_series``; Redis: a
server-side Lua loop of ``RESTORE``), plus a few hundred *probe* sessions created through the
manager, whose IDs we know. The stores of all sizes are then probed in interleaved chunks, so
noise lands on each size alike. (The clones are inserted in key order, which is six times
faster than random order and packs the B-tree pages fuller; the tree has the same depth, so a
lookup costs the same.) Also measured: MemoryStore bytes per session (tracemalloc) and
the time ``cleanup()`` takes to remove 100k expired sessions among 1M live ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import sqlite3
import statistics
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .contenders import Unavailable
from .services import Services

__all__ = ["Cleanup", "ScaleResult", "memory_per_session", "run_scale"]


@dataclasses.dataclass
class ScaleResult:
    """Load + commit latencies of one store at one size (milliseconds)."""

    store: str
    size: int
    p50_ms: float
    p99_ms: float
    samples: int
    fill_seconds: float


@dataclasses.dataclass
class Cleanup:
    """How long ``cleanup()`` took to remove ``expired`` sessions among ``live`` live ones."""

    store: str
    live: int
    expired: int
    removed: int
    seconds: float
    note: str = ""


# -- opening stores and filling them ---------------------------------------------------------------


class _Target:
    """One store of one size, with its probes and a bulk filler."""

    def __init__(self, kind: str, store: Any, fill: Callable[[str, int, bool], None]) -> None:
        self.kind = kind
        self.store = store
        self.fill = fill  # (template key, how many, expired) -> None
        self.tokens: list[str] = []


def _sqlite_target(tmp: Path, size: int) -> _Target:
    from sessio.stores import SQLiteStore

    store = SQLiteStore(tmp / f"scale-{size}.db")

    def fill(template: str, n: int, expired: bool) -> None:
        db = sqlite3.connect(store.path, isolation_level=None)
        try:
            expires = "expires_at" if not expired else f"{time.time() - 3600}"
            db.execute("BEGIN")
            db.execute(
                f"WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?) "
                f"INSERT INTO {store.table} (key, fields, expires_at, principal) "
                f"SELECT lower(hex(randomblob(32))), fields, {expires}, principal "
                f"FROM {store.table}, c WHERE key = ? ORDER BY 1",
                (n, template),
            )
            db.execute("COMMIT")
        finally:
            db.close()

    return _Target("sqlite", store, fill)


def _postgres_target(url: str, size: int) -> _Target:
    import psycopg

    from sessio.stores import store_from_url

    dbname = f"sessio_scale_{size}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {dbname}")
        admin.execute(f"CREATE DATABASE {dbname}")
    db_url = url.rsplit("/", 1)[0] + "/" + dbname
    try:
        store = store_from_url(db_url)
    except Exception as exc:
        raise Unavailable(f"not available yet ({type(exc).__name__}: {exc})") from None
    store.create_schema_sync()

    def fill(template: str, n: int, expired: bool) -> None:
        with psycopg.connect(db_url, autocommit=True) as conn:
            table, key_col, key_type, exp_col, exp_type, columns = _pg_layout(conn, template)
            if key_type == "bytea":
                new_key = "decode(md5(random()::text || g::text) || md5(g::text || random()::text), 'hex')"
                match = f"{key_col} = decode(%s, 'hex')"
            else:
                new_key = "md5(random()::text || g::text) || md5(g::text || random()::text)"
                match = f"{key_col} = %s"
            select = []
            for col in columns:
                if col == key_col:
                    select.append(new_key)
                elif col == exp_col and expired:
                    select.append(
                        "now() - interval '1 hour'"
                        if "timestamp" in exp_type
                        else "extract(epoch from now()) - 3600"
                    )
                else:
                    select.append(f"t.{col}")
            done = 0
            while done < n:  # batches keep each transaction (and its WAL burst) moderate
                step = min(200_000, n - done)
                conn.execute(
                    f"INSERT INTO {table} ({', '.join(columns)}) "
                    f"SELECT {', '.join(select)} FROM {table} t, generate_series(1, %s) g "
                    f"WHERE t.{match} ORDER BY 1",
                    (step, template),
                )
                done += step
            conn.execute(f"ANALYZE {table}")

    return _Target("postgres", store, fill)


def _pg_layout(conn: Any, template: str) -> tuple[str, str, str, str | None, str, list[str]]:
    """Find the store's table and its key and expiry columns by looking for the template row."""
    rows = conn.execute(
        "SELECT table_schema || '.' || table_name, column_name, data_type FROM "
        "information_schema.columns WHERE table_schema NOT IN ('pg_catalog', 'information_schema') "
        "ORDER BY table_name, ordinal_position"
    ).fetchall()
    tables: dict[str, list[tuple[str, str]]] = {}
    for table, column, dtype in rows:
        tables.setdefault(table, []).append((column, dtype))
    for table, cols in tables.items():
        for column, dtype in cols:
            if dtype in ("text", "character varying", "character"):
                hit = conn.execute(f"SELECT 1 FROM {table} WHERE {column} = %s", (template,))
            elif dtype == "bytea":
                hit = conn.execute(
                    f"SELECT 1 FROM {table} WHERE {column} = decode(%s, 'hex')", (template,)
                )
            else:
                continue
            if hit.fetchone() is not None:
                expiry = next(((c, t) for c, t in cols if c.startswith("expire")), (None, ""))
                return table, column, dtype, expiry[0], expiry[1], [c for c, _ in cols]
    raise RuntimeError("cannot find the PostgresStore table holding the template session")


_LUA_CLONE = """
local names = redis.call('KEYS', '*' .. ARGV[1] .. '*')
local dumps = {}
for i, name in ipairs(names) do
  local ttl = redis.call('PTTL', name)
  if ttl < 0 then ttl = 0 end
  dumps[i] = {name, redis.call('DUMP', name), ttl}
end
local from, to = tonumber(ARGV[2]), tonumber(ARGV[3])
for n = from, to do
  local hex = redis.sha1hex(n .. ARGV[4]) .. string.sub(redis.sha1hex(ARGV[4] .. n), 1, 24)
  for _, d in ipairs(dumps) do
    local s, e = string.find(d[1], ARGV[1], 1, true)
    local name = string.sub(d[1], 1, s - 1) .. hex .. string.sub(d[1], e + 1)
    redis.call('RESTORE', name, d[3], d[2], 'REPLACE')
  end
end
return #names
"""


def _redis_target(services: Services, size: int, db: int) -> _Target:
    import redis

    from sessio.stores import store_from_url

    if not services.redis_private:
        raise Unavailable("needs the run's private Redis (will not fill a shared server)")
    url = services.redis_db(db)
    if url is None:
        raise Unavailable("no Redis")
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        store = store_from_url(url)
    except Exception as exc:
        raise Unavailable(f"not available yet ({type(exc).__name__}: {exc})") from None
    clone = client.register_script(_LUA_CLONE)
    salt = str(random.random())

    def fill(template: str, n: int, expired: bool) -> None:
        if expired:
            return  # native TTL: Redis expires keys by itself
        step = 50_000  # one script call blocks the (private) server; keep each call short
        for start in range(1, n + 1, step):
            clone(args=[template, start, min(n, start + step - 1), salt])

    return _Target("redis", store, fill)


def _open(kind: str, services: Services, tmp: Path, size: int, index: int) -> _Target:
    if kind == "sqlite":
        return _sqlite_target(tmp, size)
    if kind == "postgres":
        if services.postgres_url is None or not services.postgres_private:
            raise Unavailable("needs the run's private PostgreSQL (will not fill a shared server)")
        return _postgres_target(services.postgres_url, size)
    return _redis_target(services, size, 10 + index)


# -- probing -----------------------------------------------------------------------------------------


def _manager(store: Any) -> Any:
    from sessio import Policy, SyncSessionManager

    return SyncSessionManager(store, Policy().development())


def _seed_probes(target: _Target, probes: int) -> None:
    manager = _manager(target.store)
    for _ in range(probes):
        session = manager.load(None)
        session["user"] = "alice"
        session["counter"] = 0
        manager.commit(session)
        target.tokens.append(session.id)


def _probe(manager: Any, token: str) -> float:
    start = time.perf_counter()
    session = manager.load(token)
    session["counter"] = session.get("counter", 0) + 1
    manager.commit(session)
    elapsed = time.perf_counter() - start
    if session.id != token:
        raise RuntimeError("a probe session was not found: the store lost it")
    return elapsed


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_scale(
    services: Services,
    tmp: Path,
    *,
    sizes: tuple[int, ...],
    probes: int,
    samples: int,
    expired: int,
    failures: dict[str, str],
    progress: Callable[[str], None] = print,
) -> tuple[list[ScaleResult], list[Cleanup]]:
    """p50/p99 of load + commit per store and size, interleaved across sizes; then, in the
    largest store, the time ``cleanup()`` takes to remove ``expired`` expired sessions."""
    from sessio import ids

    results: list[ScaleResult] = []
    cleanups: list[Cleanup] = []
    for kind in ("sqlite", "postgres", "redis"):
        targets: dict[int, _Target] = {}
        fills: dict[int, float] = {}
        try:
            for index, size in enumerate(sizes):
                started = time.perf_counter()
                target = _open(kind, services, tmp, size, index)
                _seed_probes(target, probes)
                target.fill(ids.store_key(target.tokens[0]), size - probes, False)
                fills[size] = time.perf_counter() - started
                targets[size] = target
        except Unavailable as exc:
            failures[f"scale: {kind}"] = str(exc)
            _close_all(targets)
            continue
        except Exception as exc:
            failures[f"scale: {kind}"] = f"{type(exc).__name__}: {exc}"
            _close_all(targets)
            continue
        managers = {size: _manager(t.store) for size, t in targets.items()}
        times: dict[int, list[float]] = {size: [] for size in targets}
        rng = random.Random(3)
        chunk = 50
        started = time.perf_counter()
        for _ in range(max(1, samples // chunk)):
            order = list(targets)
            rng.shuffle(order)
            for size in order:
                tokens = targets[size].tokens
                for _ in range(chunk):
                    times[size].append(_probe(managers[size], rng.choice(tokens)))
        for size, values in times.items():
            results.append(
                ScaleResult(
                    kind,
                    size,
                    statistics.median(values) * 1e3,
                    _percentile(values, 0.99) * 1e3,
                    len(values),
                    fills[size],
                )
            )
        progress(
            f"  scale {kind}: sizes {', '.join(f'{s:,}' for s in sizes)} filled in "
            f"{sum(fills.values()):.1f}s, probed in {time.perf_counter() - started:.1f}s"
        )
        largest = max(targets)
        try:
            cleanups.append(_cleanup(targets[largest], largest, expired))
        except Exception as exc:
            failures[f"cleanup: {kind}"] = f"{type(exc).__name__}: {exc}"
        _close_all(targets)
    return results, cleanups


def _cleanup(target: _Target, live: int, expired: int) -> Cleanup:
    from sessio import ids

    if target.kind == "redis":
        return Cleanup("redis", live, expired, 0, 0.0, "native TTL: Redis expires keys itself")
    target.fill(ids.store_key(target.tokens[0]), expired, True)
    started = time.perf_counter()
    removed = target.store.cleanup_sync()
    seconds = time.perf_counter() - started
    remaining = target.store.count_sync()
    note = "" if remaining == live else f"{remaining:,} live after cleanup (expected {live:,})"
    return Cleanup(target.kind, live, expired, removed, seconds, note)


def _close_all(targets: dict[int, _Target]) -> None:
    for target in targets.values():
        with contextlib.suppress(Exception):  # best effort at the end of a section
            target.store.close_sync()


def memory_per_session(n: int) -> dict[str, float]:
    """Bytes of Python heap per stored session (tracemalloc), sessio MemoryStore and starsessions."""
    import asyncio

    from sessio.stores import MemoryStore

    out: dict[str, float] = {}
    store = MemoryStore(max_sessions=None)
    manager = _manager(store)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(n):
        session = manager.load(None)
        session["user"] = "alice"
        session["counter"] = 0
        manager.commit(session)
    out["sessio MemoryStore"] = (tracemalloc.get_traced_memory()[0] - before) / n
    tracemalloc.stop()
    try:
        from starsessions import InMemoryStore, JsonSerializer, generate_session_id
    except ImportError:
        return out
    peer = InMemoryStore()
    serializer = JsonSerializer()

    async def fill() -> None:
        for _ in range(n):
            data = serializer.serialize({"user": "alice", "counter": 0})
            await peer.write(generate_session_id(), data, lifetime=1209600, ttl=1209600)

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    asyncio.run(fill())
    out["starsessions InMemoryStore"] = (tracemalloc.get_traced_memory()[0] - before) / n
    tracemalloc.stop()
    return out
