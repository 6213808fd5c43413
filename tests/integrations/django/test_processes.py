"""Two Django worker processes on one Redis, many parallel writers to one session: nothing lost."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ...stores.local_servers import free_port
from ...stores.servers import REDIS_URL, require_redis, unique

httpx = pytest.importorskip("httpx")

pytestmark = [pytest.mark.slow, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[3]
WRITERS = 24


@pytest.fixture
def workers() -> Iterator[list[str]]:
    require_redis()
    prefix = unique("dj-mp") + ":"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "SESSIO_STORE": REDIS_URL,
        "SESSIO_PREFIX": prefix,
    }
    procs, urls = [], []
    try:
        for _ in range(2):
            port = free_port()
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.integrations.django.worker", str(port)],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            procs.append(proc)
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
            urls.append(f"http://127.0.0.1:{port}")
        yield urls
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()
        from sessio.stores.redis import RedisStore

        with RedisStore(REDIS_URL, prefix=prefix) as leftovers:
            leftovers.clear_sync()


def test_parallel_writers_in_two_processes_lose_nothing(workers: list[str]) -> None:
    clients = [httpx.Client(base_url=url, timeout=20) for url in workers]
    try:
        first = clients[0].get("/put/start/1/")
        cookie = first.cookies["sessionid"]
        barrier = threading.Barrier(WRITERS, timeout=20)
        failures: list[BaseException] = []
        pids: set[int] = set()

        def write(i: int) -> None:
            try:
                barrier.wait()
                response = clients[i % 2].get(
                    f"/put/k{i}/v{i}/", headers={"Cookie": f"sessionid={cookie}"}
                )
                assert response.status_code == 200
                assert response.cookies["sessionid"] == cookie  # the same session, re-sent
                pids.add(response.json()["pid"])
            except BaseException as exc:  # reported below, not lost with the thread
                failures.append(exc)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(WRITERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert failures == []
        assert len(pids) == 2  # both processes served writers
        final = clients[1].get("/show/", headers={"Cookie": f"sessionid={cookie}"}).json()
        assert {k: v for k, v in final.items() if k.startswith("k")} == {
            f"k{i}": f"v{i}" for i in range(WRITERS)
        }
        assert final["start"] == "1"
    finally:
        for client in clients:
            client.close()
