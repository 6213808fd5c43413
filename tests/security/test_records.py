"""Malformed records fail closed: a fresh session and a CORRUPT event, never an error per request."""

from __future__ import annotations

import json

import pytest

from sessio import EventKind
from sessio.ids import new_session_id, store_key
from sessio.stores.base import Create

from ..conftest import FakeClock
from .conftest import Site


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("s:principal", '"alice"'),
        ("s:principal", "[1]"),
        ("s:principal", '{"id": ""}'),
        ("s:principal", '{"id": 1, "roles": "admin"}'),
        ("s:principal", '{"id": 1, "roles": 5}'),
        ("s:principal", '{"id": 1, "kind": "a:b"}'),
        ("s:principal", '{"id": 1, "attributes": 5}'),
        ("s:flash", "5"),
        ("s:flash", '"x"'),
        ("s:flash", "[[1]]"),
        ("s:flash", "[1, 2]"),
        ("s:principal", '{"$uuid": 5}'),
        ("s:meta", '{"c": "x", "s": 1}'),
        ("s:meta", "{not json"),
    ],
)
def test_a_malformed_record_gives_a_fresh_session(clock: FakeClock, field: str, text: str) -> None:
    """ASVS 5.0 16.5.3 (fail securely, no fail-open) / 16.3.4: a record whose system fields do
    not decode (an old version's format, a bad migration, a tampered store) is discarded and
    reported; the request gets a fresh, unauthenticated session instead of an error."""
    site = Site(clock=clock)
    session_id = new_session_id()
    meta = json.dumps({"c": clock.now, "s": clock.now})
    fields = {"s:meta": meta, "d:cart": '["apple"]', field: text}
    site.store.save_sync(store_key(session_id), Create(fields, clock.now + 600, None))
    session = site.request([site.cookie(site.sign(session_id))]).session
    assert session.is_new
    assert not session.is_authenticated
    assert "cart" not in session
    assert EventKind.CORRUPT in site.kinds()
    assert not site.store.exists_sync(store_key(session_id))
