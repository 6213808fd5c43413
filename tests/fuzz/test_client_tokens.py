"""Fuzzing the token verifiers of every client-side store, down to validly signed garbage."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessio import (
    MemoryStore,
    Principal,
    Session,
    SessionTooLarge,
    SyncSessionManager,
    TokenInvalid,
)
from sessio.ids import new_session_id
from sessio.stores import EncryptedCookieStore, JWTStore, SignedCookieStore
from sessio.stores.client import ClientSideStore, unpack

from .strategies import FUZZ, hostile_bytes, hostile_text, json_values, total

KEY = "fuzzing-key-for-every-client-side-store-01"


def build(kind: str) -> ClientSideStore:
    # A revocation list, as production should have: these stores are fuzzed, not warned about.
    options: dict[str, Any] = {"revocation_store": MemoryStore()}
    if kind == "signed":
        return SignedCookieStore(KEY, **options)
    if kind == "encrypted":
        return EncryptedCookieStore(KEY, **options)
    return JWTStore(KEY, **options)


STORES = {kind: build(kind) for kind in ("signed", "encrypted", "jwt")}


def issued(store: ClientSideStore) -> str:
    manager = SyncSessionManager(store)
    session = manager.load(None)
    session["cart"] = ["apple", {"qty": 2}]
    session.login(Principal("alice"))
    token = manager.commit(session).token
    assert token is not None
    return token


TOKENS = {kind: issued(store) for kind, store in STORES.items()}


def mutations(token: str) -> st.SearchStrategy[str]:
    """``token`` flipped, cut, padded or spliced: the forgeries an attacker tries first."""
    index = st.integers(0, max(len(token) - 1, 0))
    return st.one_of(
        st.tuples(index, st.sampled_from("A_-.=x")).map(
            lambda p: token[: p[0]] + p[1] + token[p[0] + 1 :]
        ),
        index.map(lambda i: token[:i]),
        index.map(lambda i: token[:i] + token[i + 1 :]),
        hostile_text.map(lambda t: token + t),
        st.just(token.replace(".", "..", 1)),
    )


@pytest.mark.parametrize("kind", sorted(STORES))
@FUZZ
@given(data=st.data())
def test_every_store_verifier_is_total(kind: str, data: st.DataObject) -> None:
    store, token = STORES[kind], TOKENS[kind]
    text = data.draw(st.one_of(hostile_text, mutations(token)))
    result = total(store.unseal, text)
    assert isinstance(result, (tuple, TokenInvalid))
    opened = total(store.open, text)
    assert opened is None or isinstance(opened, tuple)
    if text != token and isinstance(result, tuple):
        # Another spelling that still verifies must carry the very same session.
        assert result[0] == store.unseal(token)[0], text


@FUZZ
@given(st.one_of(hostile_bytes, json_values.map(lambda v: json.dumps(v).encode())))
def test_the_cookie_payload_decoder_is_total(data: bytes) -> None:
    assert isinstance(total(unpack, data), (tuple, TokenInvalid))


@FUZZ
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "jti": st.one_of(st.just(new_session_id()), json_values),
            "iat": st.one_of(st.integers(-(2**40), 2**40), json_values),
            "exp": st.one_of(st.integers(-(2**40), 2**40), json_values),
            "sub": json_values,
            "kind": json_values,
            "ses": st.one_of(
                st.dictionaries(st.text(max_size=6), json_values, max_size=4),
                st.dictionaries(
                    st.sampled_from(["s:meta", "s:principal", "s:csrf", "s:flash", "d:x"]),
                    json_values,
                    max_size=5,
                ),
                json_values,
            ),
        },
    ),
    st.dictionaries(st.sampled_from(["typ", "cty", "crit", "jku", "zip"]), json_values, max_size=2),
)
def test_a_validly_signed_jwt_of_any_content_gives_a_session_or_a_fresh_one(
    claims: dict[str, Any], extra_header: dict[str, Any]
) -> None:
    """Past the signature (a leaked key, another service sharing it), every claim is checked:
    unseal raises only TokenInvalid, and a manager loading the token always answers with a
    session, never an exception."""
    store = STORES["jwt"]
    kid = jwt.get_unverified_header(TOKENS["jwt"])["kid"]
    header = {"typ": "JWT", **extra_header, "alg": "HS256", "kid": kid}
    token = sign(header, claims)
    assert isinstance(total(store.unseal, token), (tuple, TokenInvalid))
    manager = SyncSessionManager(store)
    session = manager.load(token)
    assert isinstance(session, Session)
    with contextlib.suppress(SessionTooLarge):  # one that no longer fits a cookie: refused by name
        manager.commit(session)


def sign(header: dict[str, Any], claims: dict[str, Any]) -> str:
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    signing = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
    mac = hmac.new(KEY.encode(), signing.encode("ascii"), hashlib.sha256).digest()
    return signing + "." + b64(mac)
