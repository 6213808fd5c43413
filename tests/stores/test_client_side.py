"""The client-side store contract: every sealing store, through both managers, attacked byte by byte.

A client-side store is done when it passes this file: its tokens round-trip whole sessions,
any change to a token gives a fresh session (never an exception), keys rotate without logging
anyone out, refresh and revocation follow the policy, and nothing is ever truncated.
"""

from __future__ import annotations

import string
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessio import (
    ConcurrencyPolicy,
    ConfigurationError,
    EventKind,
    Policy,
    Principal,
    SessionEvent,
    SessionManager,
    SessionTooLarge,
    SyncSessionManager,
)
from sessio.manager import CommitAction
from sessio.stores import (
    ClientSideStore,
    EncryptedCookieStore,
    JWTStore,
    MemoryStore,
    SignedCookieStore,
    Store,
)

from ..conftest import FakeClock

OLD_KEY = "old-key-" + "o" * 32
NEW_KEY = "new-key-" + "n" * 32
OTHER_KEY = "other-key-" + "x" * 32

Factory = Callable[..., ClientSideStore]

FACTORIES: dict[str, Factory] = {
    "signed": SignedCookieStore,
    "encrypted": EncryptedCookieStore,
    "jwt": JWTStore,
}


@pytest.fixture(params=sorted(FACTORIES))
def make(request: pytest.FixtureRequest, clock: FakeClock) -> Callable[..., ClientSideStore]:
    """Builds the store under test: ``make(keys=..., **options)`` on the shared fake clock."""
    factory = FACTORIES[request.param]

    def build(keys: Any = NEW_KEY, **options: Any) -> ClientSideStore:
        options.setdefault("clock", clock)
        if factory is JWTStore:
            # Sessio's own default; spelled out so the refresh tests below read plainly.
            options.setdefault("refresh_threshold", timedelta(minutes=30))
        return factory(keys, **options)

    return build


class Driver:
    """One manager, async or sync, behind one awaitable interface, recording its events."""

    def __init__(
        self,
        store: ClientSideStore,
        mode: str,
        clock: FakeClock,
        policy: Policy | None = None,
    ) -> None:
        self.mode = mode
        self.events: list[SessionEvent] = []
        cls = SyncSessionManager if mode == "sync" else SessionManager
        self.manager: Any = cls(store, policy, clock=clock)
        self.manager.events.subscribe(self.events.append)

    async def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.manager, name)(*args, **kwargs)
        return result if self.mode == "sync" else await result

    def kinds(self) -> list[EventKind]:
        return [e.kind for e in self.events]

    async def issue(self, **values: Any) -> str:
        """A token for a new session holding ``values``."""
        session = await self("load", None)
        session.update(values)
        commit = await self("commit", session)
        assert commit.action is CommitAction.SET
        assert commit.token is not None
        return str(commit.token)

    async def assert_fresh(self, token: str, kind: EventKind = EventKind.INVALID) -> None:
        """Loading ``token`` gives a new, empty session and emits ``kind``."""
        before = len(self.events)
        session = await self("load", token)
        assert session.is_new
        assert dict(session) == {}
        assert kind in [e.kind for e in self.events[before:]]


