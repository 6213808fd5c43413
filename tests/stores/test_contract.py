"""The store contract: one suite, every store (tests/stores/backends.py), async and sync.

A new store is done when it passes this file. Expiry is expressed with absolute times in the
past or future, so no test sleeps and stores with native TTL take part unchanged.
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
from sessio.ids import new_session_id, store_key
from sessio.stores import Store, Write

from .backends import Backend, backend_params

LIVE = 3600.0


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


@pytest.fixture(params=["async", "sync"])
def ops(request: pytest.FixtureRequest, store: Store) -> Ops:
    return Ops(store, request.param)


def key() -> str:
    return store_key(new_session_id())


def write(
    fields: dict[str, str], *, ttl: float = LIVE, principal: str | None = None, **kw: Any
) -> Write:
    return Write(fields, time.time() + ttl, principal, **kw)


# -- CRUD ------------------------------------------------------------------------------------------


async def test_load_of_unknown_key_is_a_miss(ops: Ops) -> None:
    assert await ops("load", key()) is None
    assert await ops("exists", key()) is False


async def test_replace_save_then_load_returns_the_record(ops: Ops) -> None:
    k = key()
    w = write({"d:a": "1", "d:b": '"x"'}, principal="user:1", replace=True)
    await ops("save", k, w)
    record = await ops("load", k)
    assert record is not None
    assert record.key == k
    assert dict(record.fields) == {"d:a": "1", "d:b": '"x"'}
    assert record.principal == "user:1"
    assert record.expires_at == pytest.approx(w.expires_at, abs=1.0)
    assert await ops("exists", k) is True


async def test_replace_drops_fields_not_written(ops: Ops) -> None:
    k = key()
    await ops("save", k, write({"d:a": "1", "d:b": "2"}, replace=True))
    await ops("save", k, write({"d:c": "3"}, replace=True))
    record = await ops("load", k)
    assert dict(record.fields) == {"d:c": "3"}


async def test_delta_sets_and_removes_only_named_fields(ops: Ops) -> None:
    k = key()
    await ops("save", k, write({"d:a": "1", "d:b": "2", "d:c": "3"}, replace=True))
    await ops("save", k, write({"d:b": "20", "d:new": "4"}, removed={"d:c"}))
    record = await ops("load", k)
    assert dict(record.fields) == {"d:a": "1", "d:b": "20", "d:new": "4"}


async def test_delta_extends_expiry(ops: Ops) -> None:
    k = key()
    await ops("save", k, write({"d:a": "1"}, ttl=60, replace=True))
    later = write({}, ttl=7200)
    await ops("save", k, later)
    record = await ops("load", k)
    assert record.expires_at == pytest.approx(later.expires_at, abs=1.0)
    assert dict(record.fields) == {"d:a": "1"}


async def test_delta_never_resurrects_a_missing_record(ops: Ops) -> None:
    k = key()
    assert await ops("save", k, write({"d:a": "1"})) is False
    assert await ops("load", k) is None
    assert await ops("save", k, write({"d:a": "1"}, replace=True)) is True
    await ops("delete", k)
    assert await ops("save", k, write({"d:b": "2"}, principal="user:d")) is False
    assert await ops("load", k) is None
    assert await ops("principal_records", "user:d") == []


async def test_save_reports_that_each_kind_of_write_applied(ops: Ops) -> None:
    k, rotated = key(), key()
    assert await ops("save", k, write({"d:a": "1"}, replace=True)) is True  # create
    assert await ops("save", k, write({"d:b": "2"}, removed={"d:a"})) is True  # delta
    rewrite = write({"d:c": "3"}, principal="user:w", replace=True, supersedes=k)
    assert await ops("save", k, rewrite) is True
    assert dict((await ops("load", k)).fields) == {"d:c": "3"}
    rotation = write({"d:c": "3"}, principal="user:w", replace=True, supersedes=k)
    assert await ops("save", rotated, rotation) is True
    assert [r.key for r in await ops("principal_records", "user:w")] == [rotated]


async def test_supersedes_deletes_the_old_record_in_the_same_write(ops: Ops) -> None:
    old, new = key(), key()
    await ops("save", old, write({"d:a": "1"}, principal="user:7", replace=True))
    rotation = write({"d:a": "1"}, principal="user:7", replace=True, supersedes=old)
    assert await ops("save", new, rotation) is True
    assert await ops("load", old) is None
    assert (await ops("load", new)) is not None
    assert [r.key for r in await ops("principal_records", "user:7")] == [new]


@pytest.mark.parametrize("gone", ["deleted", "expired", "never stored"])
async def test_a_rotation_whose_superseded_record_is_gone_writes_nothing(
    ops: Ops, gone: str
) -> None:
    old, new = key(), key()
    if gone != "never stored":
        ttl = -5 if gone == "expired" else LIVE
        await ops("save", old, write({"d:a": "1"}, ttl=ttl, principal="user:8", replace=True))
    if gone == "deleted":
        await ops("delete", old)  # revoked while the request that rotates it was in flight
    rotation = write({"d:a": "1"}, principal="user:8", replace=True, supersedes=old)
    assert await ops("save", new, rotation) is False
    assert await ops("load", new) is None
    assert await ops("load", old) is None
    assert await ops("principal_records", "user:8") == []
    assert await ops("count") == 0


async def test_a_rewrite_of_a_record_that_is_gone_writes_nothing(ops: Ops) -> None:
    k = key()
    await ops("save", k, write({"d:a": "1"}, principal="user:9", replace=True))
    await ops("delete", k)
    rewrite = write({"d:a": "1", "d:b": "2"}, principal="user:9", replace=True, supersedes=k)
    assert await ops("save", k, rewrite) is False
    assert await ops("load", k) is None
    assert await ops("principal_records", "user:9") == []


async def test_a_plain_replace_creates_whatever_was_there(ops: Ops) -> None:
    k = key()
    assert await ops("save", k, write({"d:a": "1"}, replace=True)) is True
    await ops("delete", k)
    assert await ops("save", k, write({"d:b": "2"}, replace=True)) is True
    assert dict((await ops("load", k)).fields) == {"d:b": "2"}


async def test_a_delta_ignores_supersedes(ops: Ops) -> None:
    k, other = key(), key()
    await ops("save", k, write({"d:a": "1"}, replace=True))
    await ops("save", other, write({"d:a": "1"}, replace=True))
    assert await ops("save", k, write({"d:b": "2"}, supersedes=other)) is True
    assert await ops("load", other) is not None
    assert dict((await ops("load", k)).fields) == {"d:a": "1", "d:b": "2"}


async def test_delete_reports_whether_it_removed_something(ops: Ops) -> None:
    k = key()
    await ops("save", k, write({"d:a": "1"}, replace=True))
    assert await ops("delete", k) is True
    assert await ops("delete", k) is False
    assert await ops("load", k) is None


async def test_values_round_trip_unicode_and_large_text(ops: Ops) -> None:
    k = key()
    fields = {"d:ü": '"h\\u00e9llo ü 🍪"', "d:big": '"' + "x" * 100_000 + '"', "d:empty": '""'}
    await ops("save", k, write(fields, replace=True))
    assert dict((await ops("load", k)).fields) == fields


# -- expiry and cleanup ----------------------------------------------------------------------------


async def test_expired_records_are_invisible(ops: Ops) -> None:
    k = key()
    await ops("save", k, write({"d:a": "1"}, ttl=-5, principal="user:x", replace=True))
    assert await ops("load", k) is None
    assert await ops("exists", k) is False
    assert await ops("principal_records", "user:x") == []
    assert await ops("count") == 0


async def test_a_delta_can_expire_a_record(ops: Ops) -> None:
    k = key()
    await ops("save", k, write({"d:a": "1"}, replace=True))
    await ops("save", k, write({}, ttl=-5))
    assert await ops("load", k) is None


async def test_cleanup_removes_expired_and_keeps_live(ops: Ops) -> None:
    live = [key() for _ in range(3)]
    dead = [key() for _ in range(5)]
    for k in live:
        await ops("save", k, write({"d:a": "1"}, replace=True))
    for k in dead:
        await ops("save", k, write({"d:a": "1"}, ttl=-5, replace=True))
    removed = await ops("cleanup")
    assert 0 <= removed <= len(dead)
    assert await ops("count") == 3
    for k in live:
        assert await ops("load", k) is not None
    assert await ops("cleanup") == 0


async def test_count_and_clear(ops: Ops) -> None:
    for _ in range(4):
        await ops("save", key(), write({"d:a": "1"}, principal="user:c", replace=True))
    assert await ops("count") == 4
    assert await ops("clear") >= 4
    assert await ops("count") == 0
    assert await ops("principal_records", "user:c") == []


# -- principal index -------------------------------------------------------------------------------


async def test_principal_index_lists_live_sessions_of_one_principal(ops: Ops) -> None:
    a1, a2, b1, gone = key(), key(), key(), key()
    await ops("save", a1, write({"d:n": "1"}, principal="user:a", replace=True))
    await ops("save", a2, write({"d:n": "2"}, principal="user:a", replace=True))
    await ops("save", b1, write({"d:n": "3"}, principal="user:b", replace=True))
    await ops("save", gone, write({"d:n": "4"}, principal="user:a", ttl=-5, replace=True))
    records = await ops("principal_records", "user:a")
    assert sorted(r.key for r in records) == sorted([a1, a2])
    assert all(r.principal == "user:a" for r in records)
    assert {dict(r.fields)["d:n"] for r in records} == {"1", "2"}
    assert [r.key for r in await ops("principal_records", "user:b")] == [b1]


async def test_principal_index_follows_changes_and_deletes(ops: Ops) -> None:
    k = key()
    await ops("save", k, write({"d:n": "1"}, principal="user:a", replace=True))
    await ops("save", k, write({"d:n": "1"}, principal="user:b", replace=True))
    assert await ops("principal_records", "user:a") == []
    assert [r.key for r in await ops("principal_records", "user:b")] == [k]
    await ops("save", k, write({}, principal=None))
    assert await ops("principal_records", "user:b") == []
    await ops("save", k, write({}, principal="user:b"))
    assert [r.key for r in await ops("principal_records", "user:b")] == [k]
    await ops("delete", k)
    assert await ops("principal_records", "user:b") == []


async def test_principal_names_are_opaque(ops: Ops) -> None:
    odd = "user:../../etc/passwd {x} ü*?"
    k = key()
    await ops("save", k, write({"d:n": "1"}, principal=odd, replace=True))
    assert [r.key for r in await ops("principal_records", odd)] == [k]
    assert await ops("principal_records", "user:") == []


# -- deleting every session of a principal ----------------------------------------------------------


async def test_delete_principal_records_removes_every_session_but_the_kept_one(ops: Ops) -> None:
    a1, a2, a3, b1, dead = key(), key(), key(), key(), key()
    for k in (a1, a2, a3):
        await ops("save", k, write({"d:n": "1"}, principal="user:a", replace=True))
    await ops("save", b1, write({"d:n": "1"}, principal="user:b", replace=True))
    await ops("save", dead, write({"d:n": "1"}, principal="user:a", ttl=-5, replace=True))
    removed = await ops("delete_principal_records", "user:a", a2)
    assert sorted(removed) == sorted([a1, a3])  # the expired one is not reported
    assert [r.key for r in await ops("principal_records", "user:a")] == [a2]
    assert [r.key for r in await ops("principal_records", "user:b")] == [b1]
    assert await ops("load", a1) is None
    assert await ops("delete_principal_records", "user:a") == [a2]
    assert await ops("delete_principal_records", "user:a") == []
    assert await ops("count") == 1


async def test_delete_principal_records_spares_a_session_that_changed_hands(ops: Ops) -> None:
    k = key()
    await ops("save", k, write({"d:n": "1"}, principal="user:a", replace=True))
    await ops("save", k, write({"d:n": "1"}, principal="user:b", replace=True))
    assert await ops("delete_principal_records", "user:a") == []
    assert [r.key for r in await ops("principal_records", "user:b")] == [k]


async def test_a_rotation_before_delete_principal_records_goes_under_its_new_key(ops: Ops) -> None:
    old, new = key(), key()
    await ops("save", old, write({"d:n": "1"}, principal="user:r", replace=True))
    rotation = write({"d:n": "1"}, principal="user:r", replace=True, supersedes=old)
    assert await ops("save", new, rotation) is True
    assert await ops("delete_principal_records", "user:r") == [new]
    assert await ops("load", new) is None


async def test_a_rotation_after_delete_principal_records_finds_nothing_to_take_over(
    ops: Ops,
) -> None:
    old, new = key(), key()
    await ops("save", old, write({"d:n": "1"}, principal="user:r", replace=True))
    assert await ops("delete_principal_records", "user:r") == [old]
    rotation = write({"d:n": "1"}, principal="user:r", replace=True, supersedes=old)
    assert await ops("save", new, rotation) is False
    assert await ops("principal_records", "user:r") == []
    assert await ops("count") == 0


def _skip_unless_atomic(store: Store) -> None:
    if getattr(store, "atomic", True) is False:
        pytest.skip("Redis Cluster without a hash-tagged prefix: documented as not atomic")


def _rotation(current: str, n: int) -> Write:
    return write({"d:n": str(n)}, principal="user:race", replace=True, supersedes=current)


async def test_no_rotation_outlives_delete_principal_records_across_threads(store: Store) -> None:
    """Sessions rotating as fast as they can while every session of their principal is deleted:
    once the deletion has returned, no chain rotates again, and nothing of the principal is left.
    (A list-then-delete lets a chain rotate past it, and this fails.)"""
    _skip_unless_atomic(store)
    chains = [key() for _ in range(4)]
    for k in chains:
        store.save_sync(k, write({"d:n": "1"}, principal="user:race", replace=True))
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
        await store.save(k, write({"d:n": "1"}, principal="user:race", replace=True))
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
    await ops("save", dead, write({"d:a": "1"}, ttl=-5, replace=True))
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
