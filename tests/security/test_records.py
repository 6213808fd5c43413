"""Malformed records fail closed: a fresh session and a CORRUPT event, never an error per request."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sessio import EventKind
from sessio.ids import new_session_id, store_key
from sessio.stores.base import Create

from ..conftest import FakeClock
from .conftest import Browser, Site, write


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


def plant(site: Site, clock: FakeClock, fields: dict[str, Any]) -> str:
    """A record written straight into the store (a tampered store, a bad migration); its token."""
    session_id = new_session_id()
    site.store.save_sync(store_key(session_id), Create(fields, clock.now + 600))
    return site.sign(session_id)


@pytest.mark.parametrize("depth", [100, 500, 900, 5000])
def test_a_deeply_nested_stored_value_gives_a_fresh_session_not_a_500(
    clock: FakeClock, depth: int
) -> None:
    """ASVS 5.0 16.5.3 (fail securely): a stored value nested deeper than the codec allows used
    to load and then raise at commit, when the session re-encoded it (a RecursionError turned
    ValueNotSerializable: a 500 on every request of that session). It is corruption now."""
    site = Site(clock=clock)
    meta = json.dumps({"c": clock.now, "s": clock.now})
    token = plant(site, clock, {"s:meta": meta, "d:x": "[" * depth + "]" * depth, "d:y": "1"})
    response = site.request([site.cookie(token)])  # no exception: the commit succeeds
    assert "x" not in response.session
    assert EventKind.CORRUPT in site.kinds()


@pytest.mark.parametrize(
    "meta",
    [
        '{"c": NaN, "s": NaN}',
        '{"c": 1e400, "s": 1e400}',
        '{"c": true, "s": true}',
        '{"c": "0", "s": "0"}',
    ],
)
def test_metadata_that_would_never_expire_gives_a_fresh_session(
    clock: FakeClock, meta: str
) -> None:
    """ASVS 5.0 7.3.1, 7.3.2: NaN or infinite times compare false with every clock, so a record
    holding them never timed out (and then failed to re-encode: a 500). It is discarded."""
    site = Site(clock=clock)
    token = plant(site, clock, {"s:meta": meta, "d:cart": '["apple"]'})
    session = site.request([site.cookie(token)]).session
    assert session.is_new
    assert "cart" not in session
    assert EventKind.CORRUPT in site.kinds()


def test_text_that_is_not_valid_unicode_is_refused_when_set(site: Site) -> None:
    """Cheat sheet "Manage Session ID as Any Other User Input" (all client input is hostile):
    ``json.loads('"\\ud800"')``, which any client can make ``request.json()`` return, is
    refused when stored in the session, naming the key, so no store is ever asked to hold it."""
    from sessio import ValueNotSerializable

    lone = json.loads('"\\ud800"')
    for value in (lone, {"name": lone}, [[{lone: 1}]]):
        session = site.request().session
        with pytest.raises(ValueNotSerializable) as caught:
            session["profile"] = value
        assert caught.value.evidence["key"] == "profile"
        assert "profile" not in session


def test_every_value_round_trips_exactly_or_is_refused_when_set(site: Site) -> None:
    """ASVS 5.0 1.5.2 (deserialization only of allow-listed types): the codec writes an allow
    list of tagged types and nothing else; each comes back as it was set, a datetime in its
    named zone included, and what cannot come back exactly (a time of day in a named zone, an
    unknown ``tzinfo``) is refused when set, with a message naming the key."""
    import datetime as dt
    import zoneinfo

    from sessio import ValueNotSerializable

    browser = Browser(site)
    paris = dt.datetime(2026, 3, 28, 12, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
    browser.visit(write("when", paris))
    loaded = browser.visit().session["when"]
    assert loaded == paris
    assert loaded.tzinfo == zoneinfo.ZoneInfo("Europe/Paris")
    assert (loaded + dt.timedelta(days=1)).utcoffset() == dt.timedelta(hours=2)  # DST applies
    session = site.request().session
    with pytest.raises(ValueNotSerializable, match=r"'opening'.*zone"):
        session["opening"] = dt.time(9, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Paris"))
