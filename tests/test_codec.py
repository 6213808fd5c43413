"""Codec: JSON with tagged types, lossless for every tagged type, and total on garbage."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import enum
import json
import uuid
from decimal import Decimal
from typing import Any

import msgspec
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sessio import Codec, ConfigurationError, RecordCorrupt, Tag, ValueNotSerializable
from sessio.codec import default_codec

codec = Codec()


def shape(value: Any) -> Any:
    """``value`` as nested (type name, content) pairs: equal only where the types match too,
    which ``==`` alone does not check (``1 == 1.0 == True``)."""
    kind = type(value)
    if kind in (list, tuple):
        return (kind.__name__, tuple(shape(v) for v in value))
    if kind in (set, frozenset):
        return (kind.__name__, frozenset(shape(v) for v in value))
    if kind is dict:
        return ("dict", tuple((shape(k), shape(v)) for k, v in value.items()))
    if kind in (dt.datetime, dt.time):
        return (kind.__name__, value.isoformat())  # the UTC offset counts, not the zone's name
    return (kind.__name__, repr(value))


def round_trip(value: Any) -> Any:
    return codec.loads(codec.dumps(value))


# -- strategies ---------------------------------------------------------------------------------------

# Whole seconds: real zones have offsets like LMT's +00:09:21, and CPython's fromisoformat()
# loses an offset made of microseconds alone, which no zone has.
offsets = st.integers(-86_399, 86_399).map(lambda s: dt.timedelta(seconds=s))
zones = st.none() | st.just(dt.timezone.utc) | offsets.map(dt.timezone)

hashable_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.binary()
    | st.datetimes(timezones=zones)
    | st.dates()
    | st.times(timezones=zones)
    | st.timedeltas()
    | st.uuids()
    | st.decimals(allow_nan=False)
)
hashables = st.recursive(
    hashable_leaves,
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=6,
)

TAG_LIKE = ["$tuple", "$set", "$frozenset", "$bytes", "$datetime", "$date", "$time"]
TAG_LIKE += ["$timedelta", "$uuid", "$decimal", "$dict", "$map", "$dict__", "$tuple__", "$"]
TAG_LIKE += ["$unknown", "$$tuple", "tuple"]


def containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=4).map(tuple)
        | st.sets(hashables, max_size=4)
        | st.frozensets(hashables, max_size=4)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4)
        | st.dictionaries(hashables, inner, max_size=4)
        | st.dictionaries(st.sampled_from(TAG_LIKE), inner, min_size=1, max_size=2)
    )


values = st.recursive(hashable_leaves, containers, max_leaves=16)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from([*TAG_LIKE, "a", "b__"]) | st.text(max_size=4), inner)
    ),
    max_leaves=12,
)

# -- properties -----------------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(values)
def test_every_value_round_trips_exactly(value: Any) -> None:
    assert shape(round_trip(value)) == shape(value)
    assert round_trip(value) == value


@settings(deadline=None)
@given(values)
def test_encoding_is_deterministic(value: Any) -> None:
    text = codec.dumps(value)
    assert codec.dumps(codec.loads(text)) == text  # an unchanged value never looks changed
    json.loads(text)  # and it is plain JSON


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_loads_of_any_text_returns_or_raises_record_corrupt(text: str) -> None:
    with contextlib.suppress(RecordCorrupt):
        codec.loads(text)


@settings(deadline=None)
@given(st.binary())
def test_loads_of_any_bytes_returns_or_raises_record_corrupt(data: bytes) -> None:
    with contextlib.suppress(RecordCorrupt):
        codec.loads(data)


@settings(max_examples=250, deadline=None)
@given(json_values)
def test_loads_of_any_json_tag_soup_returns_or_raises_record_corrupt(value: Any) -> None:
    with contextlib.suppress(RecordCorrupt):
        codec.loads(json.dumps(value))


# -- the wire format --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (dt.datetime(2026, 1, 2), '{"$datetime":"2026-01-02T00:00:00"}'),
        ((1, 2), '{"$tuple":[1,2]}'),
        ({"$tuple": 5}, '{"$dict":{"$tuple__":5}}'),
        ({"$dict": {"a": 1}}, '{"$dict":{"$dict__":{"a":1}}}'),
        ({1: "a"}, '{"$map":[[1,"a"]]}'),
        (b"\x00\xff", '{"$bytes":"AP8="}'),
        ({"b", "a", "c"}, '{"$set":["a","b","c"]}'),
        (uuid.UUID(int=1), '{"$uuid":"00000000-0000-0000-0000-000000000001"}'),
        (Decimal("1.10"), '{"$decimal":"1.10"}'),
        ("héllo", '"héllo"'),
        ({"$other": 1}, '{"$other":1}'),
    ],
)
def test_the_wire_format(value: Any, text: str) -> None:
    assert codec.dumps(value) == text
    assert shape(codec.loads(text)) == shape(value)


@pytest.mark.parametrize(
    "delta",
    [
        dt.timedelta(days=100_000, microseconds=1),
        dt.timedelta.max,
        dt.timedelta.min,
        dt.timedelta(microseconds=-1),
        dt.timedelta(seconds=0.1),
    ],
)
def test_timedeltas_keep_every_microsecond(delta: dt.timedelta) -> None:
    assert round_trip(delta) == delta


def test_old_timedelta_encoding_in_seconds_still_loads() -> None:
    assert codec.loads('{"$timedelta":90.5}') == dt.timedelta(seconds=90.5)


def test_set_encoding_does_not_depend_on_how_the_set_was_built() -> None:
    grown = set(range(100))
    grown &= {7, 8, 64}
    assert codec.dumps(grown) == codec.dumps({64, 8, 7}) == codec.dumps({7, 8, 64})
    nested = {frozenset({"b", "a"}), frozenset({"c"})}
    assert codec.dumps(nested) == codec.dumps(set(nested))


# -- models and subclasses -----------------------------------------------------------------------------


@dataclasses.dataclass
class Item:
    sku: str
    qty: int = 1


@dataclasses.dataclass
class Cart:
    items: list[Item]
    at: dt.date


class Color(enum.IntEnum):
    RED = 1


class Name(str, enum.Enum):
    ADA = "ada"


class PydanticUser(pydantic.BaseModel):
    name: str
    born: dt.date


class MsgspecUser(msgspec.Struct):
    name: str
    tags: set[str]


def test_models_are_written_as_plain_objects() -> None:
    cart = Cart([Item("a", 2)], dt.date(2026, 5, 1))
    assert round_trip(cart) == {"items": [{"sku": "a", "qty": 2}], "at": dt.date(2026, 5, 1)}
    assert round_trip(PydanticUser(name="ada", born=dt.date(1815, 12, 10))) == {
        "name": "ada",
        "born": "1815-12-10",
    }
    assert round_trip(MsgspecUser("ada", {"x"})) == {"name": "ada", "tags": {"x"}}
    assert round_trip([Color.RED, Name.ADA]) == [1, "ada"]


@dataclasses.dataclass(frozen=True)
class Frozen:
    name: str


@pytest.mark.parametrize(
    "value",
    [
        {Frozen("a")},
        frozenset({(1, Frozen("a"))}),
        {Frozen("a"): 1},
        {(1, Frozen("a")): 1},
        {Color.RED: {Frozen("a")}},
    ],
    ids=["set", "frozenset-of-tuples", "dict-key", "tuple-key", "nested"],
)
def test_set_members_and_keys_that_would_not_load_back_fail_at_once(value: Any) -> None:
    """A frozen dataclass is hashable, but it is stored as a dict: a set of them would encode
    and then fail to load on the next request, losing the value far from the code that set it."""
    with pytest.raises(ValueNotSerializable, match="'k'"):
        codec.dumps(value, key="k")


def test_hashable_members_that_load_back_hashable_are_fine() -> None:
    value = {(1, "a", (b"x", None)), frozenset({dt.date(2026, 1, 1)}), Color.RED, Name.ADA}
    assert round_trip(value) == value
    assert round_trip({(1, 2): "tuple key", Decimal(1): "decimal key"})[(1, 2)] == "tuple key"


# -- failures ---------------------------------------------------------------------------------------------


def test_unsupported_values_name_their_type_and_key() -> None:
    with pytest.raises(ValueNotSerializable) as info:
        codec.dumps({"a": [object()]}, key="cart")
    assert info.value.evidence == {"key": "cart", "type": "object"}
    assert "'cart'" in str(info.value)
    with pytest.raises(ValueNotSerializable) as anonymous:
        codec.dumps(object())
    assert anonymous.value.evidence == {"type": "object"}
    for bad in (float("nan"), float("inf"), [float("-inf")], {1, object}):
        with pytest.raises(ValueNotSerializable):
            codec.dumps(bad, key="k")
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(ValueNotSerializable, match="'k'"):
        codec.dumps(loop, key="k")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "[1,]",
        "\x00",
        '{"$dict": 5}',
        '{"$dict": {"a": 1}}',
        '{"$dict": {"a__": 1, "b__": 2}}',
        '{"$map": 5}',
        '{"$map": [[[1], 2]]}',
        '{"$map": [[1]]}',
        '{"$map": [[{"$set": [1]}, 2]]}',
        '{"$bytes": "!!"}',
        '{"$bytes": 5}',
        '{"$datetime": "yesterday"}',
        '{"$date": null}',
        '{"$time": [1]}',
        '{"$timedelta": "x"}',
        '{"$timedelta": 1e300}',
        '{"$uuid": "x"}',
        '{"$uuid": 5}',
        '{"$uuid": [1]}',
        '{"$uuid": {"a": 1}}',
        '{"$decimal": "x"}',
        '{"$decimal": [1]}',
        '{"$set": [[1]]}',
        '{"$frozenset": 1}',
        '{"$tuple": 1}',
        "[" * 100_000,
        "1" * 5000,
    ],
)
def test_malformed_text_is_record_corrupt(text: str) -> None:
    with pytest.raises(RecordCorrupt) as info:
        codec.loads(text)
    assert info.value.code == "RECORD_CORRUPT"


def test_invalid_utf8_is_record_corrupt() -> None:
    with pytest.raises(RecordCorrupt):
        codec.loads(b"\xff\xfe")
    assert codec.loads(b'{"a": 1}') == {"a": 1}


# -- custom tags ----------------------------------------------------------------------------------------


class Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Point) and (self.x, self.y) == (other.x, other.y)

    __hash__ = None  # type: ignore[assignment]


POINT = Tag("point", Point, lambda p: [p.x, p.y], lambda v: Point(*v))


def test_custom_tags() -> None:
    custom = Codec([POINT])
    assert custom.dumps(Point(1, 2)) == '{"$point":[1,2]}'
    assert custom.loads(custom.dumps({"p": [Point(1, 2)]})) == {"p": [Point(1, 2)]}
    with pytest.raises(RecordCorrupt):
        custom.loads('{"$point": "nope"}')  # a payload its decoder refuses
    with pytest.raises(ValueNotSerializable):
        codec.dumps(Point(1, 2))  # unknown to the default codec
    assert codec.loads('{"$point":[1,2]}') == {"$point": [1, 2]}  # just a dict there
    assert custom.dumps({"$point": 1}) == '{"$dict":{"$point__":1}}'


def test_with_tags_adds_tags_that_take_precedence() -> None:
    extended = default_codec.with_tags(POINT)
    assert extended.loads(extended.dumps(Point(3, 4))) == Point(3, 4)
    as_text = Tag("isodate", dt.date, lambda d: d.isoformat(), dt.date.fromisoformat)
    assert Codec().with_tags(as_text).dumps(dt.date(2026, 1, 1)) == '{"$isodate":"2026-01-01"}'


def test_tag_names_are_unique() -> None:
    with pytest.raises(ConfigurationError):
        Codec([POINT, Tag("point", complex, str, complex)])
    with pytest.raises(ConfigurationError):
        Codec([Tag("tuple", list, list, list)])


# -- one rule for values, checked when they are set ----------------------------------------------


LONE = json.loads('"\\ud800"')  # what request.json() hands any client that sends "\ud800"


@pytest.mark.parametrize(
    "value",
    [
        LONE,
        "ok" + json.loads('"\\udfff"'),
        [["deep", {"x": LONE}]],
        {LONE: 1},
        {"a": {json.loads('"\\udc00"'): [1]}},
        (1, LONE),
        {1: LONE},
        {LONE},
    ],
)
def test_text_that_is_not_valid_unicode_is_refused_naming_the_key(value: Any) -> None:
    """A lone surrogate in any string or dict key, at any depth, is no storable text: refused
    when set, naming the key, instead of failing later in a store (or never loading back)."""
    with pytest.raises(ValueNotSerializable) as caught:
        codec.dumps(value, key="profile")
    assert caught.value.evidence["key"] == "profile"
    assert "profile" in str(caught.value)


def test_valid_unicode_of_every_plane_is_kept() -> None:
    for text in ("héllo", "🍪", json.loads('"\\ud83c\\udf6a"'), "\u2028\x00\ufffd", "\U0010ffff"):
        assert round_trip({text: [text]}) == {text: [text]}


@pytest.mark.parametrize("key", [LONE, "a\x00b"])
def test_a_key_no_store_could_hold_is_refused(key: str) -> None:
    with pytest.raises(ValueNotSerializable):
        codec.dumps(1, key=key)


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_nesting_is_bounded_the_same_way_when_set_and_when_loaded() -> None:
    """What was set always loads; a record nested deeper (a tampered store) is corrupt, never
    a RecursionError when the session re-encodes it at commit."""
    from sessio.codec import MAX_DEPTH

    assert round_trip(nested(MAX_DEPTH)) == nested(MAX_DEPTH)
    for depth in (MAX_DEPTH + 1, 500, 5000):
        with pytest.raises(ValueNotSerializable):
            codec.dumps(nested(depth), key="k")
        text = "[" * depth + "1" + "]" * depth
        with pytest.raises(RecordCorrupt):
            codec.loads(text)
        assert codec.loads_each({"k": text}) == ({}, ["k"])
    # Brackets inside strings are text, not nesting.
    assert codec.loads(json.dumps(["[" * 500 + "{" * 500])) == ["[" * 500 + "{" * 500]
    as_map = {(1,): nested(MAX_DEPTH // 2)}
    assert round_trip(as_map) == {(1,): nested(MAX_DEPTH // 2)}


@pytest.mark.parametrize(
    "text",
    ['"\\ud800"', '["a", "\\udc00"]', '{"\\ud800": 1}', '"\\ud800\\ud800"', '"\\udc00\\ud800"'],
)
def test_a_record_with_a_lone_surrogate_is_corrupt(text: str) -> None:
    with pytest.raises(RecordCorrupt):
        codec.loads(text)
    assert codec.loads_each({"k": text}) == ({}, ["k"])
    assert codec.loads('"\\ud83c\\udf6a"') == "🍪"  # an escaped pair is one valid character


@pytest.mark.parametrize(
    "text", [5, None, 1.5, memoryview(b"1"), ["1"], b"\xff", b'"\xed\xa0\x80"', bytearray(b"{")]
)
def test_loads_of_anything_a_driver_returns_is_a_value_or_corrupt(text: Any) -> None:
    with pytest.raises(RecordCorrupt):
        codec.loads(text)


def test_an_apps_tag_decoder_that_fails_in_any_way_is_corruption() -> None:
    class Odd(Exception):
        pass

    def refuse(value: Any) -> Any:
        raise Odd(value)

    custom = Codec([Tag("odd", Point, lambda p: [p.x, p.y], refuse)])
    with pytest.raises(RecordCorrupt):
        custom.loads('{"$odd": [1, 2]}')


# -- zoned datetimes -----------------------------------------------------------------------------


def test_a_zoned_datetime_keeps_its_zone() -> None:
    """A ``ZoneInfo`` datetime comes back in the same zone (by key), so arithmetic after a
    reload follows that zone's daylight-saving rules, not a frozen offset."""
    import zoneinfo

    paris = zoneinfo.ZoneInfo("Europe/Paris")
    before = dt.datetime(2026, 3, 28, 12, 0, tzinfo=paris)  # the day before DST starts
    text = codec.dumps(before)
    assert text == '{"$datetime":"2026-03-28T12:00:00+01:00[Europe/Paris]"}'
    after = codec.loads(text)
    assert after == before
    assert after.tzinfo is paris
    tomorrow = after + dt.timedelta(days=1)
    assert tomorrow.utcoffset() == dt.timedelta(hours=2)
    # The second 01:30 of a DST end keeps its fold.
    second = dt.datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=paris)
    assert codec.loads(codec.dumps(second)).utcoffset() == dt.timedelta(hours=1)
    fixed = dt.datetime(2026, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))
    assert shape(round_trip(fixed)) == shape(fixed)


