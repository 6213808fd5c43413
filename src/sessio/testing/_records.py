"""Records as stored: values no store can hold, paged walks, expiry, cleanup, principal index."""

from __future__ import annotations

from typing import Any

import pytest

from ..errors import ValueNotSerializable
from ..stores.base import Record, SaveOutcome, Tombstone
from ._base import ContractBase
from ._support import (
    StoreOps,
    at,
    create,
    key,
    rewrite,
    rotate,
    update,
)

APPLIED = SaveOutcome.APPLIED

__all__ = ["RecordContract"]


_BAD = "\ud800"  # a lone surrogate: no UTF-8 encoding exists


# -- paged walks -----------------------------------------------------------------------------------
async def _walk(ops: StoreOps, limit: int) -> list[Record]:
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


class RecordContract(ContractBase):
    """Records as stored: values, paged walks, expiry, cleanup and the principal index."""

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
        self, ops: StoreOps, fresh_key: bool, make: Any
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
        assert (
            await ops.outcome(after, create({"d:y": '"ok \u00fc"'}, principal="user:v")) is APPLIED
        )
        assert await ops.outcome(k, update({"d:x": "2"}, principal="user:v")) is APPLIED
        assert await ops.fields(after) == {"d:y": '"ok \u00fc"'}
        assert await ops.fields(k) == {"d:x": "2"}
        assert await ops.indexed("user:v") == sorted([k, after])

    # -- miscellany --------------------------------------------------------------------------------
    async def test_delete_reports_whether_it_removed_something(self, ops: StoreOps) -> None:
        k = key()
        await ops("save", k, create({"d:a": "1"}))
        assert await ops("delete", k) is True
        assert await ops("delete", k) is False
        assert await ops("load", k) is None

    async def test_values_round_trip_unicode_and_large_text(self, ops: StoreOps) -> None:
        k = key()
        fields = {"d:ü": '"h\\u00e9llo ü 🍪"', "d:big": '"' + "x" * 100_000 + '"', "d:empty": '""'}
        await ops("save", k, create(fields))
        assert await ops.fields(k) == fields

    @pytest.mark.parametrize("limit", [1, 7, 100])
    async def test_a_paged_walk_yields_every_live_record_once(
        self, ops: StoreOps, limit: int
    ) -> None:
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

    async def test_a_paged_walk_of_an_empty_store_ends_at_once(self, ops: StoreOps) -> None:
        assert await _walk(ops, 10) == []

    # -- expiry and cleanup ------------------------------------------------------------------------
    async def test_expired_records_are_invisible(self, ops: StoreOps) -> None:
        k = key()
        await ops("save", k, create({"d:a": "1"}, ttl=-5, principal="user:x"))
        assert await ops("load", k) is None
        assert await ops("exists", k) is False
        assert await ops("principal_records", "user:x") == []
        assert await ops("count") == 0

    async def test_cleanup_removes_expired_and_keeps_live(self, ops: StoreOps) -> None:
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

    async def test_count_and_clear(self, ops: StoreOps) -> None:
        for _ in range(4):
            await ops("save", key(), create({"d:a": "1"}, principal="user:c"))
        assert await ops("count") == 4
        assert await ops("clear") >= 4
        assert await ops("count") == 0
        assert await ops("principal_records", "user:c") == []

    # -- principal index ---------------------------------------------------------------------------
    async def test_principal_index_lists_live_sessions_of_one_principal(
        self, ops: StoreOps
    ) -> None:
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

    async def test_principal_index_follows_changes_and_deletes(self, ops: StoreOps) -> None:
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

    async def test_principal_names_are_opaque(self, ops: StoreOps) -> None:
        odd = "user:../../etc/passwd {x} ü*?"
        k = key()
        await ops("save", k, create({"d:n": "1"}, principal=odd))
        assert await ops.indexed(odd) == [k]
        assert await ops("principal_records", "user:") == []
