"""Signed tokens: HMAC under rotating keys, secrets that never print, total verification."""

from __future__ import annotations

import base64
import hashlib
import hmac
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessio import ConfigurationError
from sessio.ids import new_session_id
from sessio.transports import Secret, TokenSigner
from sessio.transports.signing import MAX_TOKEN_LENGTH

OLD = "old-key-" + "o" * 32
NEW = "new-key-" + "n" * 32


def test_sign_then_unsign() -> None:
    signer = TokenSigner(NEW)
    session_id = new_session_id()
    token = signer.sign(session_id)
    value, dot, mac = token.rpartition(".")
    assert (value, dot) == (session_id, ".")
    assert len(mac) == 43
    assert signer.unsign(token) == session_id
    assert signer.sign(session_id) == token  # deterministic


def test_the_mac_uses_a_key_derived_for_this_purpose() -> None:
    """A MAC made directly with the app secret (by other code sharing it) is no session token."""
    session_id = new_session_id()
    direct = hmac.new(NEW.encode(), session_id.encode(), hashlib.sha256).digest()
    forged = f"{session_id}.{base64.urlsafe_b64encode(direct).rstrip(b'=').decode()}"
    assert TokenSigner(NEW).unsign(forged) is None


def test_keys_rotate_without_logging_anyone_out() -> None:
    session_id = new_session_id()
    before = TokenSigner(OLD).sign(session_id)
    during = TokenSigner([OLD, NEW])  # oldest first: the newest signs, all verify
    assert during.unsign(before) == session_id
    assert during.sign(session_id) == TokenSigner(NEW).sign(session_id)
    after = TokenSigner([NEW])
    assert after.unsign(during.sign(session_id)) == session_id
    assert after.unsign(before) is None  # the old key is gone


@pytest.mark.parametrize(
    "transform",
    [
        lambda t: "",
        lambda t: t.replace(".", ""),
        lambda t: "." + t.rpartition(".")[2],
        lambda t: t.rpartition(".")[0] + ".",
        lambda t: ("X" if t[0] != "X" else "Y") + t[1:],  # never the identity (1 run in 64)
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: t[:-2],
        lambda t: t + "=",
        lambda t: t + " ",
        lambda t: " " + t,
        lambda t: t.upper(),
        lambda t: t.rpartition(".")[0] + "é." + t.rpartition(".")[2],
        lambda t: "x" * (MAX_TOKEN_LENGTH + 1),
        lambda t: new_session_id() + "." + t.rpartition(".")[2],
    ],
)
def test_anything_but_the_exact_token_is_refused(transform: object) -> None:
    signer = TokenSigner(NEW)
    token = signer.sign(new_session_id())
    assert signer.unsign(transform(token)) is None  # type: ignore[operator]


def test_oversized_tokens_are_refused_before_any_hashing() -> None:
    signer = TokenSigner(NEW)
    long_id = "a" * (MAX_TOKEN_LENGTH - 43)
    assert signer.unsign(signer.sign(long_id)) is None
    short_enough = "a" * (MAX_TOKEN_LENGTH - 44)
    assert signer.unsign(signer.sign(short_enough)) == short_enough


def test_secrets_never_print() -> None:
    secret = Secret([OLD, NEW])
    for text in (repr(secret), str(secret), f"{secret}", repr(TokenSigner(secret).secret)):
        assert text == "Secret('**********')"
        assert OLD not in text
    assert secret.keys == (OLD.encode(), NEW.encode())
    assert Secret(secret).keys == secret.keys
    assert Secret(NEW.encode()).keys == (NEW.encode(),)


@pytest.mark.parametrize("keys", ["short", b"x" * 31, [], [NEW, "short"], ("",)])
def test_weak_or_missing_keys_are_refused(keys: object) -> None:
    with pytest.raises(ConfigurationError, match="secret"):
        Secret(keys)  # type: ignore[arg-type]


@given(st.text(max_size=400))
def test_unsign_never_raises_on_any_text(text: str) -> None:
    assert TokenSigner(NEW).unsign(text) is None


@given(st.text(alphabet=string.ascii_letters + string.digits + "-_.~", min_size=1, max_size=200))
def test_every_ascii_value_round_trips(value: str) -> None:
    signer = TokenSigner([OLD, NEW])
    assert signer.unsign(signer.sign(value)) == value


@given(st.binary(min_size=32, max_size=200), st.text(string.ascii_letters, max_size=300))
def test_the_mac_is_hmac_sha256_under_the_derived_key(secret: bytes, value: str) -> None:
    signer = TokenSigner(secret)
    derived = hmac.digest(secret, b"sessio.session-token", "sha256")
    expected = hmac.digest(derived, value.encode("ascii"), "sha256")
    mac = signer.sign(value).rpartition(".")[2]
    assert base64.urlsafe_b64decode(mac + "=" * (-len(mac) % 4)) == expected
    assert signer.sign(value) == signer.sign(value)  # the keyed HMAC is copied, never consumed


def test_verified_tokens_are_remembered_and_forged_ones_are_not() -> None:
    signer = TokenSigner(NEW)
    token = signer.sign("abc")
    assert signer.unsign(token) == "abc"
    assert signer.unsign(token) == "abc"  # answered from memory
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert signer.unsign(forged) is None
    assert signer.unsign(forged) is None
    assert forged not in signer._verified
    assert token in signer._verified


def test_the_verified_cache_is_bounded() -> None:
    from sessio.transports.signing import MAX_REMEMBERED_TOKENS

    signer = TokenSigner(NEW)
    tokens = [signer.sign(f"id{i}") for i in range(MAX_REMEMBERED_TOKENS + 10)]
    for token in tokens:
        assert signer.unsign(token) is not None
    assert len(signer._verified) == MAX_REMEMBERED_TOKENS
    assert tokens[0] not in signer._verified  # the oldest went first
    assert signer.unsign(tokens[0]) == "id0"  # and is verified again, by its MAC


def test_a_signer_without_the_old_key_does_not_inherit_its_memory() -> None:
    old = TokenSigner([OLD, NEW])
    token_by_old = TokenSigner(OLD).sign("abc")
    assert old.unsign(token_by_old) == "abc"
    assert TokenSigner(NEW).unsign(token_by_old) is None  # rotation: a new signer, new memory
