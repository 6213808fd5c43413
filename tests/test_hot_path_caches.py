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
    assert policy.expires_at(0, 0) == 660  # idle + one refresh_interval of slack
    assert policy.expires_at(0, 7000) == 7200
    longer = policy.replace(idle_timeout=timedelta(hours=1))
    assert longer.idle_seconds == 3600
    assert policy.idle_seconds == 600
    assert policy.replace(idle_timeout=None).expires_at(0, 100) == 7200
    assert policy.replace(ttl=None).expires_at(0, 100) == 760


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


def test_a_memo_forgets_its_oldest_entry_first_and_stays_bounded() -> None:
    from sessio._memo import Memo

    memo: Memo[str, int] = Memo(3)
    for i in range(5):
        memo.put(f"k{i}", i)
    assert len(memo) == 3
    assert "k0" not in memo
    assert "k1" not in memo
    assert [memo.get(f"k{i}") for i in range(2, 5)] == [2, 3, 4]
    memo.put("k2", 20)  # replacing keeps the bound
    assert len(memo) == 3
    assert memo.get("k2") == 20


def test_the_creation_time_is_written_the_same_from_memory() -> None:
    from sessio.fields import SessionMeta

    first = SessionMeta(1764662400.123456, 1764662401.5).dumps()
    again = SessionMeta(1764662400.123456, 1764662402.25).dumps()
    assert first == '{"c":1764662400.123456,"s":1764662401.5}'
    assert again == '{"c":1764662400.123456,"s":1764662402.25}'
    assert SessionMeta(True, 1.0).dumps() == '{"c":true,"s":1.0}'  # never 1.0's text
