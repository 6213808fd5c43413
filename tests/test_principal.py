"""Principal: who a session belongs to, immutable, validated, round-tripped through the codec."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from sessio import Codec, ConfigurationError, Principal


def test_a_principal_has_an_id_a_kind_roles_and_attributes() -> None:
    p = Principal(42, roles=["admin", "user", "admin"], attributes={"name": "Ada"})
    assert p.id == "42"  # ints are accepted and kept as text
    assert p.kind == "user"
    assert p.roles == frozenset({"admin", "user"})
    assert p.key == "user:42"
    assert p.get_attribute("name") == "Ada"
    assert p.get_attribute("missing") is None
    assert p.get_attribute("missing", "dflt") == "dflt"
    assert Principal("svc-1", kind="service").key == "service:svc-1"


def test_has_role_needs_every_role_named() -> None:
    p = Principal("1", roles={"user", "editor"})
    assert p.has_role("user")
    assert p.has_role("user", "editor")
    assert not p.has_role("user", "admin")
    assert p.has_role()  # no requirement


def test_principals_are_immutable_and_own_their_attributes() -> None:
    attributes = {"tenant": "a"}
    p = Principal("1", attributes=attributes)
    attributes["tenant"] = "b"
    assert p.get_attribute("tenant") == "a"
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.id = "2"  # type: ignore[misc]


def test_equality_and_hashing() -> None:
    a = Principal("1", roles={"x"}, attributes={"n": 1})
    assert a == Principal(1, roles=["x"], attributes={"n": 1})
    assert a != Principal("1", roles={"x", "y"}, attributes={"n": 1})  # a change of privilege
    assert a != Principal("1", kind="service", roles={"x"}, attributes={"n": 1})
    assert a != Principal("1", roles={"x"}, attributes={"n": 2})
    assert len({a, Principal("1", roles={"x"}, attributes={"n": 1})}) == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"id": ""},
        {"id": "1", "kind": ""},
        {"id": "1", "kind": "user:admin"},
        {"id": "1", "roles": "admin"},
    ],
)
def test_invalid_principals_fail_at_construction(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Principal(**kwargs)


def test_data_round_trip_through_the_codec() -> None:
    codec = Codec()
    p = Principal("7", kind="device", roles={"b", "a"}, attributes={"seen": (1, 2)})
    data = p.to_data()
    assert data["roles"] == ["a", "b"]  # sorted: the same principal always encodes the same
    assert Principal.from_data(codec.loads(codec.dumps(data))) == p
    assert Principal.from_data({"id": "7"}) == Principal("7")
