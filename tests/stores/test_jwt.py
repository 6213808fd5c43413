"""JWTStore specifics: standard claims, algorithm pinning, issuer and audience, key IDs."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import jwt
import pytest

from sessio import ConfigurationError, Principal, SyncSessionManager, TokenInvalid
from sessio.ids import store_key
from sessio.stores import JWTStore

from ..conftest import FakeClock

#: These tests build client-side stores without a revocation list on purpose (what such a store
#: guarantees on its own); the warning that choice raises is tested in tests/security/.
pytestmark = pytest.mark.filterwarnings("ignore::sessio.stores.client.NoRevocationWarning")

KEY = "jwt-secret-" + "s" * 32
LONG_KEY = "jwt-secret-" + "l" * 64


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    parts = [json.dumps(header).encode(), json.dumps(claims).encode(), signature]
    return ".".join(_b64(p) for p in parts)


@pytest.fixture
def store(clock: FakeClock) -> JWTStore:
    return JWTStore(KEY, issuer="https://auth.example", audience="shop", clock=clock)


def _token(store: JWTStore, **values: Any) -> tuple[str, SyncSessionManager]:
    manager = SyncSessionManager(store, clock=store.clock)
    session = manager.load(None)
    session.update(values)
    session.login(Principal("42", kind="admin", roles={"ops"}))
    token = manager.commit(session).token
    assert token is not None
    return token, manager


def test_tokens_carry_standard_claims_any_jwt_library_verifies(store: JWTStore) -> None:
    token, manager = _token(store, cart=["apple"])
    session = manager.load(token)
    claims = jwt.decode(
        token, KEY, algorithms=["HS256"], audience="shop", issuer="https://auth.example"
    )
    assert claims["sub"] == "42"
    assert claims["kind"] == "admin"
    assert claims["jti"] == session.id
    assert store_key(claims["jti"]) == session.key
    assert claims["iat"] <= claims["exp"]
    assert claims["exp"] >= session.expires_at.timestamp()
    assert claims["ses"]["d:cart"] == ["apple"]  # readable by anyone: documented
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256"
    assert header["typ"] == "JWT"
    assert isinstance(header["kid"], str)


def test_an_anonymous_session_has_no_subject(store: JWTStore) -> None:
    manager = SyncSessionManager(store, clock=store.clock)
    session = manager.load(None)
    session["n"] = 1
    token = manager.commit(session).token
    claims = jwt.decode(token, KEY, algorithms=["HS256"], audience="shop")
    assert "sub" not in claims
    assert manager.load(token)["n"] == 1


def _claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def test_alg_none_is_rejected(store: JWTStore) -> None:
    token, _ = _token(store)
    kid = jwt.get_unverified_header(token)["kid"]
    forged = _forge({"alg": "none", "kid": kid, "typ": "JWT"}, _claims_of(token))
    with pytest.raises(TokenInvalid) as caught:
        store.unseal(forged)
    assert caught.value.evidence["reason"] == "algorithm"
    assert store.open(forged) is None


def test_another_hmac_algorithm_with_the_same_key_is_rejected(clock: FakeClock) -> None:
    store = JWTStore(LONG_KEY, clock=clock)  # long enough for every HS algorithm
    token, _ = _token(store)
    kid = jwt.get_unverified_header(token)["kid"]
    for algorithm in ("HS384", "HS512"):
        forged = jwt.encode(_claims_of(token), LONG_KEY, algorithm=algorithm, headers={"kid": kid})
        with pytest.raises(TokenInvalid, match="algorithm"):
            store.unseal(forged)


def test_algorithm_confusion_with_an_rsa_header_is_rejected(store: JWTStore) -> None:
    token, _ = _token(store)
    header = jwt.get_unverified_header(token)
    signing_input = token.rsplit(".", 1)[0]
    # The classic attack: claim RS256, sign with HMAC using the "public key" the server holds.
    import hashlib
    import hmac

    sig = hmac.new(KEY.encode(), signing_input.encode(), hashlib.sha256).digest()
    forged = _forge({**header, "alg": "RS256"}, _claims_of(token), sig)
    assert store.open(forged) is None


def test_issuer_and_audience_are_required_and_checked(store: JWTStore, clock: FakeClock) -> None:
    token, _ = _token(store)
    claims = _claims_of(token)
    kid = jwt.get_unverified_header(token)["kid"]
    for changes in (
        {"iss": "https://evil.example"},
        {"aud": "other-app"},
        {"iss": None},
        {"aud": None},
    ):
        forged_claims = {k: v for k, v in {**claims, **changes}.items() if v is not None}
        forged = jwt.encode(forged_claims, KEY, algorithm="HS256", headers={"kid": kid})
        with pytest.raises(TokenInvalid, match="claims"):
            store.unseal(forged)
    # A store with no audience refuses tokens that name one (they were meant for someone else).
    plain = JWTStore(KEY, issuer="https://auth.example", clock=clock)
    assert plain.open(token) is None


def test_tokens_missing_required_claims_are_rejected(store: JWTStore) -> None:
    token, _ = _token(store)
    claims = _claims_of(token)
    kid = jwt.get_unverified_header(token)["kid"]
    for missing in ("jti", "exp", "iat", "ses"):
        partial = {k: v for k, v in claims.items() if k != missing}
        forged = jwt.encode(partial, KEY, algorithm="HS256", headers={"kid": kid})
        assert store.open(forged) is None, missing
    bad_jti = jwt.encode({**claims, "jti": "short"}, KEY, algorithm="HS256", headers={"kid": kid})
    assert store.open(bad_jti) is None


def _hs256(header: dict[str, Any], claims: dict[str, Any]) -> str:
    import hashlib
    import hmac

    unsigned = _forge(header, claims).rstrip(".")
    sig = hmac.new(KEY.encode(), unsigned.encode(), hashlib.sha256).digest()
    return unsigned + "." + _b64(sig)


def test_unknown_or_missing_key_ids_are_rejected(store: JWTStore) -> None:
    token, _ = _token(store)
    claims = _claims_of(token)
    kid = jwt.get_unverified_header(token)["kid"]
    control = {"alg": "HS256", "typ": "JWT", "kid": kid}
    assert store.open(_hs256(control, claims)) is not None
    for header in ({"kid": "AAAAAA"}, {}, {"kid": 7}, {"kid": ""}, {"kid": "%%"}):
        forged = _hs256({"alg": "HS256", "typ": "JWT", **header}, claims)
        assert store.open(forged) is None, header


def test_a_token_typed_for_another_use_is_rejected(store: JWTStore) -> None:
    """RFC 8725 3.11 (explicit typing): only ``typ: JWT``, what the store writes, is a session;
    an access token (``at+jwt``) signed with a shared key is not, nor a token with no type."""
    token, _ = _token(store)
    claims = _claims_of(token)
    kid = jwt.get_unverified_header(token)["kid"]
    assert jwt.get_unverified_header(token)["typ"] == "JWT"
    for typ in ({"typ": "at+jwt"}, {"typ": "jwt "}, {"typ": 1}, {}):
        forged = _hs256({"alg": "HS256", "kid": kid, **typ}, claims)
        with pytest.raises(TokenInvalid) as caught:
            store.unseal(forged)
        assert caught.value.evidence["reason"] == "type", typ


def test_a_token_issued_in_the_future_is_rejected(store: JWTStore, clock: FakeClock) -> None:
    """A token whose ``iat`` lies beyond the clock skew leeway was minted by a wrong clock or to
    outlive its ``ttl``; a malformed ``iat`` is no token either. A little skew is tolerated."""
    from sessio.stores.jwt import IAT_LEEWAY

    token, _ = _token(store)
    claims = _claims_of(token)
    kid = jwt.get_unverified_header(token)["kid"]
    header = {"alg": "HS256", "typ": "JWT", "kid": kid}
    skewed = {**claims, "iat": int(clock.now) + IAT_LEEWAY - 1}
    assert store.open(_hs256(header, skewed)) is not None  # within the leeway
    for iat in (int(clock.now) + IAT_LEEWAY + 5, 10**12, "0", True, 1.5, None):
        forged = _hs256(header, {**claims, "iat": iat})
        assert store.open(forged) is None, iat
        with pytest.raises(TokenInvalid):
            store.unseal(forged)


def test_key_ids_pick_the_verifying_key(clock: FakeClock) -> None:
    old, new = "old-" + "o" * 40, "new-" + "n" * 40
    token, _ = _token(JWTStore(old, clock=clock))
    both = JWTStore([old, new], clock=clock)
    assert both.open(token) is not None
    kid_old = jwt.get_unverified_header(token)["kid"]
    fresh, _ = _token(both)
    assert jwt.get_unverified_header(fresh)["kid"] != kid_old
    assert JWTStore(new, clock=clock).open(fresh) is not None


def test_a_deeply_nested_header_is_invalid_not_a_crash(store: JWTStore) -> None:
    deep = _b64(b"[" * 2500 + b"]" * 2500)
    with pytest.raises(TokenInvalid):
        store.unseal(f"{deep}.e30.AAAA")
    assert JWTStore(KEY, max_size=8192).open(f"{deep}.e30.AAAA") is None


@pytest.mark.parametrize(
    ("algorithm", "key"),
    [("none", KEY), ("RS256", KEY), ("HS384", KEY), ("HS512", "k" * 48)],
)
def test_only_hmac_algorithms_with_long_enough_keys(algorithm: str, key: str) -> None:
    with pytest.raises(ConfigurationError):
        JWTStore(key, algorithm=algorithm)  # type: ignore[arg-type]


def test_hs512_round_trips(clock: FakeClock) -> None:
    store = JWTStore(LONG_KEY, algorithm="HS512", clock=clock)
    token, manager = _token(store, n=5)
    assert jwt.get_unverified_header(token)["alg"] == "HS512"
    assert manager.load(token)["n"] == 5


def test_issuer_and_audience_must_be_names() -> None:
    with pytest.raises(ConfigurationError):
        JWTStore(KEY, issuer="")
    with pytest.raises(ConfigurationError):
        JWTStore(KEY, audience=3)  # type: ignore[arg-type]


def test_default_refresh_threshold_is_thirty_minutes() -> None:
    assert JWTStore(KEY).refresh_threshold == timedelta(minutes=30)
