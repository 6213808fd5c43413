"""Every kind of write: Create, Update, Rewrite and Rotate, with their outcomes and tombstones."""

from __future__ import annotations

import threading

import pytest

from ..stores.base import Record, Saved, SaveOutcome, Store, Tombstone
from ._base import ContractBase
from ._support import (
    LIVE,
    StoreOps,
    create,
    key,
    rewrite,
    rotate,
    stone,
    update,
)

APPLIED = SaveOutcome.APPLIED
MISSING = SaveOutcome.MISSING
EXISTS = SaveOutcome.EXISTS

__all__ = ["WriteContract"]


class WriteContract(ContractBase):
    """Every kind of write (Create, Update, Rewrite, Rotate) and its outcomes."""

    # -- Create ------------------------------------------------------------------------------------
    async def test_load_of_unknown_key_is_a_miss(self, ops: StoreOps) -> None:
        assert await ops("load", key()) is None
        assert await ops("exists", key()) is False

    async def test_create_then_load_returns_the_record(self, ops: StoreOps) -> None:
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

    async def test_create_never_overwrites_a_live_record(self, ops: StoreOps) -> None:
        k = key()
        assert await ops.outcome(k, create({"d:a": "1"}, principal="user:c1")) is APPLIED
        saved = await ops("save", k, create({"d:b": "2"}, principal="user:c2"))
        assert saved.outcome is EXISTS
        assert not saved
        assert await ops.fields(k) == {"d:a": "1"}
        assert await ops.indexed("user:c1") == [k]
        assert await ops.indexed("user:c2") == []

    async def test_create_takes_the_place_of_an_expired_or_deleted_record(
        self, ops: StoreOps
    ) -> None:
        expired, deleted = key(), key()
        await ops("save", expired, create({"d:a": "1"}, ttl=-5))
        await ops("save", deleted, create({"d:a": "1"}))
        await ops("delete", deleted)
        for k in (expired, deleted):
            assert await ops.outcome(k, create({"d:b": "2"})) is APPLIED
            assert await ops.fields(k) == {"d:b": "2"}

    # -- Update ------------------------------------------------------------------------------------
    async def test_update_sets_and_removes_only_named_fields(self, ops: StoreOps) -> None:
        k = key()
        await ops("save", k, create({"d:a": "1", "d:b": "2", "d:c": "3"}))
        w = update({"d:b": "20", "d:new": "4"}, removed=("d:c", "d:never"))
        assert await ops.outcome(k, w) is APPLIED
        assert await ops.fields(k) == {"d:a": "1", "d:b": "20", "d:new": "4"}

    async def test_update_moves_the_expiry(self, ops: StoreOps) -> None:
        k = key()
        await ops("save", k, create({"d:a": "1"}, ttl=60))
        later = update({}, ttl=7200)
        await ops("save", k, later)
        record = await ops("load", k)
        assert record.expires_at == pytest.approx(later.expires_at, abs=1.0)
        assert dict(record.fields) == {"d:a": "1"}

    @pytest.mark.parametrize("gone", ["deleted", "expired", "never stored"])
    async def test_update_never_resurrects_a_missing_record(self, ops: StoreOps, gone: str) -> None:
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

    async def test_an_update_can_expire_a_record(self, ops: StoreOps) -> None:
        k = key()
        await ops("save", k, create({"d:a": "1"}))
        await ops("save", k, update({}, ttl=-5))
        assert await ops("load", k) is None

    # -- Rewrite -----------------------------------------------------------------------------------
    async def test_rewrite_replaces_every_field(self, ops: StoreOps) -> None:
        k = key()
        await ops("save", k, create({"d:a": "1", "d:b": "2"}, principal="user:w1"))
        assert await ops.outcome(k, rewrite({"d:c": "3"}, principal="user:w2")) is APPLIED
        assert await ops.fields(k) == {"d:c": "3"}
        assert await ops.indexed("user:w1") == []
        assert await ops.indexed("user:w2") == [k]

    async def test_rewrite_of_a_record_that_is_gone_writes_nothing(self, ops: StoreOps) -> None:
        k = key()
        await ops("save", k, create({"d:a": "1"}, principal="user:9"))
        await ops("delete", k)
        assert await ops.outcome(k, rewrite({"d:a": "1"}, principal="user:9")) is MISSING
        assert await ops("load", k) is None
        assert await ops("principal_records", "user:9") == []

    # -- Rotate ------------------------------------------------------------------------------------
    async def test_rotate_replaces_the_old_record_by_the_new_in_one_write(
        self, ops: StoreOps
    ) -> None:
        old, new = key(), key()
        await ops("save", old, create({"d:a": "1", "d:gone": "2"}, principal="user:7"))
        assert await ops.outcome(new, rotate(old, {"d:a": "1"}, principal="user:7")) is APPLIED
        assert await ops("load", old) is None
        assert await ops.fields(new) == {"d:a": "1"}
        assert await ops.indexed("user:7") == [new]
        assert await ops("count") == 1

    async def test_rotate_writes_its_tombstone_as_a_plain_record(self, ops: StoreOps) -> None:
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

    async def test_a_tombstone_expires_like_any_record(self, ops: StoreOps) -> None:
        old, new = key(), key()
        await ops("save", old, create({"d:a": "1"}))
        tomb = stone(new, ttl=-5)
        assert await ops.outcome(new, rotate(old, {"d:a": "1"}, tombstone=tomb)) is APPLIED
        assert await ops("load", tomb.key) is None
        assert await ops("count") == 1

    @pytest.mark.parametrize("gone", ["deleted", "expired", "never stored"])
    async def test_a_rotation_whose_superseded_record_is_gone_writes_nothing(
        self, ops: StoreOps, gone: str
    ) -> None:
        old, new = key(), key()
        if gone != "never stored":
            ttl = -5 if gone == "expired" else LIVE
            await ops("save", old, create({"d:a": "1"}, ttl=ttl, principal="user:8"))
        if gone == "deleted":
            await ops("delete", old)  # revoked while the request that rotates it was in flight
        tomb = stone(new)
        saved = await ops(
            "save", new, rotate(old, {"d:a": "1"}, principal="user:8", tombstone=tomb)
        )
        assert saved.outcome is MISSING
        assert await ops("load", new) is None
        assert await ops("load", old) is None
        assert await ops("load", tomb.key) is None  # no tombstone without its rotation
        assert await ops("principal_records", "user:8") == []
        assert await ops("count") == 0

    async def test_two_rotations_of_one_record_race_and_one_wins(self, store: Store) -> None:
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
