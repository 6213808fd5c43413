"""RedisStore beyond the contract: round trips, layout, TTL, garbage, scripts and configuration."""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from sessio import Principal, SessionManager, SyncSessionManager
from sessio.errors import ConfigurationError, MissingDependency, RecordCorrupt, StoreUnavailable
from sessio.ids import new_session_id, store_key
from sessio.stores import store_from_url
from sessio.stores.base import (
    Create,
    PrincipalLimit,
    Rewrite,
    Rotate,
    SaveOutcome,
    Tombstone,
    Update,
)
from sessio.stores.redis import RedisStore

from . import servers
from .local_servers import RedisServer, redis_server

pytestmark = pytest.mark.redis


def key() -> str:
    return store_key(new_session_id())


def create(fields: dict[str, str], *, ttl: float = 3600, **kw: Any) -> Create:
    return Create(fields, time.time() + ttl, **kw)


def update(fields: dict[str, str], *, ttl: float = 3600, **kw: Any) -> Update:
    return Update(fields, time.time() + ttl, **kw)


def rewrite(fields: dict[str, str], *, ttl: float = 3600, **kw: Any) -> Rewrite:
    return Rewrite(fields, time.time() + ttl, **kw)


def rotate(old: str, fields: dict[str, str], *, ttl: float = 3600, **kw: Any) -> Rotate:
    return Rotate(old, fields, time.time() + ttl, **kw)


