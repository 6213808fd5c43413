"""``python -m benchmarks --instructions``: instructions per request, counted by cachegrind.

Wall-clock medians on two shared cores move by tens of percent from one run to the next; the
number of instructions a request executes does not. Each contender runs in a child process
under ``valgrind --tool=cachegrind`` twice, once without and once with ``requests`` requests
after the same warm-up, so the difference divided by ``requests`` is what one request costs,
to the instruction. Overheads subtract the framework's floor, as the timed sections do.

Instructions are not time: cache misses, the kernel and the servers (Redis' Lua, say) are not
in them, so the timed sections stay the verdict on the targets. What these numbers tell is
where the Python goes, the same on every run. Writes ``INSTRUCTIONS.md`` (``out/`` with
``--quick``); needs Debian's ``valgrind``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .contenders import ASGI_FLOOR, RAW_ASYNC, RAW_SYNC, WSGI_FLOOR, Context, by_name
from .env import HERE, ROOT, VENV
from .inprocess import make_runner
from .services import Services, services

__all__ = ["ROWS", "child", "compare", "main", "overheads", "parse_previous", "parse_refs"]

#: The rows, in table order: the floors, then each target's contenders.
ROWS = (
    ASGI_FLOOR,
    "Starlette SessionMiddleware",
    "sessio memory (asgi)",
    "starsessions RedisStore",
    "sessio redis (asgi)",
    RAW_ASYNC,
    WSGI_FLOOR,
    "Flask-Session Redis",
    "sessio redis (flask)",
    RAW_SYNC,
)
SCENARIOS = ("read", "write")
WARM_UP = 300

_REFS = re.compile(r"I\s+refs:\s+([\d,]+)")


def parse_refs(output: str) -> int:
    """The instruction count in cachegrind's summary (``I refs: 1,234``)."""
    found = _REFS.search(output)
    if found is None:
        raise RuntimeError(f"no instruction count in cachegrind's output: {output[-500:]!r}")
    return int(found.group(1).replace(",", ""))


def child(name: str, scenario: str, requests: int, redis_url: str, postgres_url: str) -> None:
    """Run ``requests`` requests of ``name`` after the warm-up (what cachegrind counts)."""
    found = Services(redis_url=redis_url or None, postgres_url=postgres_url or None)
    contender = by_name(name)

    async def run() -> None:
        with tempfile.TemporaryDirectory(prefix="sessio-instructions-") as tmp:
            ctx = Context(found, Path(tmp))
            try:
                built = await contender.build(ctx)
                runner = await make_runner(contender, built, scenario, 1)
                await runner.batch(WARM_UP)
                if requests:
                    await runner.batch(requests)
            finally:
                await ctx.close()

    asyncio.run(run())


def _count(name: str, scenario: str, requests: int, found: Services) -> int:
    command = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        str(VENV / "bin" / "python"),
        "-m",
        "benchmarks",
        "--instructions-child",
        name,
        scenario,
        str(requests),
        found.redis_url or "",
        found.postgres_url or "",
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}  # the same dict layouts in every child
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{name} / {scenario}: {done.stderr[-800:]}")
    return parse_refs(done.stderr)


def per_request(name: str, scenario: str, requests: int, found: Services) -> float:
    """Instructions one request of ``name`` costs (two counted runs, subtracted)."""
    base = _count(name, scenario, 0, found)
    full = _count(name, scenario, requests, found)
    return (full - base) / requests


def overheads(counts: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
    """Each session contender's instructions above its framework's floor (raw rows: as is)."""
    out: dict[tuple[str, str], float] = {}
    for (name, scenario), value in counts.items():
        contender = by_name(name)
        if contender.floor is None:
            continue
        floor = counts.get((contender.floor, scenario))
        if floor is not None:
            out[(name, scenario)] = value - floor
    return out


def parse_previous(text: str) -> dict[tuple[str, str], float]:
    """The per-request counts of an earlier ``INSTRUCTIONS.md`` (its first table)."""
    out: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] not in ROWS:
            continue
        for scenario, cell in zip(SCENARIOS, (cells[1], cells[3]), strict=True):
            with contextlib.suppress(ValueError):
                out[(cells[0], scenario)] = float(cell.replace(",", ""))
    return out


def compare(
    now: dict[tuple[str, str], float], before: dict[tuple[str, str], float], worse: float = 0.10
) -> list[tuple[str, str, float, float, float]]:
    """Rows more than ``worse`` above the earlier count: (name, scenario, before, now, change)."""
    rows = []
    for key in sorted(now.keys() & before.keys(), key=lambda k: (ROWS.index(k[0]), k[1])):
        old, new = before[key], now[key]
        if old > 0 and (new - old) / old > worse:
            rows.append((key[0], key[1], old, new, (new - old) / old))
    return rows


