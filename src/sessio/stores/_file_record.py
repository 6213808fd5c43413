"""The file store's record format: one JSON object per file, read as untrusted input.

``{"fields": {name: text}, "expires_at": seconds, "principal": text | null, "key": text}``.
Encoding happens before any file is touched, so a value that cannot be written (a lone
surrogate has no UTF-8 form) fails the write with nothing changed.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any

from ..errors import RecordCorrupt, ValueNotSerializable

__all__ = ["FileRecord", "decode", "encode"]


@dataclasses.dataclass(frozen=True, slots=True)
class FileRecord:
    """A decoded session file; ``key`` is the key it was written for (absent in old files)."""

    fields: dict[str, str]
    expires_at: float
    principal: str | None
    key: str | None


def encode(key: str, fields: Mapping[str, str], expires_at: float, principal: str | None) -> bytes:
    """The file's bytes, or ValueNotSerializable."""
    if not math.isfinite(expires_at):
        raise ValueNotSerializable(f"an expiry must be a finite time: {expires_at!r}")
    data = {"fields": dict(fields), "expires_at": expires_at, "principal": principal, "key": key}
    try:
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        return text.encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:  # UnicodeEncodeError is a ValueError
        raise ValueNotSerializable(
            f"the file store cannot hold a value of this write: {exc}"
        ) from None


def decode(raw: bytes) -> FileRecord:
    """The record in ``raw``, or RecordCorrupt (never another exception)."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise RecordCorrupt("session file is not JSON") from None
    if type(data) is not dict:
        raise RecordCorrupt("session file is not a JSON object")
    fields = data.get("fields")
    expires_at: Any = data.get("expires_at")
    principal = data.get("principal")
    key = data.get("key")
    # A NaN expiry compares false with every time: it must not read as "not yet expired".
    if type(expires_at) not in (int, float) or not math.isfinite(expires_at):
        raise RecordCorrupt("session file has no finite expiry")
    if type(fields) is not dict or not all(type(v) is str for v in fields.values()):
        raise RecordCorrupt("session file's fields are not a map of text")
    if (principal is not None and type(principal) is not str) or (
        key is not None and type(key) is not str
    ):
        raise RecordCorrupt("session file's principal or key is not text")
    return FileRecord(fields, float(expires_at), principal, key)
