"""RedisStore over Redis Sentinel: URLs, the store's key behaviours, and failovers under load.

Private servers only (:func:`~tests.stores.local_servers.redis_sentinel`: a master, a replica,
one sentinel, ``down-after-milliseconds`` 1000). A failover test runs logins and writes while
the master is frozen (SIGSTOP) or handed over (``SENTINEL FAILOVER``) and checks that every
failed call is StoreUnavailable, that the store serves again within :data:`FAILOVER_BOUND`,
and that no login is lost that replication had carried to the replica before the fault (a
``WAIT`` proves it). Logins acknowledged after that point but before the fault may be lost:
Redis replicates asynchronously; the tests count them and print the failover time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from sessio.errors import ConfigurationError, StoreUnavailable
from sessio.ids import new_session_id, store_key
from sessio.stores.base import Create, PrincipalLimit, Rotate, Saved, SaveOutcome, Tombstone, Update
from sessio.stores.redis import RedisStore
from sessio.stores.url import store_from_url

from . import servers
from .local_servers import RedisServer, SentinelSet, redis_sentinel

#: How long after the fault the store must serve again: sentinel's down-after (1 s) plus its
#: election and promotion (about 1-2 s) plus one socket timeout, with room for a loaded CI box.
FAILOVER_BOUND = 30.0


def key() -> str:
    return store_key(new_session_id())


def at(ttl: float) -> float:
    return time.time() + ttl


# -- configuration (no servers) ------------------------------------------------------------------


def test_sentinel_urls_and_pairs_name_the_same_store() -> None:
    store = store_from_url("redis+sentinel://h1:26380,[::1],h2/cache/3?prefix=app:")
    assert isinstance(store, RedisStore)
    assert (store.prefix, store.cluster, store.atomic) == ("app:", False, True)
    built = RedisStore.sentinel([("h1", 26380), ("::1", 26379)], "cache", db=3, tls=True)
    assert built.url == "rediss+sentinel://h1:26380,[::1]:26379/cache/3"


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://h1:26379/",  # no service
        "redis+sentinel://h1:26379/a/b/c",
        "redis+sentinel://h1:26379/svc/x",
        "redis+sentinel://h1:0/svc",
        "redis+sentinel://h1:99999/svc",
        "redis+sentinel://h1:2x/svc",
        "redis+sentinel://,/svc",
        "redis+sentinel://h\x00st/svc",
        "redis+sentinel://h1/sv%20c",
        "redis+sentinel://h1/svc?socket_timeout=soon",
        "redis+sentinel://[/svc",
        "redis+sentinel://" + "h," * 5000 + "/svc",
    ],
)
def test_hostile_sentinel_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError):
        store_from_url(url)


@pytest.mark.parametrize(
    "args",
    [([],), ("h1:26379",), ([("h1", "26379")],), ([("h1", 70000)],), ([("h1", 1)], "a b")],
)
def test_bad_sentinel_arguments_are_configuration_errors(args: tuple[Any, ...]) -> None:
    with pytest.raises(ConfigurationError):
        RedisStore.sentinel(*args)


def test_passwords_never_show() -> None:
    url = "redis+sentinel://u:hunter2@h1:26379/svc/0?sentinel_password=swordfish"
    store = store_from_url(url)
    assert "hunter2" not in repr(store)
    assert "swordfish" not in repr(store)
    with pytest.raises(ConfigurationError) as caught:
        store_from_url("redis+sentinel://u:hunter2@h1:26379/svc/x?sentinel_password=swordfish")
    assert "hunter2" not in str(caught.value)
    assert "swordfish" not in str(caught.value)


# -- a sentinel set shared by the key behaviours --------------------------------------------------


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSet]:
    with redis_sentinel(tmp_path_factory.mktemp("sentinel")) as started:
        yield started


@pytest.fixture
async def store(watched: SentinelSet) -> AsyncIterator[RedisStore]:
    options = {"prefix": servers.unique("sn") + ":", "socket_timeout": 1.0}
    built = RedisStore.sentinel(watched.addresses, watched.service, **options)
    try:
        yield built
    finally:
        built.clear_sync()
        await built.close()


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_key_behaviours_through_the_sentinels(store: RedisStore, mode: str) -> None:
    async def call(name: str, *args: Any) -> Any:
        if mode == "sync":
            return getattr(store, name + "_sync")(*args)
        return await getattr(store, name)(*args)

    old, new, other = key(), key(), key()
    assert await call("save", other, Create({"d:a": "0"}, at(100), "user:s"))
    assert await call("save", old, Create({"d:a": "1"}, at(3600)))
    assert (await call("save", old, Create({}, at(60)))).outcome is SaveOutcome.EXISTS
    assert await call("save", old, Update({"d:b": "2"}, at(3600)))
    stone = Tombstone(key(), {"s:successor": new}, at(10))
    login = Rotate(old, {"d:a": "1"}, at(3600), "user:s", PrincipalLimit(1), stone)
    assert await call("save", new, login) == Saved(SaveOutcome.APPLIED, (other,))
    assert await call("load", old) is None
    assert (await call("load", new)).fields == {"d:a": "1"}
    assert await call("exists", stone.key)
    assert [r.key for r in await call("principal_records", "user:s")] == [new]
    assert await call("count") == 2
    assert await call("delete_principal_records", "user:s") == [new]
    assert await call("delete", stone.key)
    assert await call("count") == 0


@pytest.mark.redis
@pytest.mark.slow
async def test_two_parallel_updates_of_one_session_both_land(store: RedisStore) -> None:
    k = key()
    assert await store.save(k, Create({"d:n": "0"}, at(3600)))
    first, second = await asyncio.gather(
        store.save(k, Update({"d:a": "1"}, at(3600))),
        asyncio.to_thread(store.save_sync, k, Update({"d:b": "2"}, at(3600))),
    )
    assert first
    assert second
    record = await store.load(k)
    assert record is not None
    assert record.fields == {"d:n": "0", "d:a": "1", "d:b": "2"}


@pytest.mark.redis
@pytest.mark.slow
async def test_the_pool_bound_holds_on_the_master(watched: SentinelSet) -> None:
    name = servers.unique("pool")
    store = RedisStore.sentinel(
        watched.addresses,
        watched.service,
        prefix=name + ":",
        max_connections=5,
        pool_timeout=10,
        client_options={"client_name": name},
    )
    seen: list[int] = []
    with watched.servers()[0].client() as admin:

        async def load(i: int) -> None:
            await store.load(key())
            if i % 20 == 0:
                seen.append(sum(1 for c in admin.client_list() if c.get("name") == name))

        try:
            await asyncio.wait_for(asyncio.gather(*(load(i) for i in range(200))), 60)
        finally:
            await store.close()
    assert seen
    assert max(seen) <= 5


# -- failover under load ---------------------------------------------------------------------------


#: The server-side bound on what a forced failover loses: the old master refuses writes once
#: its replica has not acknowledged for a second (it stopped following when it was promoted).
MIN_REPLICAS = ("--min-replicas-to-write", "1", "--min-replicas-max-lag", "1")


@pytest.fixture
def fresh(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SentinelSet]:
    options = getattr(request, "param", ())
    with redis_sentinel(tmp_path, master_options=options) as started:
        yield started


def replicated(watched: SentinelSet) -> None:
    """Return once the replica holds every write the master acknowledged so far."""
    with watched.servers()[0].client() as c:
        c.set("sentinel-test:marker", "1")  # WAIT counts from this client's own last write
        assert c.execute_command("WAIT", 1, 5000) == 1


def force_failover(watched: SentinelSet, old: RedisServer, deadline: float) -> None:
    """``SENTINEL FAILOVER``, again if a busy machine made the sentinel give it up."""
    while time.monotonic() < deadline:
        with watched.sentinels[0].client() as c:
            try:
                c.execute_command("SENTINEL", "FAILOVER", watched.service)
            except redis.ResponseError as exc:  # INPROG: one is under way; NOGOODSLAVE: wait
                if not str(exc).startswith(("INPROG", "NOGOODSLAVE")):
                    raise
        until = min(deadline, time.monotonic() + 10)
        while time.monotonic() < until:
            if watched.master_port() != old.port:
                return
            time.sleep(0.05)
    log = (watched.sentinels[0].directory / "sentinel.log").read_text()[-3000:]
    raise AssertionError(f"no failover; the sentinel's log ends:\n{log}")


def following(old: RedisServer, deadline: float) -> float:
    """When the old master took the role of replica (from then on it refuses writes)."""
    while time.monotonic() < deadline:
        with old.client() as c:
            if c.info("replication")["role"] == "slave":
                return time.monotonic()
        time.sleep(0.05)
    raise AssertionError("the old master never followed the new one")


class Loop:
    """Logins (a Rotate with a principal and a tombstone) and writes, counted as they land.

    Each login's tombstone lives an hour under its own key, so that it is still there at the
    end proves the login reached the server that serves after the failover."""

    def __init__(self, store: RedisStore) -> None:
        self.store = store
        self.current = key()
        self.acked: list[tuple[float, str, str]] = []  # (when, new key, tombstone key)
        self.failures: list[BaseException] = []
        self.first_failure: float | None = None
        self.recovered: float | None = None

    def _writes(self) -> tuple[str, Rotate, Update]:
        new = key()
        stone = Tombstone(key(), {"s:successor": new}, at(3600))
        fields = {"d:n": str(len(self.acked))}
        login = Rotate(self.current, fields, at(3600), "user:f", None, stone)
        return new, login, Update({"d:w": "1"}, at(3600), "user:f")

    def step_sync(self) -> None:
        new, login, write = self._writes()
        try:
            if not self.store.exists_sync(self.current):
                self.store.save_sync(self.current, Create({}, at(3600), "user:f"))
            saved = self.store.save_sync(new, login)
            self.store.save_sync(new, write)
        except Exception as exc:
            self._failed(exc)
            time.sleep(0.01)  # an outage is no reason to spin on two shared cores
            return
        self._landed(new, login, saved)

    async def step(self) -> None:
        new, login, write = self._writes()
        try:
            if not await self.store.exists(self.current):
                await self.store.save(self.current, Create({}, at(3600), "user:f"))
            saved = await self.store.save(new, login)
            await self.store.save(new, write)
        except Exception as exc:
            self._failed(exc)
            await asyncio.sleep(0.01)
            return
        self._landed(new, login, saved)

    def _failed(self, exc: BaseException) -> None:
        self.failures.append(exc)
        if self.first_failure is None:
            self.first_failure = time.monotonic()
        self.current = key()  # the old session's fate is unknown: start a new one

    def _landed(self, new: str, login: Rotate, saved: Saved) -> None:
        assert saved.outcome is SaveOutcome.APPLIED, saved
        assert login.tombstone is not None
        self.acked.append((time.monotonic(), new, login.tombstone.key))
        self.current = new
        if self.first_failure is not None and self.recovered is None:
            self.recovered = time.monotonic()

    def check(self, fault_at: float, safe_before: float, settled: float) -> int:
        """Assert the failover's guarantees: every failure a StoreUnavailable, every login
        acknowledged before ``safe_before`` (replicated) or after ``settled`` (the new master
        alone takes writes) still there, the live session whole. The logins lost between."""
        assert all(isinstance(f, StoreUnavailable) for f in self.failures), self.failures
        kept = [s for t, _, s in self.acked if t <= safe_before or t >= settled]
        window = [s for t, _, s in self.acked if safe_before < t < settled]
        assert kept
        assert [s for s in kept if not self.store.exists_sync(s)] == []
        live = self.store.load_sync(self.current)
        assert live is not None
        assert live.fields["d:w"] == "1"
        assert live.principal == "user:f"
        lost = sum(1 for s in window if not self.store.exists_sync(s))
        first = "none" if self.first_failure is None else f"{self.first_failure - fault_at:.2f}s"
        served = "-" if self.recovered is None else f"{self.recovered - fault_at:.2f}s"
        print(
            f"\nfailover: first failure {first}, served again after a failure {served}, settled {settled - fault_at:.2f}s after the"
            f" fault; {len(self.failures)} calls failed, all StoreUnavailable; {len(self.acked)}"
            f" logins acknowledged, {len(window)} after the last WAIT and before it settled,"
            f" {lost} of those lost"
        )
        return lost


@pytest.mark.redis
@pytest.mark.slow
def test_a_frozen_master_fails_over_under_sync_logins(fresh: SentinelSet) -> None:
    store = RedisStore.sentinel(
        fresh.addresses, fresh.service, prefix="f:", socket_timeout=0.5, connect_timeout=0.5
    )
    loop = Loop(store)
    stop = threading.Event()

    def run() -> None:
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            loop.step_sync()

    worker = threading.Thread(target=run)
    worker.start()
    old = fresh.servers()[0]
    try:
        time.sleep(0.5)
        replicated(fresh)
        safe_before = fault_at = time.monotonic()
        old.freeze()
        deadline = time.monotonic() + FAILOVER_BOUND
        while loop.recovered is None and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # a few more logins on the new master
    finally:
        stop.set()
        worker.join(60)
    try:
        assert fresh.master_port() != old.port
        assert loop.failures, "the frozen master never showed"
        assert loop.recovered is not None, "the store never served again"
        assert loop.recovered - fault_at < FAILOVER_BOUND
        loop.check(fault_at, safe_before, loop.recovered)
    finally:
        store.close_sync()


@pytest.mark.redis
@pytest.mark.slow
@pytest.mark.parametrize("fresh", [(), MIN_REPLICAS], ids=["plain", "min-replicas"], indirect=True)
async def test_a_sentinel_failover_under_async_logins(fresh: SentinelSet) -> None:
    store = RedisStore.sentinel(
        fresh.addresses, fresh.service, prefix="f:", socket_timeout=0.5, connect_timeout=0.5
    )
    loops = [Loop(store) for _ in range(4)]  # four sessions, each logging in again and again
    stop = asyncio.Event()

    async def run(loop: Loop) -> None:
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            await loop.step()

    workers = [asyncio.create_task(run(loop)) for loop in loops]
    old = fresh.servers()[0]
    try:
        await asyncio.sleep(0.5)
        await asyncio.to_thread(replicated, fresh)
        safe_before = fault_at = time.monotonic()
        await asyncio.to_thread(force_failover, fresh, old, fault_at + FAILOVER_BOUND)
        settled = await asyncio.to_thread(following, old, fault_at + FAILOVER_BOUND)
        await asyncio.sleep(1)  # the loops go on against the new master
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers), 60)
    try:
        assert fresh.master_port() != old.port
        for loop in loops:
            loop.check(fault_at, safe_before, settled)
            assert any(t > settled for t, _, _ in loop.acked)
            if loop.recovered is not None:
                assert loop.recovered - fault_at < FAILOVER_BOUND
    finally:
        await store.close()
