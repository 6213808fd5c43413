"""Principal limits: eviction and refusal in the write's own step, under parallel writers."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ..stores.base import Saved, SaveOutcome, Store
from ._base import ContractBase
from ._support import (
    LIVE,
    OnLimit,
    StoreOps,
    create,
    key,
    lim,
    rewrite,
    rotate,
    stone,
    update,
)

APPLIED = SaveOutcome.APPLIED
REJECTED = SaveOutcome.REJECTED

__all__ = ["LimitContract"]


async def _three_of(ops: StoreOps, principal: str) -> list[str]:
    keys = [key() for _ in range(3)]
    for n, k in enumerate(keys):  # expiries ordered: keys[0] is the least recently active
        await ops("save", k, create({"d:n": str(n)}, ttl=LIVE + n * 60, principal=principal))
    return keys


def _check_limit_outcome(results: dict[str, Saved], live: list[str], on_limit: OnLimit) -> None:
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


class LimitContract(ContractBase):
    """Principal limits: eviction and refusal in the write's own step, under parallel writers."""

    async def test_evict_oldest_removes_the_earliest_expiring_others_in_the_write(
        self, ops: StoreOps
    ) -> None:
        keys = await _three_of(ops, "user:l1")
        new = key()
        saved = await ops("save", new, create({"d:n": "9"}, principal="user:l1", limit=lim(2)))
        assert saved.outcome is APPLIED
        assert saved.evicted == (keys[0], keys[1])  # oldest first
        assert await ops.indexed("user:l1") == sorted([keys[2], new])
        assert await ops("load", keys[0]) is None

    async def test_reject_writes_nothing(self, ops: StoreOps) -> None:
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

    async def test_a_limit_leaves_room_below_it_alone(self, ops: StoreOps) -> None:
        keys = await _three_of(ops, "user:l3")
        other = key()
        await ops("save", other, create({"d:n": "1"}, principal="user:someone-else"))
        saved = await ops("save", key(), create({"d:n": "9"}, principal="user:l3", limit=lim(4)))
        assert saved == Saved(APPLIED)
        assert len(await ops.indexed("user:l3")) == 4
        assert set(keys) <= set(await ops.indexed("user:l3"))
        assert await ops("load", other) is not None

    async def test_a_limit_does_not_count_the_written_key_or_the_superseded_one(
        self, ops: StoreOps
    ) -> None:
        keys = await _three_of(ops, "user:l4")
        # A rotation of one of the three, limit 3: the two others are below it.
        new = key()
        saved = await ops(
            "save", new, rotate(keys[0], {"d:n": "0"}, principal="user:l4", limit=lim(3))
        )
        assert saved == Saved(APPLIED)
        # An update and a rewrite of one of the three, limit 3.
        assert await ops("save", keys[1], update({}, principal="user:l4", limit=lim(3))) == Saved(
            APPLIED
        )
        w = rewrite({"d:n": "1"}, principal="user:l4", limit=lim(3, "reject"))
        assert await ops("save", keys[1], w) == Saved(APPLIED)
        assert await ops.indexed("user:l4") == sorted([new, keys[1], keys[2]])

    async def test_a_limit_ignores_expired_records(self, ops: StoreOps) -> None:
        for _ in range(3):
            await ops("save", key(), create({"d:n": "1"}, ttl=-5, principal="user:l5"))
        saved = await ops("save", key(), create({}, principal="user:l5", limit=lim(1, "reject")))
        assert saved == Saved(APPLIED)

    async def test_a_rejected_rotation_leaves_the_old_record_live(self, ops: StoreOps) -> None:
        keys = await _three_of(ops, "user:l6")
        anon = key()
        await ops("save", anon, create({"d:cart": "1"}))
        tomb = stone("x")
        w = rotate(
            anon, {"d:cart": "1"}, principal="user:l6", limit=lim(3, "reject"), tombstone=tomb
        )
        new = key()
        assert await ops.outcome(new, w) is REJECTED
        assert await ops.fields(anon) == {"d:cart": "1"}
        assert await ops("load", new) is None
        assert await ops("load", tomb.key) is None
        assert await ops.indexed("user:l6") == sorted(keys)

    async def test_an_evicting_rotation_applies_every_part_at_once(self, ops: StoreOps) -> None:
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
        self, store: Store, on_limit: OnLimit
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
        self, store: Store, on_limit: OnLimit
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
