"""manager.status() on client-side stores: the token carries its expiry and the list its revocation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from sessio import (
    Policy,
    Principal,
    SessionExpired,
    SessionInvalid,
    SessionManager,
    SessionState,
    SyncSessionManager,
    TokenInvalid,
)
from sessio.ids import short_hash
from sessio.stores import ClientSideStore, JWTStore, MemoryStore, SignedCookieStore

from ..conftest import FakeClock
from ..drive import CountingStore

KEY = "status-key-" + "k" * 32
OTHER_KEY = "other-key-" + "x" * 32
POLICY = Policy(ttl=timedelta(hours=8), idle_timeout=timedelta(minutes=30))

FACTORIES: dict[str, Callable[..., ClientSideStore]] = {
    "signed": SignedCookieStore,
    "jwt": JWTStore,
}


class Driver:
    def __init__(self, kind: str, mode: str, clock: FakeClock, **options: Any) -> None:
        self.revocations = CountingStore(clock=clock)
        store = FACTORIES[kind](KEY, clock=clock, revocation_store=self.revocations, **options)
        cls: Any = SyncSessionManager if mode == "sync" else SessionManager
        self.manager = cls(store, POLICY, clock=clock)
        self.mode = mode

    async def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.manager, name)(*args, **kwargs)
        return result if self.mode == "sync" else await result

    async def issue(self, principal: Principal | None = None) -> tuple[Any, str]:
        session = await self("load", None)
        session["cart"] = ["apple"]
        if principal is not None:
            session.login(principal)
        commit = await self("commit", session)
        assert commit.token is not None
        return session, str(commit.token)


@pytest.fixture(params=[(k, m) for k in sorted(FACTORIES) for m in ("async", "sync")], ids=str)
def driver(request: pytest.FixtureRequest, clock: FakeClock) -> Driver:
    kind, mode = request.param
    return Driver(kind, mode, clock)


async def test_live_expired_and_nothing_written(driver: Driver, clock: FakeClock) -> None:
    session, token = await driver.issue(Principal("ada"))
    driver.revocations.reset()
    status = await driver("status", token)
    assert status.state is SessionState.LIVE
    assert status.authenticated
    assert status.principal is not None
    assert status.principal.id == "ada"
    assert status.remaining == pytest.approx(31 * 60)
    assert session.verify_csrf(status.csrf_token)
    assert status.short_key == short_hash(session.key)
    clock.advance(32 * 60)  # the token carries its expiry: it tells EXPIRED from UNKNOWN
    expired = await driver("status", token)
    assert expired.state is SessionState.EXPIRED
    assert expired.remaining == 0.0
    with pytest.raises(SessionExpired):
        await driver("status", token, strict=True)
    # The revocation list is read (exists), never written.
    assert driver.revocations.writes == []
    assert driver.revocations.deletes == []


async def test_forged_tampered_and_foreign_tokens_are_invalid(
    driver: Driver, clock: FakeClock
) -> None:
    _, token = await driver.issue()
    foreign = Driver("signed", driver.mode, clock)
    foreign.manager.store = type(driver.manager.store)(
        OTHER_KEY, clock=clock, revocation_store=MemoryStore()
    )
    _, other = await foreign.issue()
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    for bad in (flipped, token[: len(token) // 2], other, "x" * 5000, "a.b.c", "\x00" * 40):
        assert (await driver("status", bad)).state is SessionState.INVALID, bad[:20]
    with pytest.raises(TokenInvalid):
        await driver("status", flipped, strict=True)
    assert (await driver("status", None)).state is SessionState.UNKNOWN
    assert driver.revocations.writes == []
    assert driver.revocations.deletes == []


async def test_a_revoked_token_reads_revoked(driver: Driver) -> None:
    session, token = await driver.issue(Principal("ada"))
    assert await driver("revoke", session.key)
    revoked = await driver("status", token)
    assert revoked.state is SessionState.REVOKED
    assert not revoked.authenticated
    assert revoked.csrf_token is None
    assert revoked.principal_key is not None
    with pytest.raises(SessionInvalid) as raised:
        await driver("status", token, strict=True)
    assert raised.value.evidence["reason"] == "revoked"


@pytest.mark.filterwarnings("ignore::sessio.stores.client.NoRevocationWarning")
async def test_without_a_revocation_list_status_reads_nothing(clock: FakeClock) -> None:
    store = SignedCookieStore(KEY, clock=clock, revocation_store=None)
    manager = SyncSessionManager(store, POLICY, clock=clock)
    session = manager.load(None)
    session["x"] = 1
    commit = manager.commit(session)
    assert commit.token is not None
    assert manager.status(commit.token).is_live
    assert manager.status(commit.token + "x").state is SessionState.INVALID


def test_revocation_store_is_server_side() -> None:
    # The list is a real store: what it holds after a revoke is what status reads.
    revocations = MemoryStore()
    store = JWTStore(KEY, revocation_store=revocations)
    manager = SyncSessionManager(store, POLICY)
    session = manager.load(None)
    session["x"] = 1
    token = manager.commit(session).token
    assert token is not None
    manager.revoke(session.key)
    assert revocations.count_sync() == 1
    assert manager.status(token).state is SessionState.REVOKED
