"""The results as people read them: markdown tables, PASS/MISS lines for the issue's targets, a plot."""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.metadata
import json
import platform
import shutil
import statistics
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import limits
from .apps import SCENARIOS
from .contenders import ASGI_FLOOR, CONTENDERS, RAW_ASYNC, RAW_SYNC, WSGI_FLOOR, Contender
from .http import HttpResult
from .inprocess import Measured
from .scale import Cleanup, ScaleResult
from .wire import Wire
from .workers import WorkerRun, render_workers

__all__ = ["Results", "Target", "evaluate_targets", "machine", "plot", "render", "versions"]

PACKAGES = (
    "sessio",
    "starlette",
    "starsessions",
    "itsdangerous",
    "flask",
    "werkzeug",
    "Flask-Session",
    "cachelib",
    "msgspec",
    "redis",
    "psycopg",
    "psycopg-pool",
    "uvicorn",
    "gunicorn",
    "uvloop",
    "httptools",
    "matplotlib",
    "pyinstrument",
)

ASGI_REFERENCE = "Starlette SessionMiddleware"
WSGI_REFERENCE = "Flask cookie session"


@dataclasses.dataclass
class Results:
    """Everything one run measured."""

    command: str
    quick: bool
    started: dt.datetime
    seconds: float = 0.0
    timing: dict[tuple[str, str], Measured] = dataclasses.field(default_factory=dict)
    wire: dict[tuple[str, str], Wire] = dataclasses.field(default_factory=dict)
    http: dict[str, HttpResult] = dataclasses.field(default_factory=dict)
    http_connections: int = 0
    http_seconds: float = 0.0
    workers: list[WorkerRun] = dataclasses.field(default_factory=list)
    workers_connections: int = 0
    workers_seconds: float = 0.0
    scale: list[ScaleResult] = dataclasses.field(default_factory=list)
    cleanup: list[Cleanup] = dataclasses.field(default_factory=list)
    memory: dict[str, float] = dataclasses.field(default_factory=dict)
    missing: dict[str, str] = dataclasses.field(default_factory=dict)
    failures: dict[str, str] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_json(self) -> str:
        """Everything measured, as JSON (``(name, scenario)`` keys become ``"name | scenario"``)."""

        def flat(table: dict[tuple[str, str], Any]) -> dict[str, Any]:
            return {f"{n} | {s}": dataclasses.asdict(v) for (n, s), v in table.items()}

        data = {
            "command": self.command,
            "quick": self.quick,
            "started": self.started.isoformat(),
            "seconds": self.seconds,
            "timing": flat(self.timing),
            "wire": flat(self.wire),
            "http": {k: dataclasses.asdict(v) for k, v in self.http.items()},
            "http_connections": self.http_connections,
            "http_seconds": self.http_seconds,
            "workers": [dataclasses.asdict(r) for r in self.workers],
            "workers_connections": self.workers_connections,
            "workers_seconds": self.workers_seconds,
            "scale": [dataclasses.asdict(r) for r in self.scale],
            "cleanup": [dataclasses.asdict(c) for c in self.cleanup],
            "memory": self.memory,
            "missing": self.missing,
            "failures": self.failures,
            "notes": self.notes,
            "settings": self.settings,
        }
        return json.dumps(data, indent=1, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Results:
        """The inverse of :meth:`to_json` (to re-render a report without re-measuring)."""
        data = json.loads(text)

        def keyed(table: dict[str, Any], kind: Any) -> dict[tuple[str, str], Any]:
            out = {}
            for key, value in table.items():
                name, _, scenario = key.rpartition(" | ")
                out[(name, scenario)] = kind(**value)
            return out

        return cls(
            command=data["command"],
            quick=data["quick"],
            started=dt.datetime.fromisoformat(data["started"]),
            seconds=data["seconds"],
            timing=keyed(data["timing"], Measured),
            wire=keyed(data["wire"], Wire),
            http={k: HttpResult(**v) for k, v in data["http"].items()},
            http_connections=data["http_connections"],
            http_seconds=data["http_seconds"],
            workers=[WorkerRun(**r) for r in data.get("workers", [])],
            workers_connections=data.get("workers_connections", 0),
            workers_seconds=data.get("workers_seconds", 0.0),
            scale=[ScaleResult(**r) for r in data["scale"]],
            cleanup=[Cleanup(**c) for c in data["cleanup"]],
            memory=data["memory"],
            missing=data["missing"],
            failures=data["failures"],
            notes=data["notes"],
            settings=data["settings"],
        )

    def median(self, name: str, scenario: str) -> float | None:
        """Median µs/request of ``name`` in ``scenario``."""
        m = self.timing.get((name, scenario))
        return None if m is None else m.median

    def round_trip(self, name: str) -> float | None:
        """Median µs of a raw round trip, over its rounds in every scenario (it ran in each)."""
        rounds = [
            x for s in SCENARIOS if (name, s) in self.timing for x in self.timing[(name, s)].rounds
        ]
        return statistics.median(rounds) if rounds else None

    def overhead(self, name: str, scenario: str) -> float | None:
        """Overhead µs/request of ``name`` over its floor in ``scenario``."""
        m = self.timing.get((name, scenario))
        return None if m is None else m.overhead


# -- environment facts --------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    """Installed versions of sessio, the peers and the tools, plus the servers'."""
    out: dict[str, str] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    for label, args in (
        ("redis-server", ["redis-server", "--version"]),
        ("postgres", ["postgres", "--version"]),
        ("wrk", ["wrk", "--version"]),
    ):
        if shutil.which(args[0]) is None:
            out[label] = "not installed"
            continue
        done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=10)
        text = (done.stdout or done.stderr).strip().splitlines()
        out[label] = text[0] if text else "?"
    return out


