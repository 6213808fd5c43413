"""Session IDs: 256 random bits, a strict shape checked before any I/O, only hashes at rest."""

from __future__ import annotations

import hashlib
import string

from hypothesis import given
from hypothesis import strategies as st

from sessio import ids

ALPHABET = string.ascii_letters + string.digits + "-_"


def test_new_ids_have_256_bits_and_the_issued_shape() -> None:
    issued = {ids.new_session_id() for _ in range(1000)}
    assert len(issued) == 1000
    assert ids.ID_BYTES == 32
    for session_id in issued:
        assert len(session_id) == 43
        assert set(session_id) <= set(ALPHABET)
        assert ids.is_well_formed(session_id)


def test_the_store_key_is_the_sha256_of_the_id() -> None:
    session_id = ids.new_session_id()
    key = ids.store_key(session_id)
    assert key == hashlib.sha256(session_id.encode()).hexdigest()
    assert len(key) == 64
    assert key == ids.store_key(session_id)
    assert session_id not in key
    assert ids.store_key(ids.new_session_id()) != key


def test_the_short_hash_is_twelve_hex_digits_of_the_key() -> None:
    key = ids.store_key(ids.new_session_id())
    assert ids.short_hash(key) == key[:12]


def test_near_misses_are_not_well_formed() -> None:
    good = ids.new_session_id()
    for bad in (
        "",
        good[:-1],
        good + "A",
        good[:-1] + "=",
        good[:-1] + ".",
        good[:-1] + "\n",
        good + "\n",
        " " + good[1:],
        good[:-1] + "é",
        good[:-1] + "٣",  # a digit, but not an ASCII one
        good[:-1] + "\x00",
    ):
        assert not ids.is_well_formed(bad), repr(bad)


@given(st.text())
def test_is_well_formed_is_exactly_the_issued_shape(text: str) -> None:
    expected = len(text) == 43 and all(c in ALPHABET for c in text)
    assert ids.is_well_formed(text) is expected


@given(st.text(alphabet=ALPHABET, min_size=43, max_size=43))
def test_every_43_character_urlsafe_string_is_well_formed(text: str) -> None:
    assert ids.is_well_formed(text)


# -- following a rotation ------------------------------------------------------------------------


def test_the_successor_key_is_domain_separated_from_the_store_key() -> None:
    old = ids.new_session_id()
    key = ids.successor_key(old)
    assert len(key) == 64
    assert key != ids.store_key(old)
    assert key == hashlib.sha256(b"sessio/successor-key/v1\x00" + old.encode()).hexdigest()
    assert ids.successor_key(ids.new_session_id()) != key


def test_only_the_old_id_opens_the_sealed_successor() -> None:
    old, new = ids.new_session_id(), ids.new_session_id()
    sealed = ids.seal_successor(old, new)
    assert ids.is_well_formed(sealed)  # 43 URL-safe characters, like an ID
    assert new not in sealed
    successor = ids.store_key(new)
    assert ids.open_successor(old, sealed, successor) == new
    assert ids.open_successor(ids.new_session_id(), sealed, successor) is None
    assert ids.open_successor(old, sealed, ids.store_key(old)) is None


@given(st.text(max_size=60), st.text(max_size=70))
def test_opening_never_raises_whatever_the_stored_text(sealed: str, successor: str) -> None:
    # (A random text that opens to an ID whose key it also names is a 2**-256 event.)
    assert ids.open_successor("A" * 43, sealed, successor) is None


def test_opening_refuses_non_text_and_tampering() -> None:
    old, new = ids.new_session_id(), ids.new_session_id()
    sealed, successor = ids.seal_successor(old, new), ids.store_key(new)
    for bad in (None, 5, b"x", sealed[:-1], sealed + "A", "!" * 43):
        assert ids.open_successor(old, bad, successor) is None
    flipped = ("B" if sealed[0] == "A" else "A") + sealed[1:]
    assert ids.open_successor(old, flipped, successor) is None
    assert ids.open_successor(old, sealed, None) is None
