"""The SQL text of :class:`~sessio.stores.postgres.PostgresStore`: its table and every statement.

Each write is one statement whose data-modifying CTEs check, write and report in one step, and
whose last ``SELECT`` returns ``(outcome, evicted keys)``. A record is *live* when
``expires_at > now AND expires_at < 'Infinity'``: the upper bound keeps a NaN expiry (which
PostgreSQL sorts above every number) or an infinite one from making a row immortal; such rows
are never loaded, listed or counted, and :meth:`cleanup` removes them like expired ones.

A write with a principal limit runs after ``pg_advisory_xact_lock`` on the principal, in the
same implicit transaction (two statements sent as one simple query, one round trip): the lock
is taken before the write's statement begins, so its snapshot sees every row a concurrent
login for that principal committed, and N parallel logins cannot all count the same N - 1.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["LOCK", "LOCK_TABLE", "QUERIES", "SCHEMA", "WriteKind", "write_statement"]

WriteKind = Literal["create", "update", "rotate", "rewrite"]

SCHEMA = [
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


def _live(alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return f"{prefix}expires_at > %(now)s AND {prefix}expires_at < 'Infinity'"


#: Not live: expired, NaN or infinite (NaN >= 'Infinity' holds in PostgreSQL's ordering).
_DEAD = "(expires_at <= %(now)s OR expires_at >= 'Infinity')"

#: A row whose fields are not a JSON object of strings: it can only come from outside.
_GARBAGE = (
    "(jsonb_typeof(fields) <> 'object' "
    """OR jsonb_path_exists(fields, 'strict $.* ? (@.type() != "string")'))"""
)

_ROW = "key, fields, expires_at, principal"

QUERIES = {
    "load": f"SELECT fields, expires_at, principal FROM {{table}} WHERE key = %(key)s AND {_live()}",
    "delete": "DELETE FROM {table} WHERE key = %(key)s",
    "principal": f"SELECT {_ROW} FROM {{table}} WHERE principal = %(principal)s AND {_live()}",
    # One statement, its CTEs under one snapshot: ``seen`` counts the rows the snapshot shows,
    # ``gone`` is what the DELETE removed. Fewer removed than seen means a concurrent write took
    # a row first (a rotation, say, whose new row the snapshot cannot show): run it again.
    "delete_principal": (
        "WITH seen AS (SELECT count(*) AS n FROM {table} WHERE principal = %(principal)s "
        "AND key IS DISTINCT FROM %(keep)s::text), "
        "gone AS (DELETE FROM {table} WHERE principal = %(principal)s "
        f"AND key IS DISTINCT FROM %(keep)s::text RETURNING key, ({_live()}) AS live) "
        "SELECT (SELECT n FROM seen), (SELECT count(*) FROM gone), "
        "COALESCE((SELECT array_agg(key) FROM gone WHERE live), '{{}}')"
    ),
    "exists": f"SELECT 1 FROM {{table}} WHERE key = %(key)s AND {_live()}",
    "count": f"SELECT count(*) FROM {{table}} WHERE {_live()}",
    "clear": "DELETE FROM {table}",
    # Keyset pagination: the primary key index walks in key order from the last key seen.
    "page": (
        f"SELECT {_ROW} FROM {{table}} WHERE key > %(after)s AND {_live()} "
        "ORDER BY key LIMIT %(limit)s"
    ),
    # Batches through the expiry index, never holding many locks nor waiting for another cleanup.
    "cleanup": (
        "DELETE FROM {table} WHERE key IN (SELECT key FROM {table} "
        f"WHERE {_DEAD} LIMIT %(batch)s FOR UPDATE SKIP LOCKED)"
    ),
    # Garbage has no index to find it by: a pass over the table in key order, one chunk per
    # statement so none runs long; returns the chunk's last key (NULL at the end) and the count.
    "cleanup_garbage": (
        f"WITH chunk AS (SELECT key, {_GARBAGE} AS bad FROM {{table}} WHERE key > %(after)s "
        "ORDER BY key LIMIT %(chunk)s), "
        "gone AS (DELETE FROM {table} WHERE key IN (SELECT key FROM chunk WHERE bad) "
        "RETURNING 1) "
        "SELECT (SELECT max(key) FROM chunk), (SELECT count(*) FROM gone)"
    ),
}

#: The first statement of a limited write (see the module docstring).
LOCK = "SELECT pg_advisory_xact_lock(%(lock)s::bigint); "

#: The first statement of a ``delete_principal`` that lost the race to rotations: it waits for
#: the writes in flight and holds new ones back until the DELETE commits (SHARE ROW EXCLUSIVE
#: conflicts with every writer and with itself, never with readers), so its snapshot shows every
#: row of the principal and nothing can rotate past it.
LOCK_TABLE = "LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE; "

_NEW_ROW = "%(key)s::text, %(fields)s::jsonb, %(expires_at)s::float8, %(principal)s::text"
_TOMBSTONE_ROW = "%(t_key)s::text, %(t_fields)s::jsonb, %(t_expires_at)s::float8, NULL::text"
_REPLACE = (
    "ON CONFLICT (key) DO UPDATE SET fields = EXCLUDED.fields, "
    "expires_at = EXCLUDED.expires_at, principal = EXCLUDED.principal"
)

# With a limit, ``target``: whether the record the write needs (or, for a create, must not
# find) is live.
_TARGET: dict[WriteKind, str] = {
    "create": "SELECT NOT EXISTS (SELECT 1 FROM {table} WHERE key = %(key)s AND " + _live() + ")",
    "update": "SELECT EXISTS (SELECT 1 FROM {table} WHERE key = %(key)s AND " + _live() + ")",
    "rewrite": "SELECT EXISTS (SELECT 1 FROM {table} WHERE key = %(key)s AND " + _live() + ")",
    "rotate": "SELECT EXISTS (SELECT 1 FROM {table} WHERE key = %(old)s AND " + _live() + ")",
}

_NOT_APPLIED: dict[WriteKind, str] = {
    "create": "exists",
    "update": "missing",
    "rewrite": "missing",
    "rotate": "missing",
}


def _write_cte(kind: WriteKind, tombstone: bool, gate: str) -> str:
    """The CTE ``w``: the write itself, applied only when ``gate`` holds, returning its keys."""
    if kind == "create":
        # An expired row under the key may be replaced; a live one never.
        return (
            f"w AS (INSERT INTO {{table}} AS cur ({_ROW}) SELECT {_NEW_ROW} "
            f"WHERE {gate} {_REPLACE} WHERE NOT ({_live('cur')}) RETURNING key)"
        )
    if kind == "update":
        return (
            "w AS (UPDATE {table} SET fields = (fields || %(fields)s::jsonb) - %(removed)s::text[], "
            "expires_at = %(expires_at)s::float8, principal = %(principal)s::text "
            f"WHERE key = %(key)s AND {_live()} AND {gate} RETURNING key)"
        )
    if kind == "rewrite":
        return (
            "w AS (UPDATE {table} SET fields = %(fields)s::jsonb, "
            "expires_at = %(expires_at)s::float8, principal = %(principal)s::text "
            f"WHERE key = %(key)s AND {_live()} AND {gate} RETURNING key)"
        )
    # A rotation's rows are selected from what ``gone`` deleted: no live superseded row (or one
    # a concurrent DELETE took first), nothing inserted.
    rows = f"SELECT {_NEW_ROW}"
    if tombstone:
        rows += f" UNION ALL SELECT {_TOMBSTONE_ROW}"
    return (
        f"gone AS (DELETE FROM {{table}} WHERE key = %(old)s AND {_live()} AND {gate} "
        "RETURNING 1), "
        f"w AS (INSERT INTO {{table}} ({_ROW}) SELECT r.* FROM gone, ({rows}) AS r {_REPLACE} "
        "RETURNING key)"
    )


def write_statement(kind: WriteKind, *, limited: bool, tombstone: bool = False) -> str:
    """The statement for one kind of write (with ``limited``: the principal limit's CTEs too).

    Its one row is ``(outcome, evicted)``: ``applied``, ``missing``, ``exists`` or ``rejected``,
    and the keys a ``"evict_oldest"`` limit removed, oldest first.
    """
    parts: list[str] = []
    if limited:
        exclude = "AND key <> %(key)s" + (" AND key <> %(old)s" if kind == "rotate" else "")
        parts += [
            # Whether the write could apply: it tells "rejected" from "missing" / "exists".
            f"target AS ({_TARGET[kind]} AS ok)",
            f"others AS (SELECT key, expires_at FROM {{table}} WHERE principal = %(principal)s "
            f"AND {_live()} {exclude})",
            "excess AS (SELECT count(*) - %(max)s + 1 AS n FROM others)",
            "allowed AS (SELECT (SELECT ok FROM target) AND "
            "(%(evict)s OR (SELECT n FROM excess) <= 0) AS ok)",
            _write_cte(kind, tombstone, "(SELECT ok FROM allowed)"),
            # Evict only once the write applied, the earliest expiry first (the least active).
            "victims AS (DELETE FROM {table} WHERE key IN (SELECT key FROM others "
            "ORDER BY expires_at, key LIMIT GREATEST((SELECT n FROM excess), 0)) "
            "AND EXISTS (SELECT 1 FROM w) RETURNING key, expires_at)",
        ]
        rejected = (
            f"WHEN NOT (SELECT ok FROM target) THEN '{_NOT_APPLIED[kind]}' "
            "WHEN NOT (SELECT ok FROM allowed) THEN 'rejected' "
        )
        evicted = "COALESCE((SELECT array_agg(key ORDER BY expires_at, key) FROM victims), '{{}}')"
    else:
        # Without a limit, a write that did not apply found no record to apply to.
        parts.append(_write_cte(kind, tombstone, "TRUE"))
        rejected = ""
        evicted = "'{{}}'::text[]"
    outcome = (
        f"CASE WHEN EXISTS (SELECT 1 FROM w) THEN 'applied' {rejected}"
        f"ELSE '{_NOT_APPLIED[kind]}' END"
    )
    statement = "WITH " + ", ".join(parts) + f" SELECT {outcome}, {evicted}"
    return (LOCK + statement) if limited else statement
