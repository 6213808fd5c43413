"""The multi-worker section's plumbing: the worker app's lifespan, the login route, the report."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from benchmarks.contenders import ASGI_FLOOR, by_name
from benchmarks.workers import WORKER_CONTENDERS, WorkerRun, render_workers

from benchmarks import report, worker_app


def test_every_row_is_a_registered_contender_on_a_known_server() -> None:
    for name, server in WORKER_CONTENDERS:
        contender = by_name(name)
        assert server == ("uvicorn" if contender.kind == "asgi" else "gunicorn")


async def _lifespan_and_get(app: Any, path: str) -> tuple[list[str], int]:
    """Drive ``app`` through startup, one GET, shutdown; the lifespan replies and the status."""
    replies: list[str] = []

    async def lifespan_send(message: dict[str, Any]) -> None:
        replies.append(message["type"])

    # Startup alone first, so the request lands between startup and shutdown.
    startup: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    await startup.put({"type": "lifespan.startup"})
    task = asyncio.ensure_future(app({"type": "lifespan"}, startup.get, lifespan_send))
    while not replies:
        await asyncio.sleep(0)
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    await asyncio.wait_for(app(scope, receive, send), 10)
    await startup.put({"type": "lifespan.shutdown"})
    await asyncio.wait_for(task, 10)
    return replies, status[0]


@pytest.mark.parametrize("path", ["/read", "/login"])
def test_the_worker_app_builds_at_startup_serves_and_closes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, path: str
) -> None:
    monkeypatch.setenv("SESSIO_BENCH_CONTENDER", ASGI_FLOOR)
    monkeypatch.setenv("SESSIO_BENCH_DATA_DIR", str(tmp_path))
    replies, status = asyncio.run(_lifespan_and_get(worker_app.asgi(), path))
    assert replies == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert status == 200


def test_a_contender_that_cannot_build_fails_the_startup_by_name(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # No Redis URL (or, in the project's environment, no starsessions): the builder refuses,
    # and uvicorn is told why.
    monkeypatch.setenv("SESSIO_BENCH_CONTENDER", "starsessions RedisStore")
    monkeypatch.setenv("SESSIO_BENCH_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SESSIO_BENCH_REDIS_URL", raising=False)
    sent: list[dict[str, Any]] = []
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:
        await inbox.put({"type": "lifespan.startup"})
        await asyncio.wait_for(worker_app.asgi()({"type": "lifespan"}, inbox.get, send), 10)

    asyncio.run(run())
    assert [m["type"] for m in sent] == ["lifespan.startup.failed"]
    assert sent[0]["message"].startswith("Unavailable(")


RUNS = [
    WorkerRun("sessio sqlite (asgi)", "uvicorn", "read", 3149.2, 17.6, 280.3, 3150, 0, {}, "1/2/3"),
    WorkerRun(
        "Flask-Session Redis", "gunicorn", "login", 453.0, 110.5, 203.0, 460, 7,
        {"set": 1.09, "get": 0.96, "del": 0.13}, "4.97/2.14/2.00",
    ),
]  # fmt: skip


def test_the_table_shows_every_run_with_its_errors_counters_and_load() -> None:
    text = "\n".join(render_workers(RUNS, 64, 5))
    assert (
        "| sessio sqlite (asgi) | uvicorn | read | 3,149 | 17.6 | 280.3 | 0 | - | 1/2/3 |" in text
    )
    assert "| 7 | set 1.09, get 0.96, del 0.13 | 4.97/2.14/2.00 |" in text
    assert "64 connections" in text
    assert render_workers([], 64, 5) == []


def test_the_runs_survive_the_json_round_trip() -> None:
    results = report.Results("python -m benchmarks", False, dt.datetime.now(dt.timezone.utc))
    results.workers = list(RUNS)
    results.workers_connections = 64
    back = report.Results.from_json(results.to_json())
    assert back.workers == RUNS
    assert back.workers_connections == 64
