"""Concurrent-session limits: the oldest session is evicted, or the new login refused."""

from __future__ import annotations

import pytest

from sessio import ConcurrencyLimitExceeded, ConcurrencyPolicy, EventKind, Policy, Principal

from ..conftest import FakeClock
from .conftest import Browser, Site

ALICE = Principal("alice")


def limited(clock: FakeClock, on_limit: str) -> Site:
    concurrency = ConcurrencyPolicy(max_sessions_per_principal=2, on_limit=on_limit)  # type: ignore[arg-type]
    return Site(clock=clock, policy=Policy(concurrency=concurrency))


def log_in(site: Site, clock: FakeClock) -> Browser:
    browser = Browser(site)
    browser.visit(lambda s: s.login(ALICE))
    clock.advance(1)
    return browser


def test_evict_oldest_logs_the_oldest_device_out(clock: FakeClock) -> None:
    """ASVS 5.0 7.1.2 / cheat sheet "Simultaneous Session Logons": past the limit, the oldest
    session is deleted server-side (its token gives a fresh session) and EVICTED is reported."""
    site = limited(clock, "evict_oldest")
    first, second, third = (log_in(site, clock) for _ in range(3))
    assert not first.visit().session.is_authenticated
    assert second.visit().session.is_authenticated
    assert third.visit().session.is_authenticated
    assert site.kinds().count(EventKind.EVICTED) == 1
    assert len(site.manager.sessions_of(ALICE)) == 2


def test_reject_refuses_the_new_login_and_keeps_the_others(clock: FakeClock) -> None:
    """ASVS 5.0 7.1.2: with ``on_limit="reject"`` the extra login fails with a typed error and
    nothing is written; the existing sessions stay."""
    site = limited(clock, "reject")
    first, second = log_in(site, clock), log_in(site, clock)
    third = Browser(site)
    with pytest.raises(ConcurrencyLimitExceeded) as refused:
        third.visit(lambda s: s.login(ALICE))
    assert refused.value.code == "CONCURRENCY_LIMIT"
    assert refused.value.status_code == 409
    assert third.cookie is None
    assert first.visit().session.is_authenticated
    assert second.visit().session.is_authenticated
    assert len(site.manager.sessions_of(ALICE)) == 2
    assert EventKind.REJECTED in site.kinds()


def test_relogin_on_the_same_device_does_not_count_twice(clock: FakeClock) -> None:
    """ASVS 5.0 7.1.2: re-authentication rotates the device's own session; it is not a new
    session, so it neither evicts a sibling nor hits the reject limit."""
    for on_limit in ("evict_oldest", "reject"):
        site = limited(clock, on_limit)
        first, second = log_in(site, clock), log_in(site, clock)
        second.visit(lambda s: s.login(ALICE))
        assert first.visit().session.is_authenticated
        assert second.visit().session.is_authenticated
        assert EventKind.EVICTED not in site.kinds()


def test_limits_are_per_principal(clock: FakeClock) -> None:
    """ASVS 5.0 7.1.2: one user's logins never evict another user's sessions."""
    site = limited(clock, "evict_oldest")
    bob = Browser(site)
    bob.visit(lambda s: s.login(Principal("bob")))
    for _ in range(4):
        log_in(site, clock)
    assert bob.visit().session.is_authenticated
