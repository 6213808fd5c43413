"""SQLiteStore's rows as records: JSON text written, and every row read as untrusted input."""

from __future__ import annotations

import json
import math
from typing import Any

from ..errors import RecordCorrupt, ValueNotSerializable
from .base import Record

__all__ = ["ENCODER", "encode", "record", "valid_records"]

#: Built once: json.dumps() with options builds an encoder per call.
ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_DECODER = json.JSONDecoder()


def _parse(text: str) -> Any:
    """``json.loads(text)``, minus its two whitespace scans when there is none (we write none)."""
    try:
        value, end = _DECODER.raw_decode(text)
    except ValueError:
        return json.loads(text)  # raises, or accepts what only the full path accepts
    return value if end == len(text) else json.loads(text)


_INF = math.inf


def encode(fields: Any) -> str:
    """``fields`` as the JSON text of a row, or ValueNotSerializable."""
    try:
        return ENCODER.encode(fields)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueNotSerializable(f"a field of this write is not text: {exc}") from None


def record(key: str, text: Any, expires_at: Any, principal: Any) -> Record:
    """The row as a Record, or RecordCorrupt: rows are read as untrusted input."""
    try:
        # A hand-edited row may hold anything. SQL sorts text after every number, so a text
        # expiry passes "expires_at > now" and would look live for ever: here it fails the
        # comparison with TypeError, +inf compares False (NaN cannot be stored), and
        # a BLOB is no JSON text (TypeError).
        finite = expires_at < _INF
        fields = _parse(text)
    except (TypeError, ValueError, RecursionError):
        raise RecordCorrupt("a stored record is not JSON text with a numeric expiry") from None
    if (
        not finite
        or type(fields) is not dict
        or (principal is not None and type(principal) is not str)
        or not all(type(v) is str for v in fields.values())
    ):
        raise RecordCorrupt("a stored record is not a map of encoded fields")
    return Record(key, fields, expires_at, principal)


def valid_records(rows: list[Any]) -> list[Record]:
    """The rows that are records; listing skips garbage (loading that key reports it)."""
    records = []
    for key, *rest in rows:
        if type(key) is not str:
            continue
        try:
            records.append(record(key, *rest))
        except RecordCorrupt:
            continue
    return records
