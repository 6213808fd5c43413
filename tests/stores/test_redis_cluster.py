"""The store contract and the cluster protocol against a local Redis Cluster of 3 masters.

The cluster (loopback ports, a temporary directory) starts once for this module and is killed
at its end. Every test of the public contract kit (:class:`sessio.testing.StoreContract`) runs twice: with the default prefix (each session and each
index in its own slot: the ordered cluster protocol) and with a hash-tagged prefix (every key
in one slot: the atomic protocol). Without ``redis-server`` the module skips (fails under CI).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from sessio.ids import new_session_id, store_key
from sessio.stores import Store, _redis_lua_cluster
from sessio.stores.base import PrincipalLimit, SaveOutcome, Tombstone
from sessio.stores.redis import RedisStore
from sessio.testing import StoreContract

from . import servers
from .local_servers import RedisServer, redis_cluster
from .test_redis import create, rewrite, rotate, update

pytestmark = [pytest.mark.redis, pytest.mark.slow]


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    with redis_cluster(tmp_path_factory.mktemp("cluster")) as started:
        yield started


@pytest.fixture(scope="module")
def cluster_url(nodes: list[RedisServer]) -> str:
    return f"redis+cluster://127.0.0.1:{nodes[0].port}"


class TestClusterContract(StoreContract):
    """The whole store contract (sessio.testing), on the cluster this module starts."""

    @pytest.fixture(params=["cluster", "cluster-tagged"])
    async def store(self, request: pytest.FixtureRequest, cluster_url: str) -> AsyncIterator[Store]:
        tagged = request.param == "cluster-tagged"
        prefix = "{" + servers.unique("t") + "}:" if tagged else servers.unique("t") + ":"
        async with servers.redis_store(cluster_url, prefix=prefix) as store:
            assert store.cluster
            assert store.atomic is tagged
            yield store

    async def corrupt(self, store: Store, key: str) -> None:
        await servers.corrupt_redis(store, key)

    def native_ttl(self, store: Store) -> bool:
        return True

    def atomic(self, store: Store) -> bool:
        # Keys in many slots: delete_principal_records is documented as not atomic.
        assert isinstance(store, RedisStore)
        return store.atomic


# -- the cluster protocol --------------------------------------------------------------------------


def key() -> str:
    return store_key(new_session_id())


@pytest.fixture
async def cstore(cluster_url: str) -> AsyncIterator[RedisStore]:
    async with servers.redis_store(cluster_url) as store:
        yield store


def test_sessions_spread_over_every_master(cstore: RedisStore, nodes: list[RedisServer]) -> None:
    for _ in range(60):
        cstore.save_sync(key(), create({"d:a": "1"}))
    per_node = []
    for node in nodes:
        with node.client() as c:
            per_node.append(sum(1 for _ in c.scan_iter(match=cstore.prefix + "s:*")))
    assert sum(per_node) == 60
    assert all(n > 0 for n in per_node), per_node
    assert cstore.count_sync() == 60
    walked = []
    cursor = None
    for _ in range(100):
        page = cstore.page_sync(cursor, 7)
        walked += [r.key for r in page.records]
        if (cursor := page.cursor) is None:
            break
    assert len(walked) == len(set(walked)) == 60


class Batches:
    """Counts the store's round trips (batches; one batch may go to several nodes at once)."""

    def __init__(self, store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.log: list[list[str]] = []
        original = store._io.exec_sync

        def counting(batch: list[Any]) -> list[Any]:
            self.log.append([c.script.name if c.script else c.args[0] for c in batch])
            return original(batch)

        monkeypatch.setattr(store._io, "exec_sync", counting)

    def take(self) -> list[list[str]]:
        log, self.log = self.log, []
        return log


def test_round_trips_and_order_on_a_cluster(
    cstore: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    anonymous, user = key(), key()
    cstore.save_sync(anonymous, create({"d:a": "1"}))  # connect, load scripts
    batches = Batches(cstore, monkeypatch)
    seen: dict[str, list[list[str]]] = {}
    cstore.save_sync(anonymous, update({"d:b": "2"}))
    seen["update, anonymous"] = batches.take()
    cstore.load_sync(anonymous)
    seen["load"] = batches.take()
    stone = Tombstone(key(), {"s:successor": user}, time.time() + 10)
    login = rotate(anonymous, {"d:b": "2"}, ttl=600, principal="user:c", tombstone=stone)
    assert cstore.save_sync(user, login)
    seen["login: rotate + principal + tombstone"] = batches.take()
    refused = cstore.save_sync(key(), login)  # its superseded record is gone now
    assert refused.outcome is SaveOutcome.MISSING
    seen["rotation of a revoked session (refused, undone)"] = batches.take()
    assert cstore.save_sync(user, rewrite({"d:b": "2"}, ttl=600, principal="user:c"))
    seen["rewrite (resave)"] = batches.take()
    cstore.save_sync(user, update({"d:c": "3"}, ttl=900, principal="user:c"))
    seen["update with principal, within the filed score"] = batches.take()
    cstore.save_sync(user, update({"d:c": "3"}, ttl=86_400, principal="user:c"))
    seen["update with principal, past the filed score"] = batches.take()
    cstore.principal_records_sync("user:c")
    seen["principal_records"] = batches.take()
    other = key()
    limited = create({}, principal="user:c", limit=PrincipalLimit(1))
    assert cstore.save_sync(other, limited).evicted == (user,)
    seen["create past the limit (evicts one)"] = batches.take()
    print("\nRedisStore on a Redis Cluster, round trips (batches) per operation:")
    for label, log in seen.items():
        print(f"  {label:<48} {len(log)}: {log}")
    assert seen["update, anonymous"] == [["delta"]]
    assert seen["load"] == [["HGETALL"]]
    # Filed first; the record (provisional) and tombstone before the superseded record is
    # taken over; then the record gets its lifetime.
    assert seen["login: rotate + principal + tombstone"] == [
        ["register"],
        ["save", "put"],
        ["claim"],
        ["PEXPIREAT", "put"],
    ]
    # The superseded record was gone: what was written is undone.
    assert seen["rotation of a revoked session (refused, undone)"] == [
        ["register"],
        ["save", "put"],
        ["claim"],
        ["DEL", "drop", "ZREM"],
    ]
    assert seen["rewrite (resave)"] == [["save"]]
    assert seen["update with principal, within the filed score"] == [["save"]]
    assert seen["update with principal, past the filed score"] == [
        ["save"],
        ["register"],
        ["save"],
    ]
    # Past the limit the index asks for the others' records to be read first (none here: the
    # one other was filed within the minute, so it counts unread).
    assert seen["create past the limit (evicts one)"] == [
        ["register"],
        ["register"],
        ["save"],
        ["delete_if_owned"],
        ["ZREM"],
    ]
    assert cstore.load_sync(anonymous) is None
    assert cstore.load_sync(user) is None
    assert [r.key for r in cstore.principal_records_sync("user:c")] == [other]


def test_a_record_never_outlives_its_index_entry(cstore: RedisStore) -> None:
    client = cstore._sync()
    k = key()
    cstore.save_sync(k, create({"d:a": "1"}, ttl=60, principal="user:i"))
    for ttl in (60, 600, 6_000, 60_000):
        cstore.save_sync(k, update({"d:a": "1"}, ttl=ttl, principal="user:i"))
        record = client.hgetall(cstore.record_key(k))
        score = client.zscore(cstore.index_key("user:i"), k)
        assert float(record[b"#e"]) <= float(record[b"#i"]) <= score
        assert client.pexpiretime(cstore.index_key("user:i")) / 1000 >= score


def test_the_save_script_refuses_an_unfiled_principal(cstore: RedisStore) -> None:
    k = key()
    cstore.save_sync(k, create({"d:a": "1"}))
    client = cstore._sync()
    exp = time.time() + 60
    argv = ["update", "", "user:x", "1", repr(exp), str(int(exp * 1000)), "", 1, "d:b", "2"]
    script = client.register_script(_redis_lua_cluster.SAVE.body)
    assert script(keys=[cstore.record_key(k)], args=argv, client=client) == [b"register"]
    assert dict(cstore.load_sync(k).fields) == {"d:a": "1"}
    assert cstore.load_sync(k).principal is None


def test_stale_members_are_filtered_then_expire(cstore: RedisStore) -> None:
    k = key()
    cstore.save_sync(k, create({"d:a": "1"}, principal="user:a"))
    index = cstore.index_key("user:a")
    cstore._sync().zadd(index, {"gone": time.time() + 3600})  # a member whose record is gone
    assert [r.key for r in cstore.principal_records_sync("user:a")] == [k]
    assert cstore._sync().zcard(index) == 2  # pruned once its score passes
    # Scores are pruned a minute late (clock skew between nodes), never early.
    cstore._sync().zadd(index, {"gone": time.time() - 30})
    assert [r.key for r in cstore.principal_records_sync("user:a")] == [k]
    assert cstore._sync().zcard(index) == 2
    cstore._sync().zadd(index, {"gone": time.time() - 90})
    cstore.principal_records_sync("user:a")
    assert cstore._sync().zcard(index) == 1


async def test_async_cluster_client(cstore: RedisStore) -> None:
    k = key()
    await cstore.save(k, create({"d:a": "1"}, principal="user:z"))
    assert (await cstore.load(k)).principal == "user:z"
    assert [r.key for r in await cstore.principal_records("user:z")] == [k]
    assert await cstore.count() == 1
    assert [r.key for r in (await cstore.page()).records] == [k]


def test_revoke_every_session_of_a_principal_on_a_cluster(cstore: RedisStore) -> None:
    keys = [key() for _ in range(5)]
    for k in keys:
        assert cstore.save_sync(k, create({}, principal="user:many"))
    removed = cstore.delete_principal_records_sync("user:many", keep=keys[0])
    assert sorted(removed) == sorted(keys[1:])
    assert [cstore.load_sync(k) is None for k in keys] == [False, True, True, True, True]
    assert cstore._sync().zrange(cstore.index_key("user:many"), 0, -1) == [keys[0].encode()]


async def test_scripts_reload_on_every_node_after_a_flush(
    cstore: RedisStore, nodes: list[RedisServer]
) -> None:
    """NOSCRIPT inside a cluster pipeline (the login batch) and alone both fall back to EVAL."""
    anonymous, user = key(), key()
    cstore.save_sync(anonymous, create({"d:a": "1"}))
    for node in nodes:
        with node.client() as c:
            c.script_flush()
    stone = Tombstone(key(), {"s:x": "1"}, time.time() + 10)
    login = rotate(anonymous, {"d:a": "1"}, principal="user:f", tombstone=stone)
    assert cstore.save_sync(user, login)
    assert [r.key for r in cstore.principal_records_sync("user:f")] == [user]
    for node in nodes:
        with node.client() as c:
            c.script_flush()
    other = key()
    assert await cstore.save(other, rotate(user, {"d:a": "1"}, principal="user:f"))
    assert [r.key for r in await cstore.principal_records("user:f")] == [other]