def machine() -> str:
    """``uname -a`` and the interesting lines of ``lscpu``."""
    lines = [" ".join(platform.uname())]
    if shutil.which("lscpu"):
        done = subprocess.run(["lscpu"], capture_output=True, text=True, check=False, timeout=10)
        keep = (
            "Architecture",
            "CPU(s)",
            "Model name",
            "Thread(s) per core",
            "CPU max MHz",
            "Hypervisor",
            "L2",
            "L3",
        )
        for line in done.stdout.splitlines():
            if line.split(":")[0].strip().startswith(keep):
                lines.append(" ".join(line.split()))
    return "\n".join(lines)


# -- targets --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Target:
    """One target of the issue, evaluated."""

    #: A stable name (``asgi-memory-write``): ``limits.md`` files its reason under it.
    id: str
    text: str
    passed: bool | None  # None: could not be measured
    detail: str

    def line(self) -> str:
        """``PASS``/``MISS``/``N/A`` and the measured distance."""
        verdict = {True: "PASS", False: "MISS", None: "N/A "}[self.passed]
        return f"{verdict}  {self.text}: {self.detail}"


def _pick(results: Results, *names: str) -> str | None:
    for name in names:
        if any(key[0] == name for key in results.timing):
            return name
    return None


def _le(
    target_id: str, text: str, value: float | None, limit: float | None, unit: str = "µs"
) -> Target:
    if value is None or limit is None:
        return Target(target_id, text, None, "not measured")
    passed = value <= limit
    distance = limit - value
    how = f"margin {distance:.1f} {unit}" if passed else f"over by {-distance:.1f} {unit}"
    ratio = f", {value / limit:.2f}x the limit" if limit > 0 else ""
    detail = f"{value:.1f} {unit} vs limit {limit:.1f} {unit} ({how}{ratio})"
    return Target(target_id, text, passed, detail)


def _core_note(name: str | None) -> str:
    return " [manager-level: integration not merged yet]" if name and "core" in name else ""


