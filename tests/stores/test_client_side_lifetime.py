"""Client-side stores and the status call keep a session's own lifetime and its client binding,
as the server-side flows do."""

from __future__ import annotations

from datetime import timedelta

from sessio import MemoryStore, Policy, Principal, SessionState, SyncSessionManager
from sessio.stores.signed import SignedCookieStore

from ..conftest import FakeClock

HOUR = 3600.0
KEY = "k" * 32


def signed(clock: FakeClock, policy: Policy) -> SyncSessionManager:
    store = SignedCookieStore(KEY, revocation_store=MemoryStore(clock=clock), clock=clock)
    return SyncSessionManager(store, policy, clock=clock)


def test_a_remembered_login_outlives_the_idle_timeout_in_a_signed_cookie(clock: FakeClock) -> None:
    manager = signed(clock, Policy(ttl=timedelta(days=30), remember_ttl=timedelta(days=7)))
    session = manager.load(None)
    session.login(Principal("ada"), remember=True)
    commit = manager.commit(session)
    assert commit.expires_at == clock.now + 7 * 24 * HOUR
    assert not commit.browser_session
    clock.advance(HOUR)  # far past the 30-minute idle timeout
    assert manager.load(commit.token).is_authenticated


def test_a_login_not_remembered_gets_a_browser_session_cookie(clock: FakeClock) -> None:
    manager = signed(clock, Policy())
    session = manager.load(None)
    session.login(Principal("ada"), remember=False)
    assert manager.commit(session).browser_session


def test_a_bound_signed_cookie_used_by_another_browser_ends(clock: FakeClock) -> None:
    manager = signed(clock, Policy(bind=("user_agent",), on_client_change="end"))
    firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
    chrome = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/141.0 Safari/537.36"
    session = manager.load(None, user_agent=firefox)
    session.login(Principal("ada"))
    token = manager.commit(session).token
    assert manager.load(token, user_agent=firefox).is_authenticated
    replayed = manager.load(token, user_agent=chrome)
    assert not replayed.is_authenticated
    assert replayed.is_new
    assert not manager.load(token, user_agent=firefox).is_authenticated  # ended for everyone


def test_status_reads_a_remembered_session_as_load_does(clock: FakeClock) -> None:
    manager = SyncSessionManager(
        MemoryStore(clock=clock), Policy(ttl=timedelta(days=30)), clock=clock
    )
    session = manager.load(None)
    session.login(Principal("ada"), remember=timedelta(days=2))
    token = manager.commit(session).token
    assert token is not None
    clock.advance(HOUR)
    assert not manager.load(token).is_new
    status = manager.status(token)
    assert status.state is SessionState.LIVE
    assert status.idle_remaining is None
    assert abs(status.remaining - (2 * 24 * HOUR - HOUR)) < 2


def test_clearing_a_lifetime_shows_the_policy_end_before_the_commit(clock: FakeClock) -> None:
    manager = SyncSessionManager(
        MemoryStore(clock=clock), Policy(ttl=timedelta(days=30)), clock=clock
    )
    session = manager.load(None)
    session.login(Principal("ada"), remember=timedelta(days=2))
    assert session.remaining > timedelta(days=1)
    session.set_expiry(None)
    policy = manager.policy
    assert session.remaining.total_seconds() <= policy.idle_seconds + policy.refresh_seconds  # type: ignore[operator]
