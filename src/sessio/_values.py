"""The one rule every session value obeys, in a store and on its way there.

Valid Unicode (no lone surrogate) in every string and key, nesting at most :data:`MAX_DEPTH`
levels, finite numbers, keys without NUL: :class:`~sessio.codec.Codec` refuses a value that
breaks it when the value is set, and treats a stored text that breaks it as corrupt, so what
loads always encodes again at commit.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = [
    "MAX_DEPTH",
    "finite_float",
    "refuse_constant",
    "sound",
    "storable",
    "storable_key",
    "too_deep",
]

#: The deepest nesting of arrays and objects an encoded value may have. The same bound holds when
#: a value is set and when a record is read, so what was stored always loads; and a stored value
#: deep enough to exhaust the interpreter's stack when re-encoded at commit is corrupt, not a 500.
MAX_DEPTH = 64

# Strings are not structure; what is left is brackets, folded to one kind.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_INNERMOST = re.compile(r"\[\]")
_RUNS = re.compile(r"\[+|\]+")
_FOLD = str.maketrans("{}", "[]")


def too_deep(text: str) -> bool:
    """Whether the JSON ``text`` nests deeper than :data:`MAX_DEPTH` (``text`` parsed already).

    Linear: one pass of C regular expressions, then one step per run of brackets (the
    innermost pairs, removed first, count as the one level they are).
    """
    if len(text) <= 2 * MAX_DEPTH or text.count("[") + text.count("{") <= MAX_DEPTH:
        return False  # the common case, in C: too few brackets to nest that deep
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text)).translate(_FOLD)
    depth = 1
    for run in _RUNS.findall(_INNERMOST.sub("", brackets)):
        if run[0] == "[":
            depth += len(run)
            if depth > MAX_DEPTH:
                return True
        else:
            depth -= len(run)
    return False


def sound(text: str, value: Any) -> bool:
    """Whether parsed ``text`` (giving ``value``) is within the rule :meth:`Codec.dumps` enforces,
    so the value encodes again at commit: bounded depth and valid Unicode (finite numbers are
    the decoder's part: see :func:`finite_float` and :func:`refuse_constant`)."""
    if too_deep(text) or not storable(text):
        return False
    if "\\u" in text and ("\\ud" in text or "\\uD" in text):  # only lone ones are refused
        return not _holds_lone_surrogate(value)
    return True


def _holds_lone_surrogate(value: Any) -> bool:
    # Iterative: the value is bounded by MAX_DEPTH, but no recursion is cheaper still.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not storable(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
    return False


def finite_float(text: str) -> float:
    """The JSON decoder's ``parse_float``: ``1e400`` overflows to infinity, which no store
    holds as JSON and which would not encode again; it is refused like NaN."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("a number out of range")
    return value


def refuse_constant(name: str) -> Any:
    """The JSON decoder's ``parse_constant``: NaN and Infinity are never valid stored text."""
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: dumps never writes them


def storable_key(key: str) -> bool:
    """Whether ``key`` can name a session value in every store: valid Unicode, no NUL."""
    return "\0" not in key and storable(key)


def storable(text: str) -> bool:
    """Whether ``text`` is valid Unicode (no lone surrogate) and so fits every store."""
    if text.isascii():  # a flag on the str object: free
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
