"""How datetimes and times of day travel with their zone through the codec.

A fixed offset travels as the offset (ISO 8601); a ``zoneinfo.ZoneInfo`` zone travels by key
(RFC 9557's ``[Europe/Paris]`` suffix), so arithmetic after a reload follows the zone's
daylight-saving rules. Anything else cannot come back as it was, and is refused when set.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from .errors import ValueNotSerializable

__all__ = ["datetime_from_text", "datetime_text", "time_text"]


def datetime_text(value: dt.datetime) -> str:
    """``value`` as ISO 8601, with ``[zone key]`` for a named zone; refuses other zones."""
    zone = value.tzinfo
    if zone is None or type(zone) is dt.timezone:
        return value.isoformat()
    if isinstance(zone, zoneinfo.ZoneInfo) and zone.key:
        return f"{value.isoformat()}[{zone.key}]"
    raise ValueNotSerializable(
        f"a datetime in zone {zone!r} cannot be stored with its zone: use zoneinfo.ZoneInfo "
        "(by key) or datetime.timezone",
        type="datetime",
    )


def datetime_from_text(text: Any) -> dt.datetime:
    """The inverse of :func:`datetime_text` (ValueError/TypeError/KeyError on garbage)."""
    if not isinstance(text, str):
        raise TypeError("a datetime is ISO 8601 text")
    if text.endswith("]"):
        stamp, bracket, key = text[:-1].partition("[")
        if not bracket:
            raise ValueError("unbalanced zone suffix")
        value = dt.datetime.fromisoformat(stamp)
        if value.tzinfo is None:
            raise ValueError("a zoned datetime needs its offset")
        return value.astimezone(zoneinfo.ZoneInfo(key))
    return dt.datetime.fromisoformat(text)


def time_text(value: dt.time) -> str:
    """``value`` as ISO 8601; refuses a named zone (a time of day has no date to resolve it)."""
    zone = value.tzinfo
    if zone is None or type(zone) is dt.timezone:
        return value.isoformat()
    # A time of day has no date, so a named zone's offset is undefined for it.
    raise ValueNotSerializable(
        f"a time of day in zone {zone!r} cannot be stored: use datetime.timezone or a datetime",
        type="time",
    )
