"""The file store's writer lock: a thread lock plus ``flock`` on a lock file, bounded in time.

``flock`` has no timeout, so a waiting writer polls it with ``LOCK_NB`` and a short, growing
sleep until its deadline. The lock file is opened for each hold rather than once: a lock taken
through a descriptor shared with a forked child would not exclude that child.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import StoreUnavailable
from ._offloop import Busy

try:  # POSIX: serialise writers across processes too
    import fcntl
except ImportError:  # pragma: no cover - Windows: one process per directory
    fcntl = None  # type: ignore[assignment]

__all__ = ["DirectoryLock"]


class DirectoryLock:
    """One writer at a time over a directory, across the threads and processes that share it."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = path
        self.timeout = timeout
        self._thread_lock = threading.Lock()

    @contextmanager
    def hold(self, wait: bool) -> Iterator[None]:
        """Hold the lock; ``wait=False`` raises :class:`Busy` rather than wait, ``wait=True``
        waits up to ``timeout`` seconds, then raises ``StoreUnavailable``."""
        deadline = time.monotonic() + self.timeout
        if wait:
            if not self._thread_lock.acquire(timeout=self.timeout):
                raise StoreUnavailable(f"file store lock {self.path} busy in this process")
        elif not self._thread_lock.acquire(blocking=False):
            raise Busy
        try:
            try:
                handle = open(self.path, "a+b")  # noqa: SIM115 - closed by the with below
            except OSError as exc:
                raise StoreUnavailable(f"cannot open the lock file {self.path}: {exc}") from exc
            with handle:
                self._flock(handle.fileno(), wait, deadline)
                yield  # closing the file releases the flock
        finally:
            self._thread_lock.release()

    def _flock(self, fd: int, wait: bool, deadline: float) -> None:
        if fcntl is None:  # pragma: no cover - Windows
            return
        delay = 0.001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if not wait:
                    raise Busy from None
            except OSError as exc:
                raise StoreUnavailable(f"cannot lock {self.path}: {exc}") from exc
            left = deadline - time.monotonic()
            if left <= 0:
                raise StoreUnavailable(
                    f"file store lock {self.path} held elsewhere for {self.timeout:g} s"
                )
            time.sleep(min(delay, left))
            delay = min(delay * 2, 0.02)
