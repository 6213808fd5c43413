"""The async twins (aload, asave, acreate, acycle_key, aflush...) on the stores' async API.

The same contract as ``test_backend``, awaited: each step runs through sessio's async
SessionManager on the store's async client, not through a thread bridge.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError

from sessio.integrations.django import SessionStore, store

Backend = type[SessionBase]


async def test_set_get_pop_and_save(areference: Backend) -> None:
    session = areference()
    assert await session.aget("cat") is None
    await session.aset("cat", "dog")
    assert session.modified is True
    assert await session.asetdefault("cat", "cow") == "dog"
    await session.aupdate({"n": 1})
    assert await session.apop("n") == 1
    await session.asave()
    again = areference(session.session_key)
    assert await again.aget("cat") == "dog"
    assert await again.ahas_key("n") is False
    assert list(await again.aitems()) == [("cat", "dog")]
    assert await again.aexists(session.session_key) is True


async def test_adelete_and_aflush(areference: Backend) -> None:
    session = areference()
    await session.aset("foo", "bar")
    await session.asave()
    key = session.session_key
    await session.aflush()
    assert session.session_key is None
    assert await session.aexists(key) is False
    other = areference()
    await other.asave()
    await other.adelete()
    assert await other.aexists(other.session_key) is False


async def test_acycle_key(areference: Backend) -> None:
    session = areference()
    await session.aset("a", "c")
    await session.asave()
    prev_key = session.session_key
    fresh = areference(prev_key)
    await fresh.acycle_key()
    assert fresh.session_key != prev_key
    assert list(await fresh.aitems()) == [("a", "c")]
    assert await fresh.aexists(prev_key) is False
    assert await areference(fresh.session_key).aget("a") == "c"


async def test_acreate_and_must_create(areference: Backend) -> None:
    session = areference()
    await session.acreate()
    assert await session.aexists(session.session_key) is True
    await session.aset("x", 1)
    await session.asave()
    again = areference(session.session_key)
    await again.aset("x", 2)
    with pytest.raises(CreateError):
        await again.asave(must_create=True)


async def test_asave_does_not_resurrect(areference: Backend) -> None:
    s1 = areference()
    await s1.aset("test_data", "value1")
    await s1.asave(must_create=True)
    await areference(s1.session_key).adelete()
    await s1.aset("test_data", "value2")
    with pytest.raises(UpdateError):
        await s1.asave()
    assert await s1.aload() == {}


async def test_async_expiry(areference: Backend) -> None:
    session = areference()
    await session.aset_expiry(timedelta(seconds=10))
    assert 9 <= await session.aget_expiry_age() <= 10
    assert await session.aget_expire_at_browser_close() is False
    await session.aset("foo", "bar")
    await session.aset_expiry(-timedelta(seconds=10))
    await session.asave()
    later = areference(session.session_key)
    assert await later.aget("foo") is None


async def test_aclear_expired(areference: Backend) -> None:
    live = areference()
    await live.aset("foo", "bar")
    await live.asave()
    await type(live).aclear_expired()
    assert await live.aexists(live.session_key) is True


async def test_parallel_async_writers_lose_nothing(abackend: Backend) -> None:
    first = abackend()
    await first.aset("n", 0)
    await first.asave()
    key = first.session_key
    sessions = [abackend(key) for _ in range(8)]
    for session in sessions:  # every one loaded before any saves
        assert await session.aget("n") == 0
    for i, session in enumerate(sessions):
        await session.aset(f"w{i}", i)
    await asyncio.wait_for(asyncio.gather(*(s.asave() for s in sessions)), 20)
    final = abackend(key)
    items = dict(await final.aitems())
    assert {k: v for k, v in items.items() if k.startswith("w")} == {f"w{i}": i for i in range(8)}


async def test_alink_user_indexes_the_session(abackend: Backend) -> None:
    from sessio import SessionManager

    session = abackend()
    assert isinstance(session, SessionStore)
    await session.aset("_auth_user_id", "7")
    await session.acreate()
    await session.alink_user(7, ip="203.0.113.9", user_agent="Tablet/3")
    await session.asave()
    manager = SessionManager(store())
    infos = await manager.sessions_of(7)
    assert [(i.ip, i.user_agent) for i in infos] == [("203.0.113.9", "Tablet/3")]
    first = session.session_key
    await session.alink_user(7)  # the same user again: a re-authentication rotates the key
    await session.asave()
    assert session.session_key != first
    assert await session.aexists(first) is False
    assert len(await manager.sessions_of(7)) == 1
