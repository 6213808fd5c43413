"""The store contract: one suite, every store (tests/stores/backends.py), async and sync.

A new store is done when it passes this file. Expiry is expressed with absolute times in the
past or future, so no test sleeps and stores with native TTL take part unchanged. Every kind
of write (Create, Update, Rotate, Rewrite) and every outcome (APPLIED, MISSING, EXISTS,
REJECTED) is proven here, with principal limits under parallel writers, tombstones written in
the rotation's own step, paged walks, and values no store can hold.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sessio import (
    CommitAction,
    ConcurrencyPolicy,
    EventKind,
    Policy,
    Principal,
    Session,
    SessionEvent,
    SessionManager,
    SyncSessionManager,
)
from sessio.errors import ValueNotSerializable
from sessio.ids import new_session_id, store_key
from sessio.stores import Store
from sessio.stores.base import (
    Create,
    PrincipalLimit,
    Record,
    Rewrite,
    Rotate,
    Saved,
    SaveOutcome,
    Tombstone,
    Update,
)

from .backends import Backend, backend_params

LIVE = 3600.0
APPLIED, MISSING = SaveOutcome.APPLIED, SaveOutcome.MISSING
EXISTS, REJECTED = SaveOutcome.EXISTS, SaveOutcome.REJECTED


@pytest.fixture(params=backend_params())
async def backend_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Backend, Store]]:
    backend: Backend = request.param
    async with backend.open(tmp_path) as store:
        yield backend, store


@pytest.fixture
def store(backend_store: tuple[Backend, Store]) -> Store:
    return backend_store[1]


class Ops:
    """Calls a store's async method or its ``_sync`` twin, as the test's mode says."""

    def __init__(self, store: Store, mode: str) -> None:
        self.store = store
        self.mode = mode

    async def __call__(self, name: str, *args: Any) -> Any:
        if self.mode == "sync":
            return getattr(self.store, name + "_sync")(*args)
        return await getattr(self.store, name)(*args)

    async def outcome(self, key: str, write: Any) -> SaveOutcome:
        saved = await self("save", key, write)
        assert isinstance(saved, Saved)
        return saved.outcome

    async def fields(self, key: str) -> dict[str, str] | None:
        record = await self("load", key)
        return None if record is None else dict(record.fields)

    async def indexed(self, principal: str) -> list[str]:
        return sorted(r.key for r in await self("principal_records", principal))


@pytest.fixture(params=["async", "sync"])
def ops(request: pytest.FixtureRequest, store: Store) -> Ops:
    return Ops(store, request.param)


def key() -> str:
    return store_key(new_session_id())


def at(ttl: float) -> float:
    return time.time() + ttl


def create(
    fields: dict[str, str],
    *,
    ttl: float = LIVE,
    principal: str | None = None,
    limit: PrincipalLimit | None = None,
) -> Create:
    return Create(fields, at(ttl), principal, limit)


def update(
    fields: dict[str, str],
    *,
    ttl: float = LIVE,
    principal: str | None = None,
    removed: tuple[str, ...] = (),
    limit: PrincipalLimit | None = None,
) -> Update:
    return Update(fields, at(ttl), principal, removed, limit)


def rotate(
    old: str,
    fields: dict[str, str],
    *,
    ttl: float = LIVE,
    principal: str | None = None,
    limit: PrincipalLimit | None = None,
    tombstone: Tombstone | None = None,
) -> Rotate:
    return Rotate(old, fields, at(ttl), principal, limit, tombstone)


def rewrite(
    fields: dict[str, str],
    *,
    ttl: float = LIVE,
    principal: str | None = None,
    limit: PrincipalLimit | None = None,
) -> Rewrite:
    return Rewrite(fields, at(ttl), principal, limit)


def stone(successor: str, ttl: float = 10.0) -> Tombstone:
    return Tombstone(key(), {"s:successor": '"' + successor + '"'}, at(ttl))


# -- Create ----------------------------------------------------------------------------------------


async def test_load_of_unknown_key_is_a_miss(ops: Ops) -> None:
    assert await ops("load", key()) is None
    assert await ops("exists", key()) is False


async def test_create_then_load_returns_the_record(ops: Ops) -> None:
    k = key()
    w = create({"d:a": "1", "d:b": '"x"'}, principal="user:1")
    saved = await ops("save", k, w)
    assert saved == Saved(APPLIED)
    assert saved
    record = await ops("load", k)
    assert isinstance(record, Record)
    assert record.key == k
    assert dict(record.fields) == {"d:a": "1", "d:b": '"x"'}
    assert record.principal == "user:1"
    assert record.expires_at == pytest.approx(w.expires_at, abs=1.0)
    assert await ops("exists", k) is True


async def test_create_never_overwrites_a_live_record(ops: Ops) -> None:
    k = key()
    assert await ops.outcome(k, create({"d:a": "1"}, principal="user:c1")) is APPLIED
    saved = await ops("save", k, create({"d:b": "2"}, principal="user:c2"))
    assert saved.outcome is EXISTS
    assert not saved
    assert await ops.fields(k) == {"d:a": "1"}
    assert await ops.indexed("user:c1") == [k]
    assert await ops.indexed("user:c2") == []


async def test_create_takes_the_place_of_an_expired_or_deleted_record(ops: Ops) -> None:
    expired, deleted = key(), key()
    await ops("save", expired, create({"d:a": "1"}, ttl=-5))
    await ops("save", deleted, create({"d:a": "1"}))
    await ops("delete", deleted)
    for k in (expired, deleted):
        assert await ops.outcome(k, create({"d:b": "2"})) is APPLIED
        assert await ops.fields(k) == {"d:b": "2"}


# -- Update ----------------------------------------------------------------------------------------


async def test_update_sets_and_removes_only_named_fields(ops: Ops) -> None:
    k = key()
    await ops("save", k, create({"d:a": "1", "d:b": "2", "d:c": "3"}))
    w = update({"d:b": "20", "d:new": "4"}, removed=("d:c", "d:never"))
    assert await ops.outcome(k, w) is APPLIED
    assert await ops.fields(k) == {"d:a": "1", "d:b": "20", "d:new": "4"}


async def test_update_moves_the_expiry(ops: Ops) -> None:
    k = key()
    await ops("save", k, create({"d:a": "1"}, ttl=60))
    later = update({}, ttl=7200)
    await ops("save", k, later)
    record = await ops("load", k)
    assert record.expires_at == pytest.approx(later.expires_at, abs=1.0)
    assert dict(record.fields) == {"d:a": "1"}


@pytest.mark.parametrize("gone", ["deleted", "expired", "never stored"])
async def test_update_never_resurrects_a_missing_record(ops: Ops, gone: str) -> None:
    k = key()
    if gone != "never stored":
        await ops("save", k, create({"d:a": "1"}, ttl=-5 if gone == "expired" else LIVE))
    if gone == "deleted":
        await ops("delete", k)
    saved = await ops("save", k, update({"d:b": "2"}, principal="user:d"))
    assert saved.outcome is MISSING
    assert not saved
    assert await ops("load", k) is None
    assert await ops("principal_records", "user:d") == []


async def test_an_update_can_expire_a_record(ops: Ops) -> None:
    k = key()
    await ops("save", k, create({"d:a": "1"}))
    await ops("save", k, update({}, ttl=-5))
    assert await ops("load", k) is None


# -- Rewrite ---------------------------------------------------------------------------------------


async def test_rewrite_replaces_every_field(ops: Ops) -> None:
    k = key()
    await ops("save", k, create({"d:a": "1", "d:b": "2"}, principal="user:w1"))
    assert await ops.outcome(k, rewrite({"d:c": "3"}, principal="user:w2")) is APPLIED
    assert await ops.fields(k) == {"d:c": "3"}
    assert await ops.indexed("user:w1") == []
    assert await ops.indexed("user:w2") == [k]


async def test_rewrite_of_a_record_that_is_gone_writes_nothing(ops: Ops) -> None:
    k = key()
    await ops("save", k, create({"d:a": "1"}, principal="user:9"))
    await ops("delete", k)
    assert await ops.outcome(k, rewrite({"d:a": "1"}, principal="user:9")) is MISSING
    assert await ops("load", k) is None
    assert await ops("principal_records", "user:9") == []


# -- Rotate ----------------------------------------------------------------------------------------


async def test_rotate_replaces_the_old_record_by_the_new_in_one_write(ops: Ops) -> None:
    old, new = key(), key()
    await ops("save", old, create({"d:a": "1", "d:gone": "2"}, principal="user:7"))
    assert await ops.outcome(new, rotate(old, {"d:a": "1"}, principal="user:7")) is APPLIED
    assert await ops("load", old) is None
    assert await ops.fields(new) == {"d:a": "1"}
    assert await ops.indexed("user:7") == [new]
    assert await ops("count") == 1


async def test_rotate_writes_its_tombstone_as_a_plain_record(ops: Ops) -> None:
    old, new = key(), key()
    await ops("save", old, create({"d:a": "1"}))
    tomb = stone(new)
    assert await ops.outcome(new, rotate(old, {"d:a": "1"}, principal="user:t", tombstone=tomb))
    record = await ops("load", tomb.key)
    assert record is not None
    assert dict(record.fields) == dict(tomb.fields)
    assert record.principal is None
    assert record.expires_at == pytest.approx(tomb.expires_at, abs=1.0)
    assert await ops.indexed("user:t") == [new]  # the tombstone is not filed under anyone


async def test_a_tombstone_expires_like_any_record(ops: Ops) -> None:
    old, new = key(), key()
    await ops("save", old, create({"d:a": "1"}))
    tomb = stone(new, ttl=-5)
    assert await ops.outcome(new, rotate(old, {"d:a": "1"}, tombstone=tomb)) is APPLIED
    assert await ops("load", tomb.key) is None
    assert await ops("count") == 1


@pytest.mark.parametrize("gone", ["deleted", "expired", "never stored"])
async def test_a_rotation_whose_superseded_record_is_gone_writes_nothing(
    ops: Ops, gone: str
) -> None:
    old, new = key(), key()
    if gone != "never stored":
        ttl = -5 if gone == "expired" else LIVE
        await ops("save", old, create({"d:a": "1"}, ttl=ttl, principal="user:8"))
    if gone == "deleted":
        await ops("delete", old)  # revoked while the request that rotates it was in flight
    tomb = stone(new)
    saved = await ops("save", new, rotate(old, {"d:a": "1"}, principal="user:8", tombstone=tomb))
    assert saved.outcome is MISSING
    assert await ops("load", new) is None
    assert await ops("load", old) is None
    assert await ops("load", tomb.key) is None  # no tombstone without its rotation
    assert await ops("principal_records", "user:8") == []
    assert await ops("count") == 0


async def test_two_rotations_of_one_record_race_and_one_wins(store: Store) -> None:
    """Many threads rotate the same record at once, each with its own tombstone: exactly one
    applies, and the only tombstone left names the one record left."""
    old = key()
    store.save_sync(old, create({"d:a": "1"}, principal="user:race2"))
    news = [key() for _ in range(6)]
    stones = [stone(n) for n in news]
    outcomes: dict[str, SaveOutcome] = {}
    barrier = threading.Barrier(len(news))

    def go(new: str, tomb: Tombstone) -> None:
        barrier.wait(timeout=10)
        w = rotate(old, {"d:a": "1"}, principal="user:race2", tombstone=tomb)
        outcomes[new] = store.save_sync(new, w).outcome

    threads = [threading.Thread(target=go, args=a) for a in zip(news, stones, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    winners = [n for n, o in outcomes.items() if o is APPLIED]
    assert len(winners) == 1
    assert sorted(outcomes.values(), key=str) == sorted([APPLIED] + [MISSING] * 5, key=str)
    assert [r.key for r in store.principal_records_sync("user:race2")] == winners
    left = [t for t in stones if store.load_sync(t.key) is not None]
    assert [dict(t.fields) for t in left] == [{"s:successor": '"' + winners[0] + '"'}]
    assert store.count_sync() == 2


# -- principal limits ------------------------------------------------------------------------------


def lim(n: int, on_limit: str = "evict_oldest") -> PrincipalLimit:
    return PrincipalLimit(n, on_limit)  # type: ignore[arg-type]


async def _three_of(ops: Ops, principal: str) -> list[str]:
    keys = [key() for _ in range(3)]
    for n, k in enumerate(keys):  # expiries ordered: keys[0] is the least recently active
        await ops("save", k, create({"d:n": str(n)}, ttl=LIVE + n * 60, principal=principal))
    return keys


async def test_evict_oldest_removes_the_earliest_expiring_others_in_the_write(ops: Ops) -> None:
    keys = await _three_of(ops, "user:l1")
    new = key()
    saved = await ops("save", new, create({"d:n": "9"}, principal="user:l1", limit=lim(2)))
    assert saved.outcome is APPLIED
    assert saved.evicted == (keys[0], keys[1])  # oldest first
    assert await ops.indexed("user:l1") == sorted([keys[2], new])
    assert await ops("load", keys[0]) is None


async def test_reject_writes_nothing(ops: Ops) -> None:
    keys = await _three_of(ops, "user:l2")
    new = key()
    saved = await ops(
        "save", new, create({"d:n": "9"}, principal="user:l2", limit=lim(3, "reject"))
    )
    assert saved.outcome is REJECTED
    assert not saved
    assert saved.evicted == ()
    assert await ops("load", new) is None
    assert await ops.indexed("user:l2") == sorted(keys)


async def test_a_limit_leaves_room_below_it_alone(ops: Ops) -> None:
    keys = await _three_of(ops, "user:l3")
    other = key()
    await ops("save", other, create({"d:n": "1"}, principal="user:someone-else"))
    saved = await ops("save", key(), create({"d:n": "9"}, principal="user:l3", limit=lim(4)))
    assert saved == Saved(APPLIED)
    assert len(await ops.indexed("user:l3")) == 4
    assert set(keys) <= set(await ops.indexed("user:l3"))
    assert await ops("load", other) is not None


async def test_a_limit_does_not_count_the_written_key_or_the_superseded_one(ops: Ops) -> None:
    keys = await _three_of(ops, "user:l4")
    # A rotation of one of the three, limit 3: the two others are below it.
    new = key()
    saved = await ops("save", new, rotate(keys[0], {"d:n": "0"}, principal="user:l4", limit=lim(3)))
    assert saved == Saved(APPLIED)
    # An update and a rewrite of one of the three, limit 3.
    assert await ops("save", keys[1], update({}, principal="user:l4", limit=lim(3))) == Saved(
        APPLIED
    )
    w = rewrite({"d:n": "1"}, principal="user:l4", limit=lim(3, "reject"))
    assert await ops("save", keys[1], w) == Saved(APPLIED)
    assert await ops.indexed("user:l4") == sorted([new, keys[1], keys[2]])


async def test_a_limit_ignores_expired_records(ops: Ops) -> None:
    for _ in range(3):
        await ops("save", key(), create({"d:n": "1"}, ttl=-5, principal="user:l5"))
    saved = await ops("save", key(), create({}, principal="user:l5", limit=lim(1, "reject")))
    assert saved == Saved(APPLIED)


async def test_a_rejected_rotation_leaves_the_old_record_live(ops: Ops) -> None:
    keys = await _three_of(ops, "user:l6")
    anon = key()
    await ops("save", anon, create({"d:cart": "1"}))
    tomb = stone("x")
    w = rotate(anon, {"d:cart": "1"}, principal="user:l6", limit=lim(3, "reject"), tombstone=tomb)
    new = key()
    assert await ops.outcome(new, w) is REJECTED
    assert await ops.fields(anon) == {"d:cart": "1"}
    assert await ops("load", new) is None
    assert await ops("load", tomb.key) is None
    assert await ops.indexed("user:l6") == sorted(keys)


async def test_an_evicting_rotation_applies_every_part_at_once(ops: Ops) -> None:
    keys = await _three_of(ops, "user:l7")
    anon, new = key(), key()
    await ops("save", anon, create({"d:cart": "1"}))
    tomb = stone(new)
    w = rotate(anon, {"d:cart": "1"}, principal="user:l7", limit=lim(1), tombstone=tomb)
    saved = await ops("save", new, w)
    assert saved.outcome is APPLIED
    assert saved.evicted == tuple(keys)
    assert await ops.indexed("user:l7") == [new]
    assert await ops("load", anon) is None
    assert await ops("load", tomb.key) is not None


@pytest.mark.parametrize("on_limit", ["evict_oldest", "reject"])
async def test_parallel_writers_never_exceed_a_limit_across_threads(
    store: Store, on_limit: str
) -> None:
    """Ten logins of one principal at once, limit 2: never more than 2 live at any end."""
    principal = f"user:threads-{on_limit}"
    keys = [key() for _ in range(10)]
    results: dict[str, Saved] = {}
    barrier = threading.Barrier(len(keys))

    def login(k: str) -> None:
        barrier.wait(timeout=10)
        results[k] = store.save_sync(k, create({}, principal=principal, limit=lim(2, on_limit)))

    threads = [threading.Thread(target=login, args=(k,)) for k in keys]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    live = sorted(r.key for r in store.principal_records_sync(principal))
    _check_limit_outcome(results, live, on_limit)


@pytest.mark.parametrize("on_limit", ["evict_oldest", "reject"])
async def test_parallel_writers_never_exceed_a_limit_across_tasks(
    store: Store, on_limit: str
) -> None:
    principal = f"user:tasks-{on_limit}"
    keys = [key() for _ in range(10)]

    async def login(k: str) -> Saved:
        saved = await store.save(k, create({}, principal=principal, limit=lim(2, on_limit)))
        assert isinstance(saved, Saved)
        return saved

    saves = await asyncio.gather(*(login(k) for k in keys))
    live = sorted(r.key for r in await store.principal_records(principal))
    _check_limit_outcome(dict(zip(keys, saves, strict=True)), live, on_limit)


def _check_limit_outcome(results: dict[str, Saved], live: list[str], on_limit: str) -> None:
    assert len(results) == 10
    applied = sorted(k for k, s in results.items() if s.outcome is APPLIED)
    if on_limit == "reject":
        assert applied == live
        assert len(live) == 2
        assert sum(s.outcome is REJECTED for s in results.values()) == 8
    else:
        assert len(applied) == 10
        assert len(live) == 2
        evicted = [k for s in results.values() for k in s.evicted]
        assert sorted(evicted + live) == sorted(results)  # each login evicted, or still live


# -- values a store cannot hold --------------------------------------------------------------------


_BAD = "\ud800"  # a lone surrogate: no UTF-8 encoding exists


@pytest.mark.parametrize(
    ("fresh_key", "make"),
    [
        pytest.param(True, lambda k: create({"d:x": '"' + _BAD + '"'}), id="create-value"),
        pytest.param(True, lambda k: create({"d:" + _BAD: "1"}), id="create-name"),
        pytest.param(True, lambda k: create({}, principal="user:" + _BAD), id="principal"),
        pytest.param(False, lambda k: update({"d:x": '"a' + _BAD + 'b"'}), id="update"),
        pytest.param(False, lambda k: rewrite({"d:x": '"' + _BAD + '"'}), id="rewrite"),
        pytest.param(True, lambda k: rotate(k, {"d:x": '"' + _BAD + '"'}), id="rotate"),
        pytest.param(
            True,
            lambda k: rotate(k, {"d:x": "1"}, tombstone=Tombstone(key(), {"s:x": _BAD}, at(9))),
            id="tombstone",
        ),
    ],
)
async def test_a_value_no_store_can_hold_is_refused_and_the_store_lives_on(
    ops: Ops, fresh_key: bool, make: Any
) -> None:
    k = key()
    await ops("save", k, create({"d:x": "1"}, principal="user:v"))
    target = key() if fresh_key else k
    with pytest.raises(ValueNotSerializable) as caught:
        await ops("save", target, make(k))
    assert caught.value.code == "VALUE_NOT_SERIALIZABLE"
    assert await ops.fields(k) == {"d:x": "1"}  # nothing written, nothing rotated away
    assert await ops("count") == 1
    after = key()
    assert await ops.outcome(after, create({"d:y": '"ok \u00fc"'}, principal="user:v")) is APPLIED
    assert await ops.outcome(k, update({"d:x": "2"}, principal="user:v")) is APPLIED
    assert await ops.fields(after) == {"d:y": '"ok \u00fc"'}
    assert await ops.fields(k) == {"d:x": "2"}
    assert await ops.indexed("user:v") == sorted([k, after])


# -- miscellany ------------------------------------------------------------------------------------


async def test_delete_reports_whether_it_removed_something(ops: Ops) -> None:
    k = key()
    await ops("save", k, create({"d:a": "1"}))
    assert await ops("delete", k) is True
    assert await ops("delete", k) is False
    assert await ops("load", k) is None


async def test_values_round_trip_unicode_and_large_text(ops: Ops) -> None:
    k = key()
    fields = {"d:ü": '"h\\u00e9llo ü 🍪"', "d:big": '"' + "x" * 100_000 + '"', "d:empty": '""'}
    await ops("save", k, create(fields))
    assert await ops.fields(k) == fields


# -- paged walks -----------------------------------------------------------------------------------


async def _walk(ops: Ops, limit: int) -> list[Record]:
    seen: list[Record] = []
    cursor = None
    for _ in range(1000):  # bounded: a cursor that never ends fails instead of hanging
        page = await ops("page", cursor, limit)
        assert len(page.records) <= limit
        seen.extend(page.records)
        cursor = page.cursor
        if cursor is None:
            return seen
    raise AssertionError("the walk never ended")


@pytest.mark.parametrize("limit", [1, 7, 100])
async def test_a_paged_walk_yields_every_live_record_once(ops: Ops, limit: int) -> None:
    live = {key(): str(n) for n in range(23)}
    for k, n in live.items():
        await ops("save", k, create({"d:n": n}, principal="user:p" if int(n) % 2 else None))
    for _ in range(4):
        await ops("save", key(), create({"d:n": "dead"}, ttl=-5))
    seen = await _walk(ops, limit)
    assert sorted(r.key for r in seen) == sorted(live)
    for record in seen:
        assert dict(record.fields) == {"d:n": live[record.key]}
        assert record.principal == ("user:p" if int(live[record.key]) % 2 else None)


async def test_a_paged_walk_of_an_empty_store_ends_at_once(ops: Ops) -> None:
    assert await _walk(ops, 10) == []


# -- expiry and cleanup ----------------------------------------------------------------------------


async def test_expired_records_are_invisible(ops: Ops) -> None:
    k = key()
    await ops("save", k, create({"d:a": "1"}, ttl=-5, principal="user:x"))
    assert await ops("load", k) is None
    assert await ops("exists", k) is False
    assert await ops("principal_records", "user:x") == []
    assert await ops("count") == 0


async def test_cleanup_removes_expired_and_keeps_live(ops: Ops) -> None:
    live = [key() for _ in range(3)]
    dead = [key() for _ in range(5)]
    for k in live:
        await ops("save", k, create({"d:a": "1"}))
    for k in dead:
        await ops("save", k, create({"d:a": "1"}, ttl=-5))
    removed = await ops("cleanup")
    assert 0 <= removed <= len(dead)
    assert await ops("count") == 3
    for k in live:
        assert await ops("load", k) is not None
    assert await ops("cleanup") == 0


async def test_count_and_clear(ops: Ops) -> None:
    for _ in range(4):
        await ops("save", key(), create({"d:a": "1"}, principal="user:c"))
    assert await ops("count") == 4
    assert await ops("clear") >= 4
    assert await ops("count") == 0
    assert await ops("principal_records", "user:c") == []


# -- principal index -------------------------------------------------------------------------------


async def test_principal_index_lists_live_sessions_of_one_principal(ops: Ops) -> None:
    a1, a2, b1, gone = key(), key(), key(), key()
    await ops("save", a1, create({"d:n": "1"}, principal="user:a"))
    await ops("save", a2, create({"d:n": "2"}, principal="user:a"))
    await ops("save", b1, create({"d:n": "3"}, principal="user:b"))
    await ops("save", gone, create({"d:n": "4"}, principal="user:a", ttl=-5))
    records = await ops("principal_records", "user:a")
    assert sorted(r.key for r in records) == sorted([a1, a2])
    assert all(r.principal == "user:a" for r in records)
    assert {dict(r.fields)["d:n"] for r in records} == {"1", "2"}
    assert await ops.indexed("user:b") == [b1]


async def test_principal_index_follows_changes_and_deletes(ops: Ops) -> None:
    k = key()
    await ops("save", k, create({"d:n": "1"}, principal="user:a"))
    await ops("save", k, rewrite({"d:n": "1"}, principal="user:b"))
    assert await ops("principal_records", "user:a") == []
    assert await ops.indexed("user:b") == [k]
    await ops("save", k, update({}, principal=None))
    assert await ops("principal_records", "user:b") == []
    await ops("save", k, update({}, principal="user:b"))
    assert await ops.indexed("user:b") == [k]
    await ops("delete", k)
    assert await ops("principal_records", "user:b") == []


async def test_principal_names_are_opaque(ops: Ops) -> None:
    odd = "user:../../etc/passwd {x} ü*?"
    k = key()
    await ops("save", k, create({"d:n": "1"}, principal=odd))
    assert await ops.indexed(odd) == [k]
    assert await ops("principal_records", "user:") == []


# -- deleting every session of a principal ----------------------------------------------------------


async def test_delete_principal_records_removes_every_session_but_the_kept_one(ops: Ops) -> None:
    a1, a2, a3, b1, dead = key(), key(), key(), key(), key()
    for k in (a1, a2, a3):
        await ops("save", k, create({"d:n": "1"}, principal="user:a"))
    await ops("save", b1, create({"d:n": "1"}, principal="user:b"))
    await ops("save", dead, create({"d:n": "1"}, principal="user:a", ttl=-5))
    removed = await ops("delete_principal_records", "user:a", a2)
    assert sorted(removed) == sorted([a1, a3])  # the expired one is not reported
    assert await ops.indexed("user:a") == [a2]
    assert await ops.indexed("user:b") == [b1]
    assert await ops("load", a1) is None
    assert await ops("delete_principal_records", "user:a") == [a2]
    assert await ops("delete_principal_records", "user:a") == []
    assert await ops("count") == 1


async def test_delete_principal_records_spares_a_session_that_changed_hands(ops: Ops) -> None:
    k = key()
    await ops("save", k, create({"d:n": "1"}, principal="user:a"))
    await ops("save", k, rewrite({"d:n": "1"}, principal="user:b"))
    assert await ops("delete_principal_records", "user:a") == []
    assert await ops.indexed("user:b") == [k]


async def test_a_rotation_before_delete_principal_records_goes_under_its_new_key(ops: Ops) -> None:
    old, new = key(), key()
    await ops("save", old, create({"d:n": "1"}, principal="user:r"))
    assert await ops.outcome(new, rotate(old, {"d:n": "1"}, principal="user:r")) is APPLIED
    assert await ops("delete_principal_records", "user:r") == [new]
    assert await ops("load", new) is None


async def test_a_rotation_after_delete_principal_records_finds_nothing_to_take_over(
    ops: Ops,
) -> None:
    old, new = key(), key()
    await ops("save", old, create({"d:n": "1"}, principal="user:r"))
    assert await ops("delete_principal_records", "user:r") == [old]
    assert await ops.outcome(new, rotate(old, {"d:n": "1"}, principal="user:r")) is MISSING
    assert await ops("principal_records", "user:r") == []
    assert await ops("count") == 0


def _skip_unless_atomic(store: Store) -> None:
    if getattr(store, "atomic", True) is False:
        pytest.skip("Redis Cluster without a hash-tagged prefix: documented as not atomic")


def _rotation(current: str, n: int) -> Rotate:
    return rotate(current, {"d:n": str(n)}, principal="user:race")


async def test_no_rotation_outlives_delete_principal_records_across_threads(store: Store) -> None:
    """Sessions rotating as fast as they can while every session of their principal is deleted:
    once the deletion has returned, no chain rotates again, and nothing of the principal is left.
    (A list-then-delete lets a chain rotate past it, and this fails.)"""
    _skip_unless_atomic(store)
    chains = [key() for _ in range(4)]
    for k in chains:
        store.save_sync(k, create({"d:n": "1"}, principal="user:race"))
    started = [threading.Event() for _ in chains]
    deleted = threading.Event()
    escaped: list[str] = []
    errors: list[BaseException] = []

    def rotate(current: str, started: threading.Event) -> None:
        n = 0
        try:
            while True:
                if n == 3:
                    started.set()
                after = deleted.is_set()
                new = key()
                if not store.save_sync(new, _rotation(current, n)):
                    return
                if after:
                    escaped.append(new)  # it rotated a session the deletion had returned on
                    return
                current, n = new, n + 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            started.set()  # never leave the test waiting on a chain that failed

    threads = [
        threading.Thread(target=rotate, args=(k, e)) for k, e in zip(chains, started, strict=True)
    ]
    for t in threads:
        t.start()
    for event in started:
        event.wait()  # every chain is rotating
    store.delete_principal_records_sync("user:race")
    deleted.set()
    for t in threads:
        t.join()
    assert errors == []
    assert escaped == []
    assert store.principal_records_sync("user:race") == []
    assert store.count_sync() == 0


async def test_no_rotation_outlives_delete_principal_records_across_tasks(store: Store) -> None:
    """The async twin of the test above: tasks that rotate between the store's awaits."""
    _skip_unless_atomic(store)
    chains = [key() for _ in range(4)]
    for k in chains:
        await store.save(k, create({"d:n": "1"}, principal="user:race"))
    started = [asyncio.Event() for _ in chains]
    deleted = asyncio.Event()
    escaped: list[str] = []

    async def rotate(current: str, started: asyncio.Event) -> None:
        n = 0
        try:
            while True:
                if n == 3:
                    started.set()
                after = deleted.is_set()
                new = key()
                if not await store.save(new, _rotation(current, n)):
                    return
                if after:
                    escaped.append(new)
                    return
                current, n = new, n + 1
                await asyncio.sleep(0)  # local stores never suspend: let the others run
        finally:
            started.set()  # a chain that failed is reported by gather, not waited for

    tasks = [asyncio.create_task(rotate(k, e)) for k, e in zip(chains, started, strict=True)]
    for event in started:
        await event.wait()
    await store.delete_principal_records("user:race")
    deleted.set()
    await asyncio.gather(*tasks)
    assert escaped == []
    assert await store.principal_records("user:race") == []
    assert await store.count() == 0


