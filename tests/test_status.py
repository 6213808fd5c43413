"""manager.status(): every state on every server-side store, read with one load and no write."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sessio import (
    Policy,
    Principal,
    SessionExpired,
    SessionNotFound,
    SessionState,
    SessionStatus,
    TokenInvalid,
)
from sessio.ids import new_session_id, short_hash, store_key
from sessio.stores.base import Create

from .conftest import FakeClock
from .drive import MODES, CountingStore, Drive
from .stores.backends import BACKENDS, Backend

#: The server-side stores this suite proves status() on: local and network, real servers.
STORES = [
    pytest.param(b, id=b.name, marks=b.marks)
    for b in BACKENDS
    if b.name in ("memory", "sqlite", "redis", "postgres")
]

POLICY = Policy(
    ttl=timedelta(hours=8),
    idle_timeout=timedelta(minutes=30),
    refresh_interval=timedelta(minutes=1),
    anonymous_idle_timeout=None,
)

#: Hostile tokens: none of them an ID sessio issues.
HOSTILE = [
    "x",
    "A" * 42,
    "A" * 44,
    "A" * 42 + "=",
    "A" * 42 + "\x00",
    "é" * 43,
    "A" * 10_000,
    "../../etc/passwd",
    "' OR 1=1 --" + "A" * 32,
    "*",
]


@pytest.fixture(params=STORES)
async def drive(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[tuple[Drive, Backend]]:
    backend: Backend = request.param
    async with backend.open(tmp_path) as inner:
        yield (
            Drive("async", clock=clock, policy=POLICY, store=CountingStore(inner, clock=clock)),
            backend,
        )


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _twin(drive: Drive, mode: str) -> Drive:
    return Drive(mode, clock=drive.clock, policy=POLICY, store=drive.store)


async def _login(drive: Drive, user: str = "ada") -> tuple[Any, str]:
    session = await drive.load(None)
    session["cart"] = ["apple"]
    session.login(Principal(user, roles={"admin"}))
    commit = await drive.commit(session)
    assert commit.token is not None
    return session, commit.token


async def test_every_state_and_no_write(
    drive: tuple[Drive, Backend], mode: str, clock: FakeClock
) -> None:
    writer, _ = drive
    session, token = await _login(writer)
    reader = _twin(writer, mode)
    store = writer.counting
    store.reset()

    live: SessionStatus = await reader("status", token)
    assert live.state is SessionState.LIVE
    assert live.is_live
    assert live.authenticated
    assert live.principal is not None
    assert live.principal.id == "ada"
    assert live.principal_key == live.principal.key
    assert live.expires_at == pytest.approx(clock() + 31 * 60)
    assert live.remaining == pytest.approx(31 * 60)
    assert live.idle_remaining == pytest.approx(31 * 60)
    assert session.verify_csrf(live.csrf_token)
    assert live.short_key == short_hash(store_key(token))
    assert token not in repr(live)
    assert live.csrf_token not in repr(live)

    clock.advance(20 * 60)  # a status is no request: it pushes nothing
    later = await reader("status", token)
    assert later.state is SessionState.LIVE
    assert later.remaining == pytest.approx(11 * 60)
    assert later.idle_remaining == pytest.approx(11 * 60)

    unknown = await reader("status", new_session_id())
    assert unknown.state is SessionState.UNKNOWN
    assert not unknown.authenticated
    assert (await reader("status", None)).state is SessionState.UNKNOWN
    assert (await reader("status", "")).state is SessionState.UNKNOWN
    for hostile in HOSTILE:
        assert (await reader("status", hostile)).state is SessionState.INVALID, hostile

    clock.advance(12 * 60)  # past the idle timeout, before the store's own clock sweeps it
    expired = await reader("status", token)
    assert expired.state is SessionState.EXPIRED
    assert not expired.authenticated
    assert expired.remaining == 0.0
    assert expired.idle_remaining == 0.0
    assert expired.principal_key == live.principal_key
    assert expired.csrf_token is None

    # Nothing was created, touched, swept or recorded: one load per well-formed ID, no write.
    assert store.writes == []
    assert store.deletes == []
    assert store.loads == 4
    assert (await reader("status", token)).state is SessionState.EXPIRED  # still not swept

    corrupt_id = new_session_id()
    # Garbage through the store's own API (every store holds text it cannot judge).
    garbage = Create({"s:meta": "{not json", "d:x": "]"}, clock() + 60)
    assert await store.inner.save(store_key(corrupt_id), garbage)
    assert (await reader("status", corrupt_id)).state is SessionState.INVALID
    assert store.writes == []
    assert store.deletes == []


async def test_anonymous_and_destroyed(drive: tuple[Drive, Backend], mode: str) -> None:
    writer, _ = drive
    reader = _twin(writer, mode)
    session, token = await writer.stored(cart=["pear"])
    status = await reader("status", token)
    assert status.state is SessionState.LIVE
    assert not status.authenticated
    assert status.principal is None
    assert status.principal_key is None
    await writer("destroy", session)
    assert (await reader("status", token)).state is SessionState.UNKNOWN


async def test_strict_mode_raises_the_typed_errors(
    drive: tuple[Drive, Backend], mode: str, clock: FakeClock
) -> None:
    writer, _ = drive
    reader = _twin(writer, mode)
    _, token = await _login(writer)
    assert (await reader("status", token, strict=True)).is_live
    with pytest.raises(TokenInvalid) as invalid:
        await reader("status", "not-an-id", strict=True)
    assert invalid.value.code == "TOKEN_INVALID"
    with pytest.raises(SessionNotFound) as missing:
        await reader("status", new_session_id(), strict=True)
    assert missing.value.evidence["session"] is not None
    clock.advance(32 * 60)
    with pytest.raises(SessionExpired) as expired:
        await reader("status", token, strict=True)
    assert expired.value.evidence["session"] == short_hash(store_key(token))
    assert token not in str(expired.value)
    assert writer.counting.writes[-1:]
    assert all(key != store_key(token) for key in writer.counting.deletes)


async def test_two_parallel_status_calls_during_a_login(drive: tuple[Drive, Backend]) -> None:
    writer, _ = drive
    _session, token = await writer.stored(cart=["fig"])
    visitor = await writer.load(token)
    visitor.login(Principal("ada"))
    before = len(writer.counting.writes)
    first, commit, second = await asyncio.gather(
        writer("status", token), writer.commit(visitor), writer("status", token)
    )
    assert commit.token is not None
    assert commit.token != token
    # Each read sees the session before the rotation (anonymous, live) or after it (gone).
    for status in (first, second):
        assert (status.state, status.authenticated) in {
            (SessionState.LIVE, False),
            (SessionState.UNKNOWN, False),
        }
    assert (await writer("status", token)).state is SessionState.UNKNOWN
    after = await writer("status", commit.token)
    assert after.authenticated
    assert after.principal is not None
    assert after.principal.id == "ada"
    assert len(writer.counting.writes) == before + 1  # the login's own Rotate, nothing more


async def test_a_stalled_store_stalls_status_only(clock: FakeClock) -> None:
    class Stalling(CountingStore):
        async def load(self, key: str) -> Any:
            await asyncio.sleep(0.05)
            return await super().load(key)

    drive = Drive("async", clock=clock, policy=POLICY, store=Stalling(clock=clock))
    _, token = await drive.stored()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(drive("status", token), 0.001)
    assert (await asyncio.wait_for(drive("status", token), 5)).is_live
    assert drive.counting.writes[1:] == []
    assert drive.counting.deletes == []


def _status_in_worker(path: str, token: str) -> tuple[str, int]:
    """In another process: the state of ``token`` in the SQLite file, and the file's records."""
    from sessio import SQLiteStore, SyncSessionManager

    store = SQLiteStore(path)
    try:
        status = SyncSessionManager(store, POLICY).status(token)
        return status.state.value, store.count_sync()
    finally:
        store.close_sync()


def test_two_worker_processes_agree_and_write_nothing(tmp_path: Path) -> None:
    import concurrent.futures
    import multiprocessing

    from sessio import SQLiteStore, SyncSessionManager

    path = str(tmp_path / "sessions.db")
    store = SQLiteStore(path)
    manager = SyncSessionManager(store, POLICY)
    session = manager.load(None)
    session.login(Principal("ada"))
    token = manager.commit(session).token
    assert token is not None
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=context) as pool:
        runs = [pool.submit(_status_in_worker, path, t) for t in (token, token, new_session_id())]
        results = [run.result(timeout=60) for run in runs]
    assert results == [("live", 1), ("live", 1), ("unknown", 1)]
    assert manager.status(token).is_live
    store.close_sync()
