"""PostgresStore: sessions in one PostgreSQL table, each load and each save a single statement.

The table (``public.sessio_sessions`` by default; create it with :meth:`PostgresStore.create_schema`
or ``sessio migrate``)::

    CREATE TABLE sessio_sessions (
        key        TEXT PRIMARY KEY,           -- SHA-256 of the session ID, never the ID
        fields     JSONB NOT NULL,             -- {"field": "encoded text", ...}
        expires_at DOUBLE PRECISION NOT NULL,  -- epoch seconds, like Record.expires_at
        principal  TEXT                        -- principal key, or NULL
    );
    CREATE INDEX sessio_sessions_expires_at ON sessio_sessions (expires_at);
    CREATE INDEX sessio_sessions_principal ON sessio_sessions (principal)
        WHERE principal IS NOT NULL;

A delta commit is one ``UPDATE ... SET fields = (fields || $patch) - $removed ... WHERE key = $1
AND expires_at > $now``: PostgreSQL serialises concurrent commits on the row and re-applies the
merge to the newest version, so parallel requests never lose each other's keys, and a missing
or expired record stays missing. A new session is an upsert. A rotation is one statement whose
data-modifying CTE deletes the superseded row and whose ``INSERT`` selects from what it deleted:
if the row was revoked meanwhile (a concurrent ``DELETE`` wins the row lock), nothing is written.
A forced rewrite of a stored session is an ``UPDATE`` of the live row, so it is conditional too.

Connections are autocommit, so every operation is one round trip (a ``BEGIN`` would be another),
and statements are not prepared server-side (preparing costs a round trip of its own; these
statements plan in microseconds). :meth:`cleanup` deletes in batches (``DELETE ... WHERE key IN
(SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)``) so it never holds many locks, and two cleanups
never wait for each other.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigurationError, RecordCorrupt, StoreUnavailable, require
from .base import Clock, Record, Store, Write

__all__ = ["PostgresStore"]

_CLEANUP_BATCH = 1000

#: How often :meth:`PostgresStore.delete_principal_records` runs again while concurrent writes
#: keep taking the principal's rows first (each run waits for them, so one more is the norm).
_REVOKE_ATTEMPTS = 20

_SCHEMA = [
    "CREATE SCHEMA IF NOT EXISTS {schema}",
    """CREATE TABLE IF NOT EXISTS {table} (
        key        TEXT PRIMARY KEY,
        fields     JSONB NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL,
        principal  TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS {expires_index} ON {table} (expires_at)",
    "CREATE INDEX IF NOT EXISTS {principal_index} ON {table} (principal) "
    "WHERE principal IS NOT NULL",
]

_SQL = {
    "load": "SELECT fields, expires_at, principal FROM {table} WHERE key = %s AND expires_at > %s",
    "create": (
        "INSERT INTO {table} (key, fields, expires_at, principal) "
        "VALUES (%(key)s, %(fields)s, %(expires_at)s, %(principal)s) "
        "ON CONFLICT (key) DO UPDATE SET fields = EXCLUDED.fields, "
        "expires_at = EXCLUDED.expires_at, principal = EXCLUDED.principal"
    ),
    # The new row is selected from what the CTE deleted: no live superseded row, no insert.
    "rotate": (
        "WITH superseded AS (DELETE FROM {table} WHERE key = %(old)s AND expires_at > %(now)s "
        "RETURNING 1) "
        "INSERT INTO {table} (key, fields, expires_at, principal) "
        "SELECT %(key)s::text, %(fields)s::jsonb, %(expires_at)s::float8, %(principal)s::text "
        "FROM superseded "
        "ON CONFLICT (key) DO UPDATE SET fields = EXCLUDED.fields, "
        "expires_at = EXCLUDED.expires_at, principal = EXCLUDED.principal"
    ),
    "rewrite": (
        "UPDATE {table} SET fields = %(fields)s, expires_at = %(expires_at)s, "
        "principal = %(principal)s WHERE key = %(key)s AND expires_at > %(now)s"
    ),
    "delta": (
        "UPDATE {table} SET fields = (fields || %(fields)s) - %(removed)s::text[], "
        "expires_at = %(expires_at)s, principal = %(principal)s "
        "WHERE key = %(key)s AND expires_at > %(now)s"
    ),
    "delete": "DELETE FROM {table} WHERE key = %s",
    "principal": (
        "SELECT key, fields, expires_at, principal FROM {table} "
        "WHERE principal = %s AND expires_at > %s"
    ),
    # One statement, its CTEs under one snapshot: ``seen`` counts the rows the snapshot shows,
    # ``gone`` is what the DELETE removed. Fewer removed than seen means a concurrent write took
    # a row first (a rotation, say, whose new row the snapshot cannot show): run it again.
    "delete_principal": (
        "WITH seen AS (SELECT count(*) AS n FROM {table} WHERE principal = %(principal)s "
        "AND key IS DISTINCT FROM %(keep)s::text), "
        "gone AS (DELETE FROM {table} WHERE principal = %(principal)s "
        "AND key IS DISTINCT FROM %(keep)s::text RETURNING key, expires_at > %(now)s AS live) "
        "SELECT (SELECT n FROM seen), (SELECT count(*) FROM gone), "
        "COALESCE((SELECT array_agg(key) FROM gone WHERE live), '{{}}')"
    ),
    "exists": "SELECT 1 FROM {table} WHERE key = %s AND expires_at > %s",
    "count": "SELECT count(*) FROM {table} WHERE expires_at > %s",
    "clear": "DELETE FROM {table}",
    "cleanup": (
        "DELETE FROM {table} WHERE key IN (SELECT key FROM {table} WHERE expires_at <= %s "
        "LIMIT %s FOR UPDATE SKIP LOCKED)"
    ),
}


