"""Values the hot path computes once (store key, policy seconds) stay right when things change."""

from __future__ import annotations

from datetime import timedelta

from sessio import Policy, SyncSessionManager, ids
from sessio.stores import MemoryStore
from tests.conftest import FakeClock


def test_the_cached_store_key_follows_regenerate(clock: FakeClock) -> None:
    manager = SyncSessionManager(MemoryStore(clock=clock), Policy(), clock=clock)
    session = manager.start()
    session["a"] = 1
    manager.commit(session)
    loaded = manager.load(session.id)
    assert loaded.key == ids.store_key(session.id)
    loaded.regenerate()
    assert loaded.key == ids.store_key(loaded.id) != ids.store_key(session.id)
    manager.commit(loaded)
    assert manager.load(loaded.id).get("a") == 1
    assert manager.load(session.id).is_new  # the old ID died with the rotation


def test_policy_seconds_follow_replace() -> None:
    policy = Policy(ttl=timedelta(hours=2), idle_timeout=timedelta(minutes=10))
    assert policy.expires_at(0, 0) == 600
    assert policy.expires_at(0, 7000) == 7200
    longer = policy.replace(idle_timeout=timedelta(hours=1))
    assert longer.idle_seconds == 3600
    assert policy.idle_seconds == 600
    assert policy.replace(idle_timeout=None).expires_at(0, 100) == 7200
    assert policy.replace(ttl=None).expires_at(0, 100) == 700


def test_cached_seconds_leave_equality_and_hash_alone() -> None:
    warm, cold = Policy(), Policy()
    warm.expires_at(0, 0)
    assert warm == cold
    assert hash(warm) == hash(cold)
    assert repr(warm) == repr(cold)


def test_sessions_share_their_field_names_in_a_memory_store() -> None:
    store = MemoryStore()
    manager = SyncSessionManager(store, Policy())
    names = []
    for _ in range(2):
        session = manager.start()
        session["cart"] = ["apple"]
        manager.commit(session)
        record = store.load_sync(session.key)
        assert record is not None
        names.append(next(n for n in record.fields if n == "d:cart"))
    assert names[0] is names[1]
