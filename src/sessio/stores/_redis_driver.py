"""Runs RedisStore's operations, written once as generators, on a sync or an async client.

An operation (a *flow*) yields batches of :class:`Cmd` and receives their replies; each batch
is one round trip (pipelined when it holds several commands, which a cluster client sends to
its nodes in parallel). Replies that are server errors come back as exception objects for the
flow to judge; connection failures end the flow with :class:`~sessio.errors.StoreUnavailable`.
Scripts run with ``EVALSHA``, and with ``EVAL`` (which also caches them) when a server answers
``NOSCRIPT``: after a restart, a failover, or on a cluster node that has not seen them yet.

On one server, a batch of one command (every load and every save) skips redis-py's client
layer, whose pool, retry, locking and metrics bookkeeping cost more per command than the
round trip itself: it goes out on a connection of the driver's own (:class:`Lane`), made from
the client's pool settings (address, credentials, TLS, timeouts) and packed by :func:`pack`.
A reused connection that the server has closed (a restart, an idle timeout) is reconnected
once; a timeout is not retried, so a frozen server costs one ``socket_timeout``.

The async lane enforces that timeout itself, once per command: redis-py's asyncio connection
would wrap each send in ``asyncio.wait_for`` (a new task, so one more turn of the event loop)
and each read in a timeout of its own, which together cost more than the rest of the command.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from ..errors import StoreUnavailable
from ._redis_lua import Script

__all__ = ["Cmd", "Driver", "Flow", "Lane", "Watchdog", "pack", "script"]

T = TypeVar("T")


class Watchdog:
    """Cuts off the async lane's commands that run past their deadline, with one timer for all.

    A timer per command (``asyncio.timeout``) costs about as much Python as the command itself.
    Instead a command notes its deadline here (:meth:`watch`), and one periodic check, armed
    only while commands are in flight, cancels the task of each command past its deadline; the
    command then ends in redis-py's ``TimeoutError`` and its connection is dropped. A command is
    cut off between its timeout and half as much again after it.
    """

    def __init__(self) -> None:
        self._inflight: dict[Any, tuple[float, asyncio.Task[Any]]] = {}
        self._expired: set[Any] = set()
        # One check per event loop with commands in flight.
        self._timers: dict[asyncio.AbstractEventLoop, asyncio.TimerHandle] = {}

    def watch(self, conn: Any, timeout: float, *, base: float) -> None:
        """Start watching the command the current task is about to run on ``conn``, which may
        take ``timeout`` seconds; the check runs every ``base / 2`` (``base``: the lane's
        timeout for a command on an open connection, so none overruns it by more than half)."""
        task = asyncio.current_task()
        if task is None:  # not inside a task: nothing to cancel, so nothing to watch
            return
        loop = task.get_loop()
        self._inflight[conn] = (loop.time() + timeout, task)
        if loop not in self._timers:
            self._forget_closed_loops()
            self._timers[loop] = loop.call_later(base / 2, self._check, loop, base / 2)

    def _forget_closed_loops(self) -> None:
        # A loop closed with commands in flight: its check never ran, nor will it.
        for gone in [loop for loop in self._timers if loop.is_closed()]:
            del self._timers[gone]
        for conn, (_, task) in list(self._inflight.items()):
            if task.get_loop().is_closed():
                self._inflight.pop(conn, None)

    def release(self, conn: Any) -> None:
        """The command on ``conn`` ended (whichever way)."""
        self._inflight.pop(conn, None)
        self._expired.discard(conn)  # a cut-off whose cancellation something swallowed

    def cut_off(self, conn: Any) -> bool:
        """Whether the cancellation the command on ``conn`` got was this watchdog's (then the
        task is no longer counted as being cancelled: the command ends in a timeout instead)."""
        if conn not in self._expired:
            return False
        self._expired.discard(conn)
        task = asyncio.current_task()
        uncancel = getattr(task, "uncancel", None)  # Python 3.11+: undo our cancel() request
        if uncancel is not None:
            uncancel()
        return True

    def _check(self, loop: asyncio.AbstractEventLoop, period: float) -> None:
        now = loop.time()
        for conn, (deadline, task) in list(self._inflight.items()):
            if task.get_loop() is not loop:
                continue
            if deadline <= now:
                del self._inflight[conn]
                self._expired.add(conn)
                task.cancel()
        if any(task.get_loop() is loop for _, task in self._inflight.values()):
            self._timers[loop] = loop.call_later(period, self._check, loop, period)
        else:
            self._timers.pop(loop, None)


@dataclasses.dataclass(frozen=True, slots=True)
class Cmd:
    """One command; with ``script``, ``args`` are ``numkeys, *keys, *argv``."""

    args: tuple[Any, ...]
    script: Script | None = None

    def wire(self, *, body: bool = False) -> tuple[Any, ...]:
        """The command as sent: ``EVALSHA sha ...``, or ``EVAL body ...`` with ``body``."""
        if self.script is None:
            return self.args
        if body:
            return ("EVAL", self.script.body, *self.args)
        return ("EVALSHA", self.script.sha, *self.args)

    def packed(self, *, body: bool = False) -> bytes:
        """:meth:`wire`, in the Redis protocol."""
        if self.script is None or body:
            return pack(self.wire(body=body))
        return b"*%d\r\n%s%s" % (len(self.args) + 2, self.script.head, _bulks(self.args))


def pack(args: tuple[Any, ...]) -> bytes:
    """``args`` as one RESP command: an array of bulk strings (text is sent as UTF-8).

    redis-py's packer checks and converts each argument in several calls; sessions send
    only text, numbers and bytes, so one pass does.
    """
    return b"*%d\r\n%s" % (len(args), _bulks(args))


def _bulks(args: tuple[Any, ...]) -> bytes:
    # Text, bytes, and numbers (str() of an int or a float is what Redis parses back).
    data = [
        a.encode() if type(a) is str else a if type(a) is bytes else str(a).encode() for a in args
    ]
    return b"".join([b"$%d\r\n%s\r\n" % (len(d), d) for d in data])


def script(code: Script, keys: list[str], argv: list[Any]) -> Cmd:
    """A call of ``code`` on ``keys`` with ``argv``."""
    return Cmd((len(keys), *keys, *argv), code)


#: An operation: yields batches of commands, receives their replies, returns its result.
Flow = Generator[list[Cmd], list[Any], T]


class Lane:
    """The driver's own connections to one server, for single commands: a LIFO stack.

    Connections are made like the client's pool makes them (its ``connection_class`` and
    ``connection_kwargs``) and are taken and put back without a lock: popping from and
    appending to a list is atomic for threads (the GIL) and for tasks (no ``await``). A
    connection that fails mid-command is disconnected by redis-py itself, and reconnects when
    next used.
    """

    def __init__(self, client: Callable[[], Any], *, own_timeouts: bool = False) -> None:
        self._client = client
        self._idle: list[Any] = []
        self._own_timeouts = own_timeouts
        #: With ``own_timeouts``: the pool's ``socket_timeout`` and ``socket_connect_timeout``,
        #: which the connections then leave to the driver (known once a connection was made).
        self.timeouts: tuple[float | None, float | None] = (None, None)

    def take(self) -> tuple[Any, bool]:
        """A connection, and whether it was used before (so may have been closed meanwhile)."""
        try:
            return self._idle.pop(), True
        except IndexError:
            pool = self._client().connection_pool
            # Replies stay bytes, whatever the client decodes: the store decodes them itself.
            options = {**pool.connection_kwargs, "decode_responses": False}
            if self._own_timeouts:
                self.timeouts = (
                    options.get("socket_timeout"),
                    options.get("socket_connect_timeout"),
                )
                options["socket_timeout"] = None
            return pool.connection_class(**options), False

    def timeout(self, conn: Any) -> float | None:
        """Seconds one command on ``conn`` may take (connecting first, if it must)."""
        timeout, connect = self.timeouts
        if timeout is None:
            return None
        if connect is not None and not conn.is_connected:
            return timeout + connect
        return timeout

    def put(self, conn: Any) -> None:
        """Give ``conn`` back for the next command."""
        self._idle.append(conn)

    def drain(self) -> list[Any]:
        """Every idle connection, now no longer the lane's (to disconnect them)."""
        idle, self._idle = self._idle, []
        return idle


