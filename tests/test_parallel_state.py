"""Flash messages and the CSRF secret under parallel requests of one session.

Each test loads one session twice before either request commits, and commits in both orders,
through SessionManager and SyncSessionManager alike.
"""

from __future__ import annotations

import pytest

from sessio import Policy, Principal
from sessio.fields import CSRF, FLASH
from sessio.flash import FLASH_PREFIX, NO_FLASHES
from sessio.stores.base import Create, Update

from .conftest import FakeClock
from .drive import MODES, Drive

ORDERS = [
    pytest.param((0, 1), id="first-then-second"),
    pytest.param((1, 0), id="second-then-first"),
]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def drive(mode: str, clock: FakeClock) -> Drive:
    return Drive(mode, clock=clock)


async def _stored(drive: Drive) -> str:
    _, token = await drive.stored(seed=1)
    return token


# -- flash messages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
async def test_two_parallel_flashes_keep_both(drive: Drive, order: tuple[int, int]) -> None:
    token = await _stored(drive)
    requests = [await drive.load(token), await drive.load(token)]
    requests[0].flash("info", "one")
    requests[1].flash("info", "two")
    for i in order:
        await drive.commit(requests[i])
    assert sorted((await drive.load(token)).flashes()) == [("info", "one"), ("info", "two")]


@pytest.mark.parametrize("order", ORDERS)
async def test_a_consumed_message_never_comes_back_when_another_request_adds_one(
    drive: Drive, order: tuple[int, int]
) -> None:
    token = await _stored(drive)
    first = await drive.load(token)
    first.flash("info", "old")
    await drive.commit(first)
    reader, writer = await drive.load(token), await drive.load(token)
    assert reader.flashes() == [("info", "old")]
    writer.flash("info", "new")
    requests = [reader, writer]
    for i in order:
        await drive.commit(requests[i])
    assert (await drive.load(token)).flashes() == [("info", "new")]


async def test_messages_keep_their_order_and_each_is_its_own_field(
    drive: Drive, clock: FakeClock
) -> None:
    token = await _stored(drive)
    s = await drive.load(token)
    for n in range(5):  # several in one request, and in one clock tick
        s.flash("info", n)
    drive.counting.reset()
    await drive.commit(s)
    [(_, write)] = drive.counting.writes
    names = sorted(n for n in write.fields if n.startswith(FLASH_PREFIX))
    assert len(names) == 5
    clock.advance(1)
    later = await drive.load(token)
    later.flash("info", 5)
    await drive.commit(later)
    assert (await drive.load(token)).peek_flash() == [0, 1, 2, 3, 4, 5]
    consumer = await drive.load(token)
    assert consumer.pop_flash("info") == [0, 1, 2, 3, 4, 5]
    drive.counting.reset()
    await drive.commit(consumer)
    [(_, write)] = drive.counting.writes
    assert set(write.removed) >= set(names)  # consumed one by one, not rewritten as a list
    assert not any(n.startswith(FLASH_PREFIX) for n in write.fields)


async def test_a_record_with_the_old_single_flash_field_still_loads(drive: Drive) -> None:
    token = await _stored(drive)
    s = await drive.load(token)
    record = await drive.store.load(s.key)
    assert record is not None
    legacy = dict(record.fields)
    legacy[FLASH] = '[["info","a"],["error","b"],["info","c"]]'
    await drive.store.delete(s.key)
    await drive.store.save(s.key, Create(legacy, record.expires_at))
    old = await drive.load(token)
    assert old.peek_flash() == ["a", "b", "c"]
    old.flash("info", "d")
    assert old.pop_flash("error") == ["b"]
    await drive.commit(old)
    record = await drive.store.load(s.key)
    assert FLASH not in record.fields  # moved to a field per message
    assert (await drive.load(token)).flashes() == [("info", "a"), ("info", "c"), ("info", "d")]


