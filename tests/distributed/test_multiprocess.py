"""Two uvicorn servers, separate OS processes, share one RedisStore or PostgresStore.

Each server runs ``tests/distributed/app.py`` behind :class:`SessionMiddleware`. A session made
on one server is used on the other; many clients, each with its own cookie jar, fire parallel
requests that write different keys of their own session, alternating between the servers,
and end with every key in place and never a glimpse of another client's data; and a session
revoked through one server while the other holds it in a request stays revoked.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sessio.stores.postgres import PostgresStore
from sessio.stores.redis import RedisStore

from ..stores import servers
from ..stores.local_servers import free_port
from .app import POLICY, STORE_URL_ENV

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
COOKIE = POLICY.cookie.name
SERVERS = 2
CLIENTS = 20
PARALLEL = 10  # requests in flight at once per client
ROUNDS = 2
#: Bounds, never paces: how long a server may take to come up, and the whole of a test.
STARTUP_LIMIT = 30.0
TEST_LIMIT = 120.0


UVICORN = [sys.executable, "-m", "uvicorn", "tests.distributed.app:create", "--factory"]
UVICORN += ["--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"]


def _with_query(url: str, name: str, value: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{name}={value}"


@contextlib.contextmanager
def _namespace(kind: str) -> Iterator[str]:
    """A store URL under a fresh Redis prefix or PostgreSQL schema, removed afterwards."""
    if kind == "redis":
        servers.require_redis()
        prefix = servers.unique("sessio-mp") + ":"
        try:
            yield _with_query(servers.REDIS_URL, "prefix", prefix)
        finally:
            with RedisStore(servers.REDIS_URL, prefix=prefix) as store:
                store.clear_sync()
    else:
        servers.require_postgres()
        schema = servers.unique("sessio_mp")
        store = PostgresStore(servers.POSTGRES_URL, schema=schema)
        with servers.dropping(schema):
            try:
                store.create_schema_sync()
            finally:
                store.close_sync()
            yield _with_query(servers.POSTGRES_URL, "schema", schema)


@contextlib.contextmanager
def _uvicorn_servers(store_url: str, count: int, logs: Path) -> Iterator[list[str]]:
    """``count`` uvicorn processes serving the test app on ``store_url``; their base URLs."""
    env = {**os.environ, STORE_URL_ENV: store_url}
    started: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        urls = []
        for i in range(count):
            port = free_port()
            log = logs / f"server{i}.log"
            with log.open("wb") as out:  # a file, not a pipe: a full pipe would stall the server
                process = subprocess.Popen(
                    [*UVICORN, "--port", str(port)],
                    cwd=ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            started.append((process, log))
            urls.append(f"http://127.0.0.1:{port}")
        for (process, log), url in zip(started, urls, strict=True):
            _wait_until_up(process, log, url)
        yield urls
    finally:
        for process, _ in started:
            process.terminate()
        for process, _ in started:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_up(process: subprocess.Popen[bytes], log: Path, url: str) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"server {url} exited: {log.read_text(errors='replace')}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/health", timeout=1.0, trust_env=False).status_code == 200:
                return
        time.sleep(0.05)
    pytest.fail(f"server {url} did not come up in {STARTUP_LIMIT}s: {log.read_text()}")


@pytest.fixture(
    scope="module",
    params=[
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
)
def sites(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[str]]:
    logs = tmp_path_factory.mktemp(f"servers-{request.param}")
    with _namespace(request.param) as store_url, _uvicorn_servers(store_url, SERVERS, logs) as urls:
        yield urls


def _client() -> httpx.AsyncClient:
    return httpx.AsyncClient(trust_env=False, timeout=30.0)


async def _json(response: httpx.Response) -> Any:
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


# -- one session, two servers ---------------------------------------------------------------------


async def test_a_session_made_on_one_server_is_used_on_the_other(sites: list[str]) -> None:
    a, b = sites
    async with _client() as client:
        made = await _json(await client.get(f"{a}/csrf"))
        assert client.cookies.get(COOKIE)
        csrf = {"X-CSRF-Token": made["csrf"]}
        await _json(await client.post(f"{a}/put", json={"key": "from", "value": "a"}, headers=csrf))
        seen = await _json(await client.get(f"{b}/data"))
        assert seen["data"] == {"from": "a"}
        assert seen["pid"] != made["pid"]  # really another process
        await _json(await client.post(f"{b}/put", json={"key": "to", "value": "b"}, headers=csrf))
        assert (await _json(await client.get(f"{a}/data")))["data"] == {"from": "a", "to": "b"}


# -- many clients, parallel requests, alternating servers ---------------------------------------------


async def _one_client(n: int, sites: list[str]) -> set[int]:
    """Client ``n``: its own cookie jar, ROUNDS x PARALLEL writes of its own keys; the pids seen."""
    mine = f"c{n}-"
    expected: dict[str, str] = {}
    pids: set[int] = set()
    async with _client() as client:
        made = await _json(await client.get(f"{sites[n % SERVERS]}/csrf"))
        csrf = {"X-CSRF-Token": made["csrf"]}

        async def put(round_: int, i: int) -> None:
            key, value = f"{mine}{round_}-{i}", f"{mine}value-{round_}-{i}"
            site = sites[(n + i) % SERVERS]
            body = await _json(
                await client.post(f"{site}/put", json={"key": key, "value": value}, headers=csrf)
            )
            # Every key and value this client is shown is its own: no session was crossed.
            foreign = {
                k: v
                for k, v in body["data"].items()
                if not (k.startswith(mine) and str(v).startswith(mine))
            }
            assert foreign == {}, (n, foreign)
            assert body["data"][key] == value
            pids.add(body["pid"])

        for round_ in range(ROUNDS):
            await asyncio.gather(*(put(round_, i) for i in range(PARALLEL)))
            expected.update(
                (f"{mine}{round_}-{i}", f"{mine}value-{round_}-{i}") for i in range(PARALLEL)
            )
        for site in sites:
            assert (await _json(await client.get(f"{site}/data")))["data"] == expected
    return pids


async def test_parallel_clients_alternating_servers_keep_every_key_and_only_their_own(
    sites: list[str],
) -> None:
    results = await asyncio.wait_for(
        asyncio.gather(*(_one_client(n, sites) for n in range(CLIENTS))), TEST_LIMIT
    )
    assert len(set().union(*results)) == SERVERS  # both processes served the writes


# -- revoked on one server while the other holds it ------------------------------------------------


async def _until_held(admin: httpx.AsyncClient, site: str) -> None:
    deadline = time.monotonic() + TEST_LIMIT
    while (await _json(await admin.get(f"{site}/admin/held")))["waiting"] != 1:
        assert time.monotonic() < deadline, "the held request never arrived"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("then", ["write", "regenerate"])
async def test_a_session_revoked_while_another_server_holds_it_stays_revoked(
    sites: list[str], then: str
) -> None:
    a, b = sites
    user = servers.unique("ada")
    async with _client() as client, _client() as admin:
        made = await _json(await client.get(f"{a}/csrf"))
        logged_in = await _json(
            await client.post(
                f"{a}/login", json={"user": user}, headers={"X-CSRF-Token": made["csrf"]}
            )
        )
        token = client.cookies[COOKIE]
        vanished = (await _json(await admin.get(f"{a}/admin/events"))).get("vanished", 0)
        in_flight = asyncio.create_task(
            client.post(
                f"{a}/hold", json={"then": then}, headers={"X-CSRF-Token": logged_in["csrf"]}
            )
        )
        try:
            await _until_held(admin, a)  # server a has loaded the session and waits
            revoked = await _json(await admin.post(f"{b}/admin/revoke-all", json={"user": user}))
            assert revoked == {"revoked": 1}
            assert (await _json(await admin.post(f"{a}/admin/release")))["released"] == 1
            response = await asyncio.wait_for(in_flight, TEST_LIMIT)
        finally:
            in_flight.cancel()
        # The app's answer went out, and with it the order to forget the token.
        assert (await _json(response))["data"]["late"] is True
        assert COOKIE in response.headers["set-cookie"]
        assert "max-age=0" in response.headers["set-cookie"].lower()
        assert COOKIE not in client.cookies
        events = await _json(await admin.get(f"{a}/admin/events"))
        assert events["vanished"] == vanished + 1
        for site in sites:  # the old token names nothing on either server
            seen = await _json(
                await admin.get(f"{site}/data", headers={"Cookie": f"{COOKIE}={token}"})
            )
            assert (seen["user"], seen["data"]) == (None, {})
