"""Session: the dict API, flash, CSRF, login/logout, lifecycle flags, through real commits."""

from __future__ import annotations

import copy
import datetime as dt
import json
import pickle
from typing import Any

import pytest

from sessio import (
    CommitAction,
    EventKind,
    Policy,
    Principal,
    Session,
    SessionInvalid,
    ValueNotSerializable,
)
from sessio.ids import is_well_formed, short_hash, store_key
from sessio.stores.base import Update

from .conftest import FakeClock
from .drive import MODES, Drive


@pytest.fixture(params=MODES)
def drive(request: pytest.FixtureRequest, clock: FakeClock) -> Drive:
    return Drive(request.param, clock=clock)


@pytest.fixture
def session(clock: FakeClock) -> Session:
    """A new session, straight from a manager, no I/O."""
    return Drive("sync", clock=clock).manager.start()


# -- the dict API: get / set / has / all / forget --------------------------------------------------


def test_get_set_has_all_forget(session: Session) -> None:
    session["user"] = "ada"  # set
    session["n"] = 1
    assert session["user"] == "ada"  # get
    assert session.get("missing") is None
    assert session.get("missing", "dflt") == "dflt"
    assert "user" in session  # has
    assert "missing" not in session
    assert dict(session) == {"user": "ada", "n": 1}  # all
    del session["user"]  # forget
    assert "user" not in session
    assert session.pop("n") == 1
    assert session.pop("n", "gone") == "gone"
    with pytest.raises(KeyError):
        session.pop("n")
    with pytest.raises(KeyError):
        del session["n"]
    with pytest.raises(KeyError):
        session["n"]


def test_the_rest_of_the_mapping_api(session: Session) -> None:
    session.update({"a": 1}, b=2)
    session.update([("c", 3)])
    session |= {"d": 4}
    assert session.setdefault("a", 99) == 1
    assert session.setdefault("e", 5) == 5
    assert list(session) == ["a", "b", "c", "d", "e"]
    assert list(session.keys()) == ["a", "b", "c", "d", "e"]
    assert list(session.values()) == [1, 2, 3, 4, 5]
    assert len(session) == 5
    assert session.popitem() == ("e", 5)
    assert session == {"a": 1, "b": 2, "c": 3, "d": 4}
    snapshot = session.copy()
    assert type(snapshot) is dict
    assert snapshot == {"a": 1, "b": 2, "c": 3, "d": 4}
    session.clear()
    assert dict(session) == {}
    assert snapshot["a"] == 1
    with pytest.raises(KeyError):
        session.popitem()


def test_a_session_is_a_real_dict_for_code_written_for_other_frameworks(session: Session) -> None:
    session["cart"] = ["apple"]
    assert isinstance(session, dict)
    assert json.loads(json.dumps(session)) == {"cart": ["apple"]}
    assert {**session} == {"cart": ["apple"]}


def test_keys_are_strings(session: Session) -> None:
    with pytest.raises(TypeError):
        session[1] = "x"  # type: ignore[index]


def test_sessions_are_neither_hashable_nor_picklable(session: Session) -> None:
    session["a"] = 1
    with pytest.raises(TypeError):
        hash(session)
    with pytest.raises(TypeError, match=r"dict\(session\)"):
        pickle.dumps(session)
    with pytest.raises(TypeError):
        copy.copy(session)


def test_unencodable_values_fail_at_set_time_naming_the_key(session: Session) -> None:
    session["ok"] = 1
    with pytest.raises(ValueNotSerializable) as info:
        session["bad"] = object()
    assert info.value.evidence["key"] == "bad"
    assert "'bad'" in str(info.value)
    assert isinstance(info.value, TypeError)
    assert "bad" not in session
    with pytest.raises(ValueNotSerializable, match="'nan'"):
        session["nan"] = float("nan")
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueNotSerializable, match="'loop'"):
        session["loop"] = loop
    assert dict(session) == {"ok": 1}


async def test_a_failed_set_leaves_nothing_bad_for_the_commit(drive: Drive) -> None:
    session, token = await drive.stored(ok=1)
    session = await drive.load(token)
    with pytest.raises(ValueNotSerializable):
        session["ok"] = {1, object()}
    await drive.commit(session)
    assert dict(await drive.load(token)) == {"ok": 1}


async def test_typed_values_survive_a_round_trip(drive: Drive) -> None:
    value = {
        "when": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
        "pair": (1, "x"),
        "tags": {"a", "b"},
        "blob": b"\x00\xff",
        7: "int key",
    }
    _, token = await drive.stored(value=value)
    assert (await drive.load(token))["value"] == value


