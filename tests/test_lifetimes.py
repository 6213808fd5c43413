"""How long a session lives: the cookie never dies before the server's session, under every
policy; anonymous sessions live briefly and never push signed-in ones out of a MemoryStore."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest

from sessio import CommitAction, MemoryStore, Policy, Principal

from .conftest import FakeClock
from .drive import MODES, Drive

MINUTE = 60.0

PRESETS = {
    "web": Policy.web(),
    "api": Policy.api(),
    "ephemeral": Policy.ephemeral(),
    "production": Policy.web().production(),
    "development": Policy.web().development(),
    "rolling": Policy.web(rolling=True),
}
COMBOS = {
    f"ttl={ttl}-idle={idle}-anon={anon}-rolling={rolling}": Policy(
        ttl=None if ttl is None else timedelta(hours=ttl),
        idle_timeout=None if idle is None else timedelta(minutes=idle),
        anonymous_idle_timeout=None if anon is None else timedelta(minutes=anon),
        rolling=rolling,
    )
    for ttl, idle, anon, rolling in itertools.product(
        (None, 1), (None, 10), (None, 5), (False, True)
    )
    if ttl is not None or idle is not None
}
POLICIES = {**PRESETS, **COMBOS}


class Client:
    """Keeps the token and the cookie's expiry the way a browser does."""

    def __init__(self, drive: Drive) -> None:
        self.drive = drive
        self.token: str | None = None
        self.cookie_until: float | None = None

    async def request(self, change: Any) -> None:
        session = await self.drive.load(self.token)
        change(session)
        commit = await self.drive.commit(session)
        if commit.action is CommitAction.SET:
            self.token, self.cookie_until = commit.token, commit.cookie_expires_at
        elif commit.action is CommitAction.CLEAR:
            self.token = self.cookie_until = None

    async def check(self) -> None:
        """The server's record never outlives the cookie that names it."""
        if self.token is None:
            return
        session = await self.drive.load(self.token)
        record = await self.drive.store.load(session.key)
        if record is None:
            return
        assert self.cookie_until is not None
        assert self.cookie_until >= record.expires_at


def _set(session: Any) -> None:
    session["n"] = session.get("n", 0) + 1


def _nothing(session: Any) -> None:
    pass


def _login(session: Any) -> None:
    session.login(Principal("ada"))


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("policy", list(POLICIES.values()), ids=list(POLICIES))
async def test_the_cookie_always_outlives_the_servers_session(
    mode: str, clock: FakeClock, policy: Policy
) -> None:
    drive = Drive(mode, clock=clock, policy=policy)
    client = Client(drive)
    script = [
        (_set, 0),
        (_nothing, 2 * MINUTE),  # a touch
        (_set, 30),  # a delta: the expiry moves, the cookie must follow
        (_nothing, 3 * MINUTE),
        (_login, 10),
        (_set, 2 * MINUTE),
        (_nothing, 4 * MINUTE),
        (_set, 4 * MINUTE),
    ]
    for change, wait in script:
        clock.advance(wait)
        await client.request(change)
        await client.check()
    assert client.token is not None


@pytest.mark.parametrize("mode", MODES)
async def test_an_idle_only_policy_resends_the_cookie_on_every_write(
    mode: str, clock: FakeClock
) -> None:
    drive = Drive(mode, clock=clock, policy=Policy(ttl=None, idle_timeout=timedelta(minutes=30)))
    _, token = await drive.stored(a=1)
    clock.advance(5)
    s = await drive.load(token)
    s["b"] = 2
    commit = await drive.commit(s)
    assert commit.action is CommitAction.SET  # the idle expiry moved: so does the cookie
    assert commit.cookie_expires_at == commit.expires_at


# -- anonymous sessions --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_anonymous_sessions_expire_sooner_than_signed_in_ones(
    mode: str, clock: FakeClock
) -> None:
    policy = Policy(anonymous_idle_timeout=timedelta(minutes=5))
    drive = Drive(mode, clock=clock, policy=policy)
    _, anonymous = await drive.stored(a=1)
    signed_in = await drive.load(None)
    signed_in.login(Principal("ada"))
    member = (await drive.commit(signed_in)).token
    clock.advance(6 * MINUTE + 1)  # past 5 minutes and the refresh slack
    assert (await drive.load(anonymous)).is_new
    assert not (await drive.load(member)).is_new


@pytest.mark.parametrize("mode", MODES)
async def test_cookieless_page_views_cannot_push_signed_in_users_out(
    mode: str, clock: FakeClock
) -> None:
    """A crawler fetching a page with a form: every view is a new session that reads the CSRF
    token (so it is stored), yet the store stays bounded and the signed-in users stay."""
    store = MemoryStore(max_sessions=20, clock=clock)
    drive = Drive(mode, clock=clock, store=store)
    members = []
    for n in range(5):
        s = await drive.load(None)
        s.login(Principal(f"user-{n}"))
        members.append((await drive.commit(s)).token)
    for _ in range(500):
        view = await drive.load(None)
        view.csrf_token  # noqa: B018 - the page renders a form
        assert (await drive.commit(view)).wrote
    assert store.count_sync() == 20
    for token in members:
        assert (await drive.load(token)).is_authenticated
    clock.advance(Policy().anonymous_idle_seconds + 61)  # type: ignore[operator]
    assert store.cleanup_sync() == 15  # the anonymous ones were short-lived
