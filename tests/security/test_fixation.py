"""Session fixation and rotation: IDs the server never issued are refused; privilege changes rotate."""

from __future__ import annotations

from sessio import EventKind, Policy, Principal, Session
from sessio.ids import new_session_id, store_key, successor_key

from .conftest import Browser, Site, write


def login(principal: Principal) -> object:
    def handler(session: Session) -> None:
        session.login(principal)

    return handler


def test_attacker_chosen_unsigned_id_is_never_adopted(site: Site) -> None:
    """ASVS 4.0.3 3.2.1 / cheat sheet "Session ID Generation and Verification: Permissive and
    Strict Session Management": a well-formed ID the attacker made up is refused."""
    planted = new_session_id()
    response = site.request([site.cookie(planted)], write("cart", ["apple"]))
    assert response.session.id != planted
    assert not site.store.exists_sync(store_key(planted))
    assert site.store.exists_sync(store_key(response.session.id))


def test_signed_id_the_store_never_issued_is_never_adopted(site: Site) -> None:
    """Cheat sheet "Permissive and Strict Session Management" (strict mode): even a correctly
    signed, well-formed ID (a leaked signing key) names no session until the server stored it."""
    planted = new_session_id()
    response = site.request([site.cookie(site.sign(planted))], write("k", 1))
    assert response.session.id != planted
    assert EventKind.CREATED in site.kinds()
    assert EventKind.LOADED not in site.kinds()
    assert not site.store.exists_sync(store_key(planted))


def test_pre_login_id_is_dead_after_login(site: Site) -> None:
    """ASVS 4.0.3 3.2.1 / ASVS 5.0 7.2.4: login issues a new ID and terminates the pre-login one,
    so a fixated anonymous cookie gives the attacker nothing."""
    victim = Browser(site)
    victim.visit(write("lang", "en"))
    planted = victim.cookie  # what a fixation attacker knows: the pre-login token
    assert planted is not None
    victim.visit(login(Principal("alice")))
    assert victim.cookie is not None
    assert victim.cookie != planted
    attacker = Browser(site)
    attacker.cookie = planted
    replay = attacker.visit()
    assert replay.session.is_new
    assert not replay.session.is_authenticated
    assert replay.session.principal is None
    old_id = site.signer.unsign(planted)
    assert old_id is not None
    assert not site.store.exists_sync(store_key(old_id))
    # The victim's new session is intact and authenticated.
    assert victim.visit().session.principal == Principal("alice")


def test_login_rotates_the_csrf_secret(browser: Browser) -> None:
    """Cheat sheet "Renew the Session ID After Any Privilege Level Change": a CSRF token rendered
    before login is worthless after it."""
    before = browser.visit(lambda s: s.csrf_token).result
    after = browser.visit(login(Principal("alice")))
    assert not after.session.verify_csrf(before)
    assert after.session.verify_csrf(after.session.csrf_token)


def test_role_change_rotates_the_id(site: Site, browser: Browser) -> None:
    """Cheat sheet "Renew the Session ID After Any Privilege Level Change": a promotion to admin
    issues a new ID and deletes the old record."""
    browser.visit(login(Principal("alice", roles={"user"})))
    user_token = browser.cookie
    response = browser.visit(login(Principal("alice", roles={"user", "admin"})))
    assert browser.cookie != user_token
    assert EventKind.ROTATED in site.kinds()
    stale = Browser(site)
    stale.cookie = user_token
    assert not stale.visit().session.is_authenticated
    assert response.session.principal is not None
    assert response.session.principal.has_role("admin")


def test_reauthentication_rotates_the_id(site: Site, browser: Browser) -> None:
    """ASVS 5.0 7.2.4: a new token on authentication *including re-authentication*, and the current
    one terminated: logging in again as the same principal (step-up, password re-entry) rotates."""
    browser.visit(login(Principal("alice")))
    first = browser.cookie
    browser.visit(login(Principal("alice")))
    assert browser.cookie is not None
    assert browser.cookie != first
    stale = Browser(site)
    stale.cookie = first
    assert not stale.visit().session.is_authenticated
    assert site.kinds().count(EventKind.AUTHENTICATED) == 2


def test_rotation_on_login_is_the_default() -> None:
    """ASVS 4.0.3 3.2.1: rotation is on without configuration, in every preset."""
    for policy in (Policy(), Policy.web(), Policy.api(), Policy.ephemeral()):
        assert policy.rotate_on_login


def test_only_the_configured_exchange_mechanism_is_accepted(site: Site) -> None:
    """Cheat sheet "Used vs. Accepted Session ID Exchange Mechanisms": a cookie site ignores a
    valid token offered in a header or as a bearer token."""
    owner = Browser(site)
    owner.visit(write("secret", "x"))
    token = owner.cookie
    assert token is not None
    for headers in ([("x-session-id", token)], [("authorization", f"Bearer {token}")]):
        response = site.request(headers)
        assert response.session.is_new
        assert "secret" not in response.session


def test_a_fixated_request_in_flight_during_the_login_learns_nothing(site: Site) -> None:
    """ASVS 5.0 7.2.4 / cheat sheet "Renew the Session ID After Any Privilege Level Change":
    rotation survives parallel requests without reopening fixation. An attacker's request
    holding the planted pre-login ID, in flight while the victim logs in, finds the tombstone
    of another principal -- it writes nothing, is handed no ID, and the tombstone (under a key
    only the old ID yields) holds the new ID sealed, never in the clear."""
    victim = Browser(site)
    victim.visit(write("lang", "en"))
    planted = site.signer.unsign(victim.cookie or "")
    assert planted is not None
    in_flight = site.manager.load(planted)  # the attacker's request, loaded before the login
    victim.visit(login(Principal("alice")))
    in_flight["lang"] = "attacker"
    commit = site.manager.commit(in_flight)
    assert commit.outcome.value == "superseded"
    assert commit.token is None
    assert not commit.wrote
    new_id = site.signer.unsign(victim.cookie or "")
    assert new_id is not None
    stone = site.store.load_sync(successor_key(planted))
    assert stone is not None
    assert new_id not in repr(stone)
    assert victim.visit().session["lang"] == "en"
    assert site.manager.load(planted).is_new  # and afterwards the planted ID is simply dead
