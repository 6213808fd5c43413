"""Session termination: logout, idle and absolute timeouts, revocation, enforced on the server."""

from __future__ import annotations

from datetime import timedelta

from sessio import EventKind, Policy, Principal, Session
from sessio.ids import store_key

from ..conftest import FakeClock
from .conftest import Browser, Site, write

ALICE = Principal("alice", roles={"user"})


def login(session: Session) -> None:
    session.login(ALICE)
    session["basket"] = ["book"]


def logout(session: Session) -> None:
    session.logout()


def replay(site: Site, token: str | None) -> Session:
    """What a request carrying ``token`` gets."""
    other = Browser(site)
    other.cookie = token
    return other.visit().session


def test_logout_invalidates_the_old_token_server_side(site: Site, browser: Browser) -> None:
    """ASVS 4.0.3 3.3.1 / ASVS 5.0 7.4.1 / cheat sheet "Manual Session Expiration": after logout the
    old cookie (a back button, a copied cookie) resumes nothing, and the record is gone."""
    browser.visit(login)
    before = browser.cookie
    old_id = site.signer.unsign(before or "")
    assert old_id is not None
    response = browser.visit(logout)
    assert browser.cookie is not None
    assert browser.cookie != before
    assert not response.session.is_authenticated
    assert not site.store.exists_sync(store_key(old_id))
    again = replay(site, before)
    assert again.is_new
    assert not again.is_authenticated
    assert "basket" not in again
    assert EventKind.LOGGED_OUT in site.kinds()


def test_logout_drops_the_data_by_default(browser: Browser) -> None:
    """Cheat sheet "Manual Session Expiration": logout ends the whole session, data included."""
    browser.visit(login)
    response = browser.visit(logout)
    assert "basket" not in response.session
    assert "basket" not in browser.visit().session


def test_destroy_clears_the_cookie_and_the_record(site: Site, browser: Browser) -> None:
    """ASVS 5.0 7.4.1: destroy() removes the record and tells the browser to forget the cookie."""
    browser.visit(login)
    token = browser.cookie
    response = browser.visit(lambda s: s.destroy())
    set_cookie = response.set_cookie()
    assert set_cookie is not None
    assert "Max-Age=0" in set_cookie
    assert browser.cookie is None
    assert replay(site, token).is_new


def test_idle_timeout_is_enforced_at_load(site: Site, browser: Browser, clock: FakeClock) -> None:
    """ASVS 4.0.3 3.3.2 / ASVS 5.0 7.3.1 / cheat sheet "Idle Timeout": 30 minutes without a request
    ends the session on the server, whatever the cookie says; the record is removed. The touch
    is throttled, so the end is never early and at most one refresh_interval (60 s) late."""
    assert Policy().idle_timeout == timedelta(minutes=30)
    browser.visit(login)
    token = browser.cookie
    clock.advance(29 * 60)
    assert browser.visit().session.is_authenticated  # activity pushes the idle expiry
    clock.advance(30 * 60 + 60)
    session = replay(site, token)
    assert session.is_new
    assert not session.is_authenticated
    old_id = site.signer.unsign(token or "")
    assert old_id is not None
    assert not site.store.exists_sync(store_key(old_id))


def test_a_shorter_policy_applies_to_existing_sessions(clock: FakeClock) -> None:
    """ASVS 5.0 7.3.1: timeouts are the server's decision at every load, not the expiry written
    when the session was saved: shortening the idle timeout ends older sessions at once (the
    record is deleted and EXPIRED reported)."""
    site = Site(clock=clock)
    browser = Browser(site)
    browser.visit(login)
    token = browser.cookie
    clock.advance(10 * 60)
    strict = Site(clock=clock, store=site.store, policy=Policy(idle_timeout=timedelta(minutes=5)))
    session = replay(strict, token)
    assert session.is_new
    assert not session.is_authenticated
    assert EventKind.EXPIRED in strict.kinds()
    old_id = site.signer.unsign(token or "")
    assert old_id is not None
    assert not site.store.exists_sync(store_key(old_id))