# -- through the manager: the behaviour users see ------------------------------------------------


class Managers:
    """The async manager or its sync twin behind one awaitable interface."""

    def __init__(
        self, store: Store, mode: str, policy: Policy | None = None, clock: Any = time.time
    ) -> None:
        self.mode = mode
        self.events: list[SessionEvent] = []
        if mode == "sync":
            self.manager: Any = SyncSessionManager(store, policy, clock=clock)
        else:
            self.manager = SessionManager(store, policy, clock=clock)
        self.manager.events.subscribe(self.events.append)

    async def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.manager, name)(*args, **kwargs)
        return result if self.mode == "sync" else await result

    def kinds(self) -> list[EventKind]:
        return [e.kind for e in self.events]


@pytest.fixture
def managers(ops: Ops) -> Managers:
    return Managers(ops.store, ops.mode)


async def test_manager_round_trip(managers: Managers) -> None:
    session = await managers("load", None)
    session["cart"] = ["apple"]
    commit = await managers("commit", session)
    again = await managers("load", commit.token)
    assert not again.is_new
    assert again["cart"] == ["apple"]


async def test_parallel_requests_on_one_session_lose_nothing(managers: Managers) -> None:
    """Two requests load the same session, each changes a different key: both changes survive."""
    first = await managers("load", None)
    first["base"] = 0
    token = (await managers("commit", first)).token
    one = await managers("load", token)
    two = await managers("load", token)
    one["left"] = "L"
    two["right"] = "R"
    del two["base"]
    await managers("commit", one)
    await managers("commit", two)
    final = await managers("load", token)
    assert dict(final) == {"left": "L", "right": "R"}


