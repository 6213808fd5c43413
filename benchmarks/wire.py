"""What each request costs on the wire, counted by the servers themselves.

Redis: ``INFO stats`` deltas. ``total_reads_processed`` counts the server's socket read events,
one per request it receives from a client that waits for each answer (a pipeline or a MULTI
block sent in one write is one read), so it is the number of *round trips*;
``total_commands_processed`` and ``INFO commandstats`` say which commands ran, and
``total_net_input_bytes`` how many bytes the client sent. PostgreSQL: ``pg_stat_statements``
calls (statements), ``pg_stat_database`` transactions, and WAL bytes written. Cookies: the
``Set-Cookie`` bytes per response and the ``Cookie`` bytes each request carries.

Counting runs one contender at a time on the run's private servers (on a shared server other
clients would be counted too; the results say when that was the case).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .apps import SCENARIOS
from .contenders import Built, Contender
from .inprocess import make_runner

__all__ = ["Wire", "count_wire"]


@dataclasses.dataclass
class Wire:
    """Per-request wire costs of one contender in one scenario (``None``: not applicable)."""

    name: str
    scenario: str
    round_trips: float | None = None
    commands: float | None = None
    command_mix: str = ""
    store_bytes_in: float | None = None
    wal_bytes: float | None = None
    set_cookie_bytes: float = 0.0
    cookie_bytes: float = 0.0


class _RedisCounter:
    def __init__(self, url: str) -> None:
        import redis

        self.client = redis.Redis.from_url(url)

    def snapshot(self) -> dict[str, Any]:
        stats = self.client.info("stats")
        commands = self.client.info("commandstats")
        return {
            "reads": stats["total_reads_processed"],
            "commands": stats["total_commands_processed"],
            "bytes_in": stats["total_net_input_bytes"],
            "mix": {k.removeprefix("cmdstat_"): v["calls"] for k, v in commands.items()},
        }

    def close(self) -> None:
        self.client.close()


class _PgCounter:
    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        self.available = True
        try:
            self.conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            self.conn.execute("SELECT pg_stat_statements_reset()")
        except psycopg.Error:
            self.available = False

    def snapshot(self) -> dict[str, Any]:
        row = self.conn.execute(
            "SELECT pg_current_wal_insert_lsn(), "
            "(SELECT xact_commit + xact_rollback FROM pg_stat_database "
            " WHERE datname = current_database())"
        ).fetchone()
        if row is None:
            raise RuntimeError("pg_current_wal_insert_lsn() returned nothing")
        statements = 0
        mix: dict[str, int] = {}
        if self.available:
            for query, calls in self.conn.execute(
                "SELECT query, calls FROM pg_stat_statements "
                "WHERE query NOT ILIKE '%pg_stat%' AND query NOT ILIKE '%pg_current_wal%'"
            ).fetchall():
                statements += calls
                verb = query.split(None, 1)[0].upper() if query.strip() else "?"
                mix[verb] = mix.get(verb, 0) + calls
        return {"lsn": row[0], "xacts": row[1], "statements": statements, "mix": mix}

    def wal_bytes(self, before: Any, after: Any) -> int:
        row = self.conn.execute("SELECT pg_wal_lsn_diff(%s, %s)", (after, before)).fetchone()
        return 0 if row is None else int(row[0])

    def close(self) -> None:
        self.conn.close()


def _mix(before: dict[str, int], after: dict[str, int], n: int, skip: set[str]) -> str:
    parts = []
    for name in sorted(after):
        delta = after[name] - before.get(name, 0)
        if delta > 0 and name not in skip:
            parts.append(f"{name.upper()} {delta / n:.2g}")
    return ", ".join(parts)


async def count_wire(
    contenders: list[Contender],
    built: dict[str, Built],
    *,
    redis_url: str | None,
    postgres_url: str | None,
    requests: int,
    clients: int,
    failures: dict[str, str],
) -> dict[tuple[str, str], Wire]:
    """Count round trips, commands and bytes per request for every built contender."""
    redis_counter = _RedisCounter(redis_url) if redis_url else None
    pg_counter = _PgCounter(postgres_url) if postgres_url else None
    out: dict[tuple[str, str], Wire] = {}
    try:
        for contender in contenders:
            if contender.name not in built or contender.name in failures:
                continue
            scenarios = ("read",) if contender.kind == "raw" else SCENARIOS
            for scenario in scenarios:
                if scenario in contender.refuses:
                    continue
                try:
                    runner = await make_runner(contender, built[contender.name], scenario, clients)
                except Exception as exc:
                    failures[contender.name] = f"failed seeding {scenario}: {exc}"
                    break
                for client in runner.clients:
                    client.set_cookie_bytes = client.responses = 0
                server = built[contender.name].server
                counter: Any = redis_counter if server == "redis" else None
                if server == "postgres":
                    counter = pg_counter
                zero = None
                if counter is not None:
                    # Two back-to-back snapshots measure what a snapshot itself adds.
                    a, b = counter.snapshot(), counter.snapshot()
                    zero = (a, b)
                    before = counter.snapshot()
                await runner.batch(requests)
                wire = Wire(contender.name, scenario)
                if counter is not None and zero is not None:
                    after = counter.snapshot()
                    a, b = zero
                    if counter is redis_counter:
                        base_reads = b["reads"] - a["reads"]
                        base_cmds = b["commands"] - a["commands"]
                        base_bytes = b["bytes_in"] - a["bytes_in"]
                        wire.round_trips = (
                            after["reads"] - before["reads"] - base_reads
                        ) / requests
                        wire.commands = (
                            after["commands"] - before["commands"] - base_cmds
                        ) / requests
                        wire.store_bytes_in = (
                            after["bytes_in"] - before["bytes_in"] - base_bytes
                        ) / requests
                        wire.command_mix = _mix(before["mix"], after["mix"], requests, {"info"})
                    else:
                        if counter.available:  # without pg_stat_statements, no statement count
                            statements = after["statements"] - before["statements"]
                            wire.commands = statements / requests
                            wire.round_trips = wire.commands
                        wire.wal_bytes = counter.wal_bytes(before["lsn"], after["lsn"]) / requests
                        wire.command_mix = _mix(before["mix"], after["mix"], requests, set())
                if contender.kind != "raw":
                    responses = sum(c.responses for c in runner.clients) or 1
                    wire.set_cookie_bytes = (
                        sum(c.set_cookie_bytes for c in runner.clients) / responses
                    )
                    wire.cookie_bytes = sum(
                        len(c.cookie_header() or "") for c in runner.clients
                    ) / len(runner.clients)
                out[(contender.name, scenario)] = wire
    finally:
        if redis_counter is not None:
            redis_counter.close()
        if pg_counter is not None:
            pg_counter.close()
    return out
