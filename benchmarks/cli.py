"""The command line of the suite: which sections run, how long, and where the results go."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

from . import limits, report
from .contenders import CONTENDERS, Contender, Context
from .env import HERE
from .services import Services, services

__all__ = ["main"]

SECTIONS = ("inprocess", "wire", "http", "workers", "scale", "memory")


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How much of everything a run does."""

    rounds: int
    batch_seconds: float
    clients: int
    wire_requests: int
    http_seconds: float
    http_rounds: int
    http_connections: int
    workers_seconds: float
    workers_connections: int
    scale_sizes: tuple[int, ...]
    scale_probes: int
    scale_samples: int
    cleanup_expired: int
    memory_sessions: int


FULL = Sizes(
    rounds=41,
    batch_seconds=0.02,
    clients=16,
    wire_requests=200,
    http_seconds=5,
    http_rounds=5,
    http_connections=4,
    workers_seconds=5,
    workers_connections=64,
    scale_sizes=(10_000, 100_000, 1_000_000),
    scale_probes=500,
    scale_samples=3000,
    cleanup_expired=100_000,
    memory_sessions=100_000,
)
QUICK = Sizes(
    rounds=3,
    batch_seconds=0.002,
    clients=4,
    wire_requests=10,
    http_seconds=1,
    http_rounds=1,
    http_connections=2,
    workers_seconds=1,
    workers_connections=64,
    scale_sizes=(500, 1_000, 2_000),
    scale_probes=20,
    scale_samples=100,
    cleanup_expired=200,
    memory_sessions=500,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="sessio and its peers, side by side: overhead, round trips, HTTP, scale.",
    )
    parser.add_argument("--quick", action="store_true", help="CI smoke run: tiny sizes, < 60 s")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="TEXT",
        help="run only contenders whose name contains TEXT (repeatable; floors always run)",
    )
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated subset of {','.join(SECTIONS)}",
    )
    parser.add_argument(
        "--shared-servers",
        action="store_true",
        help="use the shared Redis/PostgreSQL instead of starting private ones",
    )
    parser.add_argument(
        "--output",
        type=Path,
        help="where RESULTS.md and overhead.png go (default: benchmarks/, or benchmarks/out/ with --quick)",
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="PATH",
        help="re-render RESULTS.md and the plot from a results.json, without measuring",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="profile sessio's hot path with pyinstrument instead of benchmarking",
    )
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per request with cachegrind (INSTRUCTIONS.md) instead of timing",
    )
    # One counted child of --instructions: NAME SCENARIO REQUESTS REDIS_URL POSTGRES_URL.
    parser.add_argument("--instructions-child", nargs=5, help=argparse.SUPPRESS)
    return parser


def _selected(only: list[str]) -> list[Contender]:
    if not only:
        return list(CONTENDERS)
    return [c for c in CONTENDERS if c.is_floor or any(t.lower() in c.name.lower() for t in only)]


