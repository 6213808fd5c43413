"""What PostgresStore sends and how it reads the answers, without I/O (the twins share it)."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ConfigurationError, RecordCorrupt, ValueNotSerializable
from . import _postgres_sql as q
from .base import Create, Page, Record, Rewrite, Rotate, Saved, SaveOutcome, Update, Write

__all__ = ["Queries", "Query", "page", "record", "records", "result", "result_async", "saved"]

_KINDS: dict[type, q.WriteKind] = {
    Create: "create",
    Update: "update",
    Rotate: "rotate",
    Rewrite: "rewrite",
}


class Query:
    """One statement, its parameters, how to read its result (``"one"``, ``"all"``,
    ``"rowcount"``) and whether it is a lock then a statement (client-side bound, one message)."""

    __slots__ = ("locked", "params", "result", "sql")

    def __init__(
        self, sql: str, params: Mapping[str, Any], result: str, *, locked: bool = False
    ) -> None:
        self.sql = sql
        self.params = params
        self.result = result
        self.locked = locked


class Queries:
    """Every statement of one table, rendered once with its identifiers quoted by psycopg."""

    def __init__(self, psycopg: Any, schema: str, table: str) -> None:
        sql = psycopg.sql
        self._jsonb = psycopg.types.json.Jsonb
        names = {
            "schema": sql.Identifier(schema),
            "table": sql.Identifier(schema, table),
            "expires_index": sql.Identifier(f"{table}_expires_at"),
            "principal_index": sql.Identifier(f"{table}_principal"),
        }

        def render(text: str) -> str:  # never an identifier interpolated raw
            return str(sql.SQL(text).format(**names).as_string())

        self.schema = [render(s) for s in q.SCHEMA]
        self._sql = {k: render(s) for k, s in q.QUERIES.items()}
        self._delete_principal_locked = render(q.LOCK_TABLE + q.QUERIES["delete_principal"])
        self._writes = {
            (kind, limited, tomb): render(q.write_statement(kind, limited=limited, tombstone=tomb))
            for kind in _KINDS.values()
            for limited in (False, True)
            for tomb in ((False, True) if kind == "rotate" else (False,))
        }
        self._lock_space = f"{schema}.{table}".encode()

    def __call__(self, name: str, result: str, now: float, **params: Any) -> Query:
        """The statement ``name`` of :data:`~sessio.stores._postgres_sql.QUERIES`."""
        return Query(self._sql[name], {"now": now, **params}, result)

    def delete_principal(
        self, principal: str, keep: str | None, now: float, *, locked: bool
    ) -> Query:
        """Every row of ``principal`` but ``keep``; ``locked`` first takes the table lock."""
        params = {"now": now, "principal": principal, "keep": keep}
        if locked:
            return Query(self._delete_principal_locked, params, "one", locked=True)
        return Query(self._sql["delete_principal"], params, "one")

    def cleanup(self, now: float, batch: int) -> Query:
        """One batch of dead rows."""
        return Query(self._sql["cleanup"], {"now": now, "batch": batch}, "rowcount")

    def page(self, cursor: str | None, limit: int, now: float) -> Query:
        """The page after ``cursor``."""
        if limit < 1:
            raise ConfigurationError(f"a page holds at least 1 record, got limit={limit}")
        return self("page", "all", now, after=cursor or "", limit=limit)

    def save(self, key: str, write: Write, now: float) -> Query:
        """The one statement (a lock first, with a principal limit) that applies ``write``."""
        params: dict[str, Any] = {
            "key": key,
            "fields": self._jsonb(dict(write.fields)),
            "expires_at": _finite(write.expires_at),
            "principal": write.principal,
            "now": now,
        }
        kind = _KINDS[type(write)]
        tombstone = False
        if isinstance(write, Update):
            params["removed"] = sorted(write.removed)
        elif isinstance(write, Rotate):
            params["old"] = write.supersedes
            if write.tombstone is not None:
                tombstone = True
                params["t_key"] = write.tombstone.key
                params["t_fields"] = self._jsonb(dict(write.tombstone.fields))
                params["t_expires_at"] = _finite(write.tombstone.expires_at)
        limit, principal = write.limit, write.principal
        limited = limit is not None and principal is not None
        if limit is not None and principal is not None:  # a limit counts a principal's records
            params["max"] = limit.max_sessions
            params["evict"] = limit.on_limit == "evict_oldest"
            params["lock"] = self._lock_id(principal)
        return Query(self._writes[(kind, limited, tombstone)], params, "one", locked=limited)

    def _lock_id(self, principal: str) -> int:
        """The advisory lock of one principal of this table (a collision only serialises)."""
        name = self._lock_space + b"\0" + principal.encode("utf-8", "surrogatepass")
        digest = hashlib.blake2b(name, digest_size=8).digest()
        return int.from_bytes(digest, "big", signed=True)


def _finite(expires_at: float) -> float:
    """An expiry the table can hold: NaN or infinity would make a row dead on arrival (or, in
    a careless query, immortal), so such a write is refused as a data error."""
    value = float(expires_at)
    if not math.isfinite(value):
        raise ValueNotSerializable(f"expires_at must be a finite time, got {value!r}")
    return value


def record(key: str, row: Sequence[Any] | None) -> Record | None:
    """The record in a ``(fields, expires_at, principal)`` row; garbage is RecordCorrupt."""
    if row is None:
        return None
    fields, expires_at, principal = row
    if not isinstance(fields, dict) or not all(isinstance(v, str) for v in fields.values()):
        raise RecordCorrupt("a stored record is not a map of encoded fields")
    return Record(key, fields, float(expires_at), principal)


def records(rows: list[Sequence[Any]]) -> list[Record]:
    """The records in ``(key, fields, expires_at, principal)`` rows, garbage left out."""
    found = []
    for key, *rest in rows:
        try:
            decoded = record(key, rest)
        except RecordCorrupt:
            continue  # listing skips garbage; loading that key reports it
        if decoded is not None:
            found.append(decoded)
    return found


def page(rows: list[Sequence[Any]], limit: int) -> Page:
    """A page of rows, its cursor the last key read (garbage included, so a skipped row ends
    no walk early)."""
    cursor = str(rows[-1][0]) if len(rows) == limit else None
    return Page(records(rows), cursor)


def saved(row: Sequence[Any]) -> Saved:
    """A write statement's ``(outcome, evicted)`` row."""
    outcome, evicted = row
    return Saved(SaveOutcome(outcome), tuple(evicted))


def result(cur: Any, kind: str) -> Any:
    """What a cursor holds, read as the query said."""
    if kind == "one":
        return cur.fetchone()
    if kind == "all":
        return cur.fetchall()
    return cur.rowcount


async def result_async(cur: Any, kind: str) -> Any:
    """What an async cursor holds (psycopg has read it all already: no I/O happens here)."""
    if kind == "one":
        return await cur.fetchone()
    if kind == "all":
        return await cur.fetchall()
    return cur.rowcount
