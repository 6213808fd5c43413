"""Fuzzing the codec and the record decoder, alone and through a manager loading the record."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from sessio import MemoryStore, RecordCorrupt, Session, SyncSessionManager, ValueNotSerializable
from sessio.codec import default_codec
from sessio.fields import CSRF, FLASH, META, PRINCIPAL, Loaded, decode
from sessio.ids import new_session_id, store_key
from sessio.stores.base import Create, Record
from sessio.transports import TokenSigner

from .strategies import FUZZ, hostile_bytes, hostile_text, json_texts, json_values, total

NAMES = st.one_of(
    st.sampled_from([META, PRINCIPAL, CSRF, FLASH, "d:cart", "d:", "d:\x00", "s:other"]),
    hostile_text,
)
FIELD_VALUES = st.one_of(
    json_texts,
    hostile_bytes,
    st.integers(),
    st.none(),
    st.sampled_from(['{"c": 1, "s": 2}', '{"c": NaN, "s": 1e999}', '{"c": true, "s": "2"}']),
)
records = st.dictionaries(NAMES, FIELD_VALUES, max_size=6)


@FUZZ
@given(st.one_of(json_texts, hostile_bytes))
def test_codec_loads_is_total_and_what_it_loads_encodes_again(text: Any) -> None:
    """A value that loads is one the codec could have written: it re-encodes at commit (no
    500 for a session that merely holds it) and loads back equal."""
    value = total(default_codec.loads, text)
    if isinstance(value, RecordCorrupt):
        return
    again = default_codec.dumps(value, key="fuzzed")  # never ValueNotSerializable
    assert default_codec.loads(again) == value or value != value  # (NaN is refused anyway)


@FUZZ
@given(json_values, hostile_text)
def test_codec_dumps_refuses_only_with_value_not_serializable(value: Any, key: str) -> None:
    text = total(default_codec.dumps, value, key=key)
    if isinstance(text, ValueNotSerializable):
        return
    assert isinstance(text, str)
    assert default_codec.loads(text) == value


@FUZZ
@given(records)
def test_the_record_decoder_raises_only_record_corrupt(fields: dict[str, Any]) -> None:
    result = total(decode, default_codec, fields)
    assert isinstance(result, (Loaded, RecordCorrupt))


SIGNER = TokenSigner("fuzzing-key-for-the-record-decoder-000001")


@FUZZ
@given(records, st.booleans())
def test_a_manager_loading_any_record_answers_with_a_session(
    fields: dict[str, Any], with_meta: bool
) -> None:
    """What a tampered store, a bad migration or a driver's surprise holds never reaches the
    request as an exception: load gives a session (a fresh one for a corrupt record) and
    commit writes it."""
    store = MemoryStore()
    manager = SyncSessionManager(store)
    session_id = new_session_id()
    if with_meta:
        fields = {META: manager.load(None).meta.dumps(), **fields}
    key = store_key(session_id)
    store.save_sync(key, Create({META: "{}"}, 2**40))
    store._records[key] = Record(key, fields, 2**40)  # planted: no save would take garbage
    session = manager.load(session_id)
    assert isinstance(session, Session)
    session["seen"] = True
    manager.commit(session)