def _versions() -> str:
    import importlib.metadata

    found = []
    for package in ("sessio", "starlette", "starsessions", "flask", "Flask-Session", "redis"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found.append(f"{package} {importlib.metadata.version(package)}")
    return ", ".join(found)


def _table(
    counts: dict[tuple[str, str], float],
    requests: int,
    command: str,
    previous: dict[tuple[str, str], float],
    load: str,
) -> str:
    extra = overheads(counts)
    lines = [
        "# sessio: instructions per request",
        "",
        f"- Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; load average "
        f"(1/5/15 min) at start, end: {load}",
        f"- Versions: {_versions()}; Python {platform.python_version()}",
        f"- Command: `{command}` ({requests} counted requests per row and scenario, after "
        f"{WARM_UP} warm-up ones; cachegrind; Python {platform.python_version()})",
        "- Overhead: instructions above the framework's floor (Starlette or Flask without a "
        "session). The raw rows are one redis-py `GET`, no framework.",
        "- Deterministic, unlike the timed tables of `RESULTS.md`, but blind to cache misses, "
        "the kernel and the servers' own work: read both.",
        "",
        "| contender | read | read overhead | write | write overhead |",
        "|---|---|---|---|---|",
    ]
    for name in ROWS:
        cells = [name]
        for scenario in SCENARIOS:
            value = counts.get((name, scenario))
            over = extra.get((name, scenario))
            cells.append("-" if value is None else f"{value:,.0f}")
            cells.append("-" if over is None else f"{over:,.0f}")
        lines.append("| " + " | ".join(cells) + " |")
    pairs = (
        ("sessio memory (asgi)", "Starlette SessionMiddleware"),
        ("sessio redis (asgi)", "starsessions RedisStore"),
        ("sessio redis (flask)", "Flask-Session Redis"),
    )
    lines += ["", "| sessio overhead / peer's | read | write |", "|---|---|---|"]
    for mine, theirs in pairs:
        cells = [f"{mine} / {theirs}"]
        for scenario in SCENARIOS:
            a, b = extra.get((mine, scenario)), extra.get((theirs, scenario))
            cells.append("-" if a is None or not b else f"{a / b:.2f}x")
        lines.append("| " + " | ".join(cells) + " |")
    if previous:
        worse = compare(counts, previous)
        lines += [
            "",
            "## More than 10% above the previous count",
            "",
            "Against the table this file held before the run (instructions per request).",
            "",
        ]
        if worse:
            lines += ["| contender | scenario | before | now | change |", "|---|---|---|---|---|"]
            lines += [f"| {n} | {s} | {a:,.0f} | {b:,.0f} | {c:+.0%} |" for n, s, a, b, c in worse]
        else:
            lines.append("None.")
    return "\n".join(lines) + "\n"


def main(*, quick: bool, argv: list[str]) -> int:
    """Count every row in both scenarios, two children at a time; 0 on success."""
    if shutil.which("valgrind") is None:
        print("instructions: valgrind is not installed (Debian's valgrind)", file=sys.stderr)
        return 1
    requests = 100 if quick else 2000
    out = HERE / "out" if quick else HERE
    out.mkdir(exist_ok=True)
    counts: dict[tuple[str, str], float] = {}
    path = out / "INSTRUCTIONS.md"
    previous = parse_previous(path.read_text()) if path.exists() else {}
    load_start = _load()
    jobs = [(name, scenario) for name in ROWS for scenario in SCENARIOS]
    with services() as found, concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = {
            pool.submit(per_request, name, scenario, requests, found): (name, scenario)
            for name, scenario in jobs
        }
        for future in concurrent.futures.as_completed(futures):
            name, scenario = futures[future]
            try:
                counts[(name, scenario)] = future.result()
            except RuntimeError as exc:
                print(f"  {name} / {scenario}: not counted: {exc}", file=sys.stderr)
                continue
            print(f"  {name} / {scenario}: {counts[(name, scenario)]:,.0f}", flush=True)
    command = "python -m benchmarks " + " ".join(argv)
    load = f"{load_start}, {_load()}"
    path.write_text(_table(counts, requests, command.strip(), previous, load))
    print(f"wrote {path}")
    return 0 if len(counts) == len(jobs) else 1


def _load() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())