class _Query:
    """One statement and how to read its result: ``"one"`` row, ``"all"`` rows or ``"rowcount"``."""

    __slots__ = ("params", "result", "sql")

    def __init__(self, sql: str, params: Sequence[Any] | Mapping[str, Any], result: str) -> None:
        self.sql = sql
        self.params = params
        self.result = result


class PostgresStore(Store):
    """Sessions in PostgreSQL through psycopg 3; ``pip install 'sessio[postgres]'``.

    ``conninfo`` is a libpq URL or DSN (``postgresql://user@host/db``). The store opens a
    ``psycopg_pool.ConnectionPool`` for the ``_sync`` methods and an ``AsyncConnectionPool`` for
    the async ones, each on first use (the async one binds to the event loop that opens it),
    with ``min_size``/``max_size`` connections; ``timeout`` bounds the wait for a connection
    (then :class:`~sessio.errors.StoreUnavailable`). ``pool_options`` go to both pools. Or pass
    your own ``pool`` / ``async_pool`` (autocommit connections keep each call one round trip);
    the store then leaves them open on :meth:`close`.

    ``schema`` and ``table`` name the table; create it with :meth:`create_schema` (or
    :meth:`create_schema_sync`, or ``sessio migrate``). The layout is in the module docstring.
    """

    def __init__(
        self,
        conninfo: str = "",
        *,
        schema: str = "public",
        table: str = "sessio_sessions",
        pool: Any = None,
        async_pool: Any = None,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = 5.0,
        connect_timeout: int = 5,
        pool_options: Mapping[str, Any] | None = None,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(clock=clock)
        self._psycopg = require("psycopg", "postgres")
        self._pool_module = require("psycopg_pool", "postgres")
        pm = self._pool_module
        # Pool-level failures: no connection to be had, so a retry would only wait again.
        self._pool_failures = (pm.PoolTimeout, pm.PoolClosed, pm.TooManyRequests)
        for what, name in (("schema", schema), ("table", table)):
            if not name.isidentifier():
                raise ConfigurationError(f"{what} must be a plain SQL identifier, got {name!r}")
        self.conninfo = conninfo
        self.schema = schema
        self.table = table
        sql = self._psycopg.sql
        names = {
            "schema": sql.Identifier(schema),
            "table": sql.Identifier(schema, table),
            "expires_index": sql.Identifier(f"{table}_expires_at"),
            "principal_index": sql.Identifier(f"{table}_principal"),
        }
        # Rendered once: identifiers are quoted by psycopg, never interpolated raw.
        self._schema_sql = [sql.SQL(s).format(**names).as_string() for s in _SCHEMA]
        self._sql = {k: sql.SQL(s).format(**names).as_string() for k, s in _SQL.items()}
        self._pool = pool
        self._async_pool = async_pool
        self._owns_pool = pool is None
        self._owns_async_pool = async_pool is None
        self._pool_options: dict[str, Any] = {
            "min_size": min_size,
            "max_size": max_size,
            "timeout": timeout,
            # No server-side prepared statements: psycopg's auto-prepare would cost a second
            # round trip on a statement's 6th run per connection, and breaks behind PgBouncer.
            "kwargs": {
                "autocommit": True,
                "connect_timeout": connect_timeout,
                "prepare_threshold": None,
            },
            "name": "sessio",
            **(pool_options or {}),
        }

    @classmethod
    def from_url(cls, url: str, **options: Any) -> PostgresStore:
        """The store for ``url``; what :func:`~sessio.stores.store_from_url` calls.

        ``schema`` and ``table`` query parameters name the table
        (``postgresql://host/db?schema=app``); the other parameters are libpq's.
        """
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        for name, value in query:
            if name in ("schema", "table"):
                options.setdefault(name, value)
        rest = urlencode([(n, v) for n, v in query if n not in ("schema", "table")])
        return cls(urlunsplit(parts._replace(query=rest)), **options)

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self.schema!r}, table={self.table!r})"

    # -- pools and errors -----------------------------------------------------------------------------

    def _sync_pool(self) -> Any:
        if self._pool is None:
            pool = self._pool_module.ConnectionPool(self.conninfo, open=False, **self._pool_options)
            pool.open(wait=False)
            self._pool = pool
        return self._pool

    async def _get_async_pool(self) -> Any:
        if self._async_pool is None:
            pool = self._pool_module.AsyncConnectionPool(
                self.conninfo, open=False, **self._pool_options
            )
            await pool.open(wait=False)
            self._async_pool = pool
        return self._async_pool

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        errors = self._psycopg.errors
        try:
            yield
        except (errors.UndefinedTable, errors.InvalidSchemaName) as exc:
            raise StoreUnavailable(
                f"table {self.schema}.{self.table} does not exist: run `sessio migrate` or "
                "PostgresStore.create_schema_sync()",
                error=exc.__class__.__name__,
            ) from exc
        except self._psycopg.Error as exc:
            raise StoreUnavailable(
                f"PostgreSQL error: {exc.__class__.__name__}: {exc}", error=exc.__class__.__name__
            ) from exc

    def _run_sync(self, query: _Query) -> Any:
        pool = self._sync_pool()
        with self._errors():
            for attempt in (1, 2):
                try:
                    with pool.connection() as conn:
                        cur = conn.execute(query.sql, query.params)
                        return _result(cur, query.result)
                except self._pool_failures:
                    raise
                except self._psycopg.OperationalError:
                    # A connection that died while idle (server restart): the pool drops it;
                    # check the others and retry once. Every statement here is safe to repeat
                    # (a repeated rotation finds its superseded row gone and writes nothing:
                    # at worst the client is logged out, never a revoked session restored).
                    if attempt == 2:
                        raise
                    pool.check()
        raise AssertionError("unreachable")  # pragma: no cover

    async def _run(self, query: _Query) -> Any:
        pool = await self._get_async_pool()
        with self._errors():
            for attempt in (1, 2):
                try:
                    async with pool.connection() as conn:
                        cur = await conn.execute(query.sql, query.params)
                        if query.result == "one":
                            return await cur.fetchone()
                        if query.result == "all":
                            return await cur.fetchall()
                        return cur.rowcount
                except self._pool_failures:
                    raise
                except self._psycopg.OperationalError:
                    if attempt == 2:
                        raise
                    await pool.check()
        raise AssertionError("unreachable")  # pragma: no cover

    # -- schema ---------------------------------------------------------------------------------------

    def create_schema_sync(self) -> None:
        """Create the schema, table and indexes if they are missing (idempotent)."""
        with self._errors(), self._sync_pool().connection() as conn, conn.transaction():
            for statement in self._schema_sql:
                conn.execute(statement)

    async def create_schema(self) -> None:
        """Async twin of :meth:`create_schema_sync`."""
        pool = await self._get_async_pool()
        with self._errors():
            async with pool.connection() as conn, conn.transaction():
                for statement in self._schema_sql:
                    await conn.execute(statement)

    # -- queries, shared by the twins ----------------------------------------------------------------

    def _q_load(self, key: str) -> _Query:
        return _Query(self._sql["load"], (key, self.clock()), "one")

    def _q_save(self, key: str, write: Write) -> _Query:
        jsonb = self._psycopg.types.json.Jsonb
        params: dict[str, Any] = {
            "key": key,
            "fields": jsonb(dict(write.fields)),
            "expires_at": float(write.expires_at),
            "principal": write.principal,
            "now": self.clock(),
        }
        if not write.replace:
            params["removed"] = sorted(write.removed)
            return _Query(self._sql["delta"], params, "rowcount")
        if write.supersedes is None:
            return _Query(self._sql["create"], params, "rowcount")
        if write.supersedes == key:
            return _Query(self._sql["rewrite"], params, "rowcount")
        params["old"] = write.supersedes
        return _Query(self._sql["rotate"], params, "rowcount")

    def _q_principal(self, principal: str) -> _Query:
        return _Query(self._sql["principal"], (principal, self.clock()), "all")

    def _q_delete_principal(self, principal: str, keep: str | None) -> _Query:
        params = {"principal": principal, "keep": keep, "now": self.clock()}
        return _Query(self._sql["delete_principal"], params, "one")

    def _q_exists(self, key: str) -> _Query:
        return _Query(self._sql["exists"], (key, self.clock()), "one")

    def _q_count(self) -> _Query:
        return _Query(self._sql["count"], (self.clock(),), "one")

    def _q_cleanup(self, now: float) -> _Query:
        return _Query(self._sql["cleanup"], (now, _CLEANUP_BATCH), "rowcount")

    def _record(self, key: str, row: Sequence[Any] | None) -> Record | None:
        if row is None:
            return None
        fields, expires_at, principal = row
        if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
            raise RecordCorrupt("a stored record is not a map of encoded fields")
        return Record(key, fields, float(expires_at), principal)

    def _records(self, rows: list[Sequence[Any]]) -> list[Record]:
        records = []
        for key, *rest in rows:
            try:
                record = self._record(key, rest)
            except RecordCorrupt:
                continue  # listing skips garbage; loading that key reports it
            if record is not None:
                records.append(record)
        return records

    # -- contract: async ------------------------------------------------------------------------------

    async def load(self, key: str) -> Record | None:
        return self._record(key, await self._run(self._q_load(key)))

    async def save(self, key: str, write: Write) -> bool:
        return bool(await self._run(self._q_save(key, write)))

    async def delete(self, key: str) -> bool:
        return bool(await self._run(_Query(self._sql["delete"], (key,), "rowcount")))

    async def principal_records(self, principal: str) -> list[Record]:
        return self._records(await self._run(self._q_principal(principal)))

    async def delete_principal_records(self, principal: str, keep: str | None = None) -> list[str]:
        """See :meth:`delete_principal_records_sync`."""
        removed: list[str] = []
        for _ in range(_REVOKE_ATTEMPTS):
            seen, deleted, keys = await self._run(self._q_delete_principal(principal, keep))
            removed += keys
            if deleted >= seen:
                return removed
        raise _kept_changing(principal)

    async def exists(self, key: str) -> bool:
        return await self._run(self._q_exists(key)) is not None

    async def count(self) -> int:
        return int((await self._run(self._q_count()))[0])

    async def clear(self) -> int:
        return int(await self._run(_Query(self._sql["clear"], (), "rowcount")))

    async def cleanup(self) -> int:
        now, removed = self.clock(), 0
        while True:
            n = int(await self._run(self._q_cleanup(now)))
            removed += n
            if n < _CLEANUP_BATCH:
                return removed

    async def close(self) -> None:
        if self._owns_async_pool and self._async_pool is not None:
            pool, self._async_pool = self._async_pool, None
            await pool.close()
        self.close_sync()

    # -- contract: sync -------------------------------------------------------------------------------

    def load_sync(self, key: str) -> Record | None:
        return self._record(key, self._run_sync(self._q_load(key)))

    def save_sync(self, key: str, write: Write) -> bool:
        return bool(self._run_sync(self._q_save(key, write)))

    def delete_sync(self, key: str) -> bool:
        return bool(self._run_sync(_Query(self._sql["delete"], (key,), "rowcount")))

    def principal_records_sync(self, principal: str) -> list[Record]:
        return self._records(self._run_sync(self._q_principal(principal)))

    def delete_principal_records_sync(self, principal: str, keep: str | None = None) -> list[str]:
        """One ``DELETE`` of the principal's rows, atomic with respect to every save.

        Under READ COMMITTED a statement's snapshot cannot show a row that a concurrent
        rotation inserts, yet the superseded row it deleted is skipped: the rotation would
        escape. The statement counts that case (a row seen but not deleted) and runs again; its
        first run waited for the rotation to commit, so the second one sees the new row. A run
        that deletes every row it sees leaves no rotation that can still apply.
        """
        removed: list[str] = []
        for _ in range(_REVOKE_ATTEMPTS):
            seen, deleted, keys = self._run_sync(self._q_delete_principal(principal, keep))
            removed += keys
            if deleted >= seen:
                return removed
        raise _kept_changing(principal)

    def exists_sync(self, key: str) -> bool:
        return self._run_sync(self._q_exists(key)) is not None

    def count_sync(self) -> int:
        return int(self._run_sync(self._q_count())[0])

    def clear_sync(self) -> int:
        return int(self._run_sync(_Query(self._sql["clear"], (), "rowcount")))

    def cleanup_sync(self) -> int:
        now, removed = self.clock(), 0
        while True:
            # Short batches keep each statement brief, so requests never wait long on a lock.
            n = int(self._run_sync(self._q_cleanup(now)))
            removed += n
            if n < _CLEANUP_BATCH:
                return removed

    def close_sync(self) -> None:
        """Close the sync pool the store opened (an async one needs :meth:`close`)."""
        if self._owns_pool and self._pool is not None:
            pool, self._pool = self._pool, None
            pool.close()


def _kept_changing(principal: str) -> StoreUnavailable:
    return StoreUnavailable(
        f"the sessions of one principal kept changing during {_REVOKE_ATTEMPTS} attempts to "
        "delete them all",
        principal=principal,
    )


def _result(cur: Any, kind: str) -> Any:
    if kind == "one":
        return cur.fetchone()
    if kind == "all":
        return cur.fetchall()
    return cur.rowcount
