"""Flash messages, one record field each, so parallel requests add and consume them independently.

Each message lives in its own field, ``s:flash:<time><random>``: the name sorts by the time it
was queued, so the order survives, and the commit's delta only sets the messages this request
queued and removes the ones it consumed. Two parallel ``flash()`` calls keep both messages; a
message one request consumed never comes back because another request added one (a single
list field, written whole, did both). Records of earlier versions keep every message in one
``s:flash`` field: they still load, and the first consumption moves what is left of them into
fields of their own.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection
from typing import Any

from .codec import Codec

__all__ = ["FLASH_PREFIX", "LEGACY_FLASH", "NO_FLASHES", "Flashes", "message_field"]

#: The field of one message: the prefix, 16 hex digits of microseconds, 8 random hex digits.
FLASH_PREFIX = "s:flash:"
#: The single field older records keep every message in.
LEGACY_FLASH = "s:flash"

_Message = tuple[str, str, Any]  # (field name, kind, message)


def message_field(stamp: int) -> str:
    """A new message's field name at ``stamp`` microseconds (random digits part ties)."""
    return f"{FLASH_PREFIX}{max(stamp, 0):016x}{secrets.token_hex(4)}"


def parse(data: Any) -> tuple[str, Any]:
    """``(kind, message)`` from a message field's decoded value; ``ValueError`` if malformed."""
    if not isinstance(data, list) or len(data) != 2 or not isinstance(data[0], str):
        raise ValueError("not a flash message")
    return data[0], data[1]


class Flashes:
    """The queued messages of one session, with what this request added and consumed."""

    __slots__ = ("_added", "_consumed", "_last", "_messages", "changed", "legacy")

    def __init__(
        self,
        stored: Collection[tuple[str, str, Any]] = (),
        legacy: Collection[tuple[str, Any]] = (),
        broken: Collection[str] = (),
    ) -> None:
        self._messages: list[_Message] = []
        self._added: set[str] = set()
        self._consumed: set[str] = set(broken)  # undecodable fields go at the next write
        self._last = 0
        #: Whether the commit has messages to write or remove (a plain attribute: the commit
        #: reads it on every request).
        self.changed = bool(broken)
        #: Whether the record still has the single field of older versions.
        self.legacy = bool(legacy)
        if legacy:
            prefix = FLASH_PREFIX + "0" * 16
            self._messages = [(f"{prefix}{i:08x}", k, m) for i, (k, m) in enumerate(legacy)]
        if stored:
            self._messages += sorted(stored, key=lambda m: m[0])

    def __bool__(self) -> bool:
        return bool(self._messages)

    def add(self, kind: str, message: Any, now: float) -> None:
        """Queue ``message``; later calls in one request sort after earlier ones."""
        stamp = max(int(now * 1_000_000), self._last + 1)
        self._last = stamp
        name = message_field(stamp)
        self._messages.append((name, kind, message))
        self._added.add(name)
        self.changed = True

    def peek(self, kind: str | None) -> list[Any]:
        """The messages (of ``kind``, or all), left in place."""
        return [m for _, k, m in self._messages if kind is None or k == kind]

    def has(self, kind: str | None) -> bool:
        """Whether a message (of ``kind``) is queued."""
        return any(kind is None or k == kind for _, k, _ in self._messages)

    def take(self, kind: str | None) -> list[tuple[str, Any]]:
        """The ``(kind, message)`` pairs of ``kind`` (or all), consumed."""
        taken = [msg for msg in self._messages if kind is None or msg[1] == kind]
        if taken:
            self._messages = [msg for msg in self._messages if not (kind is None or msg[1] == kind)]
            for name, _, _ in taken:
                if name in self._added:
                    self._added.discard(name)  # queued and consumed in one request
                else:
                    self._consumed.add(name)
            self.changed = bool(self._added or self._consumed)
        return [(k, m) for _, k, m in taken]

    def delta(self, codec: Codec, fields: dict[str, str], removed: set[str]) -> None:
        """Add this request's changes to a delta: its new messages, its consumed ones."""
        for name, kind, message in self._messages:
            if name in self._added:
                fields[name] = codec.dumps([kind, message])
        removed.update(self._consumed)
        if self.legacy and self._consumed:
            # The old single field is dropped, and what is left of it moves to fields of its
            # own (named to sort first: those messages are older than any other).
            removed.add(LEGACY_FLASH)
            for name, kind, message in self._messages:
                if name.startswith(FLASH_PREFIX + "0" * 16):
                    fields[name] = codec.dumps([kind, message])

    def full(self, codec: Codec, fields: dict[str, str]) -> None:
        """Every queued message, for a write of the whole record."""
        for name, kind, message in self._messages:
            fields[name] = codec.dumps([kind, message])

    def committed(self, *, whole: bool) -> None:
        """The store took the changes (``whole``: the record was written in full)."""
        if whole or self._consumed:
            self.legacy = False
        self._added.clear()
        self._consumed.clear()
        self.changed = False

    def drop(self) -> None:
        """Forget every message (the session's data is being dropped)."""
        self.take(None)


#: The queue of a session with no message, shared: most sessions have none, and every method
#: but :meth:`Flashes.add` leaves an empty queue as it is (a session adding a message first
#: takes a queue of its own).
NO_FLASHES = Flashes()
