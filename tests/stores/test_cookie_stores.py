"""What the client can and cannot see in SignedCookieStore and EncryptedCookieStore tokens."""

from __future__ import annotations

import base64
import json
import secrets
import zlib

import pytest

from sessio import SyncSessionManager
from sessio.stores import EncryptedCookieStore, SignedCookieStore
from sessio.stores.client import ClientSideStore

#: These tests build client-side stores without a revocation list on purpose (what such a store
#: guarantees on its own); the warning that choice raises is tested in tests/security/.
pytestmark = pytest.mark.filterwarnings("ignore::sessio.stores.client.NoRevocationWarning")

KEY = "cookie-secret-" + "c" * 32


def _issue(store: ClientSideStore, **values: object) -> str:
    # A fixed clock: timestamps of varying length would blur the length comparisons below.
    manager = SyncSessionManager(store, clock=lambda: 1_800_000_000.25)
    session = manager.load(None)
    session.update(values)
    token = manager.commit(session).token
    assert token is not None
    return token


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_signed_tokens_are_readable_by_the_client() -> None:
    token = _issue(SignedCookieStore(KEY), card="4111 1111")
    payload = token.rsplit(".", 1)[0]
    raw = payload[1:] if payload.startswith(".") else payload
    data = _b64decode(raw)
    text = zlib.decompress(data) if payload.startswith(".") else data
    doc = json.loads(text)
    assert doc["f"]["d:card"] == "4111 1111"  # exactly why secrets go elsewhere


def test_signed_tokens_compress_only_when_it_helps() -> None:
    store = SignedCookieStore(KEY)
    chosen = []
    for values in ({"n": 1}, {"rows": ["same row of text"] * 100}, {"k": secrets.token_hex(8)}):
        payload = _issue(store, **values).rsplit(".", 1)[0]
        compressed = payload.startswith(".")
        data = _b64decode(payload[1:] if compressed else payload)
        plain = zlib.decompress(data) if compressed else data
        assert len(data) == min(len(plain), len(zlib.compress(plain, 9)))
        chosen.append(compressed)
    assert chosen[1] is True  # 100 repeated rows: compressed far below the cookie limit


def test_encrypted_tokens_hide_everything() -> None:
    store = EncryptedCookieStore(KEY)
    token = _issue(store, card="4111 1111", rows=["same row of text"] * 20)
    blob = _b64decode(token)
    for secret in (b"4111", b"same row", b"d:card", b"s:meta"):
        assert secret not in blob
        assert secret not in zlib.compress(blob)  # and no structure survives either


def test_encrypted_tokens_are_never_compressed() -> None:
    # Compression before encryption leaks secrets through lengths (CRIME): lengths must grow
    # with the plaintext even when it is perfectly compressible.
    store = EncryptedCookieStore(KEY)
    short = _issue(store, rows=["x" * 10])
    long = _issue(store, rows=["x" * 1010])
    assert len(_b64decode(long)) - len(_b64decode(short)) == 1000


def test_encrypted_tokens_differ_each_time_for_the_same_session() -> None:
    store = EncryptedCookieStore(KEY)
    manager = SyncSessionManager(store)
    session = manager.load(None)
    session["n"] = 1
    first = manager.commit(session).token
    session["n"] = 1
    session.rotate_csrf()
    second = manager.commit(session).token
    assert first != second
    assert manager.load(first)["n"] == manager.load(second)["n"] == 1


def test_the_two_cookie_stores_do_not_accept_each_others_tokens() -> None:
    signed, encrypted = SignedCookieStore(KEY), EncryptedCookieStore(KEY)
    assert signed.open(_issue(encrypted, n=1)) is None
    assert encrypted.open(_issue(signed, n=1)) is None
