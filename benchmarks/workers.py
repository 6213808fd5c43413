"""Over HTTP with two worker processes: uvicorn (ASGI) or gunicorn sync workers (Flask), driven by wrk.

Two processes share one store, as in production: sessio on SQLite (one database file), Redis and
PostgreSQL, against starsessions-Redis, Starlette's cookie session and Flask-Session-Redis. Two
mixes per contender: ``read`` (9 reads : 1 write) and ``login`` (1 login, which issues a new
session ID : 1 write : 3 reads). Each run records requests/second, p50/p99 latency, wrk's errors,
the store's own counters over the run (Redis ``INFO commandstats``, PostgreSQL transactions and
``pg_stat_statements`` calls) and the load average when it ended. Only 127.0.0.1 is addressed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .processes import free_port, stop, wait_for_port
from .services import Services

__all__ = ["MIXES", "WORKER_CONTENDERS", "WorkerRun", "render_workers", "run_workers"]

HERE = Path(__file__).resolve().parent
MIXES = ("read", "login")
WORKERS = 2

#: (contender, server) in the order of the table; the quick form runs the first of each kind.
WORKER_CONTENDERS = (
    ("sessio sqlite (asgi)", "uvicorn"),
    ("starsessions RedisStore", "uvicorn"),
    ("Flask-Session Redis", "gunicorn"),
    ("sessio redis (asgi)", "uvicorn"),
    ("sessio postgres (asgi)", "uvicorn"),
    ("Starlette SessionMiddleware", "uvicorn"),
    ("sessio sqlite (flask)", "gunicorn"),
    ("sessio redis (flask)", "gunicorn"),
)
QUICK_CONTENDERS = 3


@dataclasses.dataclass
class WorkerRun:
    """One wrk run against one contender served by two workers."""

    name: str
    server: str
    mix: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    #: Store work per request: Redis commands by name, or PostgreSQL "xact"/"statements".
    store_ops: dict[str, float] = dataclasses.field(default_factory=dict)
    load: str = ""


def _command(name: str, server: str, port: int) -> list[str]:
    if server == "uvicorn":
        return [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "benchmarks.worker_app:asgi",
            "--workers",
            str(WORKERS),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ]
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(WORKERS),
        "--worker-class",
        "sync",
        "--bind",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        "benchmarks.worker_app:wsgi()",
    ]


@contextlib.contextmanager
def _serve(
    name: str, server: str, services: Services, data: Path
) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    env = dict(os.environ)
    env.update(
        SESSIO_BENCH_CONTENDER=name,
        SESSIO_BENCH_DATA_DIR=str(data),
        SESSIO_BENCH_REDIS_URL=services.redis_url or "",
        SESSIO_BENCH_POSTGRES_URL=services.postgres_url or "",
    )
    proc = subprocess.Popen(
        _command(name, server, port),
        env=env,
        cwd=HERE.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # the workers go with their master
    )
    try:
        yield port, proc
    finally:
        stop(proc)


def _wrk(port: int, seconds: float, connections: int, mix: str) -> dict[str, float]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian package 'wrk')")
    args = [wrk, f"-t{connections}", f"-c{connections}", f"-d{max(1, round(seconds))}s"]
    args += ["--timeout", "5s", "-s", str(HERE / "session.lua"), f"http://127.0.0.1:{port}/"]
    args += ["--", mix]
    done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 30, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("JSON "):
            return json.loads(line[5:])  # type: ignore[no-any-return]
    raise RuntimeError(f"wrk gave no summary: {done.stdout[-300:]} {done.stderr[-300:]}")


class _StoreCounters:
    """Snapshots of the run's Redis and PostgreSQL counters; a missing server counts nothing."""

    def __init__(self, services: Services) -> None:
        self.redis: Any = None
        self.pg: Any = None
        self.statements = False
        if services.redis_url:
            import redis

            self.redis = redis.Redis.from_url(services.redis_url)
        if services.postgres_url:
            import psycopg

            self.pg = psycopg.connect(services.postgres_url, autocommit=True)
            try:
                self.pg.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
                self.pg.execute("SELECT count(*) FROM pg_stat_statements").fetchone()
                self.statements = True
            except psycopg.Error:
                self.statements = False

    def snapshot(self, server: str | None) -> dict[str, float]:
        if server == "redis" and self.redis is not None:
            stats = self.redis.info("commandstats")
            return {k.removeprefix("cmdstat_"): float(v["calls"]) for k, v in stats.items()}
        if server == "postgres" and self.pg is not None:
            self.pg.execute("SELECT pg_stat_clear_snapshot()")
            row = self.pg.execute(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database "
                "WHERE datname = current_database()"
            ).fetchone()
            out = {"xact": float(row[0]) if row else 0.0}
            if self.statements:
                calls = self.pg.execute("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements")
                out["statements"] = float(calls.fetchone()[0])
            return out
        return {}

    def close(self) -> None:
        if self.redis is not None:
            self.redis.close()
        if self.pg is not None:
            self.pg.close()


