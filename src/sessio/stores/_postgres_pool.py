"""Connections for PostgresStore: a small pool that fails fast and serves again at once.

Why not ``psycopg_pool``: its clients wait out the whole pool timeout for a connection while the
server is down, and its background reconnection backs off exponentially, so a restarted server
is used again only at the next retry (seconds later). Here a request that finds no idle
connection opens one itself: a refused connection fails at once, and the first request after a
restart reconnects. An idle connection is checked without a round trip before it is handed out
(a readable idle socket means the server closed it or sent a fatal notice), so a restart costs
no request an error.

Every statement runs under a deadline on its socket (:mod:`sessio.stores._postgres_deadline`);
:class:`Connections` gives the store one connection at a time on either twin, from these pools
or from ``psycopg_pool`` pools the application passes in.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import select
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from ..errors import StoreUnavailable
from ._postgres_deadline import Deadline, Watchdog, async_deadline

__all__ = ["AsyncPool", "Connections", "SyncPool"]


def _idle_is_usable(conn: Any, *, probe: bool = True) -> bool:
    """Whether an idle pooled connection can serve, judged without a round trip.

    ``probe`` also polls the socket: an idle connection has nothing to read unless the server
    closed it or sent a fatal notice (a restart or an administrator's termination).
    """
    if conn.closed or conn.broken or conn.info.transaction_status.name != "IDLE":
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


class Connections:
    """One connection at a time for a statement, on either twin, under the socket deadline.

    The store's own pools (:class:`SyncPool`, :class:`AsyncPool`), or the ``psycopg_pool``
    pools passed in (``pool``, ``async_pool``): those keep their own waiting and reconnecting
    rules, and stay open on :meth:`close`.
    """

    def __init__(
        self,
        psycopg: Any,
        conninfo: str,
        kwargs: dict[str, Any],
        *,
        max_size: int,
        timeout: float,
        socket_timeout: float,
        connect_timeout: float,
        configure: Callable[[Any], object] | None,
        pool: Any,
        async_pool: Any,
    ) -> None:
        self._psycopg = psycopg
        self._conninfo = conninfo
        self._kwargs = kwargs
        self._max_size = max_size
        self._timeout = timeout
        self._socket_timeout = socket_timeout
        self._connect_timeout = connect_timeout
        self._configure = configure
        self._user_pool = pool
        self._user_async_pool = async_pool
        self._watchdog = Watchdog(socket_timeout)
        self._pool = self._new_sync_pool()
        self._async_pool: AsyncPool | None = None

    def _new_sync_pool(self) -> SyncPool:
        return SyncPool(
            self._connect_sync,
            max_size=self._max_size,
            timeout=self._timeout,
            watchdog=self._watchdog,
        )

    def _connect_sync(self) -> Any:
        conn = self._psycopg.Connection.connect(self._conninfo, **self._kwargs)
        if self._configure is not None:
            self._configure(conn)
        return conn

    async def _connect_async(self) -> Any:
        connect = self._psycopg.AsyncConnection.connect(self._conninfo, **self._kwargs)
        try:
            conn = await asyncio.wait_for(connect, self._connect_timeout)
        except asyncio.TimeoutError as exc:
            raise StoreUnavailable(
                f"no PostgreSQL connection within {self._connect_timeout}s"
            ) from exc
        if self._configure is not None:
            configured = self._configure(conn)
            if inspect.isawaitable(configured):
                await configured
        return conn

    @contextlib.contextmanager
    def sync(self) -> Iterator[Any]:
        """A connection for one statement of a ``_sync`` method."""
        if self._user_pool is None:
            with self._pool.connection() as conn:
                yield conn
        else:
            with self._user_pool.connection() as conn, self._watchdog.guard(conn):
                yield conn

    @contextlib.asynccontextmanager
    async def async_(self) -> AsyncIterator[Any]:
        """A connection for one statement of an async method."""
        if self._user_async_pool is not None:
            async with self._user_async_pool.connection() as conn:
                with async_deadline(conn, self._socket_timeout):
                    yield conn
            return
        pool = self._async_pool
        if pool is not None and pool.loop not in (None, asyncio.get_running_loop()):
            # Another event loop (a second asyncio.run): the old loop's connections go.
            self._async_pool = None
            await pool.close()
        if self._async_pool is None:
            self._async_pool = AsyncPool(
                self._connect_async,
                max_size=self._max_size,
                timeout=self._timeout,
                socket_timeout=self._socket_timeout,
            )
        async with self._async_pool.connection() as conn:
            yield conn

    async def close(self) -> None:
        """Close the connections the store opened, async and sync; a later call reconnects."""
        if self._async_pool is not None:
            pool, self._async_pool = self._async_pool, None
            await pool.close()
        self.close_sync()

    def close_sync(self) -> None:
        """Close the sync connections the store opened; a later call reconnects."""
        pool, self._pool = self._pool, self._new_sync_pool()
        pool.close()