def evaluate_targets(results: Results) -> list[Target]:
    """The issue's targets, each PASS, MISS or N/A with the measured distance."""
    targets: list[Target] = []
    mem = _pick(results, "sessio memory (asgi)", "sessio-core memory (asgi)")
    for scenario in ("write", "read"):
        ref = results.overhead(ASGI_REFERENCE, scenario)
        value = results.overhead(mem, scenario) if mem else None
        targets.append(
            _le(
                f"asgi-memory-{scenario}",
                f"ASGI MemoryStore {scenario} overhead <= 0.5x Starlette SessionMiddleware's{_core_note(mem)}",
                value,
                None if ref is None else 0.5 * ref,
            )
        )
    rds = _pick(results, "sessio redis (asgi)", "sessio-core redis (asgi)")
    raw = results.round_trip(RAW_ASYNC)
    star = "starsessions RedisStore"
    for scenario, trips, extra, factor in (("read", 1, 10.0, 0.5), ("write", 2, 15.0, 0.85)):
        wire = results.wire.get((rds, scenario)) if rds else None
        rt = wire.round_trips if wire else None
        if rt is None:
            targets.append(
                Target(
                    f"redis-asgi-{scenario}-round-trips",
                    f"Redis via ASGI {scenario}: round trips",
                    None,
                    "not measured",
                )
            )
        else:
            ok = round(rt, 2) == trips if scenario == "read" else rt <= trips + 0.01
            rel = "=" if scenario == "read" else "<="
            targets.append(
                Target(
                    f"redis-asgi-{scenario}-round-trips",
                    f"Redis via ASGI {scenario}: round trips {rel} {trips}{_core_note(rds)}",
                    ok,
                    f"{rt:.2f} per request (server-counted), {wire.command_mix if wire else ''}",
                )
            )
        value = results.overhead(rds, scenario) if rds else None
        targets.append(
            _le(
                f"redis-asgi-{scenario}-vs-raw",
                f"Redis via ASGI {scenario} overhead <= {trips} raw round trip{'s' if trips > 1 else ''} + {extra:g} µs{_core_note(rds)}",
                value,
                None if raw is None else trips * raw + extra,
            )
        )
        ref = results.overhead(star, scenario)
        targets.append(
            _le(
                f"redis-asgi-{scenario}-vs-starsessions",
                f"Redis via ASGI {scenario} overhead <= {factor}x starsessions RedisStore's{_core_note(rds)}",
                value,
                None if ref is None else factor * ref,
            )
        )
    fl = _pick(results, "sessio redis (flask)", "sessio-core redis (flask)")
    for scenario, factor in (("read", 0.5), ("write", 0.85)):
        ref = results.overhead("Flask-Session Redis", scenario)
        value = results.overhead(fl, scenario) if fl else None
        targets.append(
            _le(
                f"flask-redis-{scenario}-vs-flask-session",
                f"Flask drop-in Redis {scenario} overhead <= {factor}x Flask-Session Redis's{_core_note(fl)}",
                value,
                None if ref is None else factor * ref,
            )
        )
    for store in ("sqlite", "postgres", "redis"):  # the issue names SQLite and PostgreSQL
        rows = {r.size: r for r in results.scale if r.store == store}
        if len(rows) < 2:
            targets.append(
                Target(
                    f"scale-{store}",
                    f"{store} p99 at largest size <= 1.5x p99 at smallest",
                    None,
                    "not measured",
                )
            )
            continue
        small, large = rows[min(rows)], rows[max(rows)]
        t = _le(
            f"scale-{store}",
            f"{store} load+commit p99 at {large.size:,} <= 1.5x p99 at {small.size:,}",
            large.p99_ms * 1000,
            small.p99_ms * 1500,
        )
        targets.append(t)
    sessio_http = next(
        (
            results.http[n]
            for n in ("sessio redis (asgi)", "sessio-core redis (asgi)")
            if n in results.http
        ),
        None,
    )
    star_http = results.http.get(star)
    if sessio_http is None or star_http is None:
        targets.append(
            Target(
                "wrk-redis-vs-starsessions",
                "wrk 9:1 mix: sessio-Redis >= 1.5x starsessions-Redis rps",
                None,
                "not measured",
            )
        )
    else:
        ratio = sessio_http.median_rps / star_http.median_rps
        targets.append(
            Target(
                "wrk-redis-vs-starsessions",
                f"wrk 9:1 mix: sessio-Redis >= 1.5x starsessions-Redis rps{_core_note(sessio_http.name)}",
                ratio >= 1.5,
                f"{sessio_http.median_rps:,.0f} vs {star_http.median_rps:,.0f} rps = {ratio:.2f}x (need 1.50x)",
            )
        )
    return targets


