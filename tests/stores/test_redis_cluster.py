"""The store contract and the cluster protocol against a local Redis Cluster of 3 masters.

The cluster (loopback ports, a temporary directory) starts once for this module and is killed
at its end. Every contract test runs twice: with the default prefix (each session and each
index in its own slot: the ordered cluster protocol) and with a hash-tagged prefix (every key
in one slot: the atomic protocol). Without ``redis-server`` the module skips (fails under CI).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from sessio import Principal, SyncSessionManager
from sessio.ids import new_session_id, store_key
from sessio.stores import Store, Write, _redis_lua
from sessio.stores.redis import RedisStore

from . import servers
from . import test_contract as contract
from .backends import Backend
from .local_servers import RedisServer, redis_cluster

pytestmark = [pytest.mark.redis, pytest.mark.slow]

# Every contract test, with the contract's fixtures; only ``backend_store`` is replaced below.
globals().update(
    {
        name: value
        for name, value in vars(contract).items()
        if name.startswith("test_") or name in ("store", "ops", "managers")
    }
)


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    with redis_cluster(tmp_path_factory.mktemp("cluster")) as started:
        yield started


@pytest.fixture(scope="module")
def cluster_url(nodes: list[RedisServer]) -> str:
    return f"redis+cluster://127.0.0.1:{nodes[0].port}"


def _no_open(tmp_path: Path) -> Any:  # pragma: no cover - the fixture below opens the store
    raise NotImplementedError


@pytest.fixture(params=["cluster", "cluster-tagged"])
async def backend_store(
    request: pytest.FixtureRequest, cluster_url: str
) -> AsyncIterator[tuple[Backend, Store]]:
    tagged = request.param == "cluster-tagged"
    prefix = "{" + servers.unique("t") + "}:" if tagged else servers.unique("t") + ":"
    async with servers.redis_store(cluster_url, prefix=prefix) as store:
        assert store.cluster
        assert store.atomic is tagged
        yield Backend(request.param, _no_open, servers.corrupt_redis, native_ttl=True), store


# -- the cluster protocol --------------------------------------------------------------------------


def key() -> str:
    return store_key(new_session_id())


def write(fields: dict[str, str], *, ttl: float = 3600, **kw: Any) -> Write:
    return Write(fields, time.time() + ttl, **kw)


@pytest.fixture
async def cstore(cluster_url: str) -> AsyncIterator[RedisStore]:
    async with servers.redis_store(cluster_url) as store:
        yield store


def test_sessions_spread_over_every_master(cstore: RedisStore, nodes: list[RedisServer]) -> None:
    for _ in range(60):
        cstore.save_sync(key(), write({"d:a": "1"}, replace=True))
    per_node = []
    for node in nodes:
        with node.client() as c:
            per_node.append(sum(1 for _ in c.scan_iter(match=cstore.prefix + "*")))
    assert sum(per_node) == 60
    assert all(n > 0 for n in per_node), per_node
    assert cstore.count_sync() == 60


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
    cstore.save_sync(anonymous, write({"d:a": "1"}, replace=True))  # connect, load scripts
    batches = Batches(cstore, monkeypatch)
    seen: dict[str, list[list[str]]] = {}
    cstore.save_sync(anonymous, write({"d:b": "2"}))
    seen["delta, anonymous"] = batches.take()
    cstore.load_sync(anonymous)
    seen["load"] = batches.take()
    login = write({"d:b": "2"}, ttl=600, principal="user:c", replace=True, supersedes=anonymous)
    assert cstore.save_sync(user, login) is True
    seen["login: replace + principal + supersedes"] = batches.take()
    assert cstore.save_sync(key(), login) is False  # its superseded record is gone now
    seen["rotation of a revoked session (refused)"] = batches.take()
    resave = write({"d:b": "2"}, ttl=600, principal="user:c", replace=True, supersedes=user)
    assert cstore.save_sync(user, resave) is True
    seen["rewrite (resave)"] = batches.take()
    cstore.save_sync(user, write({"d:c": "3"}, ttl=900, principal="user:c"))
    seen["delta with principal, within the filed score"] = batches.take()
    cstore.save_sync(user, write({"d:c": "3"}, ttl=86_400, principal="user:c"))
    seen["delta with principal, past the filed score"] = batches.take()
    cstore.principal_records_sync("user:c")
    seen["principal_records"] = batches.take()
    print("\nRedisStore on a Redis Cluster, round trips (batches) per operation:")
    for label, log in seen.items():
        print(f"  {label:<48} {len(log)}: {log}")
    assert seen["delta, anonymous"] == [["delta"]]
    assert seen["load"] == [["HGETALL"]]
    # The old record goes and the index is written before the record names the principal.
    assert seen["login: replace + principal + supersedes"] == [["DEL", "register"], ["save"]]
    # A rotation writes the new record only if the DEL removed the old one.
    assert seen["rotation of a revoked session (refused)"] == [["DEL", "register"]]
    # A rewrite (resave) of a session filed under the same principal: the script checks its score.
    assert seen["rewrite (resave)"] == [["save"]]
    assert seen["delta with principal, within the filed score"] == [["save"]]
    assert seen["delta with principal, past the filed score"] == [
        ["save"],
        ["register"],
        ["save"],
    ]
    assert cstore.load_sync(anonymous) is None


def test_a_record_never_outlives_its_index_entry(cstore: RedisStore) -> None:
    client = cstore._sync()
    k = key()
    for ttl in (60, 600, 6_000, 60_000):
        cstore.save_sync(k, write({"d:a": "1"}, ttl=ttl, principal="user:i", replace=ttl == 60))
        record = client.hgetall(cstore._rec(k))
        score = client.zscore(cstore._idx("user:i"), k)
        assert float(record[b"#e"]) <= float(record[b"#i"]) <= score
        assert client.pexpiretime(cstore._idx("user:i")) / 1000 >= score


def test_the_save_script_refuses_an_unfiled_principal(cstore: RedisStore) -> None:
    k = key()
    cstore.save_sync(k, write({"d:a": "1"}, replace=True))
    client = cstore._sync()
    exp = time.time() + 60
    argv = ["0", "delta", "1", "user:x", k, repr(exp), str(int(exp * 1000)), "", 1, "d:b", "2"]
    script = client.register_script(_redis_lua.SAVE.body)
    assert script(keys=[cstore._rec(k)], args=argv, client=client) == -1
    assert dict(cstore.load_sync(k).fields) == {"d:a": "1"}
    assert cstore.load_sync(k).principal is None


def test_stale_members_are_filtered_then_expire(cstore: RedisStore) -> None:
    k = key()
    cstore.save_sync(k, write({"d:a": "1"}, principal="user:a", replace=True))
    cstore.save_sync(k, write({}, principal="user:b"))
    assert cstore.principal_records_sync("user:a") == []
    index = cstore._idx("user:a")
    assert cstore._sync().zcard(index) == 1  # pruned once its score passes
    assert [r.key for r in cstore.principal_records_sync("user:b")] == [k]
    # Scores are pruned a minute late (clock skew between nodes), never early.
    cstore._sync().zadd(index, {k: time.time() - 30})
    assert cstore.principal_records_sync("user:a") == []
    assert cstore._sync().zcard(index) == 1
    cstore._sync().zadd(index, {k: time.time() - 90})
    assert cstore.principal_records_sync("user:a") == []
    assert cstore._sync().exists(index) == 0


async def test_async_cluster_client(cstore: RedisStore) -> None:
    k = key()
    await cstore.save(k, write({"d:a": "1"}, principal="user:z", replace=True))
    assert (await cstore.load(k)).principal == "user:z"
    assert [r.key for r in await cstore.principal_records("user:z")] == [k]
    assert await cstore.count() == 1


def test_revoke_all_on_a_cluster(cstore: RedisStore) -> None:
    manager = SyncSessionManager(cstore)
    tokens = []
    for _ in range(5):
        session = manager.load(None)
        session.login(Principal("many"))
        tokens.append(manager.commit(session).token)
    assert len(manager.sessions_of("many")) == 5
    assert manager.revoke_all("many", except_=store_key(tokens[0])) == 4
    assert [manager.load(t).is_new for t in tokens] == [False, True, True, True, True]


async def test_scripts_reload_on_every_node_after_a_flush(
    cstore: RedisStore, nodes: list[RedisServer]
) -> None:
    """NOSCRIPT inside a cluster pipeline (the login batch) and alone both fall back to EVAL."""
    anonymous, user = key(), key()
    cstore.save_sync(anonymous, write({"d:a": "1"}, replace=True))
    for node in nodes:
        with node.client() as c:
            c.script_flush()
    login = write({"d:a": "1"}, principal="user:f", replace=True, supersedes=anonymous)
    cstore.save_sync(user, login)
    assert [r.key for r in cstore.principal_records_sync("user:f")] == [user]
    for node in nodes:
        with node.client() as c:
            c.script_flush()
    other = key()
    await cstore.save(other, write({"d:a": "1"}, principal="user:f", replace=True, supersedes=user))
    assert [r.key for r in await cstore.principal_records("user:f")] == [other]
