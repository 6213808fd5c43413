"""Events: listeners, every kind emitted where it should be, and never a raw session ID."""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any

import pytest

from sessio import (
    CommitAction,
    CommitOutcome,
    ConcurrencyLimitExceeded,
    ConcurrencyPolicy,
    EventKind,
    Events,
    Policy,
    Principal,
    SessionError,
    SessionEvent,
    ValueNotSerializable,
)
from sessio.ids import short_hash, store_key
from sessio.stores.base import Update

from .conftest import FakeClock
from .drive import MODES, Drive


def event(kind: EventKind = EventKind.SAVED, **detail: Any) -> SessionEvent:
    return SessionEvent(kind, "0123456789ab", "user:1", 1.5, detail)


# -- the Events hub ----------------------------------------------------------------------------------


def test_listeners_run_in_subscription_order_and_can_unsubscribe() -> None:
    events = Events()
    assert not events
    calls: list[str] = []
    stop_a = events.subscribe(lambda e: calls.append("a"))

    @events
    def b(e: SessionEvent) -> None:
        calls.append("b")

    assert events
    events.emit(event())
    stop_a()
    events.emit(event())
    assert calls == ["a", "b", "b"]
    assert b(event()) is None  # the decorator returns the function itself
    assert calls[-1] == "b"


def test_a_listener_may_unsubscribe_itself_while_being_called() -> None:
    events = Events()
    calls: list[int] = []

    def once(e: SessionEvent) -> None:
        calls.append(1)
        stop()

    stop = events.subscribe(once)
    events.subscribe(lambda e: calls.append(2))
    events.emit(event())
    events.emit(event())
    assert calls == [1, 2, 2]


def test_a_failing_listener_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events = Events()
    seen: list[SessionEvent] = []
    events.subscribe(lambda e: 1 / 0)  # type: ignore[func-returns-value]
    events.subscribe(seen.append)
    with caplog.at_level(logging.ERROR, logger="sessio.events"):
        events.emit(event(EventKind.DESTROYED))
    assert len(seen) == 1
    [record] = caplog.records
    assert "destroyed" in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[0] is ZeroDivisionError


def test_event_as_dict_is_flat_plain_data() -> None:
    assert event(EventKind.EVICTED, limit=3).as_dict() == {
        "event": "evicted",
        "session": "0123456789ab",
        "principal": "user:1",
        "at": 1.5,
        "limit": 3,
    }


def test_events_are_frozen() -> None:
    with pytest.raises(AttributeError):
        event().kind = EventKind.LOADED  # type: ignore[misc]


def test_event_kinds_are_stable_strings() -> None:
    assert EventKind("touched") is EventKind.TOUCHED
    assert EventKind.CSRF_FAILED == "csrf_failed"
    assert {k.value for k in EventKind} == {
        "created", "loaded", "saved", "touched", "rotated", "authenticated", "logged_out",
        "destroyed", "expired", "evicted", "revoked", "vanished", "rejected", "corrupt",
        "csrf_failed", "invalid", "superseded", "forwarded", "migrated", "client_changed",
    }  # fmt: skip


# -- what a whole session life emits --------------------------------------------------------------------


