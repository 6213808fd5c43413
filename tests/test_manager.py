"""SessionManager and SyncSessionManager: timeouts, writes, strict IDs, limits, revocation."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from sessio import (
    CommitAction,
    ConcurrencyLimitExceeded,
    ConcurrencyPolicy,
    EventKind,
    MemoryStore,
    Policy,
    Principal,
    SessionEvent,
    SessionManager,
    StoreUnavailable,
    SyncSessionManager,
    ValueNotSerializable,
)
from sessio.ids import new_session_id, short_hash, store_key
from sessio.stores import Record
from sessio.stores.base import Create, PrincipalLimit, Rewrite, Update

from .conftest import FakeClock
from .drive import MODES, CountingStore, Drive

MINUTE = 60.0
#: The expiry of a session holding data under the default policy: its idle timeout (30
#: minutes) plus one refresh_interval of slack, so the throttled touch never makes it early.
#: (A session holding nothing, nobody signed in, lives anonymous_idle_timeout instead.)
DATA_IDLE = 30 * MINUTE + 60.0


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def drive(mode: str, clock: FakeClock) -> Drive:
    return Drive(mode, clock=clock)


def never_expiring(clock: FakeClock) -> CountingStore:
    """A store that keeps records past their expiry (its own clock is stuck at 1970), as a
    store with coarse or lagging TTLs may: the manager must enforce timeouts by itself."""
    return CountingStore(MemoryStore(max_sessions=None, clock=lambda: 0.0), clock=clock)


# -- new sessions ---------------------------------------------------------------------------------


async def test_an_empty_new_session_is_not_stored(drive: Drive) -> None:
    session = await drive.load(None)
    assert session.is_new
    commit = await drive.commit(session)
    assert commit.action is CommitAction.NONE
    assert not commit.wrote
    assert drive.counting.writes == []
    assert drive.events == []


async def test_the_first_write_creates_the_record_and_sends_the_token(
    drive: Drive, clock: FakeClock
) -> None:
    session = await drive.load(None)
    session["a"] = 1
    commit = await drive.commit(session)
    assert commit.action is CommitAction.SET
    assert commit.token == session.id
    assert commit.wrote
    # The idle timeout, plus one refresh_interval of slack.
    assert commit.expires_at == clock.now + DATA_IDLE
    assert commit.cookie_expires_at == clock.now + 7 * 24 * 60 * MINUTE
    [(key, write)] = drive.counting.writes
    assert key == session.key
    assert isinstance(write, Create)
    assert drive.kinds() == [EventKind.CREATED, EventKind.SAVED]


async def test_save_uninitialized_stores_empty_sessions(drive: Drive) -> None:
    eager = drive.twin(Policy(save_uninitialized=True))
    session = await eager.load(None)
    commit = await eager.commit(session)
    assert commit.action is CommitAction.SET
    assert await eager.store.exists(session.key)
    assert EventKind.CREATED in eager.kinds()


# -- strict IDs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [None, "", "short", "x" * 43 + "=", "!" * 43, "é" * 43, new_session_id()],
    ids=["none", "empty", "short", "long", "bad-chars", "unicode", "never-issued"],
)
async def test_a_token_the_server_never_issued_is_never_adopted(
    drive: Drive, token: str | None
) -> None:
    session = await drive.load(token)
    assert session.is_new
    assert session.id != token
    assert (await drive.commit(session)).action is CommitAction.NONE
    assert drive.counting.writes == []
    session["a"] = 1
    commit = await drive.commit(session)
    assert commit.token == session.id != token
    assert await drive.store.count() == 1
    if token and token.isascii():
        assert not await drive.store.exists(store_key(token))


async def test_malformed_tokens_cost_no_store_round_trip(drive: Drive) -> None:
    await drive.load("not-a-session-id")
    await drive.load("A" * 44)
    assert drive.counting.loads == 0


# -- timeouts, enforced at load ---------------------------------------------------------------------


async def test_an_idle_session_expires(drive: Drive, clock: FakeClock) -> None:
    _, token = await drive.stored(a=1)
    clock.advance(29 * MINUTE)
    assert not (await drive.load(token)).is_new
    clock.advance(2 * MINUTE + 1)  # past 30 minutes + the refresh slack; the read did not touch
    assert (await drive.load(token)).is_new


@pytest.mark.parametrize("signed_in", [True, False], ids=["signed-in", "anonymous"])
async def test_the_idle_timeout_is_never_early_and_at_most_one_refresh_interval_late(
    mode: str, clock: FakeClock, signed_in: bool
) -> None:
    """The touch is throttled (refresh_interval): a request just inside the interval is not
    recorded, yet the session must live a whole idle timeout after it."""
    policy = Policy(
        idle_timeout=timedelta(minutes=30), anonymous_idle_timeout=timedelta(minutes=20)
    )
    idle = 30 * MINUTE if signed_in else 20 * MINUTE
    refresh = policy.refresh_seconds
    drive = Drive(mode, clock=clock, policy=policy)
    session = await drive.load(None)
    if signed_in:
        session.login(Principal("ada"))
        session["a"] = 1
    else:
        session.csrf_token  # noqa: B018 - a visitor's page view: no data, nobody signed in
    token = (await drive.commit(session)).token
    written = clock.now
    clock.advance(refresh - 0.5)  # a request the throttle does not record
    last_request = clock.now
    assert not (await drive.commit(await drive.load(token))).wrote
    clock.now = last_request + idle - 0.01  # idle for less than the timeout: alive
    s = await drive.load(token)
    assert not s.is_new
    clock.now = written + idle + refresh - 0.01  # the most it may be kept
    assert not (await drive.load(token)).is_new
    clock.now = written + idle + refresh  # at most refresh_interval late: gone
    assert (await drive.load(token)).is_new


async def test_activity_cannot_outlive_the_absolute_ttl(mode: str, clock: FakeClock) -> None:
    policy = Policy(ttl=timedelta(hours=1), idle_timeout=timedelta(minutes=10))
    drive = Drive(mode, clock=clock, policy=policy)
    browser = drive.browser()
    async with browser.request() as s:
        s["a"] = 1
    token = browser.token
    for _ in range(11):  # a request every 5 minutes: never idle
        clock.advance(5 * MINUTE)
        async with browser.request() as s:
            assert not s.is_new
    clock.advance(5 * MINUTE + 1)  # 1 h + 1 s after creation
    async with browser.request() as s:
        assert s.is_new
        assert s.id != token


@pytest.mark.parametrize("which", ["idle", "absolute"])
async def test_timeouts_are_enforced_by_the_manager_not_only_the_store(
    mode: str, clock: FakeClock, which: str
) -> None:
    policy = Policy(ttl=timedelta(hours=1), idle_timeout=timedelta(minutes=10))
    drive = Drive(mode, clock=clock, policy=policy, store=never_expiring(clock))
    session, token = await drive.stored(a=1)
    if which == "idle":
        clock.advance(10 * MINUTE + 60)  # the idle timeout and its refresh slack
    else:
        for _ in range(11):  # busy for 55 minutes: never idle
            clock.advance(5 * MINUTE)
            await drive.commit(await drive.load(token))
        clock.advance(5 * MINUTE)  # the hour is over, the idle timeout is not
    assert await drive.store.exists(session.key)  # the store would still serve it
    fresh = await drive.load(token)
    assert fresh.is_new
    assert not await drive.store.exists(session.key)  # removed
    expired = [e for e in drive.events if e.kind is EventKind.EXPIRED]
    assert len(expired) == 1
    assert expired[0].session == short_hash(session.key)


async def test_a_shorter_policy_applies_to_sessions_already_stored(
    drive: Drive, clock: FakeClock
) -> None:
    session, token = await drive.stored(a=1)  # idle timeout 30 minutes
    strict = drive.twin(Policy(idle_timeout=timedelta(minutes=5)))
    clock.advance(10 * MINUTE)
    assert (await strict.load(token)).is_new
    assert EventKind.EXPIRED in strict.kinds()
    assert not await drive.store.exists(session.key)


async def test_cleanup_removes_expired_records(drive: Drive, clock: FakeClock) -> None:
    for _ in range(3):
        await drive.stored()
    clock.advance(31 * MINUTE)
    await drive.stored()
    assert await drive("cleanup") == 3
    assert await drive.store.count() == 1


# -- the throttled touch, rolling, resave ---------------------------------------------------------------


async def test_unmodified_requests_write_nothing_until_the_refresh_interval(
    drive: Drive, clock: FakeClock
) -> None:
    session, token = await drive.stored(a=1)
    drive.counting.reset()
    for step in (10, 30, 19.9):  # 59.9 s after the write: still within refresh_interval
        clock.advance(step)
        s = await drive.load(token)
        assert s["a"] == 1
        commit = await drive.commit(s)
        assert commit.action is CommitAction.NONE
        assert not commit.wrote
    assert drive.counting.writes == []
    clock.advance(0.1)  # now 60 s: one touch
    commit = await drive.commit(await drive.load(token))
    assert commit.wrote
    assert commit.action is CommitAction.NONE  # the cookie already lasts until the absolute end
    [(key, write)] = drive.counting.writes
    assert key == session.key
    assert set(write.fields) == {"s:meta"}
    assert isinstance(write, Update)
    assert write.expires_at == clock.now + DATA_IDLE
    assert drive.kinds()[-1] is EventKind.TOUCHED
    clock.advance(30)  # the interval counts from the touch
    assert not (await drive.commit(await drive.load(token))).wrote
    assert len(drive.counting.writes) == 1


async def test_the_touch_pushes_the_idle_expiry(drive: Drive, clock: FakeClock) -> None:
    _, token = await drive.stored(a=1)
    clock.advance(10 * MINUTE)
    await drive.commit(await drive.load(token))  # a touch at 10 minutes
    clock.advance(10 * MINUTE)  # 20 minutes after the write, 10 after the touch
    assert not (await drive.load(token)).is_new


async def test_without_an_idle_timeout_there_is_nothing_to_touch(
    mode: str, clock: FakeClock
) -> None:
    policy = Policy(ttl=timedelta(hours=1), idle_timeout=None, anonymous_idle_timeout=None)
    drive = Drive(mode, clock=clock, policy=policy)
    _, token = await drive.stored(a=1)
    drive.counting.reset()
    clock.advance(30 * MINUTE)
    assert not (await drive.commit(await drive.load(token))).wrote
    assert drive.counting.writes == []


async def test_rolling_without_an_idle_timeout_writes_nothing(mode: str, clock: FakeClock) -> None:
    policy = Policy(
        ttl=timedelta(hours=1), idle_timeout=None, anonymous_idle_timeout=None, rolling=True
    )
    drive = Drive(mode, clock=clock, policy=policy)
    _, token = await drive.stored(a=1)
    drive.counting.reset()
    clock.advance(10 * MINUTE)
    commit = await drive.commit(await drive.load(token))
    assert not commit.wrote
    assert drive.counting.writes == []


async def test_logout_of_a_never_stored_session_stores_nothing(drive: Drive) -> None:
    session = await drive.load(None)
    session["draft"] = 1
    session.logout()
    assert dict(session) == {}
    commit = await drive.commit(session)
    assert commit.action is CommitAction.NONE
    assert drive.counting.writes == []


async def test_rolling_resends_the_token_when_the_expiry_moves(mode: str, clock: FakeClock) -> None:
    drive = Drive(mode, clock=clock, policy=Policy(rolling=True))
    _, token = await drive.stored(a=1)
    clock.advance(10)
    assert (await drive.commit(await drive.load(token))).action is CommitAction.NONE  # throttled
    clock.advance(60)
    touch = await drive.commit(await drive.load(token))
    assert touch.action is CommitAction.SET
    assert touch.token == token
    assert touch.expires_at == clock.now + DATA_IDLE
    s = await drive.load(token)
    s["b"] = 2
    assert (await drive.commit(s)).action is CommitAction.SET


async def test_without_rolling_a_write_keeps_the_clients_token(drive: Drive) -> None:
    _, token = await drive.stored(a=1)
    s = await drive.load(token)
    s["b"] = 2
    commit = await drive.commit(s)
    assert commit.wrote
    assert commit.action is CommitAction.NONE


async def test_an_idle_only_policy_resends_the_token_on_touch(mode: str, clock: FakeClock) -> None:
    policy = Policy(ttl=None, idle_timeout=timedelta(minutes=30))
    drive = Drive(mode, clock=clock, policy=policy)
    _, token = await drive.stored(a=1)
    clock.advance(2 * MINUTE)
    commit = await drive.commit(await drive.load(token))
    assert commit.action is CommitAction.SET
    assert commit.cookie_expires_at == commit.expires_at == clock.now + DATA_IDLE


async def test_resave_rewrites_the_whole_session_every_time(mode: str, clock: FakeClock) -> None:
    drive = Drive(mode, clock=clock, policy=Policy(resave=True))
    _, token = await drive.stored(a=1, b=2)
    drive.counting.reset()
    commit = await drive.commit(await drive.load(token))
    assert commit.wrote
    [(_, write)] = drive.counting.writes
    assert isinstance(write, Rewrite)
    assert {"d:a", "d:b", "s:meta"} <= set(write.fields)


# -- metadata ------------------------------------------------------------------------------------------


async def test_ip_and_user_agent_are_recorded_when_the_policy_asks(
    drive: Drive, clock: FakeClock
) -> None:
    session = await drive.load(None, ip="203.0.113.7", user_agent="UA/1" + "x" * 600)
    session["a"] = 1
    token = (await drive.commit(session)).token
    loaded = await drive.load(token, ip="203.0.113.7")
    assert loaded.meta.ip == "203.0.113.7"
    assert loaded.meta.user_agent == ("UA/1" + "x" * 600)[:512]
    assert loaded.meta.created_at == clock.now
    moved = await drive.load(token, ip="198.51.100.1")
    assert moved.is_modified  # a new address is recorded
    await drive.commit(moved)
    assert (await drive.load(token)).meta.ip == "198.51.100.1"
    private = drive.twin(Policy(capture_ip=False, capture_user_agent=False))
    s = await private.load(None, ip="203.0.113.7", user_agent="UA")
    assert s.meta.ip is None
    assert s.meta.user_agent is None


# -- concurrency limits ------------------------------------------------------------------------------------


def limited(mode: str, clock: FakeClock, limit: int, on_limit: str) -> Drive:
    concurrency = ConcurrencyPolicy(max_sessions_per_principal=limit, on_limit=on_limit)
    return Drive(mode, clock=clock, policy=Policy(concurrency=concurrency))


async def login(drive: Drive, clock: FakeClock, user: str = "eve") -> str:
    """A new device logs in as ``user``; its token."""
    session = await drive.load(None)
    session.login(Principal(user))
    commit = await drive.commit(session)
    clock.advance(1)
    assert commit.token is not None
    return commit.token


async def test_evict_oldest(mode: str, clock: FakeClock) -> None:
    drive = limited(mode, clock, 2, "evict_oldest")
    first, second, _ = [await login(drive, clock) for _ in range(3)]
    assert (await drive.load(first)).is_new
    assert not (await drive.load(second)).is_new
    [evicted] = [e for e in drive.events if e.kind is EventKind.EVICTED]
    assert evicted.session == short_hash(store_key(first))
    assert evicted.principal == "user:eve"
    assert evicted.detail["limit"] == 2
    assert len(await drive("sessions_of", "eve")) == 2
    await login(drive, clock, "someone-else")  # limits are per principal
    assert len(await drive("sessions_of", "eve")) == 2


async def test_the_session_logging_in_does_not_count_against_its_own_limit(
    mode: str, clock: FakeClock
) -> None:
    drive = limited(mode, clock, 1, "reject")
    _, anon = await drive.stored(a=1)
    session = await drive.load(anon)
    session.login(Principal("eve"))  # rotates: the old record is this very session
    await drive.commit(session)
    assert [i.key for i in await drive("sessions_of", "eve")] == [session.key]


async def test_reject(mode: str, clock: FakeClock) -> None:
    drive = limited(mode, clock, 2, "reject")
    tokens = [await login(drive, clock) for _ in range(2)]
    drive.counting.reset()
    third = await drive.load(None)
    third.login(Principal("eve"))
    with pytest.raises(ConcurrencyLimitExceeded) as info:
        await drive.commit(third)
    assert info.value.code == "CONCURRENCY_LIMIT"
    assert info.value.status_code == 409
    assert info.value.evidence == {"principal": "user:eve", "limit": 2}
    # One write, carrying the limit: the store refused it in the same atomic step.
    [(_, write)] = drive.counting.writes
    assert write.limit == PrincipalLimit(2, "reject")
    assert drive.counting.deletes == []
    assert not await drive.store.exists(third.key)
    for token in tokens:
        assert not (await drive.load(token)).is_new
    [rejected] = [e for e in drive.events if e.kind is EventKind.REJECTED]
    assert rejected.principal == "user:eve"
    assert rejected.session == short_hash(third.key)


# -- per-principal views and revocation ----------------------------------------------------------------------


async def test_sessions_of_lists_newest_first_and_marks_the_current_one(
    drive: Drive, clock: FakeClock
) -> None:
    laptop = await drive.load(None, ip="192.0.2.1", user_agent="Laptop")
    laptop.login(Principal("ada"))
    await drive.commit(laptop)
    clock.advance(10)
    phone = await drive.load(None, ip="192.0.2.2", user_agent="Phone")
    phone.login(Principal("ada"))
    await drive.commit(phone)
    infos = await drive("sessions_of", Principal("ada"), current=laptop)
    assert [i.user_agent for i in infos] == ["Phone", "Laptop"]
    assert [i.current for i in infos] == [False, True]
    assert [i.key for i in infos] == [phone.key, laptop.key]
    assert infos[1].ip == "192.0.2.1"
    assert infos[1].principal == "user:ada"
    assert infos[0].last_seen == clock.now
    assert infos[0].expires_at == clock.now + 30 * MINUTE + 60  # idle + the refresh slack
    by_id = await drive("sessions_of", "ada")
    assert [i.key for i in by_id] == [phone.key, laptop.key]
    assert not any(i.current for i in by_id)
    assert all(laptop.id not in repr(i) and phone.id not in repr(i) for i in by_id)
    assert await drive("sessions_of", "nobody") == []
    assert await drive("sessions_of", Principal("ada", kind="service")) == []


async def test_revoke_checks_ownership_when_given_a_principal(
    drive: Drive, clock: FakeClock
) -> None:
    ada, bob = await login(drive, clock, "ada"), await login(drive, clock, "bob")
    bob_key = store_key(bob)
    assert await drive("revoke", bob_key, principal="ada") is False  # not hers
    assert not (await drive.load(bob)).is_new
    assert await drive("revoke", bob_key, principal=Principal("bob")) is True
    assert (await drive.load(bob)).is_new
    assert await drive("revoke", store_key(ada)) is True  # an operator needs no owner
    assert await drive("revoke", store_key(ada)) is False
    revoked = [e for e in drive.events if e.kind is EventKind.REVOKED]
    assert [e.session for e in revoked] == [short_hash(bob_key), short_hash(store_key(ada))]
    assert revoked[0].principal == "user:bob"


async def test_revoke_all_except_the_current_session(drive: Drive, clock: FakeClock) -> None:
    tokens = [await login(drive, clock, "ada") for _ in range(4)]
    other = await login(drive, clock, "bob")
    here = await drive.load(tokens[2])
    assert await drive("revoke_all", "ada", except_=here) == 3
    assert [(await drive.load(t)).is_new for t in tokens] == [True, True, False, True]
    assert not (await drive.load(other)).is_new
    assert await drive("revoke_all", Principal("ada"), except_=here.key) == 0
    assert await drive("revoke_all", "ada") == 1
    assert await drive("sessions_of", "ada") == []
    assert drive.kinds().count(EventKind.REVOKED) == 4


async def test_a_request_in_flight_does_not_resurrect_a_revoked_session(
    drive: Drive, clock: FakeClock
) -> None:
    token = await login(drive, clock, "ada")
    in_flight = await drive.load(token)
    assert await drive("revoke_all", "ada") == 1  # "log out everywhere", meanwhile
    in_flight["cart"] = ["apple"]
    await drive.commit(in_flight)  # a delta: it only applies to a record that exists
    clock.advance(120)
    await drive.commit(in_flight)  # and so does a touch
    assert not await drive.store.exists(store_key(token))
    assert (await drive.load(token)).is_new


# -- failures ---------------------------------------------------------------------------------------------


async def test_values_mutated_into_something_unencodable_fail_the_commit_cleanly(
    drive: Drive,
) -> None:
    _, token = await drive.stored(cart=["apple"], n=1)
    session = await drive.load(token)
    session["n"] = 2
    session["cart"].append(object())
    drive.counting.reset()
    with pytest.raises(ValueNotSerializable, match="'cart'"):
        await drive.commit(session)
    assert drive.counting.writes == []
    assert dict(await drive.load(token)) == {"cart": ["apple"], "n": 1}


async def test_an_undecodable_value_is_dropped_and_the_rest_survives(drive: Drive) -> None:
    session, token = await drive.stored(a=1, b=[2], c="three")
    record = await drive.store.load(session.key)
    assert record is not None
    await drive.counting.inner.save(session.key, Update({"d:b": "{garbage"}, record.expires_at))
    loaded = await drive.load(token)
    assert dict(loaded) == {"a": 1, "c": "three"}
    [corrupt] = [e for e in drive.events if e.kind is EventKind.CORRUPT]
    assert corrupt.session == short_hash(session.key)
    assert corrupt.detail == {"field": "b"}
    assert loaded.is_modified  # the garbage is removed at commit
    await drive.commit(loaded)
    record = await drive.store.load(session.key)
    assert record is not None
    assert "d:b" not in record.fields
    assert dict(await drive.load(token)) == {"a": 1, "c": "three"}


@pytest.mark.parametrize(
    ("field", "garbage"),
    [
        ("s:meta", "{not json"),
        ("s:meta", '"a string"'),
        ("s:meta", '{"c": "x", "s": 1}'),
        ("s:principal", "[1]"),
        ("s:principal", '{"id": ""}'),
        ("s:principal", '{"id": "1", "roles": 5}'),
        ("s:flash", "5"),
        ("s:flash", "[[1]]"),
        ("s:csrf", "[1, 2]"),
        ("s:csrf", '"too short"'),
    ],
)
async def test_a_corrupt_system_field_discards_the_record(
    drive: Drive, field: str, garbage: str
) -> None:
    session, token = await drive.stored(a=1)
    record = await drive.store.load(session.key)
    assert record is not None
    await drive.counting.inner.save(session.key, Update({field: garbage}, record.expires_at))
    fresh = await drive.load(token)
    assert fresh.is_new
    assert fresh.id != token
    assert EventKind.CORRUPT in drive.kinds()
    assert not await drive.store.exists(session.key)


async def test_a_store_outage_is_an_error_not_a_fresh_session(mode: str, clock: FakeClock) -> None:
    class Down(CountingStore):
        async def load(self, key: str) -> Record | None:
            raise StoreUnavailable("connection refused")

        def load_sync(self, key: str) -> Record | None:
            raise StoreUnavailable("connection refused")

    drive = Drive(mode, clock=clock, store=Down(clock=clock))
    with pytest.raises(StoreUnavailable):
        await drive.load(new_session_id())


async def test_a_listener_that_raises_does_not_break_the_commit(
    drive: Drive, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[SessionEvent] = []

    def broken(event: SessionEvent) -> None:
        raise RuntimeError("audit log is down")

    drive.manager.events.subscribe(broken)
    drive.manager.events.subscribe(seen.append)
    with caplog.at_level(logging.ERROR, logger="sessio.events"):
        _, token = await drive.stored(a=1)
    assert not (await drive.load(token)).is_new
    assert [e.kind for e in seen][:2] == [EventKind.CREATED, EventKind.SAVED]
    assert "audit log is down" in caplog.text
    assert token not in caplog.text


def test_a_manager_needs_a_store() -> None:
    for cls in (SessionManager, SyncSessionManager):
        with pytest.raises(TypeError):
            cls({})  # type: ignore[arg-type]
        manager = cls(MemoryStore())
        assert manager.policy == Policy()
        assert "MemoryStore" in repr(manager)


async def test_a_local_store_that_overrides_an_async_method_is_awaited(clock: FakeClock) -> None:
    class Audited(MemoryStore):
        """A local store whose async load does more than call load_sync."""

        def __init__(self) -> None:
            super().__init__(clock=clock)
            self.async_loads = 0

        async def load(self, key: str) -> Record | None:
            self.async_loads += 1
            return self.load_sync(key)

    plain, audited = MemoryStore(clock=clock), Audited()
    for store in (plain, audited):
        manager = SessionManager(store, clock=clock)
        session = manager.start()
        session["a"] = 1
        await manager.commit(session)
        assert (await manager.load(session.id))["a"] == 1
    assert audited.async_loads == 1


async def test_a_manager_given_another_store_uses_it(clock: FakeClock) -> None:
    first, second = MemoryStore(clock=clock), MemoryStore(clock=clock)
    manager = SessionManager(first, clock=clock)
    manager.store = second
    session = manager.start()
    session["a"] = 1
    await manager.commit(session)
    assert await second.exists(session.key)
    assert not await first.exists(session.key)
    with pytest.raises(TypeError):
        manager.store = {}  # type: ignore[assignment]


@pytest.mark.parametrize("expires_at", [float("nan"), float("inf"), float("-inf")])
async def test_a_non_finite_expiry_is_corrupt_not_eternal(drive: Drive, expires_at: float) -> None:
    session, token = await drive.stored(a=1)
    record = await drive.store.load(session.key)
    assert record is not None
    inner = drive.counting.inner
    assert isinstance(inner, MemoryStore)
    await inner.delete(session.key)
    await inner.save(session.key, Create(dict(record.fields), expires_at))
    if expires_at != float("inf"):  # the store itself sees those as expired
        assert (await drive.load(token)).is_new
        return
    fresh = await drive.load(token)
    assert fresh.is_new
    assert fresh.id != token
    assert EventKind.CORRUPT in drive.kinds()
    assert not await inner.exists(session.key)


@pytest.mark.parametrize("field", ["c", "s"])
async def test_non_finite_metadata_times_expire_the_session(drive: Drive, field: str) -> None:
    session, token = await drive.stored(a=1)
    record = await drive.store.load(session.key)
    assert record is not None
    meta = {"c": repr(session.meta.created_at), "s": repr(session.meta.last_seen), field: "NaN"}
    text = '{"c":' + meta["c"] + ',"s":' + meta["s"] + "}"
    await drive.counting.inner.save(session.key, Update({"s:meta": text}, record.expires_at))
    assert (await drive.load(token)).is_new
