"""MemoryStore: LRU eviction past ``max_sessions`` and its ``stats()``."""

from __future__ import annotations

import pytest

from sessio import ConfigurationError, SyncSessionManager
from sessio.stores import MemoryStore
from sessio.stores.base import Create, Rewrite, SaveOutcome

from ..conftest import FakeClock


def save(store: MemoryStore, key: str, *, ttl: float = 3600, principal: str | None = None) -> None:
    fields, expires_at = {"d:k": '"' + key + '"'}, store.clock() + ttl
    if store.save_sync(key, Create(fields, expires_at, principal)).outcome is SaveOutcome.EXISTS:
        store.save_sync(key, Rewrite(fields, expires_at, principal))


@pytest.fixture
def store(clock: FakeClock) -> MemoryStore:
    return MemoryStore(max_sessions=3, clock=clock)


def test_the_least_recently_used_session_is_evicted(store: MemoryStore) -> None:
    for key in "abc":
        save(store, key)
    assert store.load_sync("a") is not None  # a is now the most recently used
    save(store, "d")
    assert store.load_sync("b") is None
    assert {k for k in "acd" if store.exists_sync(k)} == set("acd")
    save(store, "c")  # a write is a use too
    save(store, "e")
    assert not store.exists_sync("a")
    assert store.count_sync() == 3


def test_eviction_cleans_the_principal_index(store: MemoryStore) -> None:
    save(store, "a", principal="user:1")
    for key in "bcd":
        save(store, key, principal="user:2")
    assert store.principal_records_sync("user:1") == []
    assert store.stats()["principals"] == 1


def test_anonymous_records_are_evicted_before_signed_in_ones(store: MemoryStore) -> None:
    save(store, "signed-in-1", principal="user:1")
    save(store, "anonymous", principal=None)
    save(store, "signed-in-2", principal="user:2")
    for n in range(50):  # a flood of cookieless visitors
        save(store, f"crawler-{n}")
    assert store.exists_sync("signed-in-1")
    assert store.exists_sync("signed-in-2")
    assert not store.exists_sync("anonymous")
    assert store.exists_sync("crawler-49")  # the newest anonymous record takes the free slot
    assert store.count_sync() == 3
    assert store.stats()["evictions"] == 50  # each visitor evicted the one before


def test_signed_in_records_go_least_recently_used_first_when_no_anonymous_one_is_left(
    store: MemoryStore,
) -> None:
    for key in "abc":
        save(store, key, principal=f"user:{key}")
    assert store.load_sync("a") is not None
    save(store, "d", principal="user:d")
    assert [k for k in "abcd" if store.exists_sync(k)] == ["a", "c", "d"]
    save(store, "anonymous")  # the store is full of signed-in sessions: the newcomer goes
    assert not store.exists_sync("anonymous")
    assert [k for k in "abcd" if store.exists_sync(k)] == ["a", "c", "d"]


def test_stats_count_everything(store: MemoryStore, clock: FakeClock) -> None:
    assert store.stats() == {
        "sessions": 0,
        "max_sessions": 3,
        "hits": 0,
        "misses": 0,
        "evictions": 0,
        "expirations": 0,
        "principals": 0,
    }
    save(store, "a", principal="user:1")
    save(store, "b", principal="user:2", ttl=10)
    store.load_sync("a")
    store.load_sync("a")
    store.load_sync("nope")
    clock.advance(20)
    store.load_sync("b")  # expired: a miss and an expiration
    for key in "cde":
        save(store, key)
    assert store.stats() == {
        "sessions": 3,
        "max_sessions": 3,
        "hits": 2,
        "misses": 2,
        "evictions": 1,
        "expirations": 1,
        "principals": 1,
    }


def test_cleanup_counts_expirations(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    for key in "abc":
        save(store, key, ttl=10)
    save(store, "d", ttl=100)
    clock.advance(50)
    assert store.cleanup_sync() == 3
    assert store.stats()["expirations"] == 3
    assert store.stats()["sessions"] == 1


def test_unbounded_and_invalid_limits() -> None:
    unbounded = MemoryStore(max_sessions=None)
    for n in range(50):
        save(unbounded, str(n))
    assert unbounded.count_sync() == 50
    assert unbounded.stats()["max_sessions"] is None
    assert MemoryStore().max_sessions == 10_000
    for bad in (0, -1, True, 2.5, "10"):
        with pytest.raises(ConfigurationError):
            MemoryStore(max_sessions=bad)  # type: ignore[arg-type]


def test_an_evicted_session_is_gone_for_its_client(clock: FakeClock) -> None:
    manager = SyncSessionManager(MemoryStore(max_sessions=2, clock=clock), clock=clock)
    tokens = []
    for n in range(3):
        s = manager.load(None)
        s["n"] = n
        tokens.append(manager.commit(s).token)
    assert manager.load(tokens[0]).is_new
    assert manager.load(tokens[2])["n"] == 2
