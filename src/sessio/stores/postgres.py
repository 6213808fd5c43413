"""PostgresStore: sessions in one PostgreSQL table, each load and each save a single round trip.

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

Every write is one statement (:mod:`sessio.stores._postgres_sql`) whose CTEs check the record
it needs, write, and report the outcome. A delta is ``UPDATE ... SET fields = (fields || $patch)
- $removed`` on the live row: PostgreSQL serialises concurrent commits on the row and re-applies
the merge to the newest version, so parallel requests never lose each other's keys. A create is
``INSERT ... ON CONFLICT DO UPDATE ... WHERE`` the row there is dead. A rotation's ``INSERT``
selects from what its ``DELETE`` of the superseded row returned, so a session revoked meanwhile
(a concurrent ``DELETE`` wins the row lock) is never followed by a new one. A principal limit
adds an advisory lock on the principal, taken first in the same round trip.

Connections are autocommit (a statement is its own transaction, rolled back whole on any error)
and statements are not prepared server-side (preparing costs a round trip of its own; these plan
in microseconds). How an outage is bounded is in :mod:`sessio.stores._postgres_pool` and
:mod:`sessio.stores._postgres_deadline`: a frozen
server costs at most ``socket_timeout`` per statement (``connect_timeout`` for a new
connection), a stopped one fails at once, a restarted one serves the next request.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigurationError, StoreUnavailable, ValueNotSerializable, require
from . import _postgres_queries as rows
from ._postgres_pool import Connections
from ._postgres_queries import Queries, Query
from .base import Clock, Page, Record, Saved, Store, Write

__all__ = ["PostgresStore"]

#: Dead rows per cleanup statement: short statements hold few locks for little time.
_CLEANUP_BATCH = 1000

#: Rows per statement of the pass that removes garbage (rows not a map of text fields).
_GARBAGE_CHUNK = 10_000


class PostgresStore(Store):
    """Sessions in PostgreSQL through psycopg 3; ``pip install 'sessio[postgres]'``.

    ``conninfo`` is a libpq URL or DSN (``postgresql://user@host/db``). The store keeps up to
    ``max_size`` connections for the ``_sync`` methods and as many for the async ones (bound to
    the event loop that first uses them); ``timeout`` bounds the wait for a free one when all are
    busy. ``socket_timeout`` bounds every statement (then
    :class:`~sessio.errors.StoreUnavailable`): the server is asked to cancel at 90% of it
    (``statement_timeout``), and the socket is cut at 100% if it did not answer.
    ``connect_timeout`` bounds a new connection (default: conninfo's, else 2 s; libpq counts
    whole seconds, at least 2, on the sync path). Parameters in ``conninfo`` win over the
    store's own (an ``options`` there replaces the ``statement_timeout`` setting), and
    ``connect_options`` (to ``psycopg.connect``) over both; a ``None`` there sends nothing
    (behind PgBouncer, which refuses ``options``: ``connect_options={"options": None}``).
    ``configure`` is called with each new connection (and awaited if it returns an awaitable).

    Or pass your own ``psycopg_pool`` ``pool`` / ``async_pool`` of autocommit connections: the
    socket deadline still applies, the pool's own waiting and reconnecting rules do too, and
    the store leaves them open on :meth:`close`.

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
        max_size: int = 10,
        timeout: float = 2.0,
        socket_timeout: float = 2.0,
        connect_timeout: float | None = None,
        connect_options: Mapping[str, Any] | None = None,
        configure: Callable[[Any], object] | None = None,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(clock=clock)
        self._psycopg = require("psycopg", "postgres")
        for what, name in (("schema", schema), ("table", table)):
            if not name.isidentifier():
                raise ConfigurationError(f"{what} must be a plain SQL identifier, got {name!r}")
        try:
            given = self._psycopg.conninfo.conninfo_to_dict(conninfo)
        except self._psycopg.Error as exc:
            raise ConfigurationError(f"conninfo cannot be parsed: {exc}") from exc
        if connect_timeout is None:
            connect_timeout = float(given.get("connect_timeout") or 2.0)
        timeouts = {"timeout": timeout, "socket_timeout": socket_timeout}
        for what, value in {**timeouts, "connect_timeout": connect_timeout}.items():
            if not (math.isfinite(value) and value > 0):
                raise ConfigurationError(f"{what} must be a positive number of seconds")
        if max_size < 1:
            raise ConfigurationError(f"max_size must be at least 1, got {max_size}")
        self.conninfo = conninfo
        self.schema = schema
        self.table = table
        self.socket_timeout = socket_timeout
        self.connect_timeout = connect_timeout
        self._q = Queries(self._psycopg, schema, table)
        # The store's settings, then what conninfo says, then connect_options, each winning.
        defaults: dict[str, Any] = {
            "options": f"-c statement_timeout={max(1, int(socket_timeout * 900))}",
            # A silent network: unacknowledged data fails the socket; idle ones are probed.
            "tcp_user_timeout": max(1, int(socket_timeout * 1000)),
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 5,
            "keepalives_count": 3,
        }
        kwargs: dict[str, Any] = {
            **{name: value for name, value in defaults.items() if name not in given},
            "autocommit": True,
            # psycopg's auto-prepare would cost a second round trip on a statement's 6th run per
            # connection, and breaks behind PgBouncer.
            "prepare_threshold": None,
            "connect_timeout": max(2, math.ceil(connect_timeout)),
            **(connect_options or {}),
        }
        self._connections = Connections(
            self._psycopg,
            conninfo,
            kwargs,
            max_size=max_size,
            timeout=timeout,
            socket_timeout=socket_timeout,
            connect_timeout=connect_timeout,
            configure=configure,
            pool=pool,
            async_pool=async_pool,
        )

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

    # -- errors and statements ----------------------------------------------------------------

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """psycopg's errors as sessio's: content the server refuses is a data error, the rest
        an outage. Nothing is left half-done: each statement is its own transaction."""
        errors = self._psycopg.errors
        try:
            yield
        except UnicodeEncodeError as exc:
            raise ValueNotSerializable(
                "a value is not valid text (a lone surrogate?): nothing was written",
                error=exc.__class__.__name__,
            ) from exc
        except (self._psycopg.DataError, errors.ProgramLimitExceeded) as exc:
            # The message would quote the value: keep only its class and SQLSTATE.
            raise ValueNotSerializable(
                f"PostgreSQL refused a value ({exc.__class__.__name__}, "
                f"SQLSTATE {exc.sqlstate or 'none'}): nothing was written",
                error=exc.__class__.__name__,
                sqlstate=exc.sqlstate,
            ) from exc
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

    def _run_sync(self, query: Query) -> Any:
        with self._errors(), self._connections.sync() as conn:
            if query.locked:
                cur = self._psycopg.ClientCursor(conn)
                cur.execute(query.sql, query.params)
                cur.nextset()
            else:
                cur = conn.execute(query.sql, query.params)
            return rows.result(cur, query.result)

    async def _run(self, query: Query) -> Any:
        with self._errors():
            async with self._connections.async_() as conn:
                if query.locked:
                    cur = self._psycopg.AsyncClientCursor(conn)
                    await cur.execute(query.sql, query.params)
                    cur.nextset()
                else:
                    cur = await conn.execute(query.sql, query.params)
                return await rows.result_async(cur, query.result)

    # -- schema ---------------------------------------------------------------------------------

    def create_schema_sync(self) -> None:
        """Create the schema, table and indexes if they are missing (idempotent)."""
        with self._errors(), self._connections.sync() as conn, conn.transaction():
            for statement in self._q.schema:
                conn.execute(statement)

    async def create_schema(self) -> None:
        """Async twin of :meth:`create_schema_sync`."""
        with self._errors():
            async with self._connections.async_() as conn, conn.transaction():
                for statement in self._q.schema:
                    await conn.execute(statement)

    # -- contract: async ------------------------------------------------------------------------

    async def load(self, key: str) -> Record | None:
        return rows.record(key, await self._run(self._q("load", "one", self.clock(), key=key)))

    async def save(self, key: str, write: Write) -> Saved:
        return rows.saved(await self._run(self._q.save(key, write, self.clock())))

    async def delete(self, key: str) -> bool:
        return bool(await self._run(self._q("delete", "rowcount", self.clock(), key=key)))

    async def principal_records(self, principal: str) -> list[Record]:
        query = self._q("principal", "all", self.clock(), principal=principal)
        return rows.records(await self._run(query))

    async def delete_principal_records(self, principal: str, keep: str | None = None) -> list[str]:
        """See :meth:`delete_principal_records_sync`."""
        removed: list[str] = []
        for locked in (False, True):
            query = self._q.delete_principal(principal, keep, self.clock(), locked=locked)
            seen, deleted, keys = await self._run(query)
            removed += keys
            if deleted >= seen:
                return removed
        raise _kept_changing(principal)  # pragma: no cover - the table lock lets nothing past

    async def exists(self, key: str) -> bool:
        return await self._run(self._q("exists", "one", self.clock(), key=key)) is not None

    async def count(self) -> int:
        return int((await self._run(self._q("count", "one", self.clock())))[0])

    async def clear(self) -> int:
        return int(await self._run(self._q("clear", "rowcount", self.clock())))

    async def cleanup(self) -> int:
        now, removed = self.clock(), 0
        while True:
            n = int(await self._run(self._q.cleanup(now, _CLEANUP_BATCH)))
            removed += n
            if n < _CLEANUP_BATCH:
                break
        after: str | None = ""
        while after is not None:
            query = self._q("cleanup_garbage", "one", now, after=after, chunk=_GARBAGE_CHUNK)
            after, n = await self._run(query)
            removed += n
        return removed

    async def page(self, cursor: str | None = None, limit: int = 100) -> Page:
        return rows.page(await self._run(self._q.page(cursor, limit, self.clock())), limit)

    async def close(self) -> None:
        await self._connections.close()

    # -- contract: sync -------------------------------------------------------------------------

    def load_sync(self, key: str) -> Record | None:
        return rows.record(key, self._run_sync(self._q("load", "one", self.clock(), key=key)))

    def save_sync(self, key: str, write: Write) -> Saved:
        return rows.saved(self._run_sync(self._q.save(key, write, self.clock())))

    def delete_sync(self, key: str) -> bool:
        return bool(self._run_sync(self._q("delete", "rowcount", self.clock(), key=key)))

    def principal_records_sync(self, principal: str) -> list[Record]:
        query = self._q("principal", "all", self.clock(), principal=principal)
        return rows.records(self._run_sync(query))

    def delete_principal_records_sync(self, principal: str, keep: str | None = None) -> list[str]:
        """One ``DELETE`` of the principal's rows, atomic with respect to every save.

        Under READ COMMITTED a statement's snapshot cannot show a row that a concurrent
        rotation inserts, yet the superseded row it deleted is skipped: the rotation would
        escape. The statement counts that case (a row seen but not deleted) and, only then, runs
        again behind a table lock that waits for the writes in flight and holds new ones back for
        the one indexed DELETE: rotations as fast as they can go cannot outpace it (a retry loop
        without the lock could be outpaced forever). A run that deletes every row it sees leaves
        no rotation that can still apply.
        """
        removed: list[str] = []
        for locked in (False, True):
            query = self._q.delete_principal(principal, keep, self.clock(), locked=locked)
            seen, deleted, keys = self._run_sync(query)
            removed += keys
            if deleted >= seen:
                return removed
        raise _kept_changing(principal)  # pragma: no cover - the table lock lets nothing past

    def exists_sync(self, key: str) -> bool:
        return self._run_sync(self._q("exists", "one", self.clock(), key=key)) is not None

    def count_sync(self) -> int:
        return int(self._run_sync(self._q("count", "one", self.clock()))[0])

    def clear_sync(self) -> int:
        return int(self._run_sync(self._q("clear", "rowcount", self.clock())))

    def cleanup_sync(self) -> int:
        now, removed = self.clock(), 0
        while True:
            # Short batches keep each statement brief, so requests never wait long on a lock.
            n = int(self._run_sync(self._q.cleanup(now, _CLEANUP_BATCH)))
            removed += n
            if n < _CLEANUP_BATCH:
                break
        after: str | None = ""
        while after is not None:
            query = self._q("cleanup_garbage", "one", now, after=after, chunk=_GARBAGE_CHUNK)
            after, n = self._run_sync(query)
            removed += n
        return removed

    def page_sync(self, cursor: str | None = None, limit: int = 100) -> Page:
        return rows.page(self._run_sync(self._q.page(cursor, limit, self.clock())), limit)

    def close_sync(self) -> None:
        """Close the sync connections (async ones need :meth:`close`); a later call reconnects."""
        self._connections.close_sync()


def _kept_changing(principal: str) -> StoreUnavailable:
    return StoreUnavailable(
        "the sessions of one principal kept changing while the table was locked to delete them",
        principal=principal,
    )