# -- modification tracking ---------------------------------------------------------------------------


async def test_nested_mutation_is_written_at_commit(drive: Drive) -> None:
    _, token = await drive.stored(cart=["apple"], other="keep")
    session = await drive.load(token)
    assert not session.is_modified
    session["cart"].append("pear")
    assert session.is_modified
    drive.counting.reset()
    commit = await drive.commit(session)
    assert commit.wrote
    [(_, write)] = drive.counting.writes
    assert isinstance(write, Update)
    assert set(write.fields) == {"d:cart", "s:meta"}  # only what changed, plus the metadata
    assert (await drive.load(token))["cart"] == ["apple", "pear"]


async def test_reading_is_not_writing(drive: Drive) -> None:
    _, token = await drive.stored(cart=["apple"], prefs={"a": [1, {"b": 2}]}, tags={3, 1, 2})
    session = await drive.load(token)
    assert session["cart"] == ["apple"]
    assert session["prefs"]["a"][1]["b"] == 2
    assert sorted(session["tags"]) == [1, 2, 3]
    assert session.is_accessed
    assert not session.is_modified
    drive.counting.reset()
    commit = await drive.commit(session)
    assert commit.action is CommitAction.NONE
    assert not commit.wrote
    assert drive.counting.writes == []


async def test_sets_do_not_look_modified_after_a_reload(drive: Drive) -> None:
    # A set whose iteration order differs from the order a fresh set of the same items gets.
    grown = set(range(10))
    for n in range(10):
        if n not in (7, 8):
            grown.discard(n)
    _, token = await drive.stored(ids=grown, frozen=frozenset(grown))
    for _ in range(2):
        session = await drive.load(token)
        assert session["ids"] == {7, 8}
        assert not session.is_modified


async def test_a_mutation_made_after_set_in_the_same_request_is_written(drive: Drive) -> None:
    session = await drive.load(None)
    session["cart"] = ["apple"]
    session["cart"].append("pear")
    token = (await drive.commit(session)).token
    assert (await drive.load(token))["cart"] == ["apple", "pear"]


async def test_deleting_a_key_is_a_delta(drive: Drive) -> None:
    _, token = await drive.stored(a=1, b=2)
    session = await drive.load(token)
    del session["a"]
    drive.counting.reset()
    await drive.commit(session)
    [(_, write)] = drive.counting.writes
    assert set(write.removed) == {"d:a"}
    assert dict(await drive.load(token)) == {"b": 2}


async def test_lifecycle_flags(drive: Drive, clock: FakeClock) -> None:
    session = await drive.load(None)
    assert session.is_new
    assert not session.is_modified
    assert not session.is_accessed
    assert not session.is_destroyed
    assert is_well_formed(session.id)
    assert session.key == store_key(session.id)
    session["a"] = 1
    assert session.is_modified
    await drive.commit(session)
    assert not session.is_new
    assert not session.is_modified
    loaded = await drive.load(session.id)
    assert not loaded.is_new
    assert loaded.id == session.id


def test_expires_at_and_remaining_follow_the_policy_and_the_clock(clock: FakeClock) -> None:
    policy = Policy(ttl=dt.timedelta(hours=1), anonymous_idle_timeout=None)
    drive = Drive("sync", clock=clock, policy=policy)
    session = drive.manager.start()
    idle_end = clock.now + 30 * 60 + 60  # the idle timeout and one refresh_interval of slack
    assert session.expires_at == dt.datetime.fromtimestamp(idle_end, dt.timezone.utc)
    assert session.expires_at.tzinfo is dt.timezone.utc
    assert session.remaining == dt.timedelta(minutes=31)
    clock.advance(600)
    assert session.remaining == dt.timedelta(minutes=21)
    clock.advance(3600)
    assert session.remaining == dt.timedelta(0)


def test_repr_shows_a_short_hash_never_the_id(session: Session) -> None:
    session["a"] = 1
    text = repr(session) + str(session) + repr(session.meta)
    assert session.id not in text
    assert short_hash(session.key) in text


# -- flash messages ----------------------------------------------------------------------------------


def test_flash_api_within_one_request(session: Session) -> None:
    assert not session.has_flash()
    session.flash("success", "Saved!")
    session.flash("error", "Careful")
    session.flash("success", {"n": 2})
    assert session.has_flash()
    assert session.has_flash("error")
    assert not session.has_flash("info")
    assert session.peek_flash("success") == ["Saved!", {"n": 2}]
    assert session.peek_flash() == ["Saved!", "Careful", {"n": 2}]
    assert session.pop_flash("success") == ["Saved!", {"n": 2}]
    assert session.pop_flash("success") == []
    assert session.flashes() == [("error", "Careful")]
    assert session.flashes() == []
    session.flash("info", "x")
    session.clear_flash()
    assert not session.has_flash()
    assert dict(session) == {}  # flash messages are not data