def test_a_zone_that_cannot_travel_is_refused_clearly() -> None:
    import zoneinfo

    class Custom(dt.tzinfo):
        def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
            return dt.timedelta(hours=1)

        def dst(self, when: dt.datetime | None) -> dt.timedelta:
            return dt.timedelta(0)

    for value in (
        dt.datetime(2026, 1, 1, tzinfo=Custom()),
        dt.time(12, 0, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
    ):
        with pytest.raises(ValueNotSerializable, match="zone") as caught:
            codec.dumps({"when": value}, key="when")
        assert caught.value.evidence["key"] == "when"


@pytest.mark.parametrize(
    "text",
    [
        '{"$datetime": "2026-01-01T00:00:00[Europe/Paris]"}',  # a zone without an offset
        '{"$datetime": "2026-01-01T00:00:00+01:00[No/Such_Zone]"}',
        '{"$datetime": "2026-01-01T00:00:00+01:00[../../etc/passwd]"}',
        '{"$datetime": "2026-01-01T00:00:00+01:00Europe/Paris]"}',
        '{"$datetime": 5}',
    ],
)
def test_a_malformed_zoned_datetime_is_corrupt(text: str) -> None:
    with pytest.raises(RecordCorrupt):
        codec.loads(text)


@pytest.mark.parametrize(
    "text",
    ["[NaN]", '{"a": Infinity}', "[-Infinity]", "[1e400]", "[-1e999]", "[" + "9" * 400 + ".0]"],
)
def test_a_stored_number_that_would_not_encode_again_is_corrupt(text: str) -> None:
    """Python's JSON reads NaN, Infinity and overflowing floats, which the codec never writes:
    such a value loaded into a list would fail to re-encode at commit (a 500 per request)."""
    with pytest.raises(RecordCorrupt):
        codec.loads(text)
    assert codec.loads_each({"k": text}) == ({}, ["k"])
    assert codec.loads("[1e300, 2.5e-300]") == [1e300, 2.5e-300]
    assert codec.loads('"1e400 NaN"') == "1e400 NaN"


def json_depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((json_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((json_depth(v) for v in value.values()), default=0)
    return 0


@st.composite
def towers(draw: st.DrawFn) -> Any:
    """Lists and dicts of random width holding towers of random depth (60 to 70 around the
    bound), with bracket characters inside strings to mislead a text scan."""
    leaves = st.sampled_from([1, "[", "]]", "{[", '"', "\\", None, []])
    items = []
    for _ in range(draw(st.integers(1, 4))):
        value: Any = draw(leaves)
        for level in range(draw(st.integers(0, 70))):
            value = [value] if level % 3 else {"k": value, "[": "}"}
        items.append(value)
    return items


@settings(max_examples=200, deadline=None)
@given(towers())
def test_the_depth_check_agrees_with_the_parsed_value(value: Any) -> None:
    from sessio._values import MAX_DEPTH, too_deep

    text = json.dumps(value)
    assert too_deep(text) == (json_depth(value) > MAX_DEPTH)