async def test_garbage_in_the_store_gives_a_fresh_session(
    backend_store: tuple[Backend, Store], managers: Managers
) -> None:
    backend, store = backend_store
    session = await managers("load", None)
    session["x"] = 1
    token = (await managers("commit", session)).token
    await backend.corrupt(store, store_key(token))
    fresh = await managers("load", token)
    assert fresh.is_new
    assert fresh.id != token
    assert EventKind.CORRUPT in managers.kinds()
    fresh["y"] = 2
    assert (await managers("commit", fresh)).wrote


async def test_eviction_of_the_oldest_session_past_the_limit(ops: Ops, clock: Any) -> None:
    policy = Policy(concurrency=ConcurrencyPolicy(max_sessions_per_principal=2))
    m = Managers(ops.store, ops.mode, policy, clock)
    tokens = []
    for _ in range(3):
        s = await m("load", None)
        s.login(Principal("eve"))
        tokens.append((await m("commit", s)).token)
        clock.advance(1)
    assert (await m("load", tokens[0])).is_new  # the oldest was evicted
    assert not (await m("load", tokens[1])).is_new
    assert not (await m("load", tokens[2])).is_new
    assert EventKind.EVICTED in m.kinds()
    assert len(await m("sessions_of", "eve")) == 2


async def test_manager_cleanup_removes_what_expired(
    backend_store: tuple[Backend, Store], ops: Ops
) -> None:
    backend, store = backend_store
    m = Managers(store, ops.mode)
    s = await m("load", None)
    s["k"] = 1
    token = (await m("commit", s)).token
    dead = key()
    await ops("save", dead, create({"d:a": "1"}, ttl=-5))
    removed = await m("cleanup")
    assert removed == (0 if backend.native_ttl else 1)
    assert await ops("count") == 1
    assert not (await m("load", token)).is_new