def main(argv: list[str]) -> int:
    """Run the suite; 0 when every available contender ran, 1 when one crashed."""
    args = _parser().parse_args(argv)
    if args.profile:
        from .profile import main as profile_main

        return profile_main(quick=args.quick)
    if args.instructions_child:
        from .instructions import child

        name, scenario, requests, redis_url, postgres_url = args.instructions_child
        child(name, scenario, int(requests), redis_url, postgres_url)
        return 0
    if args.instructions:
        from .instructions import main as instructions_main

        return instructions_main(quick=args.quick, argv=argv)
    if args.from_json:
        results = report.Results.from_json(args.from_json.read_text())
        _write(results, args.output or args.from_json.parent)
        return 0
    sections = {s.strip() for s in args.sections.split(",") if s.strip()}
    unknown = sections - set(SECTIONS)
    if unknown:
        print(f"unknown sections: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    sizes = QUICK if args.quick else FULL
    output = args.output or (HERE / "out" if args.quick else HERE)
    output.mkdir(parents=True, exist_ok=True)
    # Peers warn about what the "big" scenario does to cookies; the report says it instead.
    warnings.filterwarnings("ignore", message=".*cookie is too large.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    started = time.perf_counter()
    load_start = _load()
    command = "python -m benchmarks" + ("" if not argv else " " + " ".join(argv))
    results = report.Results(command, args.quick, dt.datetime.now(dt.timezone.utc))
    results.settings = {
        "Sizes": ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(sizes).items()),
    }
    results.notes.append(
        "cookie sessions (Starlette, Flask, starsessions CookieStore) carry the whole 'big' "
        "session in the cookie: over 4 KB, which browsers silently drop"
    )
    contenders = _selected(args.only)
    with (
        services(private=not args.shared_servers) as found,
        tempfile.TemporaryDirectory(prefix="sessio-bench-data-") as tmp,
    ):
        results.notes.extend(found.notes)
        results.notes.append(
            "Redis: "
            + ("private redis-server for this run" if found.redis_private else f"{found.redis_url}")
            + "; PostgreSQL: "
            + (
                "private postgres for this run (pg_stat_statements)"
                if found.postgres_private
                else f"{found.postgres_url}"
            )
        )
        print(
            f"sessio benchmarks ({'quick' if args.quick else 'full'}): {len(contenders)} contenders"
        )
        available: set[str] = set()
        if sections & {"inprocess", "wire"}:
            available = asyncio.run(
                _in_process(contenders, found, Path(tmp), sizes, sections, results)
            )
        if "http" in sections:
            from .http import run_http

            http_names = available or {c.name for c in contenders}
            results.http = run_http(
                found,
                http_names,
                seconds=sizes.http_seconds,
                rounds=sizes.http_rounds,
                connections=sizes.http_connections,
                failures=results.failures,
            )
            results.http_connections = sizes.http_connections
            results.http_seconds = sizes.http_seconds
        if "workers" in sections:
            from .workers import run_workers

            workers_data = Path(tmp) / "workers"
            workers_data.mkdir()
            results.workers = run_workers(
                found,
                workers_data,
                seconds=sizes.workers_seconds,
                connections=sizes.workers_connections,
                quick=args.quick,
                failures=results.failures,
                only=args.only,
            )
            results.workers_connections = sizes.workers_connections
            results.workers_seconds = sizes.workers_seconds
        if "scale" in sections:
            from .scale import run_scale

            results.scale, results.cleanup = run_scale(
                found,
                Path(tmp),
                sizes=sizes.scale_sizes,
                probes=sizes.scale_probes,
                samples=sizes.scale_samples,
                expired=sizes.cleanup_expired,
                failures=results.missing,
            )
        if "memory" in sections:
            from .scale import memory_per_session

            results.memory = memory_per_session(sizes.memory_sessions)
    results.seconds = time.perf_counter() - started
    results.settings["Load average (1/5/15 min) at start, end"] = f"{load_start}, {_load()}"
    _write(results, output)
    unbuilt = {k: v for k, v in results.missing.items() if "not available yet" not in v}
    if unbuilt:  # a combination an integration does not support: reported, not fatal
        print(f"\nnote: {len(unbuilt)} contender(s) could not be built:", file=sys.stderr)
        for name, why in unbuilt.items():
            print(f"  {name}: {why}", file=sys.stderr)
    crashed = {k: v for k, v in results.failures.items() if "not available yet" not in v}
    if crashed:
        print(f"\n{len(crashed)} contender(s) crashed:", file=sys.stderr)
        for name, why in crashed.items():
            print(f"  {name}: {why}", file=sys.stderr)
        return 1
    return 0


def _write(results: report.Results, output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    targets = report.evaluate_targets(results)
    reasons = limits.load()
    text = report.render(results, targets, report.versions(), report.machine(), reasons)
    print()
    print(text)
    (output / "RESULTS.md").write_text(text)
    (output / "results.json").write_text(results.to_json())
    if report.plot(results, output / "overhead.png"):
        print(f"wrote {output / 'RESULTS.md'}, results.json and overhead.png")


def _load() -> str:
    # Other work on this machine is the main source of noise: the report shows how much there was.
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


async def _in_process(
    contenders: list[Contender],
    found: Services,
    tmp: Path,
    sizes: Sizes,
    sections: set[str],
    results: report.Results,
) -> set[str]:
    from .inprocess import build_all, measure
    from .wire import count_wire

    ctx = Context(found, tmp)
    try:
        built, results.missing = await build_all(contenders, ctx)
        if "inprocess" in sections:
            results.timing = await measure(
                contenders,
                built,
                rounds=sizes.rounds,
                batch_seconds=sizes.batch_seconds,
                clients=sizes.clients,
                failures=results.failures,
            )
        if "wire" in sections:
            results.wire = await count_wire(
                contenders,
                built,
                redis_url=found.redis_url,
                postgres_url=found.postgres_url,
                requests=sizes.wire_requests,
                clients=sizes.clients,
                failures=results.failures,
            )
        return {name for name in built if name not in results.failures}
    finally:
        await ctx.close()