async def test_an_undecodable_message_is_dropped_and_removed(drive: Drive) -> None:
    token = await _stored(drive)
    s = await drive.load(token)
    s.flash("info", "good")
    await drive.commit(s)
    record = await drive.store.load(s.key)
    bad = FLASH_PREFIX + "0" * 24
    await drive.store.save(s.key, Update({bad: "[1,2,3]"}, record.expires_at))
    again = await drive.load(token)
    assert again.peek_flash() == ["good"]
    again["touch"] = 1
    await drive.commit(again)
    assert bad not in (await drive.store.load(s.key)).fields


# -- the CSRF secret ----------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ORDERS)
async def test_parallel_first_requests_agree_on_the_csrf_secret(
    drive: Drive, order: tuple[int, int]
) -> None:
    token = await _stored(drive)
    requests = [await drive.load(token), await drive.load(token)]
    tokens = [r.csrf_token for r in requests]
    for i in order:
        await drive.commit(requests[i])
    later = await drive.load(token)
    assert all(later.verify_csrf(t) for t in tokens)  # both forms still submit
    assert CSRF not in (await drive.store.load(later.key)).fields  # derived, nothing stored


async def test_a_new_session_that_only_handed_out_a_csrf_token_is_stored(drive: Drive) -> None:
    session = await drive.load(None)
    form_token = session.csrf_token
    commit = await drive.commit(session)
    assert commit.wrote
    assert commit.token == session.id
    assert (await drive.load(commit.token)).verify_csrf(form_token)


async def test_login_changes_the_csrf_secret_and_parallel_requests_then_agree(
    drive: Drive,
) -> None:
    token = await _stored(drive)
    before = (await drive.load(token)).csrf_token
    s = await drive.load(token)
    s.login(Principal("ada"))
    new_token = (await drive.commit(s)).token
    one, two = await drive.load(new_token), await drive.load(new_token)
    assert not one.verify_csrf(before)
    assert one.verify_csrf(two.csrf_token)


async def test_rotate_csrf_without_rotation_of_the_id(mode: str, clock: FakeClock) -> None:
    drive = Drive(mode, clock=clock, policy=Policy(rotate_on_login=False))
    token = await _stored(drive)
    before = (await drive.load(token)).csrf_token
    s = await drive.load(token)
    s.login(Principal("ada"))
    assert (await drive.commit(s)).token == token  # same ID ...
    after = await drive.load(token)
    assert not after.verify_csrf(before)  # ... yet every earlier token is dead
    assert after.verify_csrf(after.csrf_token)


async def test_regenerate_keeps_the_forms_already_rendered_working(drive: Drive) -> None:
    token = await _stored(drive)
    rendered = (await drive.load(token)).csrf_token
    s = await drive.load(token)
    s.regenerate()
    new_token = (await drive.commit(s)).token
    assert new_token != token
    assert (await drive.load(new_token)).verify_csrf(rendered)


async def test_a_stored_session_reading_its_csrf_token_writes_nothing(drive: Drive) -> None:
    token = await _stored(drive)
    s = await drive.load(token)
    s.csrf_token  # noqa: B018 - the read is the point
    drive.counting.reset()
    assert not (await drive.commit(s)).wrote
    assert drive.counting.writes == []


async def test_sessions_without_messages_share_one_empty_queue_that_nothing_changes(
    drive: Drive,
) -> None:
    token = await _stored(drive)
    quiet, busy = await drive.load(token), await drive.load(token)
    assert quiet._flashes is NO_FLASHES
    assert quiet.flashes() == []
    assert quiet.pop_flash("info") == []
    quiet.clear_flash()
    busy.flash("info", "mine")
    assert busy._flashes is not NO_FLASHES
    assert not NO_FLASHES
    assert not NO_FLASHES.changed
    await drive.commit(quiet)
    await drive.commit(busy)
    assert quiet.peek_flash() == []
    assert (await drive.load(token)).peek_flash() == ["mine"]
