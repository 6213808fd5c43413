"""The behaviour users see, through the session manager: round trips, garbage, races, rotations."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ..events import EventKind
from ..ids import store_key
from ..manager import SessionManager, SyncSessionManager
from ..policy import ConcurrencyPolicy, Policy
from ..principal import Principal
from ..results import CommitAction
from ..stores.base import Store
from ._base import ContractBase
from ._support import (
    ManagerOps,
    ManualClock,
    StoreOps,
    create,
    key,
)

__all__ = ["ManagerContract"]


class ManagerContract(ContractBase):
    """The contract as users see it, through a session manager on the store."""

    async def test_manager_round_trip(self, managers: ManagerOps) -> None:
        session = await managers("load", None)
        session["cart"] = ["apple"]
        commit = await managers("commit", session)
        again = await managers("load", commit.token)
        assert not again.is_new
        assert again["cart"] == ["apple"]

    async def test_parallel_requests_on_one_session_lose_nothing(
        self, managers: ManagerOps
    ) -> None:
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
        self, store: Store, managers: ManagerOps
    ) -> None:
        session = await managers("load", None)
        session["x"] = 1
        token = (await managers("commit", session)).token
        await self.corrupt(store, store_key(token))
        fresh = await managers("load", token)
        assert fresh.is_new
        assert fresh.id != token
        assert EventKind.CORRUPT in managers.kinds()
        fresh["y"] = 2
        assert (await managers("commit", fresh)).wrote

    async def test_eviction_of_the_oldest_session_past_the_limit(
        self, ops: StoreOps, clock: ManualClock
    ) -> None:
        policy = Policy(concurrency=ConcurrencyPolicy(max_sessions_per_principal=2))
        m = ManagerOps(ops.store, ops.mode, policy, clock)
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

    async def test_manager_cleanup_removes_what_expired(self, ops: StoreOps) -> None:
        store = ops.store
        m = ManagerOps(store, ops.mode)
        s = await m("load", None)
        s["k"] = 1
        token = (await m("commit", s)).token
        dead = key()
        await ops("save", dead, create({"d:a": "1"}, ttl=-5))
        removed = await m("cleanup")
        assert removed == (0 if self.native_ttl(store) else 1)
        assert await ops("count") == 1
        assert not (await m("load", token)).is_new

    # -- concurrency -------------------------------------------------------------------------------
    async def test_many_threads_update_one_session(self, store: Store) -> None:
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

    async def test_many_tasks_update_one_session(self, store: Store) -> None:
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

    # -- rotations that parallel requests survive, on every store ----------------------------------
    @pytest.mark.parametrize("first", [0, 1])
    async def test_a_double_login_ends_with_one_live_session_on_every_store(
        self, managers: ManagerOps, first: int
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
        self,
        managers: ManagerOps,
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
