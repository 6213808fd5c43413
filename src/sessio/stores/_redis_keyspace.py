"""RedisStore's own keys in the keyspace: which names are sessio's, and walks with ``SCAN``.

Housekeeping (count, clear, page) walks the keyspace; every name it acts on is checked against
the layout (``<prefix>s:{...}``, ``p:``, ``q:``, ``v:``), so a key that merely shares the
prefix is never touched.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import ConfigurationError, RecordCorrupt
from ._redis_records import decode_record, text
from .base import Page, Record

__all__ = ["Keyspace", "parse_cursor"]

_OWN = re.compile(r"[spqv]:\{.*\}", re.DOTALL)


def _glob_escape(value: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in value)


class Keyspace:
    """The names of one store's keys under ``prefix``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def scan(self, kind: str = "", count: int = 1000) -> dict[str, Any]:
        """``SCAN`` options for the keys of ``kind`` (``"s:"``), or every key of the store."""
        pattern = _glob_escape(self.prefix) + (kind + "{*}" if kind else "[spqv]:{*}")
        return {"match": pattern, "count": count}

    def kind(self, name: Any) -> str | None:
        """The kind of one of the store's keys (``s``, ``p``, ``q``, ``v``), else ``None``."""
        value = text(name)
        if not value.startswith(self.prefix):
            return None
        rest = value[len(self.prefix) :]
        return rest[0] if _OWN.fullmatch(rest) else None

    def take(self, name: Any, batch: list[Any]) -> int:
        """Add ``name`` to ``batch`` if it is the store's; 1 if it is a record, else 0."""
        kind = self.kind(name)
        if kind is not None:
            batch.append(name)
        return int(kind == "s")

    def page(self, nodes: list[Any], client: Any, cursor: str | None, limit: int) -> Page:
        """One page of records: ``SCAN`` on ``nodes`` (clients, one per primary) in turn, then
        the records read in one pipeline of ``client``."""
        if type(limit) is not int or limit < 1:
            raise ConfigurationError("limit must be a positive integer")
        node, scan, skip = parse_cursor(cursor)
        names: list[Any] = []
        while node < len(nodes) and len(names) < limit:
            following, found = nodes[node].scan(scan, **self.scan("s:", count=limit))
            found = [n for n in found if self.kind(n) == "s"][skip:]
            room = limit - len(names)
            names += found[:room]
            if len(found) > room:  # the rest of this batch comes next page, from this cursor
                skip += room
                break
            node, scan, skip = (node, following, 0) if following else (node + 1, 0, 0)
        with client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(name)
            rows = pipe.execute(raise_on_error=False)
        head = len(self.prefix) + 3  # "<prefix>s:{"
        records: list[Record] = []
        for name, raw in zip(names, rows, strict=True):
            if isinstance(raw, Exception):
                continue  # garbage: listing skips it, loading reports it
            try:
                record = decode_record(text(name)[head:-1], raw)
            except RecordCorrupt:
                continue
            if record is not None:
                records.append(record)
        return Page(records, None if node >= len(nodes) else f"{node}:{scan}:{skip}")


def parse_cursor(cursor: str | None) -> tuple[int, int, int]:
    """``(node, scan cursor, names to skip)`` from a page cursor."""
    if cursor is None:
        return 0, 0, 0
    try:
        node, scan, skip = (int(part) for part in cursor.split(":"))
    except (AttributeError, ValueError):
        raise ConfigurationError(f"not a RedisStore page cursor: {cursor!r}") from None
    if min(node, scan, skip) < 0:
        raise ConfigurationError(f"not a RedisStore page cursor: {cursor!r}")
    return node, scan, skip
