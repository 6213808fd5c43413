"""How RedisStore keeps a record in a Redis hash: reserved names, text checks, decoding.

A record's fields are the hash's fields; a field name that starts with ``#`` is stored with one
more ``#``, because ``#e`` (expiry), ``#p`` (principal), ``#i`` (cluster: the score the record
is filed under) and ``#r`` (the request id that wrote it) are the store's own.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import RecordCorrupt
from .base import Record, Saved, SaveOutcome

__all__ = ["OUTCOMES", "decode_record", "pairs", "stored", "text"]

#: Script replies that are not ``applied``, as outcomes.
OUTCOMES = {
    "missing": Saved(SaveOutcome.MISSING),
    "exists": Saved(SaveOutcome.EXISTS),
    "rejected": Saved(SaveOutcome.REJECTED),
}


def text(value: Any) -> str:
    """A reply item as text."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def stored(name: str) -> str:
    # A record field whose name starts with "#" is stored with one more "#": "#e" is ours.
    return "#" + name if name[:1] == "#" else name


def pairs(fields: Mapping[str, str]) -> list[str]:
    """``fields`` as the flat name/value list the scripts take (checked by ensure_storable)."""
    out: list[str] = []
    for name, value in fields.items():
        out += (stored(name), value)
    return out


def decode_record(key: str, raw: Any) -> Record | None:
    """The record in an ``HGETALL`` reply (a list or a dict), or ``None`` when empty."""
    if not raw:
        return None
    if isinstance(raw, dict):  # through a client: its reply callback made a dict
        raw = [item for pair in raw.items() for item in pair]
    try:
        items = [item.decode() if type(item) is bytes else str(item) for item in raw]
    except UnicodeDecodeError:
        raise RecordCorrupt("a stored session holds bytes that are not UTF-8") from None
    fields = dict(zip(items[::2], items[1::2], strict=True))
    expires = fields.pop("#e", None)
    principal = fields.pop("#p", None)
    for name in [name for name in fields if name[:1] == "#"]:
        value = fields.pop(name)
        if name[:2] == "##":
            fields[name[1:]] = value
    try:
        expires_at = float(expires)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise RecordCorrupt("a stored session has no valid expiry") from None
    if not math.isfinite(expires_at):
        raise RecordCorrupt("a stored session has no valid expiry")
    return Record(key, fields, expires_at, principal)