def test_an_unencodable_flash_fails_at_once(session: Session) -> None:
    with pytest.raises(ValueNotSerializable):
        session.flash("error", object())
    assert not session.has_flash()


async def test_flash_survives_exactly_one_redirect(drive: Drive) -> None:
    browser = drive.browser()
    async with browser.request() as s:  # POST /login, then a redirect
        s["user"] = "ada"
        s.flash("success", "Welcome back!")
        s.flash("warning", ("disk", 91))
    async with browser.request() as s:  # GET /dashboard shows the messages
        assert s.peek_flash("warning") == [("disk", 91)]
        assert s.has_flash("success")
        assert s.pop_flash("success") == ["Welcome back!"]
        assert s.pop_flash("warning") == [("disk", 91)]
    async with browser.request() as s:  # a reload shows nothing
        assert not s.has_flash()
        assert s.flashes() == []
        assert s["user"] == "ada"


async def test_peek_keeps_and_flashes_consumes_across_requests(drive: Drive) -> None:
    browser = drive.browser()
    async with browser.request() as s:
        s["x"] = 1
        s.flash("info", "one")
    async with browser.request() as s:
        assert s.peek_flash() == ["one"]
    async with browser.request() as s:
        assert s.flashes() == [("info", "one")]
    async with browser.request() as s:
        assert not s.has_flash()
    async with browser.request() as s:
        s.flash("info", "two")
    async with browser.request() as s:
        s.clear_flash()
    async with browser.request() as s:
        assert not s.has_flash("info")


# -- CSRF --------------------------------------------------------------------------------------------


def test_csrf_token_is_masked_differently_on_every_read(session: Session) -> None:
    tokens = {session.csrf_token for _ in range(20)}
    assert len(tokens) == 20
    assert all(session.verify_csrf(t) for t in tokens)


def test_verify_csrf_rejects_everything_else(session: Session, clock: FakeClock) -> None:
    token = session.csrf_token
    other = Drive("sync", clock=clock).manager.start()
    assert not other.verify_csrf(token)  # another session's token
    assert not session.verify_csrf(other.csrf_token)
    assert not session.verify_csrf(token[:-1])  # truncated
    assert not session.verify_csrf(token[:40])
    flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
    assert not session.verify_csrf(flipped)  # wrong
    for garbage in (None, "", 0, 1.5, b"bytes", token.encode(), [token], {"t": token}, object()):
        assert not session.verify_csrf(garbage)


def test_a_session_without_a_token_verifies_nothing(session: Session, clock: FakeClock) -> None:
    token = Drive("sync", clock=clock).manager.start().csrf_token
    assert not session.verify_csrf(token)


def test_rotate_csrf_invalidates_every_earlier_token(session: Session) -> None:
    old = session.csrf_token
    session.rotate_csrf()
    assert not session.verify_csrf(old)
    assert session.verify_csrf(session.csrf_token)


async def test_the_csrf_secret_is_kept_across_requests(drive: Drive) -> None:
    browser = drive.browser()
    async with browser.request() as s:
        form_token = s.csrf_token  # rendering a form stores the secret
    assert browser.last is not None
    assert browser.last.wrote
    async with browser.request() as s:
        assert s.verify_csrf(form_token)
        assert not s.is_modified  # reading a token of an existing secret writes nothing


# -- login / logout -----------------------------------------------------------------------------------


async def test_login_rotates_the_id_and_deletes_the_old_record(drive: Drive) -> None:
    _, anon = await drive.stored(cart=["apple"])
    session = await drive.load(anon)
    form_token = session.csrf_token
    session.login(Principal("42", roles={"user"}, attributes={"name": "Ada"}))
    assert session.id != anon
    assert session.is_authenticated
    commit = await drive.commit(session)
    assert commit.action is CommitAction.SET
    assert commit.token == session.id
    assert not await drive.store.exists(store_key(anon))
    old = await drive.load(anon)
    assert old.is_new
    assert not old.is_authenticated
    assert dict(old) == {}
    mine = await drive.load(commit.token)
    assert mine["cart"] == ["apple"]  # keep_data=True by default
    assert mine.principal == Principal("42", roles={"user"}, attributes={"name": "Ada"})
    assert mine.principal is not None
    assert mine.principal.get_attribute("name") == "Ada"
    assert not mine.verify_csrf(form_token)  # login rotates the CSRF secret too
    assert mine.meta.authenticated_at == drive.clock()
    rotated = next(e for e in drive.events if e.kind is EventKind.ROTATED)
    assert rotated.detail["previous"] == short_hash(store_key(anon))
    assert EventKind.AUTHENTICATED in drive.kinds()


