"""JSON with tagged types: the only way session values are encoded. Never pickle.

A value JSON cannot express is written as a one-key object whose key names its tag::

    datetime(2026, 1, 2)   ->  {"$datetime": "2026-01-02T00:00:00"}
    (1, 2)                 ->  {"$tuple": [1, 2]}
    {"$tuple": 5}          ->  {"$dict": {"$tuple__": 5}}     (a user dict that looks like a tag)

Dataclasses, pydantic models and msgspec structs are written as plain objects; read them back
typed with :meth:`sessio.Session.get_as`. Add types with :class:`Tag`.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from ._values import (
    MAX_DEPTH,
    finite_float,
    refuse_constant,
    sound,
    storable,
    storable_key,
    too_deep,
)
from ._zones import datetime_from_text, datetime_text, time_text
from .errors import ConfigurationError, RecordCorrupt, ValueNotSerializable

# Plain sorted(), as tests/test_public_api.py checks.
__all__ = ["Codec", "MAX_DEPTH", "Tag", "default_codec", "storable_key"]  # noqa: RUF022

_SCALARS = (str, int, float, bool, type(None))
# Too short to nest beyond MAX_DEPTH.
_SHORT = 2 * MAX_DEPTH


@dataclasses.dataclass(frozen=True)
class Tag:
    """How one Python type is written: ``encode`` must return JSON-able data, ``decode`` reverses it.

    ``name`` is written as ``"$" + name``; it must be unique within a codec.
    """

    name: str
    type: type
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _timedelta_parts(value: dt.timedelta) -> list[int]:
    # Exact: total_seconds() is a float and loses microseconds beyond about 100 days.
    return [value.days, value.seconds, value.microseconds]


def _timedelta(data: Any) -> dt.timedelta:
    if isinstance(data, list) and len(data) == 3 and all(type(n) is int for n in data):
        return dt.timedelta(days=data[0], seconds=data[1], microseconds=data[2])
    if type(data) in (int, float):  # the first encoding: seconds
        return dt.timedelta(seconds=data)
    raise TypeError("a timedelta is [days, seconds, microseconds]")


_BUILTIN_TAGS: tuple[Tag, ...] = (
    # Order matters where types nest: datetime is a subclass of date, bool of int (never tagged).
    Tag("tuple", tuple, list, tuple),
    Tag("set", set, list, set),
    Tag("frozenset", frozenset, list, frozenset),
    Tag("bytes", bytes, _b64, lambda v: base64.b64decode(v, validate=True)),
    Tag("datetime", dt.datetime, datetime_text, datetime_from_text),
    Tag("date", dt.date, dt.date.isoformat, dt.date.fromisoformat),
    Tag("time", dt.time, time_text, dt.time.fromisoformat),
    Tag("timedelta", dt.timedelta, _timedelta_parts, _timedelta),
    Tag("uuid", uuid.UUID, str, uuid.UUID),
    Tag("decimal", Decimal, str, Decimal),
)


class Codec:
    """Encodes session values to JSON text and back, losslessly for every tagged type.

    >>> codec = Codec()
    >>> codec.loads(codec.dumps({"at": (1, b"x")}))
    {'at': (1, b'x')}
    """

    def __init__(self, tags: Iterable[Tag] = ()) -> None:
        extra = tuple(tags)
        self._tags: tuple[Tag, ...] = extra + _BUILTIN_TAGS
        names = [tag.name for tag in self._tags]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"duplicate tag names in {names}")
        self._by_type: dict[type, Tag] = {}
        for tag in reversed(self._tags):  # earlier tags win for the same type
            self._by_type[tag.type] = tag
        self._by_key: dict[str, Tag] = {"$" + tag.name: tag for tag in self._tags}
        self._encoder = json.JSONEncoder(
            ensure_ascii=False, allow_nan=False, separators=(",", ":"), check_circular=True
        )
        self._encode = _fast_encoder(self._encoder)
        self._decoder = json.JSONDecoder(
            object_hook=self._untag, parse_float=finite_float, parse_constant=refuse_constant
        )
        # The scanner parses a whole document in C; JSONDecoder.decode() wraps it in two Python
        # calls and two regex matches for surrounding whitespace, which sessio never writes.
        # (typeshed does not declare the attribute JSONDecoder.__init__ sets.)
        self._scan: Callable[[str, int], tuple[Any, int]] = self._decoder.scan_once  # type: ignore[attr-defined]

    def with_tags(self, *tags: Tag) -> Codec:
        """A new codec that also knows ``tags`` (which take precedence over existing ones)."""
        builtin = set(_BUILTIN_TAGS)
        return Codec(tags + tuple(t for t in self._tags if t not in builtin))

    # -- encoding -----------------------------------------------------------------------------

    def dumps(self, value: Any, *, key: str | None = None) -> str:
        """JSON text for ``value``; raises :class:`ValueNotSerializable` naming ``key``.

        Refused as well as types the codec does not know: text that is not valid Unicode (a lone
        surrogate, as ``json.loads('"\\ud800"')`` hands any client) in a string or a dict key
        at any depth, nesting deeper than :data:`MAX_DEPTH`, and a ``key`` with a lone surrogate
        or a NUL (no store could hold such a field name).
        """
        try:
            # The checks are inlined for the common case (short ASCII): a call costs more.
            if (
                type(key) is str
                and not (key.isascii() and "\0" not in key)
                and not storable_key(key)
            ):
                raise ValueNotSerializable(
                    f"session key {key!r} is not storable text (lone surrogate or NUL)", key=key
                )
            text = self._encode(self.tag(value))
            if not text.isascii() and not storable(text):
                raise ValueNotSerializable(
                    "the value holds text that is not valid Unicode (a lone surrogate)",
                    type="str",
                )
            if len(text) > _SHORT and too_deep(text):
                raise ValueNotSerializable(
                    f"the value nests deeper than {MAX_DEPTH} levels", type=type(value).__qualname__
                )
            return text
        except ValueNotSerializable as exc:
            if key is not None and exc.evidence.get("key") is None:
                raise ValueNotSerializable(
                    f"session key {key!r}: {exc.message}", key=key, type=exc.evidence.get("type")
                ) from None
            raise
        except (ValueError, RecursionError) as exc:  # NaN/inf, circular references
            where = f"session key {key!r}" if key is not None else "value"
            raise ValueNotSerializable(f"{where} cannot be encoded: {exc}", key=key) from None

    def tag(self, value: Any) -> Any:
        """``value`` rewritten into plain JSON data (dicts, lists, str, numbers, bool, None)."""
        cls = type(value)
        if cls in _SCALARS:
            return value
        if cls is dict:
            return self._tag_dict(value)
        if cls is list:
            return [self.tag(item) for item in value]
        tag = self._by_type.get(cls) or self._find_tag(value)
        if tag is not None:
            data = self.tag(tag.encode(value))
            if tag.type in (set, frozenset) and isinstance(data, list):
                self._check_hashable(value)
                # A set's iteration order depends on its history and the hash seed: sort, so an
                # unchanged set encodes the same after a reload (else it looks modified) and in
                # every process.
                data.sort(key=self._encoder.encode)
            return {"$" + tag.name: data}
        if isinstance(value, (str, int, float)):  # str/int/float subclasses such as IntEnum
            return value
        if isinstance(value, dict):
            return self._tag_dict(value)
        if isinstance(value, list):
            return [self.tag(item) for item in value]
        plain = _plain(value)
        if plain is not None:
            return self.tag(plain)
        raise ValueNotSerializable(
            f"{cls.__module__}.{cls.__qualname__} is not a supported session value "
            "(use JSON types, a tagged type, a dataclass/pydantic/msgspec model, or add a Tag)",
            type=cls.__qualname__,
        )

    def _find_tag(self, value: Any) -> Tag | None:
        for tag in self._tags:
            if isinstance(value, tag.type):
                return tag
        return None

    def _check_hashable(self, items: Any) -> None:
        """Refuse set members and dict keys that would not decode to something hashable.

        A frozen dataclass is hashable but comes back as a dict: accepting it would store a
        value that fails to load on the next request, far from the code that set it.
        """
        for item in items:
            if not self._decodes_hashable(item):
                raise ValueNotSerializable(
                    f"{type(item).__qualname__} in a set or as a dict key would not load back "
                    "hashable (it is stored as plain data)",
                    type=type(item).__qualname__,
                )

    def _decodes_hashable(self, value: Any) -> bool:
        if type(value) in _SCALARS:
            return True
        tag = self._by_type.get(type(value)) or self._find_tag(value)
        if tag is not None:
            if tag.type in (tuple, frozenset):
                return all(self._decodes_hashable(item) for item in value)
            return tag.type is not set
        return isinstance(value, (str, int, float))

    def _tag_dict(self, value: dict[Any, Any]) -> Any:
        if not all(type(k) is str for k in value):
            self._check_hashable(value)
            return {"$map": [[self.tag(k), self.tag(v)] for k, v in value.items()]}
        out = {k: self.tag(v) for k, v in value.items()}
        if len(out) == 1:
            (only,) = out
            if only in self._by_key or only in ("$dict", "$map"):
                return {"$dict": {only + "__": out[only]}}
        return out

    # -- decoding -----------------------------------------------------------------------------

    def loads(self, text: str | bytes) -> Any:
        """The value ``text`` encodes; raises :class:`RecordCorrupt` for anything malformed."""
        try:
            if not isinstance(text, str):
                text = text.decode("utf-8")
            try:
                value, end = self._scan(text, 0)
            except StopIteration:
                end = -1
            if end != len(text):  # whitespace, trailing data or garbage: the full path decides
                value = self._decoder.decode(text)
        except RecordCorrupt:
            raise
        except (
            ValueError,  # UnicodeDecodeError, bad JSON, a lone surrogate in a BLOB's bytes
            TypeError,
            LookupError,
            ArithmeticError,
            AttributeError,  # neither str nor bytes (an int, a memoryview from a driver)
            RecursionError,
        ) as exc:
            raise RecordCorrupt(f"undecodable session value: {exc.__class__.__name__}") from None
        if not sound(text, value):
            raise RecordCorrupt("undecodable session value: too deep, not Unicode or not finite")
        return value

    def loads_each(
        self, texts: Mapping[str, str], *, skip: str | None = None
    ) -> tuple[dict[str, Any], list[str]]:
        """Every text of ``texts`` decoded, by name, and the names whose text is malformed.

        Each text is parsed and validated on its own, exactly as :meth:`loads` would, but a
        whole record takes one call instead of one per field. The field named ``skip`` (one
        the caller decodes its own way) is left out.
        """
        scan = self._scan
        values: dict[str, Any] = {}
        failed: list[str] = []
        for name, text in texts.items():
            if name == skip:
                continue
            try:
                value, end = scan(text, 0)
                # Inline for the common case, a short ASCII text without escapes (too short
                # to nest deeply); sound() decides the others (a call costs more than these).
                if end == len(text) and (
                    (len(text) <= _SHORT and text.isascii() and "\\u" not in text)
                    or sound(text, value)
                ):
                    values[name] = value
                    continue
            except (
                StopIteration,
                ValueError,
                TypeError,
                LookupError,
                ArithmeticError,
                RecursionError,
            ):
                pass  # loads() below gives the verdict, on the full path
            try:
                values[name] = self.loads(text)
            except RecordCorrupt:
                failed.append(name)
        return values, failed

    def _untag(self, obj: dict[str, Any]) -> Any:
        if len(obj) != 1:
            return obj
        ((key, payload),) = obj.items()
        if not key.startswith("$"):
            return obj
        if key == "$dict":
            if not isinstance(payload, dict) or len(payload) != 1:
                raise RecordCorrupt("malformed $dict tag")
            ((escaped, inner),) = payload.items()
            if not escaped.endswith("__"):
                raise RecordCorrupt("malformed $dict tag")
            return {escaped[:-2]: inner}
        if key == "$map":
            if not isinstance(payload, list):
                raise RecordCorrupt("malformed $map tag")
            return {_hashable(k): v for k, v in payload}
        tag = self._by_key.get(key)
        if tag is None:
            return obj  # a user dict with one "$..." key that is no tag of ours
        try:
            return tag.decode(payload)
        except Exception as exc:  # any decoder, an app's Tag included
            # e.g. uuid.UUID(5) raises AttributeError: garbage in a tag is corruption, not a crash
            raise RecordCorrupt(f"malformed {key} tag: {exc.__class__.__name__}") from None


def _fast_encoder(encoder: json.JSONEncoder) -> Callable[[Any], str]:
    """``encoder.encode``, minus the C encoder that ``JSONEncoder.encode`` builds on every call.

    The C encoder is built once here, without cycle markers (shared markers would not be
    thread-safe; :meth:`Codec.tag` walks every value first, so a cycle already ends there in a
    ``RecursionError``). Where ``_json`` is missing, or the built one disagrees with the
    reference on a probe document, the plain ``encoder.encode`` is used.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return encoder.encode
    try:
        chunks = make(
            None,
            encoder.default,
            json.encoder.encode_basestring,
            None,
            encoder.key_separator,
            encoder.item_separator,
            encoder.sort_keys,
            encoder.skipkeys,
            encoder.allow_nan,
        )
    except TypeError:  # another interpreter's private signature
        return encoder.encode

    def encode(value: Any) -> str:
        return "".join(chunks(value, 0))

    probe = {"a": [1, 2.5, 'é"\n', None, True, {"b": -0.0}], "": {}}
    try:
        if encode(probe) != encoder.encode(probe) or encode("x") != encoder.encode("x"):
            return encoder.encode
    except Exception:  # any surprise means: do not use the fast path
        return encoder.encode
    return encode


def _hashable(value: Any) -> Any:
    # JSON gives lists back for tuple keys only when untagged; tagged tuples arrive as tuples.
    if isinstance(value, (list, dict)):
        raise RecordCorrupt("unhashable key in $map tag")
    return value


def _plain(value: Any) -> Any:
    """Plain data for a dataclass, pydantic model or msgspec struct; ``None`` if it is neither."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    dump = getattr(value, "model_dump", None)  # pydantic v2
    if callable(dump):
        return dump(mode="json")
    if hasattr(type(value), "__struct_fields__"):  # msgspec.Struct, without importing msgspec
        return {name: getattr(value, name) for name in type(value).__struct_fields__}
    return None


default_codec = Codec()

#: Compact JSON for data known to be plain (str keys, JSON scalars): no tagging walk needed.
#: Session metadata is written with it on every commit.
dumps_plain: Callable[[Any], str] = _fast_encoder(
    json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
)