# -- markdown ---------------------------------------------------------------------------------------------


def _f(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio(value: float | None, ref: float | None) -> str:
    if value is None or ref is None or ref <= 0:
        return "-"
    return f"{value / ref:.2f}x"


def _rows(results: Results, kind: str) -> list[Contender]:
    return [c for c in CONTENDERS if c.kind == kind and any(k[0] == c.name for k in results.timing)]


def render(
    results: Results,
    targets: list[Target],
    info: dict[str, str],
    host: str,
    reasons: Mapping[str, str] | None = None,
) -> str:
    """The whole report as markdown; ``reasons`` (target id -> prose, from ``limits.md``)
    explain the missed targets right after the targets block."""
    out: list[str] = []
    mode = (
        "quick smoke run (tiny sizes: numbers are not meaningful)" if results.quick else "full run"
    )
    out.append("# sessio benchmark results\n")
    out.append(f"- Date: {results.started:%Y-%m-%d %H:%M %Z} ({mode}, {results.seconds:.0f} s)")
    out.append(f"- Command: `{results.command}`")
    for key, value in results.settings.items():
        out.append(f"- {key}: {value}")
    for note in results.notes:
        out.append(f"- Note: {note}")
    out.append("\n## Targets (from the issue)\n")
    out.append("```")
    out.extend(t.line() for t in targets)
    out.append("```")
    out.extend(limits.render_reasons(targets, reasons or {}))

    raw_a, raw_s = results.round_trip(RAW_ASYNC), results.round_trip(RAW_SYNC)
    out.append("\n## In-process overhead per request\n")
    out.append(
        "Apps called directly (ASGI scope / WSGI environ, no sockets). Overhead = µs per request "
        "above the same app without sessions (median over rounds of paired differences; "
        "± half the interquartile range). Ratio: overhead / the framework's reference "
        f"(ASGI: {ASGI_REFERENCE}; WSGI: {WSGI_REFERENCE}); lower is better.\n"
    )
    out.append(
        f"Floors: {ASGI_FLOOR} {_f(results.median(ASGI_FLOOR, 'write'))} µs, "
        f"{WSGI_FLOOR} {_f(results.median(WSGI_FLOOR, 'write'))} µs per request; one raw Redis "
        f"round trip (GET): async {_f(raw_a)} µs, sync {_f(raw_s)} µs.\n"
    )
    for kind, ref in (("asgi", ASGI_REFERENCE), ("wsgi", WSGI_REFERENCE)):
        head = "| contender | " + " | ".join(f"{s} µs | {s} ratio" for s in SCENARIOS) + " |"
        out.append(f"### {'ASGI (Starlette app)' if kind == 'asgi' else 'WSGI (Flask app)'}\n")
        out.append(head)
        out.append("|" + "---|" * (1 + 2 * len(SCENARIOS)))
        for c in _rows(results, kind):
            if c.is_floor:
                continue
            cells = [c.name]
            for s in SCENARIOS:
                m = results.timing.get((c.name, s))
                if s in c.refuses:
                    cells += ["refused: > 4 KB cookie", "-"]
                    continue
                if m is None or m.overhead is None:
                    cells += ["-", "-"]
                    continue
                cells.append(f"{m.overhead:,.1f} ± {(m.overhead_iqr or 0) / 2:,.1f}")
                cells.append(_ratio(m.overhead, results.overhead(ref, s)))
            out.append("| " + " | ".join(cells) + " |")
        out.append("")

    out.append("## On the wire, per request\n")
    out.append(
        "Counted by the servers: round trips are Redis socket reads (`INFO stats` "
        "`total_reads_processed`) or PostgreSQL statements (`pg_stat_statements`); volume is "
        "what the client sent to Redis (`total_net_input_bytes`) or the WAL PostgreSQL wrote. "
        "Each cell: write / read / big. The commands are a write's (a Lua script's inner "
        "commands are listed too, though they travel in its one round trip).\n"
    )
    out.append(
        "| contender | round trips | bytes to Redis / PostgreSQL WAL bytes "
        "| Set-Cookie B/response | Cookie B/request | commands of a write request |"
    )
    out.append("|---|---|---|---|---|---|")

    def triple(name: str, attr: str, digits: int) -> str:
        cells = []
        for s in SCENARIOS:
            w = results.wire.get((name, s))
            cells.append("-" if w is None else _f(getattr(w, attr), digits))
        return " / ".join(cells)

    for c in CONTENDERS:
        if c.family == "floor" or not any((c.name, s) in results.wire for s in SCENARIOS):
            continue
        if c.kind == "raw":
            w = results.wire[(c.name, "read")]
            out.append(
                f"| {c.name} | {_f(w.round_trips, 2)} | {_f(w.store_bytes_in, 0)} | - | - "
                f"| {w.command_mix} |"
            )
            continue
        write = results.wire.get((c.name, "write"))
        volume = triple(c.name, "wal_bytes" if c.store == "postgres" else "store_bytes_in", 0)
        out.append(
            f"| {c.name} | {triple(c.name, 'round_trips', 2)} | {volume} | "
            f"{triple(c.name, 'set_cookie_bytes', 0)} | {triple(c.name, 'cookie_bytes', 0)} | "
            f"{write.command_mix if write else '-'} |"
        )
    out.append("")

    if results.http:
        floor = results.http.get(ASGI_FLOOR)
        out.append("## Over HTTP: uvicorn + wrk, 9 reads : 1 write\n")
        out.append(
            f"uvicorn (httptools, uvloop, 1 process) on 127.0.0.1; wrk with {results.http_connections} "
            f"connections (one thread each, each its own cookie), {results.http_seconds:g} s per run, "
            "runs interleaved over rounds; median requests/second.\n"
        )
        out.append("| contender | requests/s | vs floor | p50 ms | p99 ms | errors |")
        out.append("|---|---|---|---|---|---|")
        for name, r in results.http.items():
            ratio = _ratio(r.median_rps, floor.median_rps if floor else None)
            p50 = sorted(r.p50_ms)[len(r.p50_ms) // 2]
            p99 = sorted(r.p99_ms)[len(r.p99_ms) // 2]
            out.append(
                f"| {name} | {r.median_rps:,.0f} | {ratio} | {p50:.2f} | {p99:.2f} | {r.errors} |"
            )
        out.append("")
    out.extend(
        render_workers(results.workers, results.workers_connections, results.workers_seconds)
    )

    if results.scale:
        out.append("## Scale: load + commit with many stored sessions\n")
        out.append("Sync manager, write scenario on probe sessions, sizes probed interleaved.\n")
        out.append("| store | stored sessions | p50 ms | p99 ms | samples | fill s |")
        out.append("|---|---|---|---|---|---|")
        for r in results.scale:
            out.append(
                f"| {r.store} | {r.size:,} | {r.p50_ms:.3f} | {r.p99_ms:.3f} | {r.samples} | {r.fill_seconds:.1f} |"
            )
        out.append("")
    if results.cleanup:
        out.append("| store | cleanup: expired removed | among live | seconds | note |")
        out.append("|---|---|---|---|---|")
        for c in results.cleanup:
            out.append(
                f"| {c.store} | {c.removed:,} of {c.expired:,} | {c.live:,} | {c.seconds:.2f} | {c.note} |"
            )
        out.append("")
    if results.memory:
        out.append("## Memory per stored session (tracemalloc)\n")
        out.append("| store | bytes per session |")
        out.append("|---|---|")
        for name, value in results.memory.items():
            out.append(f"| {name} | {value:,.0f} |")
        out.append("")

    if results.missing or results.failures:
        out.append("## Not measured\n")
        for name, why in {**results.missing, **results.failures}.items():
            out.append(f"- {name}: {why}")
        out.append("")

    out.append("## Environment\n")
    out.append("```")
    out.append(host)
    out.append("```\n")
    out.append("| package | version |")
    out.append("|---|---|")
    for name, version in info.items():
        out.append(f"| {name} | {version} |")
    out.append("")
    return "\n".join(out)


# -- the plot ----------------------------------------------------------------------------------------------

_COLOURS = {
    "sessio": "#1f77b4",
    "sessio-core": "#9ecae1",
    "starlette": "#ff7f0e",
    "starsessions": "#d62728",
    "flask": "#2ca02c",
    "flask-session": "#9467bd",
}


def plot(results: Results, path: Path) -> bool:
    """A bar chart of overhead per contender and scenario, written to ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
    except ImportError:
        return False
    rows = [
        c
        for c in CONTENDERS
        if not c.is_floor and any(results.overhead(c.name, s) is not None for s in SCENARIOS)
    ]
    if not rows:
        return False
    rows.reverse()  # matplotlib draws the first bar at the bottom
    height = max(4.0, 0.32 * len(rows) + 1.8)
    fig, axes = plt.subplots(1, len(SCENARIOS), figsize=(16, height), sharey=True)
    raw = results.round_trip(RAW_ASYNC)
    # Overheads span two orders of magnitude (a cookie vs a disk write): a log axis keeps the
    # small, interesting bars readable. A noisy run can measure an overhead at or below zero;
    # such a bar is drawn at 1 µs and labelled with its value.
    border = next((i for i, c in enumerate(rows) if c.kind == "asgi"), None)
    for ax, scenario in zip(axes, SCENARIOS, strict=True):
        values = [results.overhead(c.name, scenario) for c in rows]
        shown = [max(v, 1.0) if v is not None else 0.0 for v in values]
        colours = [_COLOURS.get(c.family, "#7f7f7f") for c in rows]
        bars = ax.barh(range(len(rows)), shown, color=colours)
        for bar, value, c in zip(bars, values, rows, strict=True):
            label = (
                "refused" if scenario in c.refuses else ("-" if value is None else f"{value:.0f}")
            )
            ax.text(
                max(bar.get_width(), 5.0) * 1.08,
                bar.get_y() + bar.get_height() / 2,
                label,
                va="center",
                fontsize=7,
            )
        ax.set_xscale("log")
        top = max([v for v in shown if v > 0] or [10.0])
        ax.set_xlim(5, top * 3)
        if raw is not None:
            ax.axvline(raw, color="black", linestyle="--", linewidth=0.8)
            ax.text(raw * 1.05, -0.9, "1 raw Redis round trip", fontsize=7, va="bottom")
        if border is not None and border > 0:
            ax.axhline(border - 0.5, color="grey", linewidth=0.6)
        ax.set_title(scenario, fontsize=11)
        ax.set_xlabel(
            "overhead over the bare framework, µs per request (log scale, lower is better)",
            fontsize=8,
        )
        ax.grid(axis="x", which="both", alpha=0.25)
    axes[0].set_yticks(range(len(rows)))
    axes[0].set_yticklabels([c.name for c in rows], fontsize=8)
    legend = [
        Patch(color=colour, label=family)
        for family, colour in _COLOURS.items()
        if any(c.family == family for c in rows)
    ]
    fig.legend(handles=legend, loc="lower center", ncol=len(legend), fontsize=8, frameon=False)
    title = (
        "sessio vs peers: per-request session overhead, in process (median of interleaved rounds)"
    )
    if results.quick:
        title += " - QUICK RUN, not meaningful"
    fig.suptitle(title, fontsize=12)
    fig.tight_layout(rect=(0, 0.04, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