class Recorder:
    """Everything a session life leaves behind that someone may print: events, errors, reprs."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.texts: list[str] = []

    def session(self, *sessions: Any) -> None:
        for s in sessions:
            self.ids.add(s.id)
            self.texts += [repr(s), str(s), repr(s.meta)]

    def commit(self, commit: Any) -> Any:
        if commit.token is not None:
            self.ids.add(commit.token)
        self.texts += [repr(commit), str(commit)]
        return commit

    def error(self, error: SessionError) -> None:
        self.texts += [repr(error), str(error), str(error.to_dict()), repr(error.evidence)]


@pytest.mark.parametrize("mode", MODES)
async def test_every_event_kind_is_emitted_where_it_should_be(
    mode: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    policy = Policy(
        ttl=timedelta(hours=1),
        concurrency=ConcurrencyPolicy(max_sessions_per_principal=1),
    )
    d = Drive(mode, clock=clock, policy=policy)
    seen = Recorder()

    async def step(expected: list[EventKind], action: Any) -> Any:
        before = len(d.events)
        result = await action()
        assert [e.kind for e in d.events[before:]] == expected
        return result

    async def create() -> str:
        s = await d.load(None)
        s["cart"] = ["apple"]
        seen.session(s)
        return str(seen.commit(await d.commit(s)).token)

    token = await step([EventKind.CREATED, EventKind.SAVED], create)

    async def touch() -> None:
        clock.advance(120)
        s = await d.load(token)
        seen.commit(await d.commit(s))

    await step([EventKind.LOADED, EventKind.TOUCHED], touch)

    async def login() -> str:
        s = await d.load(token)
        s.login(Principal("ada"))
        seen.session(s)
        return str(seen.commit(await d.commit(s)).token)

    token = await step(
        [EventKind.LOADED, EventKind.ROTATED, EventKind.AUTHENTICATED, EventKind.SAVED], login
    )

    async def second_device() -> None:  # the limit is 1: the first device is evicted
        s = await d.load(None)
        s.login(Principal("ada"))
        seen.session(s)
        seen.commit(await d.commit(s))

    await step(
        [EventKind.EVICTED, EventKind.CREATED, EventKind.AUTHENTICATED, EventKind.SAVED],
        second_device,
    )
    assert (await d.load(token)).is_new

    rejecting = d.twin(policy.replace(concurrency={"on_limit": "reject"}))
    s = await rejecting.load(None)
    s.login(Principal("ada"))
    seen.session(s)
    with pytest.raises(ConcurrencyLimitExceeded) as limit:
        await rejecting.commit(s)
    seen.error(limit.value)
    assert rejecting.kinds() == [EventKind.REJECTED]

    [device] = await d("sessions_of", "ada")
    seen.texts.append(repr(device))
    await step([EventKind.REVOKED], lambda: d("revoke", device.key, principal="ada"))

    async def vanish() -> None:  # revoked while a request holds it: the commit writes nothing
        s = await d.load(None)
        s["a"] = 1
        s = await d.load(seen.commit(await d.commit(s)).token)
        seen.session(s)
        await d("revoke", s.key)
        s["late"] = 1
        assert seen.commit(await d.commit(s)).action is CommitAction.CLEAR

    await step(
        [
            EventKind.CREATED,
            EventKind.SAVED,
            EventKind.LOADED,
            EventKind.REVOKED,
            EventKind.VANISHED,
        ],
        vanish,
    )

    async def parallel_logins() -> None:
        # Two requests of one anonymous session: one logs in, the other changed something.
        s = await d.load(None)
        s["a"] = 1
        t = seen.commit(await d.commit(s)).token
        stale, one, two = await d.load(t), await d.load(t), await d.load(t)
        for x in (stale, one, two):
            seen.session(x)
        stale["late"] = 1
        one.login(Principal("cy"))
        two.login(Principal("cy"))  # a double-submitted login form
        seen.commit(await d.commit(one))
        assert seen.commit(await d.commit(two)).outcome is CommitOutcome.FORWARDED
        assert seen.commit(await d.commit(stale)).outcome is CommitOutcome.SUPERSEDED

    await step(
        [
            EventKind.CREATED,
            EventKind.SAVED,
            EventKind.LOADED,
            EventKind.LOADED,
            EventKind.LOADED,
            EventKind.ROTATED,
            EventKind.AUTHENTICATED,
            EventKind.SAVED,
            EventKind.FORWARDED,
            EventKind.SUPERSEDED,
        ],
        parallel_logins,
    )

    async def logout() -> str:
        s = await d.load(None)
        s.login(Principal("bob"))
        seen.session(s)
        t = seen.commit(await d.commit(s)).token
        s = await d.load(t)
        s.logout()
        seen.session(s)
        return str(seen.commit(await d.commit(s)).token)

    token = await step(
        [
            EventKind.CREATED,
            EventKind.AUTHENTICATED,
            EventKind.SAVED,
            EventKind.LOADED,
            EventKind.ROTATED,
            EventKind.LOGGED_OUT,
            EventKind.SAVED,
        ],
        logout,
    )

    async def destroy() -> None:
        s = await d.load(token)
        s.flash("x", "y")
        s.destroy()
        seen.commit(await d.commit(s))

    await step([EventKind.LOADED, EventKind.DESTROYED], destroy)

    short = d.twin(policy.replace(idle_timeout=timedelta(minutes=5)))

    async def expire() -> None:
        s = await d.load(None)
        s["a"] = 1
        t = seen.commit(await d.commit(s)).token
        clock.advance(600)  # alive for the store (30 minutes idle), not for a 5-minute policy
        assert (await short.load(t)).is_new

    await step([EventKind.CREATED, EventKind.SAVED], expire)
    assert short.kinds() == [EventKind.EXPIRED]

    async def corrupt() -> None:
        s = await d.load(None)
        s["good"], s["bad"] = 1, 2
        t = seen.commit(await d.commit(s)).token
        record = await d.store.load(s.key)
        assert record is not None
        await d.counting.inner.save(s.key, Update({"d:bad": "]["}, record.expires_at))
        assert dict(await d.load(t)) == {"good": 1}

    await step([EventKind.CREATED, EventKind.SAVED, EventKind.CORRUPT, EventKind.LOADED], corrupt)

    s = await d.load(None)
    seen.session(s)
    with pytest.raises(ValueNotSerializable) as bad:
        s["x"] = object()
    seen.error(bad.value)

    # Every kind the core owns was seen; CSRF_FAILED belongs to the integrations, INVALID to
    # client-side stores (tests/stores/test_client_side.py), CLIENT_CHANGED to a client that
    # moves (tests/test_client_binding.py).
    everything = d.events + rejecting.events + short.events
    assert {e.kind for e in everything} == set(EventKind) - {
        EventKind.CSRF_FAILED,
        EventKind.INVALID,
        EventKind.MIGRATED,  # sessio.legacy's (tests/legacy)
        EventKind.CLIENT_CHANGED,
    }
    # ... and none of it shows a session ID: events carry 12 hex digits of the key's hash.
    for e in everything:
        assert e.session is None or re.fullmatch("[0-9a-f]{12}", e.session)
        seen.texts += [repr(e), str(e.as_dict())]
    seen.texts += [caplog.text, repr(d.manager)]
    assert len(seen.ids) > 8
    leaks = [(i, t) for i in seen.ids for t in seen.texts if i in t]
    assert leaks == []


def test_events_name_the_session_by_the_hash_of_its_key(clock: FakeClock) -> None:
    d = Drive("sync", clock=clock)
    s = d.manager.start()
    s["a"] = 1
    d.manager.commit(s)
    assert {e.session for e in d.events} == {short_hash(store_key(s.id))}
    assert short_hash(store_key(s.id)) == store_key(s.id)[:12]
