"""Flask's tagged JSON (``flask.json.tag``) decoded into plain sessio values, with no pickle."""

from __future__ import annotations

import base64
import json
import uuid
from email.utils import parsedate_to_datetime
from typing import Any

from .._values import finite_float, refuse_constant

__all__ = ["TaggedJSON"]


def _untag(value: Any) -> Any:
    """One decoded JSON value with Flask's one-key ``{" t": ...}`` wrappers unwrapped.

    ``" m"`` (Markup) becomes its ``str``: sessio stores text, and re-marking it safe is the
    template's business, not the session's.
    """
    if isinstance(value, list):
        return [_untag(item) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, inner),) = value.items()
        match key:
            case " t":
                return tuple(_untag(item) for item in inner)
            case " b":
                return base64.b64decode(inner, validate=True)
            case " m":
                return str(inner)
            case " u":
                return uuid.UUID(inner)
            case " d":
                return parsedate_to_datetime(inner)
            case " di":  # a dict whose only key starts with a tag-like string
                ((k, v),) = inner.items()
                return {k[:-2] if k.endswith("__") else k: _untag(v)}
    return {k: _untag(v) for k, v in value.items()}


class TaggedJSON:
    """The ``serializer`` itsdangerous is given for Flask cookies: ``loads`` only.

    ``dumps`` exists because itsdangerous' serializer protocol names it; sessio never issues
    Flask cookies, so it writes plain JSON.
    """

    def loads(self, data: str | bytes) -> Any:
        """The session dict a Flask cookie's payload holds."""
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        decoded = json.loads(text, parse_float=finite_float, parse_constant=refuse_constant)
        return _untag(decoded)

    def dumps(self, obj: Any) -> str:
        """Plain compact JSON (never used to issue a cookie)."""
        return json.dumps(obj, separators=(",", ":"))