async def test_login_with_keep_data_false_starts_clean(drive: Drive) -> None:
    _, anon = await drive.stored(cart=["apple"])
    session = await drive.load(anon)
    session.flash("info", "stale")
    session.login(Principal("42"), keep_data=False)
    session.flash("success", "Welcome")
    token = (await drive.commit(session)).token
    mine = await drive.load(token)
    assert dict(mine) == {}
    assert mine.flashes() == [("success", "Welcome")]
    assert mine.is_authenticated


async def test_a_change_of_roles_is_a_change_of_privilege(drive: Drive) -> None:
    browser = drive.browser()
    async with browser.request() as s:
        s.login(Principal("42", roles={"user"}))
    first = browser.token
    async with browser.request() as s:
        s.login(Principal("42", roles={"user"}))  # re-authentication rotates too (ASVS 7.2.4)
    second = browser.token
    assert second != first
    assert drive.kinds().count(EventKind.AUTHENTICATED) == 2
    async with browser.request() as s:
        s.login(Principal("42", roles={"user", "admin"}))  # a promotion rotates again
    assert browser.token not in (first, second)
    assert first is not None
    assert second is not None
    assert (await drive.load(first)).is_new
    assert (await drive.load(second)).is_new
    async with browser.request() as s:
        assert s.principal is not None
        assert s.principal.has_role("admin")
    assert drive.kinds().count(EventKind.AUTHENTICATED) == 3


async def test_login_on_a_new_session_needs_no_rotation(drive: Drive) -> None:
    session = await drive.load(None)
    born = session.id
    session.login(Principal("7"))
    assert session.id == born
    commit = await drive.commit(session)
    assert commit.token == born
    assert drive.kinds()[:2] == [EventKind.CREATED, EventKind.AUTHENTICATED]
    assert EventKind.ROTATED not in drive.kinds()


async def test_rotation_on_login_can_be_turned_off(drive: Drive) -> None:
    plain = drive.twin(Policy(rotate_on_login=False))
    _, token = await plain.stored()
    session = await plain.load(token)
    session.login(Principal("7"))
    assert session.id == token
    await plain.commit(session)
    assert (await plain.load(token)).is_authenticated


def test_login_takes_a_principal(session: Session) -> None:
    with pytest.raises(TypeError):
        session.login("42")  # type: ignore[arg-type]
    with pytest.raises(ValueNotSerializable):
        session.login(Principal("42", attributes={"x": object()}))
    assert not session.is_authenticated


async def test_logout_invalidates_the_session_server_side(drive: Drive) -> None:
    browser = drive.browser()
    async with browser.request() as s:
        s["cart"] = ["apple"]
        s.login(Principal("42"))
    logged_in = browser.token
    assert logged_in is not None
    async with browser.request() as s:
        assert s.is_authenticated
        s.logout()
        assert not s.is_authenticated
        assert s.principal is None
        s.flash("info", "Bye")  # queued after logout: reaches the next page
    assert browser.token not in (None, logged_in)
    stolen = await drive.load(logged_in)  # the old token gives a fresh session
    assert stolen.is_new
    assert not stolen.is_authenticated
    assert dict(stolen) == {}
    async with browser.request() as s:
        assert dict(s) == {}
        assert not s.is_authenticated
        assert s.pop_flash("info") == ["Bye"]
    assert EventKind.LOGGED_OUT in drive.kinds()
    assert await drive("sessions_of", "42") == []


async def test_logout_can_keep_the_data(drive: Drive) -> None:
    browser = drive.browser()
    async with browser.request() as s:
        s["theme"] = "dark"
        s.login(Principal("42"))
    async with browser.request() as s:
        s.logout(keep_data=True)
    async with browser.request() as s:
        assert dict(s) == {"theme": "dark"}
        assert not s.is_authenticated


# -- regenerate / destroy ------------------------------------------------------------------------------


@pytest.mark.parametrize("keep_data", [True, False])
async def test_regenerate(drive: Drive, keep_data: bool) -> None:
    _, token = await drive.stored(a=1)
    session = await drive.load(token)
    session.regenerate(keep_data=keep_data)
    assert session.id != token
    commit = await drive.commit(session)
    assert commit.action is CommitAction.SET
    assert (await drive.load(token)).is_new
    assert dict(await drive.load(commit.token)) == ({"a": 1} if keep_data else {})
    assert EventKind.ROTATED in drive.kinds()