# -- a session revoked while a request holds it stays gone ------------------------------------------


def _step_up(session: Session) -> None:
    session.login(Principal("ada", roles=["admin"]))  # a privilege change rotates the ID


def _regenerate(session: Session) -> None:
    session.regenerate()


def _delta(session: Session) -> None:
    session["cart"] = ["apple"]


def _nothing(session: Session) -> None:
    pass


@pytest.mark.parametrize("revoke", ["revoke_all", "revoke"])
@pytest.mark.parametrize(
    ("change", "policy", "idle"),
    [
        pytest.param(_step_up, Policy(), 0, id="rotation-at-login"),
        pytest.param(_regenerate, Policy(), 0, id="regenerate"),
        pytest.param(_nothing, Policy(resave=True), 0, id="resave"),
        pytest.param(_delta, Policy(), 0, id="delta"),
        pytest.param(_nothing, Policy(), 120, id="touch"),
    ],
)
async def test_a_session_revoked_in_flight_is_not_brought_back(
    ops: Ops, clock: Any, change: Any, policy: Policy, idle: float, revoke: str
) -> None:
    m = Managers(ops.store, ops.mode, policy, clock)
    s = await m("load", None)
    s.login(Principal("ada"))
    token = (await m("commit", s)).token
    clock.advance(idle)  # past refresh_interval: the commit of an unchanged session touches it
    in_flight = await m("load", token)
    stored_key = in_flight.key
    change(in_flight)
    if revoke == "revoke_all":  # "log out everywhere", meanwhile
        assert await m("revoke_all", "ada") == 1
    else:  # the device list's "sign out this device"
        assert await m("revoke", stored_key, principal="ada") is True
    commit = await m("commit", in_flight)
    assert commit.action is CommitAction.CLEAR
    assert commit.token is None
    assert not commit.wrote
    assert m.kinds()[-1] is EventKind.VANISHED
    assert EventKind.SAVED not in m.kinds()[-2:]
    assert await ops("count") == 0
    assert await m("sessions_of", "ada") == []
    for t in (token, in_flight.id):
        assert (await m("load", t)).is_new


