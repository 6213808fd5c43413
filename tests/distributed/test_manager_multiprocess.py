"""Several OS processes, each with its own manager and store, commit deltas to one session.

Each process writes its own keys (and removes some of them) in the shared session through
``SyncSessionManager`` on RedisStore or PostgresStore; at the end every key written and not
removed is there, and no removed key came back. The same proof through the ASGI middleware
and two uvicorn servers is ``test_multiprocess.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sessio import SyncSessionManager
from sessio.stores import Store

from ..stores import servers

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 4
COMMITS = 60


@pytest.fixture(
    params=[
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
async def shared(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Store, dict[str, Any]]]:
    if request.param == "redis":
        async with servers.redis_store() as store:
            yield store, {"kind": "redis", "url": servers.REDIS_URL, "prefix": store.prefix}
    else:
        async with servers.postgres_store() as store:
            spec = {"kind": "postgres", "url": servers.POSTGRES_URL, "schema": store.schema}
            yield store, spec


def test_processes_commit_deltas_to_one_session(shared: tuple[Store, dict[str, Any]]) -> None:
    store, spec = shared
    manager = SyncSessionManager(store)
    session = manager.load(None)
    session["seed"] = True
    token = manager.commit(session).token

    def args(i: int) -> str:
        return json.dumps({"name": f"p{i}", "token": token, "store": spec, "count": COMMITS})

    command = [sys.executable, "-m", "tests.distributed.worker"]
    workers = [
        subprocess.Popen(
            [*command, args(i)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    # A start barrier, not a wall-clock start time: on a loaded machine process start-up alone
    # can outlast any fixed lead, and then the runs would not overlap.
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline().strip() == "ready"
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write("go\n")
        worker.stdin.flush()
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    # The runs really overlapped in time.
    assert max(r["started"] for r in results) < min(r["ended"] for r in results)
    written = {k for r in results for k in r["written"]}
    removed = {k for r in results for k in r["removed"]}
    final = dict(manager.load(token))
    assert len(written) == PROCESSES * COMMITS
    assert set(final) == {"seed"} | (written - removed)
    assert all(final[k] == int(k.split("-")[1]) for k in written - removed)
