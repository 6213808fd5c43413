"""Connections for PostgresStore: a small pool that fails fast, and a deadline on every socket.

Why not ``psycopg_pool``: its clients wait out the whole pool timeout for a connection while the
server is down, and its background reconnection backs off exponentially, so a restarted server
is used again only at the next retry (seconds later). Here a request that finds no idle
connection opens one itself: a refused connection fails at once, and the first request after a
restart reconnects. An idle connection is checked without a round trip before it is handed out
(a readable idle socket means the server closed it or sent a fatal notice), so a restart costs
no request an error.

A frozen server (a stopped process, a silent network) is bounded by a deadline on the socket:
when a statement overruns ``socket_timeout``, the socket is shut down under libpq, which then
fails the statement as a lost connection (``OperationalError``); the connection is discarded.
The async path arms the deadline with ``loop.call_later``, the sync path with one watchdog
thread per store. Cancelling the coroutine instead would make psycopg try a server-side
cancellation and wait up to 5 s more for a server that does not answer.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import select
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from ..errors import StoreUnavailable

__all__ = ["AsyncPool", "Deadline", "SyncPool", "Watchdog", "async_deadline", "cut"]


def cut(fd: int) -> None:
    """Shut the socket ``fd`` down both ways: whoever waits on it wakes up to a lost connection.

    ``shutdown`` acts on the socket, not the descriptor, so it reaches libpq's through a
    duplicate that is closed again at once; libpq's own descriptor stays open (libpq closes it).
    """
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as sock:
        sock.shutdown(socket.SHUT_RDWR)


def _idle_is_usable(conn: Any, *, probe: bool = True) -> bool:
    """Whether an idle pooled connection can serve, judged without a round trip.

    ``probe`` also polls the socket: an idle connection has nothing to read unless the server
    closed it or sent a fatal notice (a restart or an administrator's termination).
    """
    if conn.closed or conn.broken or conn.info.transaction_status != 0:  # 0: IDLE
        return False
    if not probe:
        return True
    fd = conn.fileno()
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return not poller.poll(0)
    readable, _, _ = select.select([fd], [], [], 0)
    return not readable


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


class SyncPool:
    """At most ``max_size`` connections from ``connect``; ``timeout`` bounds the wait for one."""

    def __init__(
        self,
        connect: Callable[[], Any],
        *,
        max_size: int,
        timeout: float,
        watchdog: Watchdog,
    ) -> None:
        self._connect = connect
        self._max_size = max_size
        self._timeout = timeout
        self._watchdog = watchdog
        self._idle: list[Any] = []
        self._parents: list[Any] = []
        self._open = 0
        self._ready = threading.Condition()
        self._pid = os.getpid()
        self.closed = False

    def _forget_parents(self) -> None:
        """In a forked child, set the parent's connections aside, never closing them: a close
        would end the parent's sessions on the server. They stay referenced, so nothing
        finalises them either."""
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._parents = self._idle
            self._idle, self._open = [], 0
            self._ready = threading.Condition()

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        """A connection for one statement, under the socket deadline."""
        conn = self._acquire()
        deadline: Deadline | None = None
        try:
            with self._watchdog.guard(conn) as deadline:
                yield conn
        finally:
            # Read once the guard is over: ``fired`` no longer changes.
            self._release(conn, spent=deadline is None or deadline.fired)

    def _acquire(self) -> Any:
        self._forget_parents()
        give_up = time.monotonic() + self._timeout
        with self._ready:
            while True:
                if self.closed:
                    raise StoreUnavailable("the store is closed")
                while self._idle:
                    conn = self._idle.pop()
                    if _idle_is_usable(conn):
                        return conn
                    self._open -= 1
                    conn.close()
                if self._open < self._max_size:
                    self._open += 1
                    break
                left = give_up - time.monotonic()
                if left <= 0:
                    raise StoreUnavailable(
                        f"no free PostgreSQL connection within {self._timeout}s",
                        max_size=self._max_size,
                    )
                self._ready.wait(left)
        try:
            return self._connect()
        except BaseException:
            with self._ready:
                self._open -= 1
                self._ready.notify()
            raise

    def _release(self, conn: Any, *, spent: bool) -> None:
        keep = not spent and not self.closed and _idle_is_usable(conn, probe=False)
        if not keep:
            conn.close()
        with self._ready:
            if keep:
                self._idle.append(conn)
            else:
                self._open -= 1
            self._ready.notify()

    def close(self) -> None:
        """Close the idle connections; those in use close when they come back."""
        with self._ready:
            self.closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._ready.notify_all()
        for conn in idle:
            conn.close()


class AsyncPool:
    """The async twin of :class:`SyncPool`, bound to the event loop that first uses it."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[Any]],
        *,
        max_size: int,
        timeout: float,
        socket_timeout: float,
    ) -> None:
        self._connect = connect
        self._max_size = max_size
        self._timeout = timeout
        self._socket_timeout = socket_timeout
        self._idle: list[Any] = []
        self._open = 0
        self._ready = asyncio.Condition()
        self.closed = False
        #: The event loop of its connections, once one was opened.
        self.loop: asyncio.AbstractEventLoop | None = None

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """A connection for one statement, under the socket deadline."""
        conn = await self._acquire()
        deadline: Deadline | None = None
        try:
            with async_deadline(conn, self._socket_timeout) as deadline:
                yield conn
        finally:
            await self._release(conn, spent=deadline is None or deadline.fired)

    async def _acquire(self) -> Any:
        loop = self.loop = asyncio.get_running_loop()
        give_up = loop.time() + self._timeout
        async with self._ready:
            while True:
                if self.closed:
                    raise StoreUnavailable("the store is closed")
                while self._idle:
                    conn = self._idle.pop()
                    if _idle_is_usable(conn):
                        return conn
                    self._open -= 1
                    await conn.close()
                if self._open < self._max_size:
                    self._open += 1
                    break
                left = give_up - loop.time()
                if left <= 0:
                    raise StoreUnavailable(
                        f"no free PostgreSQL connection within {self._timeout}s",
                        max_size=self._max_size,
                    )
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._ready.wait(), left)
        try:
            return await self._connect()
        except BaseException:
            async with self._ready:
                self._open -= 1
                self._ready.notify()
            raise

    async def _release(self, conn: Any, *, spent: bool) -> None:
        keep = not spent and not self.closed and _idle_is_usable(conn, probe=False)
        if not keep:
            await conn.close()
        async with self._ready:
            if keep:
                self._idle.append(conn)
            else:
                self._open -= 1
            self._ready.notify()

    async def close(self) -> None:
        """Close the idle connections; those in use close when they come back."""
        async with self._ready:
            self.closed = True
            idle, self._idle = self._idle, []
            self._open -= len(idle)
            self._ready.notify_all()
        for conn in idle:
            await conn.close()


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
