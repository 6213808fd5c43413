"""ObservedStore: every store call timed and classified, handed to a :class:`Recorder`."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

from ..errors import SessionError
from ..events import SessionEvent
from ..stores.base import Saved, Store
from ..stores.wrapper import StoreWrapper

__all__ = ["Call", "ObservedStore", "Recorder", "observe"]

T = TypeVar("T")


class Call:
    """One store call as a recorder sees it: what it was, and (once it ends) how it went."""

    __slots__ = ("error", "operation", "outcome", "seconds", "store", "write")

    def __init__(self, operation: str, store: str, write: str | None) -> None:
        self.operation = operation
        self.store = store
        #: For ``save``: ``"create"``, ``"update"``, ``"rotate"`` or ``"rewrite"``.
        self.write = write
        #: ``"hit"``/``"miss"`` for loads, the :class:`~sessio.stores.base.SaveOutcome` value
        #: for saves, ``"deleted"``/``"absent"`` for deletes, ``"ok"`` otherwise, ``"error"``.
        self.outcome = "error"
        #: The failure's stable code (``STORE_UNAVAILABLE``...), or its class name if untyped.
        self.error: str | None = None
        self.seconds = 0.0


class Recorder(Protocol):
    """Where observations go: a context manager around each store call, and every event."""

    def call(self, call: Call) -> AbstractContextManager[None]:
        """Wraps the store call; ``call`` is complete (outcome, seconds) when the block exits."""

    def event(self, event: SessionEvent) -> None:
        """One session event of the observed manager."""


def _outcome(operation: str, result: Any) -> str:
    if operation == "load":
        return "miss" if result is None else "hit"
    if isinstance(result, Saved):
        return result.outcome.value
    if operation == "delete":
        return "deleted" if result else "absent"
    return "ok"


class ObservedStore(StoreWrapper):
    """``inner`` with every operation reported to ``recorder`` (see :class:`Call`)."""

    def __init__(self, inner: Store, recorder: Recorder) -> None:
        super().__init__(inner)
        self.recorder = recorder
        self._name = type(inner).__name__

    def _start(self, operation: str, args: tuple[Any, ...]) -> Call:
        write = type(args[1]).__name__.lower() if operation == "save" else None
        return Call(operation, self._name, write)

    async def around(self, operation: str, call: Callable[[], Awaitable[T]], *args: Any) -> T:
        record = self._start(operation, args)
        with self.recorder.call(record):
            started = time.perf_counter()
            try:
                result = await call()
            except BaseException as exc:
                _failed(record, exc, started)
                raise
            record.seconds = time.perf_counter() - started
            record.outcome = _outcome(operation, result)
        return result

    def around_sync(self, operation: str, call: Callable[[], T], *args: Any) -> T:
        record = self._start(operation, args)
        with self.recorder.call(record):
            started = time.perf_counter()
            try:
                result = call()
            except BaseException as exc:
                _failed(record, exc, started)
                raise
            record.seconds = time.perf_counter() - started
            record.outcome = _outcome(operation, result)
        return result


def _failed(record: Call, exc: BaseException, started: float) -> None:
    record.seconds = time.perf_counter() - started
    record.outcome = "error"
    record.error = exc.code if isinstance(exc, SessionError) else type(exc).__name__


def observe(manager: Any, recorder: Recorder) -> None:
    """Report ``manager``'s store calls (server-side stores) and events to ``recorder``."""
    if isinstance(manager.store, Store):
        manager.store = ObservedStore(manager.store, recorder)
    manager.events.subscribe(recorder.event)
