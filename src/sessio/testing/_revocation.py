"""A session revoked or evicted while a request holds it stays gone."""

from __future__ import annotations

from typing import Any

import pytest

from ..events import EventKind
from ..manager import SyncSessionManager
from ..policy import ConcurrencyPolicy, Policy
from ..principal import Principal
from ..results import CommitAction
from ..session import Session
from ._base import ContractBase
from ._support import (
    ManagerOps,
    ManualClock,
    StoreOps,
)

__all__ = ["RevocationContract"]


def _step_up(session: Session) -> None:
    session.login(Principal("ada", roles=["admin"]))  # a privilege change rotates the ID


def _regenerate(session: Session) -> None:
    session.regenerate()


def _delta(session: Session) -> None:
    session["cart"] = ["apple"]


def _nothing(session: Session) -> None:
    pass


class RevocationContract(ContractBase):
    """A session revoked or evicted while a request holds it stays gone."""

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
        self,
        ops: StoreOps,
        clock: ManualClock,
        change: Any,
        policy: Policy,
        idle: float,
        revoke: str,
    ) -> None:
        m = ManagerOps(ops.store, ops.mode, policy, clock)
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

    async def test_a_session_evicted_in_flight_is_not_brought_back(
        self, ops: StoreOps, clock: ManualClock
    ) -> None:
        policy = Policy(concurrency=ConcurrencyPolicy(max_sessions_per_principal=1))
        m = ManagerOps(ops.store, ops.mode, policy, clock)
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

    async def test_a_session_that_is_still_there_commits_as_usual(
        self, ops: StoreOps, clock: ManualClock
    ) -> None:
        m = ManagerOps(ops.store, ops.mode, Policy(resave=True), clock)
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
        self, ops: StoreOps, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The old gap: revoke_all listed the sessions, then deleted them, and a rotation landing in
        between lived on under a key the list never saw. Here every listing of the store lets one
        pending rotation land right after it; revoke_all must leave nothing of the principal."""
        store = ops.store
        m = ManagerOps(store, ops.mode, Policy(), clock)
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
        m = ManagerOps(store, ops.mode, Policy(), clock)  # bound to the patched store
        assert await m("revoke_all", "ada") == 2
        land()  # revoke_all never listed: the rotation lands after it, and must find nothing
        assert landed == [CommitAction.CLEAR]
        assert m.kinds() == [EventKind.REVOKED, EventKind.REVOKED]
        assert await m("sessions_of", "ada") == []
        for token in (*tokens, in_flight.id):
            assert (await m("load", token)).is_new

    async def test_a_login_refused_because_its_session_vanished_evicts_nobody(
        self, ops: StoreOps, clock: ManualClock
    ) -> None:
        """The concurrency limit makes room only once the login is stored: a login whose rotation
        finds its session gone writes nothing, and must not have logged another device out."""
        policy = Policy(concurrency=ConcurrencyPolicy(max_sessions_per_principal=1))
        m = ManagerOps(ops.store, ops.mode, policy, clock)
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
