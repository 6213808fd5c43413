"""Rotation that parallel requests survive: tombstones, forwarding, superseding, the atomic limit.

Two requests of one session load it "in parallel" (both before either commits) and commit in
both orders, through SessionManager and SyncSessionManager alike.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pytest

from sessio import (
    CommitAction,
    CommitOutcome,
    ConcurrencyLimitExceeded,
    ConcurrencyPolicy,
    EventKind,
    Policy,
    Principal,
    SessionManager,
    StoreUnavailable,
    SyncSessionManager,
)
from sessio.ids import open_successor, successor_key
from sessio.stores import MemoryStore, Record
from sessio.stores.base import Create, Saved, SaveOutcome, Write

from .conftest import FakeClock
from .drive import MODES, CountingStore, Drive

EVE, BOB = Principal("eve"), Principal("bob")


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def drive(mode: str, clock: FakeClock) -> Drive:
    return Drive(mode, clock=clock)


async def _anonymous(drive: Drive) -> str:
    session = await drive.load(None)
    session["cart"] = ["apple"]
    token = (await drive.commit(session)).token
    assert token is not None
    return token


async def _live_of(drive: Drive, who: str) -> list[str]:
    return [info.key for info in await drive("sessions_of", who)]


# -- a double-submitted login ---------------------------------------------------------------------


@pytest.mark.parametrize("first", [0, 1])
async def test_a_double_login_ends_with_one_live_session_and_one_token(
    drive: Drive, first: int
) -> None:
    token = await _anonymous(drive)
    requests = [await drive.load(token), await drive.load(token)]
    for r in requests:
        r.login(EVE)
    requests[1]["seen"] = "second"  # each request's own change reaches the one session
    requests[0].flash("info", "welcome")
    order = [requests[first], requests[1 - first]]
    commits = [await drive.commit(r) for r in order]
    assert [c.action for c in commits] == [CommitAction.SET, CommitAction.SET]
    assert [c.outcome for c in commits] == [CommitOutcome.APPLIED, CommitOutcome.FORWARDED]
    assert commits[0].token == commits[1].token  # both responses set the same cookie
    assert len(await _live_of(drive, "eve")) == 1
    assert await drive.store.count() == 2  # the session and its tombstone
    final = await drive.load(commits[0].token)
    assert final.principal == EVE
    assert dict(final) == {"cart": ["apple"], "seen": "second"}
    assert final.peek_flash() == ["welcome"]
    assert (await drive.load(token)).is_new  # the pre-login ID is dead
    assert EventKind.FORWARDED in drive.kinds()


async def test_a_session_rotated_again_meanwhile_is_followed_down_the_chain(drive: Drive) -> None:
    token = await _anonymous(drive)
    late = await drive.load(token)
    login = await drive.load(token)
    login.login(EVE)
    second_token = (await drive.commit(login)).token
    step_up = await drive.load(second_token)
    step_up.login(EVE)  # re-authentication: a second rotation
    third_token = (await drive.commit(step_up)).token
    late.login(EVE)
    late["x"] = 1
    commit = await drive.commit(late)
    assert commit.outcome is CommitOutcome.FORWARDED
    assert commit.token == third_token
    assert (await drive.load(third_token))["x"] == 1
    assert len(await _live_of(drive, "eve")) == 1


async def test_a_delta_of_a_signed_in_session_follows_a_step_up(drive: Drive) -> None:
    session = await drive.load(None)
    session.login(EVE)
    token = (await drive.commit(session)).token
    busy, step_up = await drive.load(token), await drive.load(token)
    busy["draft"] = "text"
    step_up.login(Principal("eve", roles=["admin"]))
    new_token = (await drive.commit(step_up)).token
    commit = await drive.commit(busy)
    assert (commit.outcome, commit.action, commit.token) == (
        CommitOutcome.FORWARDED,
        CommitAction.SET,
        new_token,
    )
    final = await drive.load(new_token)
    assert final["draft"] == "text"
    assert final.principal == Principal("eve", roles=["admin"])  # the step-up's, untouched


async def test_a_touch_of_a_signed_in_session_follows_the_rotation(
    drive: Drive, clock: FakeClock
) -> None:
    session = await drive.load(None)
    session.login(EVE)
    token = (await drive.commit(session)).token
    clock.advance(120)  # a touch is due
    reader, rotating = await drive.load(token), await drive.load(token)
    rotating.regenerate()
    new_token = (await drive.commit(rotating)).token
    commit = await drive.commit(reader)
    assert commit.outcome is CommitOutcome.FORWARDED
    assert commit.token == new_token


# -- an anonymous request in flight during a login -------------------------------------------------


@pytest.mark.parametrize("change", ["delta", "touch", "flash", "regenerate"])
async def test_an_anonymous_request_in_flight_during_a_login_is_superseded(
    drive: Drive, clock: FakeClock, change: str
) -> None:
    token = await _anonymous(drive)
    if change == "touch":
        clock.advance(120)
    stale, login = await drive.load(token), await drive.load(token)
    login.login(EVE)
    login_commit = await drive.commit(login)
    if change == "delta":
        stale["cart"] = ["apple", "pear"]
    elif change == "flash":
        stale.flash("info", "added to cart")
    elif change == "regenerate":
        stale.regenerate()
    drive.counting.reset()
    commit = await drive.commit(stale)
    assert commit.outcome is CommitOutcome.SUPERSEDED
    assert commit.action is CommitAction.NONE  # never CLEAR: the login's cookie stays
    assert commit.token is None
    assert not commit.wrote
    # One attempt, which the store answered MISSING; then one load of the tombstone.
    assert len(drive.counting.writes) == 1
    assert drive.counting.loads == 1
    assert drive.kinds()[-1] is EventKind.SUPERSEDED
    final = await drive.load(login_commit.token)
    assert final.principal == EVE
    assert final["cart"] == ["apple"]
    assert final.peek_flash() == []
    assert await drive.store.count() == 2  # the login and its tombstone: nothing else written


async def test_a_login_as_another_principal_in_flight_is_superseded(drive: Drive) -> None:
    token = await _anonymous(drive)
    one, two = await drive.load(token), await drive.load(token)
    one.login(EVE)
    two.login(BOB)
    winner = await drive.commit(one)
    loser = await drive.commit(two)
    assert loser.outcome is CommitOutcome.SUPERSEDED
    assert loser.action is CommitAction.NONE
    assert await _live_of(drive, "bob") == []
    assert (await drive.load(winner.token)).principal == EVE


async def test_without_a_tombstone_a_vanished_session_clears_the_cookie(drive: Drive) -> None:
    token = await _anonymous(drive)
    stale, ender = await drive.load(token), await drive.load(token)
    ender.destroy()
    await drive.commit(ender)
    stale["x"] = 1
    commit = await drive.commit(stale)
    assert (commit.outcome, commit.action) == (CommitOutcome.VANISHED, CommitAction.CLEAR)


async def test_logout_and_destroy_leave_no_tombstone(drive: Drive) -> None:
    session = await drive.load(None)
    session.login(EVE)
    token = (await drive.commit(session)).token
    stale, leaving = await drive.load(token), await drive.load(token)
    leaving.logout()
    after_logout = await drive.commit(leaving)
    assert await drive.store.load(successor_key(token)) is None
    stale["x"] = 1
    commit = await drive.commit(stale)
    assert commit.outcome is CommitOutcome.VANISHED
    assert commit.action is CommitAction.CLEAR
    gone = await drive.load(after_logout.token)
    gone.destroy()
    assert (await drive.commit(gone)).outcome is CommitOutcome.DESTROYED
    assert await drive.store.load(successor_key(after_logout.token)) is None


async def test_a_tombstone_lives_for_the_grace_window_only(mode: str, clock: FakeClock) -> None:
    drive = Drive(mode, clock=clock, policy=Policy(rotation_grace=timedelta(seconds=5)))
    token = await _anonymous(drive)
    late, login = await drive.load(token), await drive.load(token)
    login.login(EVE)
    await drive.commit(login)
    clock.advance(5)
    late.login(EVE)
    commit = await drive.commit(late)
    assert commit.outcome is CommitOutcome.VANISHED  # too late to follow


async def test_a_tombstone_reveals_nothing_without_the_old_id(drive: Drive) -> None:
    token = await _anonymous(drive)
    login = await drive.load(token)
    login.login(EVE)
    new_token = (await drive.commit(login)).token
    record = await drive.store.load(successor_key(token))
    assert record is not None
    assert record.principal is None  # not filed under eve: a device list never shows it
    dump = repr(record)
    assert new_token not in dump
    assert token not in dump
    assert login.key in dump  # the successor's store key, which the store holds anyway
    handoff = record.fields["s:handoff"].strip('"')
    assert open_successor(token, handoff, login.key) == new_token
    other = (await drive.load(None)).id
    assert open_successor(other, handoff, login.key) is None
    assert open_successor(token, handoff, "0" * 64) is None
    assert await _live_of(drive, "eve") == [login.key]


# -- the concurrency limit, atomic in the login's write ---------------------------------------------


def _limited(limit: int, on_limit: str) -> Policy:
    concurrency = ConcurrencyPolicy(max_sessions_per_principal=limit, on_limit=on_limit)  # type: ignore[arg-type]
    return Policy(concurrency=concurrency)


@pytest.mark.parametrize("on_limit", ["evict_oldest", "reject"])
def test_ten_parallel_logins_across_threads_leave_at_most_the_limit(on_limit: str) -> None:
    manager = SyncSessionManager(MemoryStore(), _limited(2, on_limit))
    evicted: list[str] = []
    manager.events.subscribe(lambda e: evicted.append(e.kind.value))
    barrier = threading.Barrier(10)
    outcomes: list[str] = []

    def device() -> None:
        session = manager.load(None)
        session.login(EVE)
        barrier.wait(timeout=10)
        try:
            outcomes.append(manager.commit(session).outcome.value)
        except ConcurrencyLimitExceeded:
            outcomes.append("rejected")

    threads = [threading.Thread(target=device) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(outcomes) == 10
    assert len(manager.sessions_of(EVE)) == 2
    if on_limit == "reject":
        assert sorted(outcomes) == ["applied"] * 2 + ["rejected"] * 8
    else:
        assert outcomes == ["applied"] * 10
        assert evicted.count("evicted") == 8


@pytest.mark.parametrize("on_limit", ["evict_oldest", "reject"])
async def test_ten_parallel_logins_across_tasks_leave_at_most_the_limit(on_limit: str) -> None:
    manager = SessionManager(MemoryStore(), _limited(2, on_limit))
    sessions = [await manager.load(None) for _ in range(10)]
    for s in sessions:
        s.login(EVE)
    results = await asyncio.gather(*(manager.commit(s) for s in sessions), return_exceptions=True)
    refused = [r for r in results if isinstance(r, ConcurrencyLimitExceeded)]
    assert len(await manager.sessions_of(EVE)) == 2
    assert len(refused) == (8 if on_limit == "reject" else 0)


async def test_an_evicting_login_reports_whom_it_evicted(mode: str, clock: FakeClock) -> None:
    drive = Drive(mode, clock=clock, policy=_limited(1, "evict_oldest"))
    first = await drive.load(None)
    first.login(EVE)
    await drive.commit(first)
    second = await drive.load(None)
    second.login(EVE)
    await drive.commit(second)
    [evicted] = [e for e in drive.events if e.kind is EventKind.EVICTED]
    assert evicted.session == first.key[:12]
    assert [w.limit is not None for _, w in drive.counting.writes] == [True, True]
    assert drive.counting.deletes == []  # no list-then-delete: the store evicted in the write


async def test_the_common_commits_cost_one_round_trip_and_no_tombstone_load(drive: Drive) -> None:
    token = await _anonymous(drive)
    for change in ("delta", "login", "step-up"):
        session = await drive.load(token)
        drive.counting.reset()
        if change == "delta":
            session["b"] = 1
        else:
            session.login(EVE)
        commit = await drive.commit(session)
        assert (len(drive.counting.writes), drive.counting.loads) == (1, 0), change
        token = commit.token


# -- hostile tombstones and a store that fails while following -----------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"s:successor": "{", "s:handoff": "[", "s:principal": "]"},
        {"s:successor": '"x"', "s:handoff": '"y"', "s:principal": "null"},
        {"s:successor": "5", "s:handoff": "null", "s:principal": "[1]"},
        {
            "s:successor": '"' + "0" * 64 + '"',
            "s:handoff": '"' + "A" * 43 + '"',
            "s:principal": '"user:eve"',
        },
    ],
    ids=["empty", "garbage", "wrong-strings", "wrong-types", "forged"],
)
async def test_a_forged_or_garbled_tombstone_is_never_followed(
    drive: Drive, fields: dict[str, str]
) -> None:
    session = await drive.load(None)
    session.login(EVE)
    token = (await drive.commit(session)).token
    stale = await drive.load(token)
    await drive("revoke", stale.key)
    await drive.store.save(successor_key(token), Create(fields, drive.clock() + 5))
    stale["x"] = 1
    commit = await drive.commit(stale)
    assert (commit.outcome, commit.action) == (CommitOutcome.VANISHED, CommitAction.CLEAR)
    assert await _live_of(drive, "eve") == []


async def test_a_store_failing_while_a_tombstone_is_followed_raises_and_writes_nothing(
    mode: str, clock: FakeClock
) -> None:
    class Failing(CountingStore):
        def load_sync(self, key: str) -> Record | None:
            if key in stones:
                raise StoreUnavailable("stalled")
            return super().load_sync(key)

        async def load(self, key: str) -> Record | None:
            return self.load_sync(key)

    stones: set[str] = set()
    drive = Drive(mode, clock=clock, store=Failing(clock=clock))
    token = await _anonymous(drive)
    stale, login = await drive.load(token), await drive.load(token)
    login.login(EVE)
    await drive.commit(login)
    stones.add(successor_key(token))
    stale["cart"] = ["pear"]
    drive.counting.reset()
    with pytest.raises(StoreUnavailable):
        await drive.commit(stale)
    assert len(drive.counting.writes) == 1  # the attempt that came back MISSING, nothing after


async def test_a_create_that_collides_is_retried_under_a_fresh_id(
    mode: str, clock: FakeClock
) -> None:
    class Colliding(CountingStore):
        collisions = 1

        def save_sync(self, key: str, write: Write) -> Saved:
            if isinstance(write, Create) and self.collisions:
                self.collisions -= 1
                return Saved(SaveOutcome.EXISTS)  # someone else's live record under that key
            return super().save_sync(key, write)

        async def save(self, key: str, write: Write) -> Saved:
            return self.save_sync(key, write)

    drive = Drive(mode, clock=clock, store=Colliding(clock=clock))
    session = await drive.load(None)
    first_id = session.id
    session["a"] = 1
    commit = await drive.commit(session)
    assert commit.outcome is CommitOutcome.APPLIED
    assert commit.token != first_id
    assert (await drive.load(commit.token))["a"] == 1
    broken = Colliding(clock=clock)
    broken.collisions = 10
    drive = Drive(mode, clock=clock, store=broken)
    session = await drive.load(None)
    session["a"] = 1
    with pytest.raises(StoreUnavailable):
        await drive.commit(session)  # a store that always says EXISTS is broken, not full
