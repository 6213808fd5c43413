"""Client-side stores: what they guarantee, and the one thing they cannot do without help."""

from __future__ import annotations

import contextlib

import pytest

from sessio import MemoryStore, Principal, SyncSessionManager
from sessio.stores import EncryptedCookieStore, JWTStore, SignedCookieStore

from ..conftest import FakeClock
from .conftest import KEY_NEW

#: These tests build client-side stores without a revocation list on purpose (what such a store
#: guarantees on its own); the warning that choice raises is tested in tests/security/.
pytestmark = pytest.mark.filterwarnings("ignore::sessio.stores.client.NoRevocationWarning")

MARKER = "card-4111-1111-1111-1111"


def stores(clock: FakeClock, **options: object) -> list[object]:
    return [
        SignedCookieStore(KEY_NEW, clock=clock, **options),  # type: ignore[arg-type]
        EncryptedCookieStore(KEY_NEW, clock=clock, **options),  # type: ignore[arg-type]
        JWTStore(KEY_NEW, clock=clock, **options),  # type: ignore[arg-type]
    ]


def logged_in(manager: SyncSessionManager) -> str:
    session = manager.load(None)
    session.login(Principal("alice"))
    session["payment"] = MARKER
    token = manager.commit(session).token
    assert token is not None
    return token


def logged_out(manager: SyncSessionManager, token: str) -> str | None:
    session = manager.load(token)
    assert session.is_authenticated
    session.logout()
    return manager.commit(session).token


@pytest.mark.parametrize("index", [0, 1, 2], ids=["signed", "encrypted", "jwt"])
def test_without_a_revocation_list_a_copied_token_outlives_logout(
    clock: FakeClock, index: int
) -> None:
    """ASVS 5.0 7.4.1 (its note on self-contained tokens): the honest limitation. A client-side
    store keeps no server state, so a token copied before logout stays valid until it expires,
    unless the app gives the store a revocation list."""
    store = stores(clock)[index]
    manager = SyncSessionManager(store, clock=clock)  # type: ignore[arg-type]
    token = logged_in(manager)
    logged_out(manager, token)
    assert manager.load(token).is_authenticated  # documented in docs/security.md
    clock.advance(7 * 86400 + 1)
    assert not manager.load(token).is_authenticated  # ...but not past its absolute expiry


@pytest.mark.parametrize("index", [0, 1, 2], ids=["signed", "encrypted", "jwt"])
def test_with_a_revocation_list_logout_kills_the_copied_token(clock: FakeClock, index: int) -> None:
    """ASVS 5.0 7.4.1: "a list of terminated tokens": with ``revocation_store`` the token from
    before logout gives a fresh session, as with a server-side store."""
    revocations = MemoryStore(max_sessions=None, clock=clock)
    store = stores(clock, revocation_store=revocations)[index]
    manager = SyncSessionManager(store, clock=clock)  # type: ignore[arg-type]
    token = logged_in(manager)
    after = logged_out(manager, token)
    session = manager.load(token)
    assert session.is_new
    assert not session.is_authenticated
    assert after is not None
    assert not manager.load(after).is_authenticated  # the new, anonymous token


def test_an_encrypted_cookie_shows_no_value_a_signed_one_does(clock: FakeClock) -> None:
    """Cheat sheet "Session ID Content (or Value)": data in a signed cookie (or JWT) is readable
    by the client; only EncryptedCookieStore hides it. Forged tokens are refused by all."""
    signed, encrypted, jwt = stores(clock)
    for store in (signed, encrypted, jwt):
        manager = SyncSessionManager(store, clock=clock)  # type: ignore[arg-type]
        token = logged_in(manager)
        flipped = token[:10] + ("A" if token[10] != "A" else "B") + token[11:]
        assert not manager.load(flipped).is_authenticated
        readable = _readable(token)
        if store is encrypted:
            assert MARKER not in readable
        else:
            assert MARKER in readable


def _readable(token: str) -> str:
    """Everything a client can read out of ``token`` (base64 segments decoded, zlib undone)."""
    import base64
    import zlib

    out = [token]
    for part in token.replace(".", " ").replace("~", " ").split():
        for candidate in (part, part[1:]):  # a one-character format marker may lead
            try:
                raw = base64.urlsafe_b64decode(candidate + "=" * (-len(candidate) % 4))
            except ValueError:
                continue
            out.append(raw.decode("latin-1"))
            with contextlib.suppress(zlib.error):
                out.append(zlib.decompress(raw).decode("latin-1"))
    return "\n".join(out)


def test_a_store_without_a_revocation_list_warns_when_built(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """ASVS 5.0 7.4.1 (terminated sessions stay terminated): building a client-side store
    without a ``revocation_store`` warns and logs what a copied token can then do; with one,
    or when construction fails, nothing is said."""
    import warnings

    from sessio import ConfigurationError
    from sessio.stores.client import NoRevocationWarning

    for build in (SignedCookieStore, EncryptedCookieStore, JWTStore):
        caplog.clear()
        with pytest.warns(NoRevocationWarning, match="copied token stays valid until it expires"):
            build(KEY_NEW)
        assert any("revocation_store" in r.getMessage() for r in caplog.records), build
        assert issubclass(NoRevocationWarning, UserWarning)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            build(KEY_NEW, revocation_store=MemoryStore())
            with pytest.raises(ConfigurationError):
                build("short")


def test_a_jwt_issued_in_the_future_or_typed_for_another_use_is_refused(clock: FakeClock) -> None:
    """ASVS 5.0 9.2.1 (time claims checked), 9.2.2 (the token's type is what the service
    expects): a JWT validly signed with the store's key but issued beyond the clock-skew
    leeway, or typed other than ``JWT``, gives a fresh session."""
    import base64
    import hashlib
    import hmac
    import json

    from sessio.stores.jwt import IAT_LEEWAY

    store = JWTStore(KEY_NEW, clock=clock, revocation_store=MemoryStore())
    manager = SyncSessionManager(store, clock=clock)
    token = logged_in(manager)
    head, body, _ = token.split(".")

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    def unb64(text: str) -> dict[str, object]:
        return dict(json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))))

    def forge(header: dict[str, object], claims: dict[str, object]) -> str:
        signing = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
        mac = hmac.new(KEY_NEW.encode(), signing.encode(), hashlib.sha256).digest()
        return signing + "." + b64(mac)

    header, claims = unb64(head), unb64(body)
    assert manager.load(forge(header, claims)).is_authenticated  # the control: a faithful copy
    future = {**claims, "iat": int(clock.now) + IAT_LEEWAY + 60}
    for forged in (forge(header, future), forge({**header, "typ": "at+jwt"}, claims)):
        session = manager.load(forged)
        assert session.is_new
        assert not session.is_authenticated
