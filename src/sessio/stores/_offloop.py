"""Local stores that never make the event loop wait for another process's lock.

A file or SQLite store answers in microseconds when it has its lock to itself, so its async
methods run inline on the loop: a thread hop would cost more than the work. When another
process (or another thread of this one) holds the lock, waiting inline would freeze every
request the loop serves. So each operation is written once, with a ``wait`` flag:

* ``wait=False`` -- take every lock without blocking; if one is taken, raise :class:`Busy`
  having changed nothing (any transaction rolled back);
* ``wait=True`` -- wait for the locks up to the store's bound, then raise
  :class:`~sessio.errors.StoreUnavailable`.

The sync methods run ``wait=True``. The async ones run ``wait=False`` inline and, on
:class:`Busy`, the same operation with ``wait=True`` in a worker thread, so only the request
that needs the lock waits. A request that waited for a free worker thread until its bound had
passed answers ``StoreUnavailable`` without running: the default executor has few threads,
and a queue behind a held lock must not turn the bound into a multiple of it. So an async
call waits at most three times the bound: for a thread, for the store's own connection (one
other thread may be waiting on it) and for the lock; once the bound when only one waits.
"""

from __future__ import annotations

import abc
import asyncio
import functools
import time
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from ..errors import StoreUnavailable
from .base import Page, Record, Saved, Store, Write

__all__ = ["Busy", "InlineFirstStore"]

P = ParamSpec("P")
T = TypeVar("T")


class Busy(Exception):
    """Internal signal: the operation would have to wait for a lock; nothing was changed."""


def _within(deadline: float, call: Callable[[], T]) -> T:
    """Run ``call`` (in a worker thread) unless the thread came too late for it."""
    if time.monotonic() > deadline:
        raise StoreUnavailable("the store's lock was held elsewhere; no worker thread in time")
    return call()


async def _off_loop(
    timeout: float, op: Callable[Concatenate[bool, P], T], *args: P.args, **kw: P.kwargs
) -> T:
    call = functools.partial(op, True, *args, **kw)
    return await asyncio.to_thread(_within, time.monotonic() + timeout, call)


async def _inline_first(
    timeout: float, op: Callable[Concatenate[bool, P], T], *args: P.args, **kw: P.kwargs
) -> T:
    try:
        return op(False, *args, **kw)
    except Busy:
        return await _off_loop(timeout, op, *args, **kw)


class InlineFirstStore(Store):
    """A store of local I/O: async methods inline while uncontended, in a thread when not.

    Subclasses implement the ``_name(wait, ...)`` operations; this class derives both the async
    and the sync method of the contract from each.
    """

    #: Seconds an operation may wait for a lock (set by the subclass).
    timeout: float

    # -- the operations a subclass implements ---------------------------------------------------

    @abc.abstractmethod
    def _load(self, wait: bool, key: str) -> Record | None:
        """``load``; see the module docs for ``wait``."""

    @abc.abstractmethod
    def _save(self, wait: bool, key: str, write: Write) -> Saved:
        """``save``."""

    @abc.abstractmethod
    def _delete(self, wait: bool, key: str) -> bool:
        """``delete``."""

    @abc.abstractmethod
    def _principal_records(self, wait: bool, principal: str) -> list[Record]:
        """``principal_records``."""

    @abc.abstractmethod
    def _delete_principal_records(self, wait: bool, principal: str, keep: str | None) -> list[str]:
        """``delete_principal_records``."""

    @abc.abstractmethod
    def _exists(self, wait: bool, key: str) -> bool:
        """``exists``."""

    @abc.abstractmethod
    def _count(self, wait: bool) -> int:
        """``count``."""

    @abc.abstractmethod
    def _clear(self, wait: bool) -> int:
        """``clear``."""

    @abc.abstractmethod
    def _cleanup(self, wait: bool) -> int:
        """``cleanup``."""

    @abc.abstractmethod
    def _page(self, wait: bool, cursor: str | None, limit: int) -> Page:
        """``page``."""

    # -- async: inline first --------------------------------------------------------------------

    # load and save are the hot path: written out, without the helper's extra call.
    async def load(self, key: str) -> Record | None:
        try:
            return self._load(False, key)
        except Busy:
            return await _off_loop(self.timeout, self._load, key)

    async def save(self, key: str, write: Write) -> Saved:
        try:
            return self._save(False, key, write)
        except Busy:
            return await _off_loop(self.timeout, self._save, key, write)

    async def delete(self, key: str) -> bool:
        return await _inline_first(self.timeout, self._delete, key)

    async def principal_records(self, principal: str) -> list[Record]:
        return await _inline_first(self.timeout, self._principal_records, principal)

    async def delete_principal_records(self, principal: str, keep: str | None = None) -> list[str]:
        return await _inline_first(self.timeout, self._delete_principal_records, principal, keep)

    async def exists(self, key: str) -> bool:
        return await _inline_first(self.timeout, self._exists, key)

    async def count(self) -> int:
        return await _inline_first(self.timeout, self._count)

    async def clear(self) -> int:
        return await _inline_first(self.timeout, self._clear)

    async def cleanup(self) -> int:
        return await _inline_first(self.timeout, self._cleanup)

    async def page(self, cursor: str | None = None, limit: int = 100) -> Page:
        return await _inline_first(self.timeout, self._page, cursor, limit)

    async def close(self) -> None:
        self.close_sync()

    # -- sync: wait up to the bound -------------------------------------------------------------

    def load_sync(self, key: str) -> Record | None:
        return self._load(True, key)

    def save_sync(self, key: str, write: Write) -> Saved:
        return self._save(True, key, write)

    def delete_sync(self, key: str) -> bool:
        return self._delete(True, key)

    def principal_records_sync(self, principal: str) -> list[Record]:
        return self._principal_records(True, principal)

    def delete_principal_records_sync(self, principal: str, keep: str | None = None) -> list[str]:
        return self._delete_principal_records(True, principal, keep)

    def exists_sync(self, key: str) -> bool:
        return self._exists(True, key)

    def count_sync(self) -> int:
        return self._count(True)

    def clear_sync(self) -> int:
        return self._clear(True)

    def cleanup_sync(self) -> int:
        return self._cleanup(True)

    def page_sync(self, cursor: str | None = None, limit: int = 100) -> Page:
        return self._page(True, cursor, limit)
