"""A deadline on every PostgreSQL statement: past it, the socket is cut under libpq.

A frozen server (a stopped process, a silent network) never answers, and libpq has no read
timeout. When a statement overruns ``socket_timeout``, its socket is shut down; libpq then fails
the statement as a lost connection (``OperationalError``), and the pool discards the connection.
The async path arms the deadline with ``loop.call_at``, the sync path with one watchdog thread
per store. Cancelling the coroutine instead would make psycopg try a server-side cancellation
and wait up to 5 s more for a server that does not answer.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["Deadline", "Watchdog", "async_deadline", "cut"]


def cut(fd: int) -> None:
    """Shut the socket ``fd`` down both ways: whoever waits on it wakes up to a lost connection.

    ``shutdown`` acts on the socket, not the descriptor, so it reaches libpq's through a
    duplicate that is closed again at once; libpq's own descriptor stays open (libpq closes it).
    """
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as sock:
        sock.shutdown(socket.SHUT_RDWR)


class Deadline:
    """One statement's deadline; ``fired`` once its socket was cut (the connection is spent)."""

    __slots__ = ("at", "done", "fd", "fired")

    def __init__(self, fd: int, at: float) -> None:
        self.fd = fd
        self.at = at
        self.done = False
        self.fired = False


class Watchdog:
    """One thread that cuts the sockets of sync statements overrunning ``timeout``.

    Every deadline is ``now + timeout``, so they queue in order: the thread wakes every
    ``timeout / 10`` (at most 0.25 s) while statements run, drops finished ones from the front,
    and cuts the front while it is overdue. It sleeps on an event when nothing runs, and exits
    after a minute idle (the next statement starts it again).
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._tick = min(max(timeout / 10, 0.01), 0.25)
        self._start()

    def _start(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._queue: collections.deque[Deadline] = collections.deque()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def guard(self, conn: Any) -> Iterator[Deadline]:
        """Cut ``conn``'s socket if the block runs past the deadline."""
        if self._pid != os.getpid():  # a forked child has no watchdog thread: start afresh
            self._start()
        deadline = Deadline(conn.fileno(), time.monotonic() + self.timeout)
        with self._lock:
            self._queue.append(deadline)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sessio-pg-watchdog")
                self._thread.daemon = True
                self._thread.start()
        self._wake.set()
        try:
            yield deadline
        finally:
            with self._lock:  # never cut a socket once its statement is over
                deadline.done = True

    def _run(self) -> None:
        while True:
            with self._lock:
                queue = self._queue
                now = time.monotonic()
                while queue and (queue[0].done or queue[0].at <= now):
                    head = queue.popleft()
                    if not head.done:
                        head.fired = True
                        cut(head.fd)
                if not queue:
                    self._wake.clear()
            if queue:
                time.sleep(self._tick)
            elif not self._wake.wait(60.0):
                with self._lock:
                    if not self._queue:
                        self._thread = None
                        return


@contextlib.contextmanager
def async_deadline(conn: Any, timeout: float) -> Iterator[Deadline]:
    """Cut ``conn``'s socket if the block (on the running loop) runs past ``timeout``.

    The timer and the code after the block both run on the loop, so ``fired`` needs no lock.
    """
    loop = asyncio.get_running_loop()
    deadline = Deadline(conn.fileno(), loop.time() + timeout)
    timer = loop.call_at(deadline.at, _fire, deadline)
    try:
        yield deadline
    finally:
        timer.cancel()


def _fire(deadline: Deadline) -> None:
    deadline.fired = True
    cut(deadline.fd)