async def test_a_session_evicted_in_flight_is_not_brought_back(ops: Ops, clock: Any) -> None:
    policy = Policy(concurrency=ConcurrencyPolicy(max_sessions_per_principal=1))
    m = Managers(ops.store, ops.mode, policy, clock)
    first = await m("load", None)
    first.login(Principal("eve"))
    token = (await m("commit", first)).token
    in_flight = await m("load", token)
    in_flight["cart"] = ["apple"]
    clock.advance(1)
    second = await m("load", None)  # another device logs in and evicts the first
    second.login(Principal("eve"))
    second_token = (await m("commit", second)).token
    assert (await m("commit", in_flight)).action is CommitAction.CLEAR
    assert [i.key for i in await m("sessions_of", "eve")] == [second.key]
    assert (await m("load", token)).is_new
    assert not (await m("load", second_token)).is_new


async def test_a_session_that_is_still_there_commits_as_usual(ops: Ops, clock: Any) -> None:
    m = Managers(ops.store, ops.mode, Policy(resave=True), clock)
    s = await m("load", None)
    s.login(Principal("ada"))
    token = (await m("commit", s)).token
    for change in (_nothing, _delta, _regenerate, _step_up):
        s = await m("load", token)
        change(s)
        commit = await m("commit", s)
        assert commit.action in (CommitAction.SET, CommitAction.NONE)
        assert commit.wrote
        token = commit.token
    assert EventKind.VANISHED not in m.kinds()
    final = await m("load", token)
    assert final["cart"] == ["apple"]
    assert final.principal == Principal("ada", roles=["admin"])
    assert [i.key for i in await m("sessions_of", "ada")] == [final.key]


