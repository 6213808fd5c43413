"""Over real HTTP: each contender behind uvicorn on a loopback port, driven by wrk.

Every wrk connection is one visitor keeping its own cookie (``session.lua``), sending 9 reads
to 1 write. The servers start once; the wrk runs are interleaved over rounds in shuffled order,
and the median requests/second per contender is reported. Only 127.0.0.1 is ever addressed,
and every wrk run has a fixed, short duration.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from .contenders import ASGI_FLOOR
from .processes import free_port, stop, wait_for_port
from .services import Services

__all__ = ["HTTP_CONTENDERS", "HttpResult", "run_http"]

HERE = Path(__file__).resolve().parent

#: Who runs over HTTP; the first sessio row that builds stands for sessio-Redis.
HTTP_CONTENDERS = (
    ASGI_FLOOR,
    "Starlette SessionMiddleware",
    "starsessions RedisStore",
    "sessio redis (asgi)",
    "sessio-core redis (asgi)",
)


@dataclasses.dataclass
class HttpResult:
    """wrk's verdict on one contender: median requests/second over rounds, and latencies."""

    name: str
    rps: list[float] = dataclasses.field(default_factory=list)
    p50_ms: list[float] = dataclasses.field(default_factory=list)
    p99_ms: list[float] = dataclasses.field(default_factory=list)
    errors: int = 0

    @property
    def median_rps(self) -> float:
        """Median requests/second over the rounds."""
        return statistics.median(self.rps) if self.rps else 0.0


@contextlib.contextmanager
def _server(name: str, services: Services) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    port = free_port()
    env = dict(os.environ)
    env["SESSIO_BENCH_REDIS_URL"] = services.redis_url or ""
    env["SESSIO_BENCH_POSTGRES_URL"] = services.postgres_url or ""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.serve", name, str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield port, proc
    finally:
        stop(proc)


def _wrk(port: int, seconds: float, connections: int) -> dict[str, float]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (Debian package 'wrk')")
    args = [
        wrk,
        f"-t{connections}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "-s",
        str(HERE / "session.lua"),
        f"http://127.0.0.1:{port}/",
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 30, check=False)
    for line in done.stdout.splitlines():
        if line.startswith("JSON "):
            return json.loads(line[5:])  # type: ignore[no-any-return]
    raise RuntimeError(f"wrk gave no summary: {done.stdout[-300:]} {done.stderr[-300:]}")


def run_http(
    services: Services,
    available: set[str],
    *,
    seconds: float,
    rounds: int,
    connections: int,
    failures: dict[str, str],
    progress: object = print,
) -> dict[str, HttpResult]:
    """wrk every HTTP contender that built in-process; keyed by contender name."""
    names = [n for n in HTTP_CONTENDERS if n in available]
    if "sessio redis (asgi)" in names and "sessio-core redis (asgi)" in names:
        names.remove("sessio-core redis (asgi)")
    results = {n: HttpResult(n) for n in names}
    with contextlib.ExitStack() as stack:
        ports: dict[str, int] = {}
        for name in names:
            port, proc = stack.enter_context(_server(name, services))
            if not wait_for_port(port, proc, 20.0, poll=0.1):
                err = proc.stderr.read().decode()[-400:] if proc.stderr else ""
                failures[f"http: {name}"] = f"uvicorn did not start: {err}"
                results.pop(name)
                continue
            ports[name] = port
        rng = random.Random(11)
        order = list(ports)
        for _ in range(rounds):
            rng.shuffle(order)
            for name in order:
                try:
                    summary = _wrk(ports[name], seconds, connections)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    failures[f"http: {name}"] = str(exc)
                    continue
                result = results[name]
                result.rps.append(summary["requests"] / (summary["duration_us"] / 1e6))
                result.p50_ms.append(summary["p50_us"] / 1000)
                result.p99_ms.append(summary["p99_us"] / 1000)
                result.errors += int(
                    summary["connect"]
                    + summary["read"]
                    + summary["write"]
                    + summary["status"]
                    + summary["timeout"]
                )
    if callable(progress):
        progress(f"  http: {len(ports)} servers x {rounds} rounds x {seconds:g}s")
    return {n: r for n, r in results.items() if r.rps}
