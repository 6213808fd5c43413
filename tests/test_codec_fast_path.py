"""The codec's fast paths (one C encoder built once, the C scanner called directly) change nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sessio import Codec, RecordCorrupt, SessionMeta, ValueNotSerializable
from sessio.codec import default_codec

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _reference(value: Any) -> str:
    encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return encoder.encode(default_codec.tag(value))


def test_the_fast_encoder_is_in_use() -> None:
    assert default_codec._encode != default_codec._encoder.encode


@given(json_values)
def test_dumps_writes_what_the_reference_encoder_writes(value: Any) -> None:
    assert default_codec.dumps(value) == _reference(value)


@given(json_values)
def test_loads_reads_back_what_dumps_wrote(value: Any) -> None:
    assert default_codec.loads(default_codec.dumps(value)) == value


def test_without_the_c_encoder_the_codec_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(json.encoder, "c_make_encoder", None)
    codec = Codec()
    assert codec._encode == codec._encoder.encode
    assert codec.dumps({"a": (1, 2)}) == '{"a":{"$tuple":[1,2]}}'


def test_surrounding_whitespace_still_decodes() -> None:
    assert default_codec.loads(' {"a": 1} \n') == {"a": 1}
    assert default_codec.loads(b"[1]") == [1]


@pytest.mark.parametrize("text", ["", "1 2", '{"a": 1} x', "{", "nul", '"\\x"', "[1,]", "\ufeff1"])
def test_garbage_and_trailing_data_are_corrupt(text: str) -> None:
    with pytest.raises(RecordCorrupt):
        default_codec.loads(text)


def test_nan_and_cycles_are_still_refused() -> None:
    with pytest.raises(ValueNotSerializable):
        default_codec.dumps(float("nan"))
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueNotSerializable):
        default_codec.dumps(loop, key="loop")


def test_tags_survive_the_fast_decoder() -> None:
    text = default_codec.dumps({"t": (1, 2), "b": b"\x00", "$tuple": 1})
    assert default_codec.loads(text) == {"t": (1, 2), "b": b"\x00", "$tuple": 1}


def test_metadata_is_written_as_the_codec_would_write_it() -> None:
    meta = SessionMeta(1.5, 2.25, ip="::1", user_agent='agent "é"', authenticated_at=2.0)
    assert meta.dumps() == default_codec.dumps(meta.to_data())
    assert SessionMeta.from_data(default_codec.loads(meta.dumps())).to_data() == meta.to_data()
