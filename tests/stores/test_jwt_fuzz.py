"""Fuzzing JWTStore's verifier for every algorithm: garbage, mutations of real tokens and
well-formed forgeries naming any algorithm and kid raise only TokenInvalid or give a session."""

from __future__ import annotations

import base64
import json
import warnings

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessio import MemoryStore, Principal, Session, SyncSessionManager, TokenInvalid
from sessio.stores import JWTStore

from ..fuzz.strategies import FUZZ, hostile_text, json_values, total
from .jwt_material import ALGORITHMS, SECRET, private_key


def _stores() -> dict[str, JWTStore]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a revocation list: nothing here should warn
        signing = {
            algorithm: JWTStore(private_keys=private_key(algorithm), revocation_store=MemoryStore())
            for algorithm in ALGORITHMS
        }
        signing["HS256"] = JWTStore(SECRET, revocation_store=MemoryStore())
        mixed = JWTStore(
            private_keys=[private_key(a) for a in ALGORITHMS], revocation_store=MemoryStore()
        )
        signing["jwks"] = JWTStore.from_jwks(mixed.jwks(), revocation_store=MemoryStore())
    return signing


STORES = _stores()


def _issue(store: JWTStore) -> str:
    signer = store if store.can_sign else JWTStore(private_keys=private_key("EdDSA"))
    manager = SyncSessionManager(signer)
    session = manager.load(None)
    session["cart"] = ["apple", {"qty": 2}]
    session.login(Principal("alice"))
    token = manager.commit(session).token
    assert token is not None
    return token


with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # the verify-only store's stand-in signer has no list
    TOKENS = {kind: _issue(store) for kind, store in STORES.items()}

KIDS = sorted({str(jwt.get_unverified_header(token)["kid"]) for token in TOKENS.values()})
ALGS = ["none", "None", "HS256", "HS384", "HS512", "RS256", "RS512", "PS256", "ES256", "ES384"]
ALGS += ["EdDSA", "Ed25519", ""]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _mutations(token: str) -> st.SearchStrategy[str]:
    index = st.integers(0, len(token) - 1)
    return st.one_of(
        st.tuples(index, st.sampled_from("A_-.=x0")).map(
            lambda p: token[: p[0]] + p[1] + token[p[0] + 1 :]
        ),
        index.map(lambda i: token[:i]),
        index.map(lambda i: token[:i] + token[i + 1 :]),
        hostile_text.map(lambda t: token + t),
        st.just(token.replace(".", "..", 1)),
    )


#: A well-formed JWT naming any algorithm and any kid (real ones included), any claims, and a
#: signature of any length: the forgeries that reach the key lookup and the signature check.
_headers = st.fixed_dictionaries(
    {"alg": st.one_of(st.sampled_from(ALGS), json_values)},
    optional={
        "kid": st.one_of(st.sampled_from(KIDS), json_values),
        "typ": st.one_of(st.just("JWT"), json_values),
        "crit": json_values,
        "jwk": json_values,
    },
)
_claims = st.dictionaries(
    st.sampled_from(["jti", "iat", "exp", "sub", "kind", "ses", "iss", "aud"]), json_values
)
_forgeries = st.builds(
    lambda header, claims, signature: ".".join(
        [_b64(json.dumps(header).encode()), _b64(json.dumps(claims).encode()), _b64(signature)]
    ),
    _headers,
    _claims,
    st.one_of(st.binary(max_size=600), st.sampled_from([b"", b"\x00" * 64, b"\xff" * 256])),
)


@pytest.mark.parametrize("kind", sorted(STORES))
@FUZZ
@given(data=st.data())
def test_the_verifier_is_total(kind: str, data: st.DataObject) -> None:
    store, token = STORES[kind], TOKENS[kind]
    text = data.draw(st.one_of(hostile_text, _mutations(token), _forgeries))
    result = total(store.unseal, text)
    assert isinstance(result, (tuple, TokenInvalid)), result
    opened = total(store.open, text)
    assert opened is None or isinstance(opened, tuple)
    if text != token and isinstance(result, tuple):
        # Another spelling that verifies (an ECDSA signature's other s) carries the same session.
        assert result[0] == store.unseal(token)[0], text
    session = SyncSessionManager(store).load(text)
    assert isinstance(session, Session)
    assert session.is_new or session.id == store.unseal(token)[0]


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@FUZZ
@given(claims=_claims, extra=st.dictionaries(st.sampled_from(["cty", "crit", "jku"]), json_values))
def test_a_validly_signed_token_of_any_content_gives_a_session_or_a_fresh_one(
    algorithm: str, claims: dict[str, object], extra: dict[str, object]
) -> None:
    """Past the signature (a leaked key, a sibling service signing oddities) every claim is
    still checked, by the signing store and by a verify-only one alike."""
    store = STORES[algorithm]
    kid = jwt.get_unverified_header(TOKENS[algorithm])["kid"]
    headers = {**extra, "kid": kid, "typ": "JWT"}
    # JWS, not JWT, encoding: PyJWT's JWT encoder would refuse the odd claims this test is for.
    payload = json.dumps(claims).encode()
    token = jwt.PyJWS().encode(payload, private_key(algorithm), algorithm, headers)
    for verifier in (store, STORES["jwks"]):
        assert isinstance(total(verifier.unseal, token), (tuple, TokenInvalid))
        assert isinstance(SyncSessionManager(verifier).load(token), Session)
