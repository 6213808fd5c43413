"""Memo: a bounded map of recent results that forgets the oldest entry first (hot-path caches)."""

from __future__ import annotations

import contextlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Memo"]

K = TypeVar("K")
V = TypeVar("V")


class Memo(Generic[K, V]):
    """At most ``size`` entries; adding one past that forgets the oldest, in O(1).

    ``get`` is the underlying ``OrderedDict.get`` itself, so a lookup costs what a dict lookup
    costs. Safe to share between threads: each operation is one call into C under the GIL, and
    two threads evicting at once at worst forget one entry more, which only costs a recompute.
    (A plain dict that drops ``next(iter(d))`` would do: but deleting from its front leaves
    holes that every later ``next(iter(d))`` walks past, until the dict is rebuilt.)
    """

    __slots__ = ("_entries", "get", "size")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a memo holds at least one entry")
        self.size = size
        self._entries: OrderedDict[K, V] = OrderedDict()
        self.get: Callable[[K], V | None] = self._entries.get

    def put(self, key: K, value: V) -> None:
        """Remember ``value`` under ``key`` (the newest entry)."""
        entries = self._entries
        entries[key] = value
        if len(entries) > self.size:
            with contextlib.suppress(KeyError):  # another thread emptied it meanwhile
                entries.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)
