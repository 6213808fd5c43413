"""Key lists: they never print, derive one key per purpose, and name keys by stable IDs."""

from __future__ import annotations

import pytest

from sessio import ConfigurationError
from sessio.keys import KEY_ID_BYTES, KeyRing, Secret
from sessio.transports import Secret as TransportSecret

A = "a" * 32
B = "b" * 32


def test_secret_is_shared_with_transports_and_never_prints() -> None:
    assert TransportSecret is Secret
    secret = Secret([A, B])
    assert A not in repr(secret)
    assert A not in str(secret)
    assert secret.keys == (A.encode(), B.encode())


@pytest.mark.parametrize("keys", [[], "short", [A, "short"]])
def test_secrets_need_32_bytes_each(keys: list[str] | str) -> None:
    with pytest.raises(ConfigurationError):
        Secret(keys)


def test_each_purpose_derives_its_own_keys_and_ids() -> None:
    one, two = KeyRing(A, "one"), KeyRing(A, "two")
    assert one.newest[1] != two.newest[1]
    assert one.newest[0] != two.newest[0]
    assert len(one.newest[0]) == KEY_ID_BYTES
    assert one.newest[1] != A.encode()  # derived, not the secret itself
    assert KeyRing(A, "jwt", derive=False).newest[1] == A.encode()


def test_key_ids_are_stable_and_independent_of_order() -> None:
    ring = KeyRing([A, B], "p")
    assert ring.newest == KeyRing(B, "p").newest
    assert [kid for kid, _ in ring.newest_first()] == [
        KeyRing(B, "p").newest[0],
        KeyRing(A, "p").newest[0],
    ]
    assert ring.get(KeyRing(A, "p").newest[0]) == KeyRing(A, "p").newest[1]
    assert ring.get(b"\x00" * KEY_ID_BYTES) is None
    assert len(ring) == 2


def test_a_key_listed_twice_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="key ID"):
        KeyRing([A, A], "p")


def test_a_ring_never_prints_its_keys() -> None:
    text = repr(KeyRing([A, B], "purpose"))
    assert A not in text
    assert "2 key(s)" in text