class Driver:
    """Drives flows on the clients that ``sync_client`` and ``async_client`` return.

    ``direct`` (one server, not a cluster) sends single commands on the driver's own
    :class:`Lane` s rather than through the clients.
    """

    def __init__(
        self,
        redis: Any,
        sync_client: Callable[[], Any],
        async_client: Callable[[], Any],
        *,
        direct: bool = False,
    ) -> None:
        self.errors = redis.exceptions
        self.sync_client = sync_client
        self.async_client = async_client
        self.direct = direct
        self.sync_lane = Lane(sync_client)
        self.async_lane = Lane(async_client, own_timeouts=True)
        self.watchdog = Watchdog()

    def unavailable(self, exc: Exception) -> StoreUnavailable:
        """The error a failed call becomes."""
        name = exc.__class__.__name__
        return StoreUnavailable(f"Redis error: {name}: {exc}", error=name)

    def ok(self, reply: Any) -> Any:
        """``reply``, unless it is a server error."""
        if isinstance(reply, Exception):
            raise self.unavailable(reply)
        return reply

    def wrong_type(self, reply: Any) -> bool:
        """Whether ``reply`` is Redis's ``WRONGTYPE`` error."""
        return isinstance(reply, self.errors.ResponseError) and str(reply).startswith("WRONGTYPE")

    def _checked(self, replies: list[Any]) -> list[Any]:
        # A pipeline reports connection failures as replies; only server errors pass through.
        for reply in replies:
            if isinstance(reply, Exception) and not isinstance(reply, self.errors.ResponseError):
                raise reply
        return replies

    # -- sync ---------------------------------------------------------------------------------------

    def run_sync(self, flow: Flow[T]) -> T:
        """Run ``flow`` to its end with the sync client."""
        try:
            batch = next(flow)
            while True:
                batch = flow.send(self.exec_sync(batch))
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        except self.errors.RedisError as exc:
            raise self.unavailable(exc) from exc

    def exec_sync(self, batch: list[Cmd]) -> list[Any]:
        """Send ``batch`` in one round trip; its replies."""
        if len(batch) == 1:
            if self.direct:
                return [self._direct_sync(batch[0])]
            return [self._call_sync(self.sync_client(), batch[0])]
        client = self.sync_client()
        with client.pipeline(transaction=False) as pipe:
            for cmd in batch:
                pipe.execute_command(*cmd.wire())
            replies: list[Any] = pipe.execute(raise_on_error=False)
        for i, cmd in enumerate(batch):
            if isinstance(replies[i], self.errors.NoScriptError):
                replies[i] = self._call_sync(client, cmd)
        return self._checked(replies)

    def _call_sync(self, client: Any, cmd: Cmd) -> Any:
        try:
            try:
                return client.execute_command(*cmd.wire())
            except self.errors.NoScriptError:
                return client.execute_command(*cmd.wire(body=True))
        except self.errors.ResponseError as exc:
            return exc

    def _direct_sync(self, cmd: Cmd) -> Any:
        conn, reused = self.sync_lane.take()
        try:
            try:
                return self._ask_sync(conn, cmd)
            except self.errors.ConnectionError:
                if not reused:
                    raise
                conn.disconnect()  # closed by the server meanwhile: reconnect, once
                return self._ask_sync(conn, cmd)
        finally:
            self.sync_lane.put(conn)

    def _ask_sync(self, conn: Any, cmd: Cmd) -> Any:
        try:
            try:
                conn.send_packed_command([cmd.packed()], check_health=False)
                return conn.read_response()
            except self.errors.NoScriptError:
                conn.send_packed_command([cmd.packed(body=True)], check_health=False)
                return conn.read_response()
        except self.errors.ResponseError as exc:
            return exc

    def close_sync(self) -> None:
        """Disconnect the sync lane's idle connections."""
        for conn in self.sync_lane.drain():
            conn.disconnect()

    # -- async --------------------------------------------------------------------------------------

    async def run(self, flow: Flow[T]) -> T:
        """Run ``flow`` to its end with the async client."""
        try:
            batch = next(flow)
            while True:
                batch = flow.send(await self.exec(batch))
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        except self.errors.RedisError as exc:
            raise self.unavailable(exc) from exc

    async def exec(self, batch: list[Cmd]) -> list[Any]:
        """Async twin of :meth:`exec_sync`."""
        if len(batch) == 1:
            if self.direct:
                return [await self._direct(batch[0])]
            return [await self._call(self.async_client(), batch[0])]
        client = self.async_client()
        pipe = client.pipeline(transaction=False)
        try:
            for cmd in batch:
                pipe.execute_command(*cmd.wire())
            replies: list[Any] = await pipe.execute(raise_on_error=False)
        finally:
            await pipe.reset()
        for i, cmd in enumerate(batch):
            if isinstance(replies[i], self.errors.NoScriptError):
                replies[i] = await self._call(client, cmd)
        return self._checked(replies)

    async def _call(self, client: Any, cmd: Cmd) -> Any:
        try:
            try:
                return await client.execute_command(*cmd.wire())
            except self.errors.NoScriptError:
                return await client.execute_command(*cmd.wire(body=True))
        except self.errors.ResponseError as exc:
            return exc

    async def _direct(self, cmd: Cmd) -> Any:
        conn, reused = self.async_lane.take()
        timeout = self.async_lane.timeout(conn)
        if timeout is not None:
            self.watchdog.watch(conn, timeout, base=self.async_lane.timeouts[0] or timeout)
        try:
            try:
                return await self._ask(conn, cmd)
            except self.errors.ConnectionError:
                if not reused:
                    raise
                await conn.disconnect()  # closed by the server meanwhile: reconnect, once
                return await self._ask(conn, cmd)
        except asyncio.CancelledError:
            if not self.watchdog.cut_off(conn):
                raise
            # redis-py dropped the connection on the cancel: a late reply reaches no one.
            await conn.disconnect(nowait=True)
            raise self.errors.TimeoutError(f"Timeout waiting for Redis ({timeout} s)") from None
        finally:
            self.watchdog.release(conn)
            self.async_lane.put(conn)

    async def _ask(self, conn: Any, cmd: Cmd) -> Any:
        try:
            try:
                await conn.send_packed_command([cmd.packed()], check_health=False)
                return await conn.read_response()
            except self.errors.NoScriptError:
                await conn.send_packed_command([cmd.packed(body=True)], check_health=False)
                return await conn.read_response()
        except self.errors.ResponseError as exc:
            return exc

    async def close(self) -> None:
        """Disconnect the async lane's idle connections."""
        for conn in self.async_lane.drain():
            await conn.disconnect()