async def test_destroy(drive: Drive) -> None:
    _, token = await drive.stored(a=1)
    session = await drive.load(token)
    session.destroy()
    assert session.is_destroyed
    assert dict(session) == {}
    with pytest.raises(SessionInvalid):
        session["b"] = 2
    with pytest.raises(SessionInvalid):
        session.flash("x", "y")
    with pytest.raises(SessionInvalid):
        session.login(Principal("1"))
    commit = await drive.commit(session)
    assert commit.action is CommitAction.CLEAR
    assert not await drive.store.exists(store_key(token))
    assert (await drive.load(token)).is_new
    assert EventKind.DESTROYED in drive.kinds()


async def test_destroy_after_regenerate_removes_the_original_record(drive: Drive) -> None:
    _, token = await drive.stored(a=1)
    session = await drive.load(token)
    session.regenerate()
    session.destroy()
    assert (await drive.commit(session)).action is CommitAction.CLEAR
    assert await drive.store.count() == 0


async def test_destroying_a_new_session_touches_no_store(drive: Drive) -> None:
    session = await drive.load(None)
    session["a"] = 1
    session.destroy()
    assert (await drive.commit(session)).action is CommitAction.CLEAR
    assert drive.counting.writes == []
    assert drive.counting.deletes == []


async def test_manager_destroy_acts_at_once(drive: Drive) -> None:
    _, token = await drive.stored(a=1)
    session = await drive.load(token)
    await drive("destroy", session)
    assert session.is_destroyed
    assert not await drive.store.exists(store_key(token))


# -- reads a response depends on mark the session accessed (Vary: Cookie) -----------------------------


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(lambda s: s.principal, id="principal"),
        pytest.param(lambda s: s.is_authenticated, id="is_authenticated"),
        pytest.param(lambda s: s.csrf_token, id="csrf_token"),
        pytest.param(lambda s: s.verify_csrf("x"), id="verify_csrf"),
        pytest.param(lambda s: s.flashes(), id="flashes"),
        pytest.param(lambda s: s.peek_flash(), id="peek_flash"),
        pytest.param(lambda s: s.has_flash(), id="has_flash"),
        pytest.param(lambda s: s.pop_flash("info"), id="pop_flash"),
        pytest.param(lambda s: s.remaining, id="remaining"),
        pytest.param(lambda s: s.expires_at, id="expires_at"),
        pytest.param(lambda s: s.get("x"), id="get"),
    ],
)
async def test_every_read_a_response_depends_on_marks_the_session_accessed(
    drive: Drive, read: Any
) -> None:
    _, token = await drive.stored(x=1)
    session = await drive.load(token)
    assert not session.is_accessed
    read(session)
    assert session.is_accessed


async def test_the_manager_reading_the_session_marks_nothing(
    drive: Drive, clock: FakeClock
) -> None:
    session = await drive.load(None)
    session.login(Principal("ada"))
    token = (await drive.commit(session)).token
    clock.advance(120)  # a touch is due: the commit reads the principal and the expiry
    loaded = await drive.load(token)
    assert (await drive.commit(loaded)).wrote
    assert not loaded.is_accessed


# -- a login as someone else ------------------------------------------------------------------------


async def test_a_login_as_a_different_principal_drops_the_previous_ones_data(
    drive: Drive,
) -> None:
    session = await drive.load(None)
    session.login(Principal("ada"))
    session["inbox"] = ["private"]
    session.flash("info", "for ada")
    token = (await drive.commit(session)).token
    shared = await drive.load(token)
    shared.login(Principal("bob"))  # the next person at a shared computer
    assert dict(shared) == {}
    assert shared.peek_flash() == []
    new = (await drive.commit(shared)).token
    assert dict(await drive.load(new)) == {}


async def test_a_login_from_anonymous_or_as_the_same_principal_keeps_the_data(
    drive: Drive,
) -> None:
    _, token = await drive.stored(cart=["apple"])
    session = await drive.load(token)
    session.login(Principal("ada"))
    token = (await drive.commit(session)).token
    assert (await drive.load(token))["cart"] == ["apple"]
    again = await drive.load(token)
    again.login(Principal("ada", roles=["admin"]))  # a step-up is the same principal
    token = (await drive.commit(again)).token
    assert (await drive.load(token))["cart"] == ["apple"]
    other = await drive.load(token)
    other.login(Principal("bob"), keep_data=True)  # asked for explicitly
    assert other["cart"] == ["apple"]
