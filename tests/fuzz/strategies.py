"""What the fuzz targets are fed: hostile text and bytes, JSON of any shape, and one rule.

Every target may return a value or raise a typed :class:`~sessio.SessionError`; anything else
(a ``KeyError``, a ``RecursionError``, a ``UnicodeError``) is a bug that would be a 500.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from sessio import SessionError

T = TypeVar("T")

#: Each target's bound: all of tests/fuzz/ runs in well under a minute on one core.
FUZZ = settings(
    max_examples=150,
    deadline=timedelta(seconds=2),  # generous: the machine is shared; the work is microseconds
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=False,
)

B64URL = string.ascii_letters + string.digits + "-_"

#: Text an attacker controls: every code point (lone surrogates too), and runs of the
#: characters parsers split on.
hostile_text = st.one_of(
    st.text(alphabet=st.characters(), max_size=200),
    st.text(alphabet=B64URL + ".=;,\"' \t\r\n\x00\\%[]{}()@:/?#&+", max_size=300),
    st.binary(max_size=300).map(lambda b: b.decode("latin-1")),
)

hostile_bytes = st.one_of(
    st.binary(max_size=400),
    hostile_text.map(lambda t: t.encode("utf-8", "surrogatepass")),
)

#: Any JSON document Python's decoder reads, NaN, huge numbers and deep nesting included.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(alphabet=st.characters(), max_size=20)
    | st.sampled_from(["$tuple", "$set", "$map", "$dict", "$datetime", "$bytes", "$uuid"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(max_size=8) | st.sampled_from(["$tuple", "$set", "$map", "$dict", "$dict__"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=20,
)


def deep(depth: int, opener: str = "[") -> str:
    closer = {"[": "]", "{": "}"}[opener]
    if opener == "{":
        return '{"a":' * depth + "1" + closer * depth
    return opener * depth + closer * depth


json_texts = st.one_of(
    json_values.map(lambda v: json.dumps(v, ensure_ascii=False)),
    json_values.map(lambda v: json.dumps(v)),
    st.integers(1, 3000).map(deep),
    st.integers(1, 3000).map(lambda n: deep(n, "{")),
    hostile_text,
)


def total(target: Callable[..., T], *args: Any, **kwargs: Any) -> T | SessionError:
    """``target(*args)``, or the typed error it raised; any other exception fails the test."""
    try:
        return target(*args, **kwargs)
    except SessionError as exc:
        error = exc
    assert error.code, error  # a stable code, as every SessionError has
    return error


__all__ = ["FUZZ", "hostile_bytes", "hostile_text", "json_texts", "json_values", "total"]