@pytest.fixture
async def store() -> AsyncIterator[RedisStore]:
    async with servers.redis_store() as s:
        yield s


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of our own, for server-wide counters and script flushes."""
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


# -- round trips ---------------------------------------------------------------------------------


class Meter:
    """Counts socket writes (one per round trip, client side) and, with ``MONITOR`` (server
    side), the commands clients sent; commands run inside scripts are left out."""

    def __init__(self, server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.server = server
        self.sends = 0
        for cls in (
            redis.connection.AbstractConnection,
            redis.asyncio.connection.AbstractConnection,
        ):
            original = cls.send_packed_command

            def counting(conn: Any, *args: Any, __original: Any = original, **kw: Any) -> Any:
                self.sends += 1
                return __original(conn, *args, **kw)

            monkeypatch.setattr(cls, "send_packed_command", counting)

    def _until(self, monitor: Any, marker: str) -> list[str]:
        seen = []
        while True:
            entry = monitor.next_command()
            if marker in entry["command"]:
                return seen
            if entry["client_type"] != "lua":
                seen.append(entry["command"].split()[0].lower())

    @contextmanager
    def measure(self, label: str, results: dict[str, tuple[int, dict[str, int]]]) -> Iterator[None]:
        """Record (round trips, {command: calls}) of the block under ``label``."""
        with self.server.client() as c, c.monitor() as monitor, self.server.client() as marker:
            marker.echo("meter-start")
            self._until(monitor, "meter-start")
            self.sends = 0
            yield
            sends = self.sends
            marker.echo("meter-end")
            commands: dict[str, int] = {}
            for name in self._until(monitor, "meter-end"):
                commands[name] = commands.get(name, 0) + 1
        results[label] = (sends, commands)


def _report(title: str, results: dict[str, tuple[int, dict[str, int]]]) -> None:
    print(f"\n{title}")
    for label, (trips, commands) in results.items():
        print(f"  {label:<44} round trips={trips}  server commands={commands}")


async def test_round_trips_per_operation(
    private: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with servers.redis_store(private.url) as store:
        # Connect and load the scripts first: the handshake is paid once per connection, and a
        # script's first run on a server once (NOSCRIPT, then EVAL).
        for w in (create({"d:a": "1"}, principal="user:w"), update({"d:a": "2"})):
            warm = key()
            store.save_sync(warm, create({}))
            await store.save(warm, create({}))
            store.save_sync(warm, w)
            await store.save(warm, w)
            store.delete_sync(warm)
            await store.delete(warm)
        meter = Meter(private, monkeypatch)
        results: dict[str, tuple[int, dict[str, int]]] = {}
        for mode in ("sync", "async"):
            k, k2 = key(), key()

            async def call(name: str, *args: Any, mode: str = mode) -> Any:
                if mode == "sync":
                    return getattr(store, name + "_sync")(*args)
                return await getattr(store, name)(*args)

            with meter.measure(f"{mode} create, anonymous", results):
                assert await call("save", k, create({"d:a": "1", "s:meta": "{}"}))
            with meter.measure(f"{mode} load (hit)", results):
                assert await call("load", k) is not None
            with meter.measure(f"{mode} load (miss)", results):
                assert await call("load", key()) is None
            with meter.measure(f"{mode} update", results):
                assert await call("save", k, update({"d:b": "2"}, removed={"d:a"}))
            with meter.measure(f"{mode} login: rotate + principal + limit + tombstone", results):
                stone = Tombstone(key(), {"s:successor": k2}, time.time() + 10)
                w = rotate(k, {"d:b": "2"}, principal="user:r", limit=PrincipalLimit(3))
                w = dataclasses.replace(w, tombstone=stone)
                assert await call("save", k2, w)
            with meter.measure(f"{mode} rotation of a revoked session (refused)", results):
                saved = await call("save", key(), rotate(k, {"d:b": "2"}, principal="user:r"))
                assert saved.outcome is SaveOutcome.MISSING
            with meter.measure(f"{mode} rewrite (resave)", results):
                assert await call("save", k2, rewrite({"d:b": "2"}, principal="user:r"))
            with meter.measure(f"{mode} update with principal", results):
                assert await call("save", k2, update({"d:c": "3"}, principal="user:r"))
            with meter.measure(f"{mode} delete", results):
                assert await call("delete", k2)
        _report("RedisStore (standalone) round trips:", results)
        for label, (trips, commands) in results.items():
            assert trips == 1, label
            assert sum(commands.values()) == 1, (label, commands)
            expected = "hgetall" if "load" in label else "evalsha"
            assert set(commands) == {expected}, (label, commands)


async def test_round_trips_through_the_manager(
    private: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with servers.redis_store(private.url) as store:
        manager = SessionManager(store)
        warm = await manager.load(None)
        warm["x"] = 1
        await manager.commit(warm)
        meter = Meter(private, monkeypatch)
        results: dict[str, tuple[int, dict[str, int]]] = {}
        with meter.measure("commit of a new session", results):
            token = (await manager.commit(_with(await manager.load(None), cart=[1]))).token
        with meter.measure("load", results):
            session = await manager.load(token)
        with meter.measure("commit of one changed key (delta)", results):
            session["cart"].append(2)
            await manager.commit(session)
        session = await manager.load(token)
        with meter.measure("commit of a login (rotation + index)", results):
            session.login(Principal("42"))
            token = (await manager.commit(session)).token
        _report("SessionManager on RedisStore, round trips:", results)
        assert all(trips == 1 for trips, _ in results.values()), results
        assert (await manager.load(token))["cart"] == [1, 2]


def _with(session: Any, **values: Any) -> Any:
    session.update(values)
    return session


def test_script_cache_flush_costs_one_extra_round_trip(
    private: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RedisStore(private.url, prefix=servers.unique("flush") + ":")
    try:
        k = key()
        store.save_sync(k, create({"d:a": "1"}))
        with private.client() as c:
            c.script_flush()
        meter = Meter(private, monkeypatch)
        results: dict[str, tuple[int, dict[str, int]]] = {}
        with meter.measure("save after SCRIPT FLUSH", results):
            store.save_sync(k, update({"d:b": "2"}))
        with meter.measure("next save", results):
            store.save_sync(k, update({"d:c": "3"}))
        _report("NOSCRIPT fallback:", results)
        assert results["save after SCRIPT FLUSH"][0] == 2
        assert set(results["save after SCRIPT FLUSH"][1]) == {"evalsha", "eval"}
        assert results["next save"][0] == 1
        assert dict(store.load_sync(k).fields) == {"d:a": "1", "d:b": "2", "d:c": "3"}
    finally:
        store.clear_sync()
        store.close_sync()


# -- layout and TTL ------------------------------------------------------------------------------


def test_layout_native_ttl_and_reserved_names(store: RedisStore) -> None:
    client = store._sync()
    k = key()
    fields = {"d:a": "1", "#e": "user #e", "##x": "two", "#p": "not the principal"}
    w = create(fields, principal="user:t")
    store.save_sync(k, w)
    name = f"{store.prefix}s:{{{k}}}"
    assert client.type(name) == b"hash"
    assert client.hget(name, "#p") == b"user:t"
    assert client.hget(name, "##e") == b"user #e"
    assert abs(client.pexpiretime(name) / 1000 - w.expires_at) < 0.01
    record = store.load_sync(k)
    assert dict(record.fields) == fields
    assert record.principal == "user:t"
    assert record.expires_at == w.expires_at
    store.save_sync(k, update({}, principal="user:t", removed={"#e", "##x"}))
    assert dict(store.load_sync(k).fields) == {"d:a": "1", "#p": "not the principal"}
    index = f"{store.prefix}p:{{user:t}}"
    assert client.zrange(index, 0, -1) == [k.encode()]
    assert client.pexpiretime(index) / 1000 >= client.zscore(index, k)


def test_index_prunes_expired_and_stale_members(store: RedisStore) -> None:
    client = store._sync()
    index = f"{store.prefix}p:{{user:p}}"
    moved, kept = key(), key()
    store.save_sync(moved, create({"d:a": "1"}, principal="user:p"))
    store.save_sync(kept, create({"d:a": "1"}, principal="user:p"))
    client.zadd(index, {"expired-member": time.time() - 10})
    store.save_sync(moved, update({}, principal="user:q"))  # changes hands: leaves the index
    assert client.zcard(index) == 2
    assert [r.key for r in store.principal_records_sync("user:p")] == [kept]
    assert client.zrange(index, 0, -1) == [kept.encode()]
    store.delete_sync(kept)
    assert store.principal_records_sync("user:p") == []
    assert client.exists(index) == 0


def test_an_expiring_write_deletes_at_once(store: RedisStore) -> None:
    k = key()
    store.save_sync(k, create({"d:a": "1"}, principal="user:e"))
    store.save_sync(k, update({}, ttl=-1, principal="user:e"))
    assert store._sync().exists(f"{store.prefix}s:{{{k}}}") == 0


# -- garbage -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(("set", b"\xff\xfe"), id="wrong-type"),
        pytest.param(("hset", {"#e": "2e9", "d:a": b"\xff\xfe"}), id="non-utf8-value"),
        pytest.param(("hset", {"#e": "2e9", b"d:\xff": "1"}), id="non-utf8-name"),
        pytest.param(("hset", {"d:a": "1"}), id="no-expiry"),
        pytest.param(("hset", {"#e": "soon", "d:a": "1"}), id="bad-expiry"),
        pytest.param(("hset", {"#e": "inf", "d:a": "1"}), id="infinite-expiry"),
    ],
)
async def test_garbage_is_record_corrupt(store: RedisStore, garbage: tuple[str, Any]) -> None:
    k = key()
    name = store.record_key(k)
    command, value = garbage
    client = store._sync()
    if command == "set":
        client.set(name, value)
    else:
        client.hset(name, mapping=value)
    with pytest.raises(RecordCorrupt) as info:
        store.load_sync(k)
    assert info.value.code == "RECORD_CORRUPT"
    with pytest.raises(RecordCorrupt):
        await store.load(k)


def test_a_delta_leaves_garbage_alone_and_a_replace_overwrites_it(store: RedisStore) -> None:
    k = key()
    name = store.record_key(k)
    client = store._sync()
    client.set(name, b"garbage")
    store.save_sync(k, update({"d:a": "1"}))
    assert client.get(name) == b"garbage"
    store.save_sync(k, create({"d:a": "1"}, principal="user:g"))
    assert dict(store.load_sync(k).fields) == {"d:a": "1"}


def test_garbage_index_heals(store: RedisStore) -> None:
    client = store._sync()
    client.set(store.index_key("user:h"), b"not a sorted set")
    assert store.principal_records_sync("user:h") == []
    k = key()
    store.save_sync(k, create({"d:a": "1"}, principal="user:h"))
    assert [r.key for r in store.principal_records_sync("user:h")] == [k]


def test_many_fields_in_one_write(store: RedisStore) -> None:
    k = key()
    fields = {f"d:{i}": str(i) for i in range(10_000)}
    store.save_sync(k, create(fields))
    store.save_sync(k, update({"d:new": "1"}, removed=set(list(fields)[:9_000])))
    assert len(store.load_sync(k).fields) == 1_001


# -- configuration -------------------------------------------------------------------------------


def test_store_from_url_and_options() -> None:
    store = store_from_url("redis://u:hunter2@127.0.0.1:6379/3", prefix="app:")
    assert isinstance(store, RedisStore)
    assert store.prefix == "app:"
    assert (store.cluster, store.atomic) == (False, True)
    assert "hunter2" not in repr(store)
    cluster = store_from_url("redis+cluster://127.0.0.1:7000")
    assert isinstance(cluster, RedisStore)
    assert (cluster.cluster, cluster.atomic) == (True, False)
    tagged = RedisStore("redis+cluster://127.0.0.1:7000", prefix="{app}:")
    assert tagged.atomic


@pytest.mark.parametrize("prefix", ["a{b:", "a}b:", "{}:", ""])
def test_a_prefix_that_is_empty_or_holds_a_partial_hash_tag_is_refused(prefix: str) -> None:
    with pytest.raises(ConfigurationError):
        RedisStore(prefix=prefix)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6379/0",
        "redis://127.0.0.1:notaport/0",
        "redis://:s3cret-pw@127.0.0.1:6379/0?socket_timeout=soon",
        "redis://127.0.0.1:6379/0?password=s3cret-pw&max_connections=-1",
    ],
)
def test_a_bad_url_is_a_configuration_error_that_hides_the_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        store_from_url(url)
    assert "s3cret-pw" not in str(info.value)
    assert info.value.code == "CONFIGURATION_ERROR"


@pytest.mark.parametrize(
    "options",
    [
        {"socket_timeout": 0},
        {"connect_timeout": -1},
        {"pool_timeout": float("nan")},
        {"max_connections": 0},
        {"retries": -1},
        {"no_such_option": 1},
    ],
)
def test_bad_options_are_configuration_errors(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        RedisStore.from_url("redis://127.0.0.1:6379/0", **options)


@pytest.mark.slow
async def test_a_password_never_shows_in_repr_or_errors(tmp_path: Path) -> None:
    """A wrong password, given in the URL or as ?password=: the error says so without it."""
    with redis_server(tmp_path / "auth") as server:
        with server.client() as admin:
            admin.config_set("requirepass", "right-pw")
        for url in (
            f"redis://user:s3cret-pw@127.0.0.1:{server.port}/0",
            f"redis://127.0.0.1:{server.port}/0?password=s3cret-pw",
        ):
            store = RedisStore(url, socket_timeout=1, connect_timeout=1)
            try:
                assert "s3cret-pw" not in repr(store)
                for call in (store.load_sync, store.page_sync):
                    with pytest.raises(StoreUnavailable) as info:
                        call(key()) if call == store.load_sync else call()
                    assert "s3cret-pw" not in str(info.value)
                    assert "s3cret-pw" not in repr(info.value.evidence)
                with pytest.raises(StoreUnavailable) as caught:
                    await store.save(key(), create({"d:a": "1"}))
                assert "s3cret-pw" not in str(caught.value)
            finally:
                await store.close()


def test_clear_touches_only_the_stores_own_keys(store: RedisStore) -> None:
    """Keys that merely start with the prefix (another app's, a look-alike) survive clear()."""
    client = store._sync()
    p = store.prefix
    foreign = [p + "settings", p + "s:not-braced", p + "x:{a}", p + "s", p + "sx:{a}"]
    for name in foreign:
        client.set(name, b"theirs")
    try:
        store.save_sync(key(), create({"d:a": "1"}, principal="user:c", limit=PrincipalLimit(5)))
        store.save_sync(key(), create({"d:a": "1"}))
        assert store.count_sync() == 2
        assert store.clear_sync() == 2
        assert store.count_sync() == 0
        assert [client.get(name) for name in foreign] == [b"theirs"] * len(foreign)
        assert sorted(n.decode() for n in client.scan_iter(match=p + "*")) == sorted(foreign)
    finally:
        client.delete(*foreign)


def test_a_page_lists_records_only(store: RedisStore) -> None:
    keys = {key() for _ in range(7)}
    for k in keys:
        store.save_sync(k, create({"d:a": "1"}, principal="user:pg", limit=PrincipalLimit(50)))
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        page = store.page_sync(cursor, 2)
        assert len(page.records) <= 2
        seen += [r.key for r in page.records]
        cursor = page.cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(keys)
    with pytest.raises(ConfigurationError):
        store.page_sync("not-a-cursor")


def test_mixing_cluster_and_standalone_clients_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        RedisStore("redis+cluster://127.0.0.1:7000", client=redis.Redis())


async def test_clients_passed_in_are_used_and_left_open() -> None:
    servers.require_redis()
    sync_client = redis.Redis.from_url(servers.REDIS_URL)
    async_client = redis.asyncio.Redis.from_url(servers.REDIS_URL)
    store = RedisStore(
        client=sync_client, async_client=async_client, prefix="t-" + new_session_id()
    )
    try:
        k = key()
        store.save_sync(k, create({"d:a": "1"}))
        assert (await store.load(k)) is not None
        await store.close()
        assert sync_client.ping()
        assert await async_client.ping()
    finally:
        store.clear_sync()
        sync_client.close()
        await async_client.aclose()


async def test_one_client_serves_only_its_own_twin() -> None:
    servers.require_redis()
    client = redis.Redis.from_url(servers.REDIS_URL)
    store = RedisStore(client=client, prefix="t-" + new_session_id())
    try:
        assert store.load_sync(key()) is None
        with pytest.raises(ConfigurationError, match="async_client"):
            await store.load(key())
    finally:
        client.close()


def test_missing_redis_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(MissingDependency, match=r"sessio\[redis\]"):
        RedisStore()


def test_sync_manager_end_to_end(store: RedisStore, tmp_path: Path) -> None:
    manager = SyncSessionManager(store)
    session = manager.load(None)
    session.login(Principal("7"))
    token = manager.commit(session).token
    assert [i.key for i in manager.sessions_of("7")] == [store_key(token)]
    assert manager.revoke_all("7") == 1
    assert manager.load(token).is_new


def test_url_query_carries_the_prefix() -> None:
    store = store_from_url("redis://127.0.0.1:6379/0?prefix=app:&socket_timeout=1")
    assert isinstance(store, RedisStore)
    assert store.prefix == "app:"
    assert store.url == "redis://127.0.0.1:6379/0?socket_timeout=1"
    cluster = store_from_url("redis+cluster://h:7000?prefix=x:")
    assert isinstance(cluster, RedisStore)
    assert (cluster.cluster, cluster.prefix) == (True, "x:")
    assert RedisStore("rediss+cluster://h:7000").cluster
    tls = store_from_url("rediss+cluster://h:7000?prefix=t:")
    assert isinstance(tls, RedisStore)
    assert (tls.cluster, tls.prefix, tls._client_url()) == (True, "t:", "rediss://h:7000")


def test_the_cli_on_redis(capsys: pytest.CaptureFixture[str]) -> None:
    from sessio.cli import main

    servers.require_redis()
    prefix = servers.unique("cli") + ":"
    url = f"{servers.REDIS_URL}?prefix={prefix}"
    store = RedisStore(servers.REDIS_URL, prefix=prefix)
    try:
        manager = SyncSessionManager(store)
        for _ in range(2):
            session = manager.load(None)
            session.login(Principal("cli"))
            manager.commit(session)
        assert main(["stats", "--store", url]) == 0
        assert "live: 2" in capsys.readouterr().out
        assert main(["revoke", "--principal", "cli", "--store", url]) == 0
        assert "revoked 2 session(s)" in capsys.readouterr().out
        assert main(["purge", "--store", url]) == 0
        assert main(["migrate", "--store", url]) == 0
        assert "needs no migration" in capsys.readouterr().out
    finally:
        store.clear_sync()
        store.close_sync()


async def test_a_prefix_with_glob_characters_clears_only_itself() -> None:
    """``SCAN MATCH`` takes a glob: the prefix is escaped, so ``a*`` never matches ``ab``."""
    tag = servers.unique("g")
    async with servers.redis_store(prefix=f"{tag}[*]?:") as store:
        client = store._sync()
        look_alike = f"{tag}*Z:s:{{k}}"  # what the unescaped glob would match
        client.set(look_alike, b"theirs")
        try:
            store.save_sync(key(), create({"d:a": "1"}))
            assert store.count_sync() == 1
            assert await store.clear() == 1
            assert client.get(look_alike) == b"theirs"
        finally:
            client.delete(look_alike)