def _store_of(name: str) -> str | None:
    lowered = name.lower()
    return next((s for s in ("redis", "postgres") if s in lowered), None)


def run_workers(
    services: Services,
    data: Path,
    *,
    seconds: float,
    connections: int,
    quick: bool,
    failures: dict[str, str],
    only: list[str],
) -> list[WorkerRun]:
    """wrk every multi-worker contender in both mixes, one server at a time."""
    chosen = WORKER_CONTENDERS[:QUICK_CONTENDERS] if quick else WORKER_CONTENDERS
    if only:
        chosen = tuple(c for c in chosen if any(t.lower() in c[0].lower() for t in only))
    counters = _StoreCounters(services)
    runs: list[WorkerRun] = []
    try:
        for name, server in chosen:
            with _serve(name, server, services, data) as (port, proc):
                if not wait_for_port(port, proc, 30.0, poll=0.1):
                    err = proc.stderr.read().decode()[-400:] if proc.stderr else ""
                    failures[f"workers: {name}"] = f"{server} did not start: {err}"
                    continue
                _wrk(port, 1, 2, "read")  # warm-up: imports, connections, tables
                for mix in MIXES:
                    store = _store_of(name)
                    before = counters.snapshot(store)
                    try:
                        summary = _wrk(port, seconds, connections, mix)
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        failures[f"workers: {name} {mix}"] = str(exc)
                        continue
                    after = counters.snapshot(store)
                    requests = int(summary["requests"])
                    errors = int(
                        summary["connect"]
                        + summary["read"]
                        + summary["write"]
                        + summary["status"]
                        + summary["timeout"]
                    )
                    ops = {
                        k: (v - before.get(k, 0.0)) / max(requests, 1)
                        for k, v in after.items()
                        if v - before.get(k, 0.0) > 0 and k != "info"  # info: our own probe
                    }
                    runs.append(
                        WorkerRun(
                            name,
                            server,
                            mix,
                            rps=requests / (summary["duration_us"] / 1e6),
                            p50_ms=summary["p50_us"] / 1000,
                            p99_ms=summary["p99_us"] / 1000,
                            requests=requests,
                            errors=errors,
                            store_ops=ops,
                            load="/".join(f"{x:.2f}" for x in os.getloadavg()),
                        )
                    )
                    if errors:
                        failures[f"workers: {name} {mix}"] = f"{errors} wrk errors"
    finally:
        counters.close()
    print(f"  workers: {len(runs)} runs of {seconds:g}s, {connections} connections")
    return runs


def render_workers(runs: list[WorkerRun], connections: int, seconds: float) -> list[str]:
    """The markdown section of the multi-worker runs."""
    if not runs:
        return []
    lines = [
        "## Over HTTP, two worker processes",
        "",
        f"uvicorn --workers {WORKERS} (uvloop, httptools) or gunicorn --workers {WORKERS} sync "
        f"(Flask) on 127.0.0.1; wrk with {connections} connections (one thread each, each its own "
        f"cookie), {seconds:g} s per run after a 1 s warm-up. Mixes: `read` = 9 reads : 1 write; "
        "`login` = 1 login (new session ID) : 1 write : 3 reads. Store ops are per request, "
        "counted by the server (Redis `INFO commandstats`; PostgreSQL transactions and "
        "`pg_stat_statements` calls, which include the pool's own checks). Load = 1/5/15-min "
        "load average when the run ended.",
        "",
        "| contender | server | mix | requests/s | p50 ms | p99 ms | errors | store ops/request | load |",
        "|---|---|---|---:|---:|---:|---:|---|---|",
    ]
    for r in runs:
        ops = ", ".join(
            f"{k} {v:.2f}" for k, v in sorted(r.store_ops.items(), key=lambda kv: -kv[1])
        )
        lines.append(
            f"| {r.name} | {r.server} | {r.mix} | {r.rps:,.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} "
            f"| {r.errors} | {ops or '-'} | {r.load} |"
        )
    lines.append("")
    return lines
