"""CSRF tokens: one secret, masked anew on every render, verified in constant time, total."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessio import csrf


def test_a_masked_token_differs_on_every_call_and_always_verifies() -> None:
    secret = csrf.new_secret()
    tokens = {csrf.mask_token(secret) for _ in range(100)}
    assert len(tokens) == 100
    for token in tokens:
        assert len(token) == 86
        assert secret not in token
        assert csrf.verify_token(secret, token)


def test_secrets_are_32_random_bytes() -> None:
    secret = csrf.new_secret()
    assert len(base64.urlsafe_b64decode(secret + "=")) == csrf.SECRET_BYTES == 32
    assert csrf.new_secret() != secret
    assert csrf.is_secret(secret)


@pytest.mark.parametrize("value", [None, 5, "", "!" * 43, "A" * 42, "A" * 44, b"A" * 43])
def test_is_secret_refuses_anything_else(value: Any) -> None:
    assert not csrf.is_secret(value)


def test_tokens_of_another_secret_fail() -> None:
    assert not csrf.verify_token(csrf.new_secret(), csrf.mask_token(csrf.new_secret()))


def test_tampered_and_truncated_tokens_fail() -> None:
    secret = csrf.new_secret()
    token = csrf.mask_token(secret)
    assert not csrf.verify_token(secret, token[:-1])
    assert not csrf.verify_token(secret, token + "A")
    assert not csrf.verify_token(secret, token[:43])
    assert not csrf.verify_token(secret, "")
    for i in range(0, 84, 7):  # one changed character anywhere but the padding bits at the end
        swapped = token[:i] + ("B" if token[i] == "A" else "A") + token[i + 1 :]
        assert not csrf.verify_token(secret, swapped)
    # Unmasking is XOR: a token made of the secret twice over, or of zeros, is no token.
    raw = base64.urlsafe_b64decode(secret + "=")
    for forged in (raw + raw, bytes(64)):
        assert not csrf.verify_token(secret, base64.urlsafe_b64encode(forged).decode()[:86])


@pytest.mark.parametrize("token", [None, 0, 1.0, b"x" * 86, ["x" * 86], {"t": 1}, object()])
def test_garbage_types_fail_without_raising(token: Any) -> None:
    assert not csrf.verify_token(csrf.new_secret(), token)


@given(st.text())
def test_verify_token_never_raises_on_any_text(text: str) -> None:
    assert csrf.verify_token(csrf.new_secret(), text) is False


@given(st.text(min_size=86, max_size=86))
def test_verify_token_never_raises_on_text_of_the_right_length(text: str) -> None:
    assert csrf.verify_token(csrf.new_secret(), text) is False


@given(st.text(), st.text())
def test_verify_token_never_raises_even_with_a_broken_secret(secret: str, text: str) -> None:
    assert csrf.verify_token(secret, text) in (True, False)