@pytest.fixture(params=["async", "sync"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def drive(make: Callable[..., ClientSideStore], mode: str, clock: FakeClock) -> Driver:
    return Driver(make(), mode, clock)


# -- round trips -------------------------------------------------------------------------------


async def test_round_trip_keeps_every_value_type(drive: Driver) -> None:
    import datetime as dt
    import uuid
    from decimal import Decimal

    values = {
        "cart": ["apple", {"qty": 2}],
        "at": dt.datetime(2026, 1, 2, 3, 4, 5),
        "id": uuid.UUID(int=7),
        "price": Decimal("9.99"),
        "pair": (1, "x"),
        "tags": {"a"},
        "blob": b"\x00\xff",
        "text": "héllo 🍪 \u2028",
        "lone": "\ud800",
        "big": 2**70,
        "none": None,
    }
    token = await drive.issue(**values)
    session = await drive("load", token)
    assert not session.is_new
    assert dict(session) == values
    assert drive.kinds() == [EventKind.CREATED, EventKind.SAVED, EventKind.LOADED]


async def test_flash_csrf_and_principal_travel_in_the_token(drive: Driver) -> None:
    session = await drive("load", None)
    session.login(Principal("42", roles={"admin"}, attributes={"name": "Ada"}))
    session.flash("success", "Welcome")
    csrf = session.csrf_token
    token = (await drive("commit", session)).token
    again = await drive("load", token)
    assert again.principal == Principal("42", roles={"admin"}, attributes={"name": "Ada"})
    assert again.verify_csrf(csrf)
    assert again.pop_flash("success") == ["Welcome"]


async def test_a_change_issues_a_new_token_and_the_old_one_keeps_the_old_state(
    drive: Driver,
) -> None:
    first = await drive.issue(n=1)
    session = await drive("load", first)
    session["n"] = 2
    del session["n"]
    session["m"] = 3
    commit = await drive("commit", session)
    assert commit.action is CommitAction.SET
    assert commit.token != first
    assert dict(await drive("load", commit.token)) == {"m": 3}
    # No revocation list: the old token is still a valid (older) session. Documented replay.
    assert dict(await drive("load", first)) == {"n": 1}


async def test_an_unchanged_request_sends_nothing(drive: Driver, clock: FakeClock) -> None:
    token = await drive.issue(n=1)
    clock.advance(5)
    session = await drive("load", token)
    assert session["n"] == 1
    commit = await drive("commit", session)
    assert commit.action is CommitAction.NONE
    assert commit.token is None


async def test_an_empty_new_session_sends_nothing(drive: Driver) -> None:
    session = await drive("load", None)
    commit = await drive("commit", session)
    assert commit.action is CommitAction.NONE


async def test_destroy_clears_the_token(drive: Driver) -> None:
    token = await drive.issue(n=1)
    session = await drive("load", token)
    session.destroy()
    commit = await drive("commit", session)
    assert commit.action is CommitAction.CLEAR
    assert EventKind.DESTROYED in drive.kinds()


async def test_login_rotates_the_session_id_inside_the_token(drive: Driver) -> None:
    token = await drive.issue(n=1)
    session = await drive("load", token)
    before = session.id
    session.login(Principal("7"))
    commit = await drive("commit", session)
    after = await drive("load", commit.token)
    assert after.id != before
    assert after.principal == Principal("7")
    assert after["n"] == 1
    assert EventKind.ROTATED in drive.kinds()


# -- tokens that are not ours ----------------------------------------------------------------------


ALPHABET = string.ascii_letters + string.digits + "-_"


def _variants(char: str) -> list[str]:
    # The next letter changes only the lowest bits (for base64's last character, only the
    # padding bits: caught by the canonical-encoding check); the others change a whole char.
    nxt = ALPHABET[(ALPHABET.index(char) + 1) % len(ALPHABET)] if char in ALPHABET else "A"
    return [nxt, "." if char != "." else "A", "~", "%"]


async def test_tampering_with_any_byte_gives_a_fresh_session(drive: Driver) -> None:
    token = await drive.issue(cart=["apple"], user="ada")
    tried = 0
    for i, char in enumerate(token):
        for replacement in _variants(char):
            forged = token[:i] + replacement + token[i + 1 :]
            await drive.assert_fresh(forged)
            tried += 1
    assert tried == 4 * len(token)
    # The original still works: the store was not poisoned by the attempts.
    assert (await drive("load", token))["user"] == "ada"


async def test_truncated_and_extended_tokens_give_a_fresh_session(drive: Driver) -> None:
    token = await drive.issue(n=1)
    for cut in range(len(token)):
        await drive.assert_fresh(token[:cut] if cut else "x")
    for tail in ("A", "AA", ".", ".AAAA", "=", "==", token):
        await drive.assert_fresh(token + tail)


@pytest.mark.parametrize(
    "garbage",
    [
        " ",
        "not a token",
        "a.b",
        "a.b.c",
        "...",
        ".",
        "é",
        "\x00",
        "A" * 10_000,
        "e30.e30.",
        "eyJhbGciOiJub25lIn0.e30.",
        '{"i": "x"}',
    ],
)
async def test_garbage_gives_a_fresh_session(drive: Driver, garbage: str) -> None:
    await drive.assert_fresh(garbage)


async def test_a_token_sealed_under_another_key_is_rejected(
    make: Callable[..., ClientSideStore], mode: str, clock: FakeClock
) -> None:
    foreign = await Driver(make(OTHER_KEY), mode, clock).issue(admin=True)
    await Driver(make(NEW_KEY), mode, clock).assert_fresh(foreign)


async def test_an_expired_token_gives_a_fresh_session(
    make: Callable[..., ClientSideStore], mode: str, clock: FakeClock
) -> None:
    drive = Driver(make(), mode, clock, Policy(ttl=timedelta(hours=1), idle_timeout=None))
    token = await drive.issue(n=1)
    clock.advance(3600 + 1)
    await drive.assert_fresh(token, EventKind.EXPIRED)


async def test_idle_timeout_is_enforced_from_the_token(drive: Driver, clock: FakeClock) -> None:
    token = await drive.issue(n=1)  # Policy.web(): 30 minutes idle
    clock.advance(31 * 60)
    await drive.assert_fresh(token, EventKind.EXPIRED)


# -- keys ---------------------------------------------------------------------------------------


async def test_key_rotation_logs_nobody_out(
    make: Callable[..., ClientSideStore], mode: str, clock: FakeClock
) -> None:
    before = await Driver(make(OLD_KEY), mode, clock).issue(n=1)
    rotating = Driver(make([OLD_KEY, NEW_KEY]), mode, clock)
    session = await rotating("load", before)
    assert not session.is_new  # issued under the old key, still valid
    session["n"] = 2
    after = (await rotating("commit", session)).token
    # The new token is sealed under the newest key: it survives dropping the old one.
    new_only = Driver(make(NEW_KEY), mode, clock)
    assert (await new_only("load", after))["n"] == 2
    await new_only.assert_fresh(before)


# -- refresh -------------------------------------------------------------------------------------


REFRESHING = Policy(ttl=timedelta(days=7), idle_timeout=timedelta(hours=1))


async def test_refresh_reissues_an_unchanged_session_near_its_idle_expiry(
    make: Callable[..., ClientSideStore], mode: str, clock: FakeClock
) -> None:
    drive = Driver(make(refresh_threshold=timedelta(minutes=30)), mode, clock, REFRESHING)
    token = await drive.issue(n=1)
    clock.advance(10 * 60)  # 50 minutes left: above the threshold
    commit = await drive("commit", await drive("load", token))
    assert commit.action is CommitAction.NONE
    clock.advance(30 * 60)  # 20 minutes left: refresh
    session = await drive("load", token)
    old_end = session.expires_at
    commit = await drive("commit", session)
    assert commit.action is CommitAction.SET
    assert commit.token != token
    assert commit.expires_at == pytest.approx(clock.now + 3600)
    assert drive.kinds()[-1] is EventKind.TOUCHED
    clock.advance(45 * 60)  # past the old token's end, within the new one's
    assert old_end.timestamp() < clock.now
    refreshed = await drive("load", commit.token)
    assert refreshed["n"] == 1
    await drive.assert_fresh(token, EventKind.EXPIRED)


async def test_without_threshold_refresh_follows_the_policy_interval(
    make: Callable[..., ClientSideStore], mode: str, clock: FakeClock
) -> None:
    drive = Driver(make(refresh_threshold=None), mode, clock, REFRESHING)
    token = await drive.issue(n=1)
    clock.advance(30)  # within refresh_interval (60 s)
    assert (await drive("commit", await drive("load", token))).action is CommitAction.NONE
    clock.advance(60)
    assert (await drive("commit", await drive("load", token))).action is CommitAction.SET


async def test_refresh_never_extends_the_absolute_ttl(
    make: Callable[..., ClientSideStore], mode: str, clock: FakeClock
) -> None:
    policy = Policy(ttl=timedelta(hours=2), idle_timeout=timedelta(hours=1))
    drive = Driver(make(refresh_threshold=None), mode, clock, policy)
    token = await drive.issue(n=1)
    for _ in range(2):  # a request every 40 minutes keeps it alive while the ttl lasts
        clock.advance(40 * 60)
        session = await drive("load", token)
        assert session["n"] == 1
        commit = await drive("commit", session)
        assert commit.action is CommitAction.SET
        token = commit.token
    assert commit.expires_at == pytest.approx(clock.now + 40 * 60)  # capped by the ttl
    clock.advance(40 * 60)  # 120 minutes after creation
    await drive.assert_fresh(token, EventKind.EXPIRED)


# -- revocation ------------------------------------------------------------------------------------


@pytest.fixture
def revocations(clock: FakeClock) -> Store:
    return MemoryStore(max_sessions=None, clock=clock)


@pytest.fixture
def revoking(
    make: Callable[..., ClientSideStore], mode: str, clock: FakeClock, revocations: Store
) -> Driver:
    return Driver(make(revocation_store=revocations), mode, clock)


async def test_logout_revokes_the_old_token(revoking: Driver) -> None:
    token = await revoking.issue(n=1)
    session = await revoking("load", token)
    session.login(Principal("9"))
    logged_in = (await revoking("commit", session)).token
    await revoking.assert_fresh(token)  # rotated away at login
    session = await revoking("load", logged_in)
    session.logout()
    logged_out = (await revoking("commit", session)).token
    await revoking.assert_fresh(logged_in)  # the stolen copy is dead too
    assert not (await revoking("load", logged_out)).is_authenticated
    reasons = [e.detail.get("reason") for e in revoking.events if e.kind is EventKind.INVALID]
    assert reasons == ["revoked", "revoked"]


async def test_destroy_revokes_the_token(revoking: Driver) -> None:
    token = await revoking.issue(n=1)
    session = await revoking("load", token)
    session.destroy()
    assert (await revoking("commit", session)).action is CommitAction.CLEAR
    await revoking.assert_fresh(token)


async def test_manager_revoke_ends_a_session_by_key(revoking: Driver) -> None:
    token = await revoking.issue(n=1)
    key = (await revoking("load", token)).key
    assert await revoking("revoke", key) is True
    await revoking.assert_fresh(token)
    assert EventKind.REVOKED in revoking.kinds()


async def test_revocations_last_only_as_long_as_the_tokens(
    revoking: Driver, revocations: Store, clock: FakeClock
) -> None:
    token = await revoking.issue(n=1)
    await revoking("revoke", (await revoking("load", token)).key)
    assert revocations.count_sync() == 1
    clock.advance(31 * 60)  # Policy.web(): no token lives past 30 idle minutes + the 60 s slack
    assert await revoking("cleanup") == 1
    assert revocations.count_sync() == 0
    await revoking.assert_fresh(token, EventKind.EXPIRED)


async def test_without_a_revocation_list_revoke_is_a_configuration_error(drive: Driver) -> None:
    token = await drive.issue(n=1)
    key = (await drive("load", token)).key
    with pytest.raises(ConfigurationError, match="revocation_store"):
        await drive("revoke", key)
    assert await drive("cleanup") == 0


# -- what needs server state ----------------------------------------------------------------------


async def test_listing_and_revoke_all_need_server_state(drive: Driver) -> None:
    with pytest.raises(ConfigurationError, match="server-side state"):
        await drive("sessions_of", "ada")
    with pytest.raises(ConfigurationError, match="server-side state"):
        await drive("revoke_all", "ada")
    with pytest.raises(ConfigurationError, match="principal"):
        await drive("revoke", "k" * 64, principal="ada")


def test_a_concurrency_limit_is_refused_at_construction(
    make: Callable[..., ClientSideStore],
) -> None:
    policy = Policy(concurrency=ConcurrencyPolicy(max_sessions_per_principal=2))
    with pytest.raises(ConfigurationError, match="server-side state"):
        SessionManager(make(), policy)


def test_the_manager_says_tokens_are_sealed(make: Callable[..., ClientSideStore]) -> None:
    assert SessionManager(make()).seals_tokens
    assert not SessionManager(MemoryStore()).seals_tokens


# -- size ----------------------------------------------------------------------------------------


async def test_an_oversized_session_is_refused_naming_its_size(drive: Driver) -> None:
    import secrets

    session = await drive("load", None)
    session["blob"] = secrets.token_hex(3000)  # incompressible
    with pytest.raises(SessionTooLarge) as caught:
        await drive("commit", session)
    assert caught.value.code == "SESSION_TOO_LARGE"
    assert caught.value.evidence["size"] > 4096
    assert caught.value.evidence["limit"] == 4096
    assert str(caught.value.evidence["size"]) in str(caught.value)


async def test_a_session_just_under_the_limit_is_issued(drive: Driver) -> None:
    import secrets

    session = await drive("load", None)
    session["blob"] = secrets.token_hex(1200)
    token = (await drive("commit", session)).token
    assert len(token) <= 4096
    assert (await drive("load", token))["blob"] == session["blob"]


def test_max_size_is_validated(make: Callable[..., ClientSideStore]) -> None:
    with pytest.raises(ConfigurationError):
        make(max_size=10)
    with pytest.raises(ConfigurationError):
        make(refresh_threshold=timedelta(0))
    with pytest.raises(ConfigurationError):
        make(revocation_store="redis://")


def test_reprs_hold_no_secret(make: Callable[..., ClientSideStore]) -> None:
    text = repr(make(revocation_store=MemoryStore()))
    assert "n" * 32 not in text
    assert "MemoryStore" in text


# -- open() never raises --------------------------------------------------------------------------


TOKENISH = st.text(alphabet=ALPHABET + ".", max_size=600)


@pytest.mark.parametrize("name", sorted(FACTORIES))
@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=600), TOKENISH))
def test_open_never_raises_on_arbitrary_text(name: str, text: str) -> None:
    store = FACTORIES[name](NEW_KEY)
    assert store.open(text) is None


@pytest.mark.parametrize("name", sorted(FACTORIES))
@settings(max_examples=200, deadline=None)
@given(
    value=st.text(max_size=50),
    where=st.integers(min_value=0),
    span=st.integers(0, 8),
    insert=st.text(alphabet=ALPHABET + ".", max_size=8),
)
def test_open_never_raises_on_mutated_tokens(
    name: str, value: str, where: int, span: int, insert: str
) -> None:
    store = FACTORIES[name](NEW_KEY)
    manager = SyncSessionManager(store)
    session = manager.load(None)
    session["k"] = value
    token = manager.commit(session).token
    assert token is not None
    assert store.open(token) is not None
    start = where % len(token)
    forged = token[:start] + insert + token[start + span :]
    if forged != token:
        assert store.open(forged) is None
