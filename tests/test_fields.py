"""A record's fields decode in one pass exactly as field-by-field decoding would."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessio import Principal, RecordCorrupt, SyncSessionManager
from sessio.codec import default_codec, dumps_plain
from sessio.fields import CSRF, FLASH, META, PRINCIPAL, SessionMeta, decode
from sessio.stores import MemoryStore
from tests.conftest import FakeClock

META_TEXT = SessionMeta(1.5, 2.5, ip="::1").dumps()

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text() | st.datetimes() | st.binary(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@given(st.dictionaries(st.text(), values, max_size=6))
def test_values_decode_as_each_field_alone_would(data: dict[str, Any]) -> None:
    fields = {"d:" + k: default_codec.dumps(v) for k, v in data.items()}
    fields[META] = META_TEXT
    loaded = decode(default_codec, fields)
    assert loaded.values == {k[2:]: default_codec.loads(t) for k, t in _data(fields).items()}
    assert loaded.corrupt == []
    assert loaded.fields is fields


def test_codec_loads_each_reports_what_loads_refuses() -> None:
    texts = {"a": "1", "b": " [2] ", "c": "{", "d": '"x"', "e": "1,2"}
    values, failed = default_codec.loads_each(texts)
    assert values == {"a": 1, "b": [2], "d": "x"}
    assert failed == ["c", "e"]


def test_system_fields_are_adopted() -> None:
    principal = Principal("42", roles={"admin"})
    fields = {
        META: META_TEXT,
        PRINCIPAL: default_codec.dumps(principal.to_data()),
        CSRF: default_codec.dumps("A" * 43),
        FLASH: default_codec.dumps([["info", "hi"]]),
        "x:unknown": "ignored, even when it is no JSON at all",
    }
    loaded = decode(default_codec, fields)
    assert (loaded.meta.created_at, loaded.meta.last_seen, loaded.meta.ip) == (1.5, 2.5, "::1")
    assert loaded.principal == principal
    assert loaded.flashes == [("info", "hi")]
    assert loaded.values == {}


def test_an_undecodable_value_is_left_out_and_named() -> None:
    fields = {"d:a": "1", "d:bad": "{nope", "d:b": '"two"', META: META_TEXT}
    loaded = decode(default_codec, fields)
    assert loaded.values == {"a": 1, "b": "two"}
    assert loaded.corrupt == ["bad"]


def test_a_text_valid_only_beside_others_is_corrupt() -> None:
    # Spliced into one document, '1,"d:b":2' would parse; on its own it is garbage.
    fields = {"d:a": '1,"d:b":2', "d:b": "3", META: META_TEXT}
    loaded = decode(default_codec, fields)
    assert loaded.values == {"b": 3}
    assert loaded.corrupt == ["a"]


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"d:a": "1"}, KeyError),
        ({META: "{"}, RecordCorrupt),
        ({META: '{"c": "later"}'}, RecordCorrupt),
        ({META: META_TEXT, PRINCIPAL: "[1]"}, RecordCorrupt),
        ({META: META_TEXT, CSRF: '"short"'}, RecordCorrupt),
        ({META: META_TEXT, FLASH: "{", "d:bad": "{"}, RecordCorrupt),
    ],
)
def test_bad_metadata_or_system_fields_condemn_the_record(
    fields: dict[str, str], error: type[Exception]
) -> None:
    with pytest.raises(error):
        decode(default_codec, fields)


def test_the_first_bad_system_field_in_the_record_names_the_failure() -> None:
    fields = {META: META_TEXT, PRINCIPAL: '"not a principal"', CSRF: "{"}
    with pytest.raises(RecordCorrupt, match="malformed system field"):
        decode(default_codec, fields)


def test_a_lone_key_that_looks_like_a_tag_round_trips(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    manager = SyncSessionManager(store, clock=clock)
    for key, value in [("$dict", {"a__": 5}), ("$tuple", [1, 2]), ("$datetime", "x")]:
        session = manager.start()
        session[key] = value
        manager.commit(session)
        assert dict(manager.load(session.id)) == {key: value}


def test_a_rewrite_carries_the_texts_the_session_was_loaded_from(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    manager = SyncSessionManager(store, clock=clock)
    session = manager.start()
    session.update(at=dt.datetime(2026, 1, 2), cart=["apple"], n=1)
    manager.commit(session)
    before = store.load_sync(session.key)
    loaded = manager.load(session.id)
    loaded["n"] = 2
    loaded.regenerate()  # a full rewrite under a new key: untouched values keep their text
    manager.commit(loaded)
    after = store.load_sync(loaded.key)
    assert before is not None
    assert after is not None
    assert _data(after.fields) == {**_data(before.fields), "d:n": "2"}


def _data(fields: Any) -> dict[str, str]:
    return {k: v for k, v in fields.items() if k.startswith("d:")}


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.lists(st.integers(), max_size=2)
)


@given(st.floats(), st.floats(), scalars, scalars, scalars)
def test_metadata_is_written_as_the_plain_encoder_writes_it(
    created: float, seen: float, ip: Any, agent: Any, authenticated: Any
) -> None:
    meta = SessionMeta(created, seen, ip=ip, user_agent=agent, authenticated_at=authenticated)
    try:
        expected = dumps_plain(meta.to_data())
    except ValueError:  # NaN and infinities are no JSON
        with pytest.raises(ValueError):
            meta.dumps()
    else:
        assert meta.dumps() == expected


def test_remembered_metadata_is_handed_out_as_independent_copies() -> None:
    from sessio.fields import _meta_memo

    text = '{"c":1700000000.25,"s":1700000100.5,"ip":"10.0.0.1"}'
    first = decode(default_codec, {META: text}).meta
    assert text in _meta_memo
    first.last_seen = 1.0
    first.ip = "changed"
    again = decode(default_codec, {META: text}).meta
    assert (again.created_at, again.last_seen, again.ip) == (
        1700000000.25,
        1700000100.5,
        "10.0.0.1",
    )
    assert again is not first


def test_malformed_metadata_is_never_remembered() -> None:
    from sessio.fields import _meta_memo

    for text in ('{"c":"x","s":1}', '{"c":1}', "[1, 2]", "{nope"):
        with pytest.raises((RecordCorrupt, KeyError)):
            decode(default_codec, {META: text})
        assert text not in _meta_memo


def test_each_flash_message_and_the_csrf_salt_are_fields_of_their_own() -> None:
    first, second = "s:flash:" + "1" * 24, "s:flash:" + "2" * 24
    fields = {
        META: META_TEXT,
        second: default_codec.dumps(["error", "b"]),
        first: default_codec.dumps(["info", {"n": 1}]),
        "s:flash:" + "3" * 24: default_codec.dumps(["no message"]),
        "s:flash:" + "4" * 24: default_codec.dumps([5, "kind is no string"]),
        "s:csrf-salt": default_codec.dumps("B" * 43),
    }
    loaded = decode(default_codec, fields)
    assert sorted(loaded.flash_fields) == [(first, "info", {"n": 1}), (second, "error", "b")]
    assert sorted(loaded.flash_broken) == ["s:flash:" + "3" * 24, "s:flash:" + "4" * 24]
    assert loaded.csrf_salt == "B" * 43
    assert loaded.csrf_secret is None


def test_an_unparsable_flash_field_is_dropped_like_a_data_value() -> None:
    bad = "s:flash:" + "5" * 24
    loaded = decode(default_codec, {META: META_TEXT, bad: "{", "d:a": "1"})
    assert loaded.flash_broken == [bad]
    assert loaded.values == {"a": 1}


@pytest.mark.parametrize("salt", ['"short"', "5", "[1]"])
def test_a_malformed_csrf_salt_condemns_the_record(salt: str) -> None:
    with pytest.raises(RecordCorrupt):
        decode(default_codec, {META: META_TEXT, "s:csrf-salt": salt})