async def test_revoke_all_catches_a_rotation_that_lands_after_it_looked(
    ops: Ops, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The old gap: revoke_all listed the sessions, then deleted them, and a rotation landing in
    between lived on under a key the list never saw. Here every listing of the store lets one
    pending rotation land right after it; revoke_all must leave nothing of the principal."""
    store = ops.store
    m = Managers(store, ops.mode, Policy(), clock)
    tokens = []
    for _ in range(2):
        s = await m("load", None)
        s.login(Principal("ada"))
        tokens.append((await m("commit", s)).token)
    other_server = SyncSessionManager(store, clock=clock)
    in_flight = other_server.load(tokens[0])
    in_flight.regenerate()
    landed: list[CommitAction] = []

    def land() -> None:
        if not landed:
            landed.append(other_server.commit(in_flight).action)

    listed, listed_sync = store.principal_records, store.principal_records_sync

    async def principal_records(principal: str) -> Any:
        records = await listed(principal)
        land()
        return records

    def principal_records_sync(principal: str) -> Any:
        records = listed_sync(principal)
        land()
        return records

    monkeypatch.setattr(store, "principal_records", principal_records)
    monkeypatch.setattr(store, "principal_records_sync", principal_records_sync)
    m = Managers(store, ops.mode, Policy(), clock)  # bound to the patched store
    assert await m("revoke_all", "ada") == 2
    land()  # revoke_all never listed: the rotation lands after it, and must find nothing
    assert landed == [CommitAction.CLEAR]
    assert m.kinds() == [EventKind.REVOKED, EventKind.REVOKED]
    assert await m("sessions_of", "ada") == []
    for token in (*tokens, in_flight.id):
        assert (await m("load", token)).is_new


async def test_a_login_refused_because_its_session_vanished_evicts_nobody(
    ops: Ops, clock: Any
) -> None:
    """The concurrency limit makes room only once the login is stored: a login whose rotation
    finds its session gone writes nothing, and must not have logged another device out."""
    policy = Policy(concurrency=ConcurrencyPolicy(max_sessions_per_principal=1))
    m = Managers(ops.store, ops.mode, policy, clock)
    first = await m("load", None)
    first.login(Principal("eve"))
    token = (await m("commit", first)).token
    clock.advance(1)
    anonymous = await m("load", None)
    anonymous["cart"] = ["apple"]
    anonymous_token = (await m("commit", anonymous)).token
    in_flight = await m("load", anonymous_token)
    assert await m("revoke", in_flight.key) is True  # ended while the login was in flight
    in_flight.login(Principal("eve"))
    commit = await m("commit", in_flight)
    assert commit.action is CommitAction.CLEAR
    assert EventKind.EVICTED not in m.kinds()
    assert not (await m("load", token)).is_new
    assert [i.key for i in await m("sessions_of", "eve")] == [first.key]


# -- concurrency -----------------------------------------------------------------------------------


async def test_many_threads_update_one_session(store: Store) -> None:
    manager = SyncSessionManager(store)
    first = manager.load(None)
    first["seed"] = True
    token = manager.commit(first).token
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(5):
                s = manager.load(token)
                s[f"t{n}-{i}"] = n * i
                manager.commit(s)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    final = manager.load(token)
    assert len(final) == 1 + 8 * 5


async def test_many_tasks_update_one_session(store: Store) -> None:
    manager = SessionManager(store)
    first = await manager.load(None)
    first["seed"] = True
    token = (await manager.commit(first)).token

    async def worker(n: int) -> None:
        for i in range(5):
            s = await manager.load(token)
            s[f"t{n}-{i}"] = n * i
            await manager.commit(s)
            await asyncio.sleep(0)

    await asyncio.gather(*(worker(n) for n in range(8)))
    final = await manager.load(token)
    assert len(final) == 1 + 8 * 5


# -- rotations that parallel requests survive, on every store ----------------------------------------


@pytest.mark.parametrize("first", [0, 1])
async def test_a_double_login_ends_with_one_live_session_on_every_store(
    managers: Managers, first: int
) -> None:
    s = await managers("load", None)
    s["cart"] = ["apple"]
    token = (await managers("commit", s)).token
    requests = [await managers("load", token), await managers("load", token)]
    for r in requests:
        r.login(Principal("dora"))
    commits = [await managers("commit", requests[i]) for i in (first, 1 - first)]
    assert [c.outcome.value for c in commits] == ["applied", "forwarded"]
    assert commits[0].token == commits[1].token
    assert [c.action for c in commits] == [CommitAction.SET, CommitAction.SET]
    assert len(await managers("sessions_of", "dora")) == 1
    final = await managers("load", commits[0].token)
    assert final["cart"] == ["apple"]


async def test_an_anonymous_request_in_flight_during_a_login_is_superseded_on_every_store(
    managers: Managers,
) -> None:
    s = await managers("load", None)
    s["cart"] = ["apple"]
    token = (await managers("commit", s)).token
    stale, login = await managers("load", token), await managers("load", token)
    login.login(Principal("dora"))
    live = (await managers("commit", login)).token
    stale["cart"] = ["pear"]
    commit = await managers("commit", stale)
    assert commit.outcome.value == "superseded"
    assert commit.action is CommitAction.NONE
    assert (await managers("load", live))["cart"] == ["apple"]
