"""A lifetime of a session's own: ``login(remember=...)`` and ``set_expiry()``, bounded by the
policy's ttl, kept in the metadata (so every store's record follows it) and in the cookie."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import pytest

from sessio import (
    CommitAction,
    ConfigurationError,
    MemoryStore,
    Policy,
    Principal,
    SessionManager,
)
from sessio.fields import SessionMeta
from sessio.transports.base import CookieTransport

from .conftest import FakeClock
from .drive import MODES, Drive
from .stores.backends import Backend, backend_params

HOUR = 3600.0
DAY = 24 * HOUR
ALICE = Principal("alice")
POLICY = Policy(ttl=timedelta(days=30), remember_ttl=timedelta(days=14))


def cookie(commit: object, policy: Policy = POLICY, clock: FakeClock | None = None) -> str:
    transport = CookieTransport("k" * 32, policy.cookie, clock=clock or time.time)
    return transport.cookie_value(commit)  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", MODES)
async def test_remember_me_lives_remember_ttl_in_a_persistent_cookie(
    mode: str, clock: FakeClock
) -> None:
    d = Drive(mode, clock=clock, policy=POLICY)
    session, token = await d.stored(cart=["apple"])
    session = await d.load(token)
    session.login(ALICE, remember=True)
    commit = await d.commit(session)
    assert commit.action is CommitAction.SET
    assert commit.expires_at == pytest.approx(clock.now + 14 * DAY)
    assert commit.cookie_expires_at == commit.expires_at
    assert not commit.browser_session
    text = cookie(commit, clock=clock)
    assert f"Max-Age={14 * 86400}" in text
    assert "Expires=" in text
    # Idle for a week (the policy's idle timeout is 30 minutes): still signed in.
    clock.advance(7 * DAY)
    again = await d.load(commit.token)
    assert again.principal == ALICE
    assert again["cart"] == ["apple"]
    assert again.is_persistent is True
    # ... and gone at the end of its lifetime, whatever the touches said.
    clock.advance(7 * DAY + 1)
    assert (await d.load(commit.token)).principal is None


@pytest.mark.parametrize("mode", MODES)
async def test_login_not_remembered_gets_a_browser_session_cookie(
    mode: str, clock: FakeClock
) -> None:
    d = Drive(mode, clock=clock, policy=POLICY)
    session = await d.load(None)
    session.login(ALICE, remember=False)
    commit = await d.commit(session)
    assert commit.browser_session
    text = cookie(commit, clock=clock)
    assert "Max-Age" not in text
    assert "Expires" not in text
    # The server keeps the policy's idle timeout.
    assert commit.expires_at == pytest.approx(clock.now + 31 * 60)


@pytest.mark.parametrize("mode", MODES)
async def test_login_without_remember_keeps_todays_cookie(mode: str, clock: FakeClock) -> None:
    d = Drive(mode, clock=clock, policy=POLICY)
    session = await d.load(None)
    session.login(ALICE)
    commit = await d.commit(session)
    assert not commit.browser_session
    assert commit.cookie_expires_at == pytest.approx(clock.now + 30 * DAY)
    assert session.meta.persistent is None
    assert session.meta.ends_at is None


@pytest.mark.parametrize("mode", MODES)
async def test_set_expiry_resends_the_cookie_and_none_restores_the_policy(
    mode: str, clock: FakeClock
) -> None:
    d = Drive(mode, clock=clock, policy=POLICY)
    session, token = await d.stored()
    session = await d.load(token)
    session.set_expiry(timedelta(hours=3))
    commit = await d.commit(session)
    assert commit.action is CommitAction.SET  # same ID, new lifetime: the cookie goes out again
    assert commit.token == token
    assert commit.expires_at == pytest.approx(clock.now + 3 * HOUR)
    assert session.remaining == timedelta(hours=3)
    session = await d.load(token)
    session.set_expiry(timedelta(minutes=5), persistent=False)
    commit = await d.commit(session)
    assert commit.browser_session
    assert commit.expires_at == pytest.approx(clock.now + 300)
    session = await d.load(token)
    session.set_expiry(None)
    commit = await d.commit(session)
    assert not commit.browser_session
    assert commit.expires_at == pytest.approx(clock.now + 31 * 60)


@pytest.mark.parametrize(
    "bad", [timedelta(days=31), timedelta(0), timedelta(seconds=-1), 3600, "1h", None]
)
def test_a_lifetime_beyond_the_policy_or_not_a_duration_is_refused(bad: object) -> None:
    manager = SessionManager(MemoryStore(), POLICY)
    session = manager.start()
    error = (ConfigurationError, TypeError)
    if bad is not None:  # (set_expiry(None) is the policy's own lifetime)
        with pytest.raises(error):
            session.set_expiry(bad)  # type: ignore[arg-type]
    with pytest.raises(error):
        session.login(ALICE, remember=bad if bad is not None else "yes")  # type: ignore[arg-type]
    # Refused before anything changed: nobody is signed in, no lifetime recorded.
    assert session.principal is None
    assert session.meta.ends_at is None
    assert not session.is_modified


def test_the_policy_refuses_a_remember_ttl_beyond_ttl() -> None:
    with pytest.raises(ConfigurationError, match="remember_ttl"):
        Policy(ttl=timedelta(days=7), remember_ttl=timedelta(days=30))
    # Default: remember_ttl is the ttl itself.
    assert Policy().lifetime_end(0.0, 0.0, None) == 7 * DAY


@pytest.mark.parametrize("mode", MODES)
async def test_a_lifetime_never_outlasts_ttl_from_creation(mode: str, clock: FakeClock) -> None:
    policy = POLICY.replace(idle_timeout=None, anonymous_idle_timeout=None)
    d = Drive(mode, clock=clock, policy=policy)
    session, token = await d.stored()
    clock.advance(20 * DAY)
    session = await d.load(token)
    session.login(ALICE, remember=True)  # 14 days from now would pass the 30-day ttl
    commit = await d.commit(session)
    assert commit.expires_at == pytest.approx(session.meta.created_at + 30 * DAY)


@pytest.mark.parametrize("mode", MODES)
async def test_logout_forgets_the_remembered_lifetime(mode: str, clock: FakeClock) -> None:
    d = Drive(mode, clock=clock, policy=POLICY)
    session = await d.load(None)
    session.login(ALICE, remember=True)
    token = (await d.commit(session)).token
    session = await d.load(token)
    session.logout(keep_data=True)
    session["left"] = 1
    commit = await d.commit(session)
    assert session.meta.ends_at is None
    assert session.meta.persistent is None
    assert commit.expires_at == pytest.approx(clock.now + 31 * 60)


@pytest.mark.parametrize("mode", MODES)
async def test_parallel_requests_keep_the_remembered_login(mode: str, clock: FakeClock) -> None:
    d = Drive(mode, clock=clock, policy=POLICY)
    session = await d.load(None)
    session.login(ALICE)
    token = (await d.commit(session)).token
    clock.advance(60)
    first, second = await d.load(token), await d.load(token)
    first.login(ALICE, remember=True)
    second["note"] = "written meanwhile"
    login = await d.commit(first)
    other = await d.commit(second)  # follows the rotation to the successor
    assert other.token == login.token
    final = await d.load(login.token)
    assert final["note"] == "written meanwhile"
    assert final.principal == ALICE
    # The forwarded write kept the successor's login time and lifetime, not its stale ones.
    assert final.meta.ends_at == pytest.approx(clock.now + 14 * DAY)
    assert final.auth_age == timedelta(0)
    record = await d.store.load(final.key)
    assert record is not None
    assert record.expires_at == pytest.approx(clock.now + 14 * DAY)


def test_metadata_round_trips_and_refuses_hostile_lifetimes() -> None:
    meta = SessionMeta(1.0, 2.0, ends_at=3.5, persistent=False, flagged="network")
    again = SessionMeta.from_data(meta.to_data())
    assert (again.ends_at, again.persistent, again.flagged) == (3.5, False, "network")
    assert meta.dumps() == '{"c":1.0,"s":2.0,"e":3.5,"p":false,"f":"network"}'
    from sessio.errors import RecordCorrupt

    for bad in ({"e": "soon"}, {"e": float("nan")}, {"p": 1}, {"f": ["x"]}, {"e": True}):
        with pytest.raises(RecordCorrupt):
            SessionMeta.from_data({"c": 1.0, "s": 2.0, **bad})


@pytest.mark.parametrize("backend", backend_params())
async def test_every_store_keeps_the_record_exactly_the_lifetime(
    backend: Backend, tmp_path: Path
) -> None:
    async with backend.open(tmp_path) as store:
        manager = SessionManager(store, POLICY)
        session = await manager.load(None)
        session["x"] = 1
        session.set_expiry(timedelta(hours=5))
        commit = await manager.commit(session)
        record = await store.load(session.key)
        assert record is not None
        # (Redis reports its own TTL, rounded: a second's slack.)
        assert record.expires_at == pytest.approx(time.time() + 5 * HOUR, abs=2)
        assert commit.expires_at == pytest.approx(record.expires_at, abs=2)
        # And back to the policy's idle timeout: the record follows it down.
        session = await manager.load(commit.token)
        session.set_expiry(None)
        await manager.commit(session)
        record = await store.load(session.key)
        assert record is not None
        assert record.expires_at == pytest.approx(time.time() + 31 * 60, abs=2)


async def test_a_stalled_store_fails_the_commit_not_the_lifetime(clock: FakeClock) -> None:
    """A store that hangs is bounded by the caller; the session's lifetime stays unwritten."""

    class Stalled(MemoryStore):
        async def save(self, key, write):  # type: ignore[no-untyped-def]
            await asyncio.sleep(10)
            return await super().save(key, write)

    manager = SessionManager(Stalled(clock=clock), POLICY, clock=clock)
    session = await manager.load(None)
    session.login(ALICE, remember=True)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(manager.commit(session), 0.2)
    assert session.is_modified  # nothing committed: the next attempt writes it all again