def test_absolute_timeout_ends_even_an_active_session(
    site: Site, browser: Browser, clock: FakeClock
) -> None:
    """ASVS 4.0.3 3.3.2 / ASVS 5.0 7.3.2 / cheat sheet "Absolute Timeout": a session used every
    20 minutes still ends 7 days after it began."""
    assert Policy().ttl == timedelta(days=7)
    browser.visit(login)
    start = clock.now
    while clock.now + 20 * 60 < start + 7 * 86400:
        clock.advance(20 * 60)
        assert browser.visit().session.is_authenticated
    clock.advance(20 * 60)
    session = browser.visit().session
    assert session.is_new
    assert not session.is_authenticated


def test_remaining_time_is_visible(site: Site, browser: Browser, clock: FakeClock) -> None:
    """Cheat sheet "Automatic Session Expiration": the app can show the user when the session
    ends (the earlier of idle and absolute timeouts)."""
    session = browser.visit(login).session
    assert session.remaining == timedelta(minutes=31)  # idle + one refresh_interval of slack
    assert abs(session.expires_at.timestamp() - (clock.now + 31 * 60)) < 1e-3


def test_revoke_all_except_current_logs_out_every_other_device(
    site: Site, clock: FakeClock
) -> None:
    """ASVS 4.0.3 3.3.3 / ASVS 5.0 7.4.3: after a password change, "log out everywhere else":
    the other devices' tokens give fresh anonymous sessions; this device stays logged in."""
    laptop, phone, tablet = Browser(site), Browser(site), Browser(site)
    for device in (laptop, phone, tablet):
        device.visit(login)
        clock.advance(1)
    current = laptop.visit().session
    removed = site.manager.revoke_all(ALICE, except_=current)
    assert removed == 2
    assert laptop.visit().session.is_authenticated
    for device in (phone, tablet):
        session = device.visit().session
        assert session.is_new
        assert not session.is_authenticated
    assert site.kinds().count(EventKind.REVOKED) == 2


def test_revoke_all_terminates_a_disabled_account(site: Site) -> None:
    """ASVS 5.0 7.4.2 / 7.4.5: when an account is disabled, an administrator ends all of its
    sessions (no session to keep)."""
    devices = [Browser(site) for _ in range(3)]
    for device in devices:
        device.visit(login)
    assert site.manager.revoke_all(ALICE) == 3
    assert all(not d.visit().session.is_authenticated for d in devices)
    assert site.manager.sessions_of(ALICE) == []


def test_user_can_list_and_end_one_session(site: Site, clock: FakeClock) -> None:
    """ASVS 4.0.3 3.3.4 / ASVS 5.0 7.5.2: users see their sessions (with safe-to-show keys) and end
    any one of them; a key of someone else's session is refused."""
    mine, other = Browser(site), Browser(site)
    mine.visit(login)
    clock.advance(1)
    other.visit(login)
    bob = Browser(site)
    bob.visit(lambda s: s.login(Principal("bob")))
    current = mine.visit().session
    listed = site.manager.sessions_of(ALICE, current=current)
    assert len(listed) == 2
    assert sum(info.current for info in listed) == 1
    assert all(len(info.key) == 64 and info.key != current.id for info in listed)
    victim = next(info for info in listed if not info.current)
    bobs = site.manager.sessions_of("bob")[0]
    assert not site.manager.revoke(bobs.key, principal=ALICE)  # not alice's to end
    assert bob.visit().session.is_authenticated
    assert site.manager.revoke(victim.key, principal=ALICE)
    assert not other.visit().session.is_authenticated
    assert mine.visit().session.is_authenticated


def test_replay_after_revoke_gives_a_fresh_session(site: Site, browser: Browser) -> None:
    """ASVS 5.0 7.4.1: a revoked token, replayed, resumes nothing, even with a valid signature."""
    browser.visit(login)
    token = browser.cookie
    assert site.signer.unsign(token or "") is not None
    site.manager.revoke_all(ALICE)
    session = replay(site, token)
    assert session.is_new
    assert not session.is_authenticated
    assert "basket" not in session


def test_a_delta_commit_never_resurrects_a_revoked_session(site: Site, browser: Browser) -> None:
    """ASVS 5.0 7.4.1: a request already in flight when the session is revoked cannot write it
    back into existence."""
    browser.visit(login)
    session = site.manager.load(site.signer.unsign(browser.cookie or ""))
    assert session.is_authenticated
    site.manager.revoke_all(ALICE)
    session["late"] = "write"
    site.manager.commit(session)
    assert not site.store.exists_sync(session.key)
    assert not browser.visit(write("x", 1)).session.is_authenticated
