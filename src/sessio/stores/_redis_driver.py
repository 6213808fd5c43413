"""Runs RedisStore's operations, written once as generators, on redis-py's sync or async client.

An operation (a *flow*) yields batches of :class:`Cmd` and receives their replies; each batch
is one round trip (pipelined when it holds several commands, which a cluster client sends to
its nodes in parallel). Replies that are server errors come back as exception objects for the
flow to judge. Scripts run with ``EVALSHA``, and with ``EVAL`` (which also caches them) when a
server answers ``NOSCRIPT``: after a restart, a failover, or on a cluster node that has not
seen them yet.

Everything goes through redis-py's public client API: its connection pool, its timeouts and
its :class:`~redis.retry.Retry`. Whatever the client raises becomes
:class:`~sessio.errors.StoreUnavailable` (a value it cannot encode becomes
:class:`~sessio.errors.ValueNotSerializable`); a cancellation stays a cancellation.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Generator
from typing import Any, TypeVar

from ..errors import SessionError, StoreUnavailable, ValueNotSerializable
from ._redis_lua import Script

__all__ = ["Cmd", "Driver", "Flow", "script"]

T = TypeVar("T")


@dataclasses.dataclass(frozen=True, slots=True)
class Cmd:
    """One command; with ``script``, ``args`` are ``numkeys, *keys, *argv``. ``node`` picks a
    cluster primary by its index in :meth:`Driver.primaries` (for ``SCAN``)."""

    args: tuple[Any, ...]
    script: Script | None = None
    node: int | None = None

    def wire(self, *, body: bool = False) -> tuple[Any, ...]:
        """The command as sent: ``EVALSHA sha ...``, or ``EVAL body ...`` with ``body``."""
        if self.script is None:
            return self.args
        if body:
            return ("EVAL", self.script.body, *self.args)
        return ("EVALSHA", self.script.sha, *self.args)


def script(code: Script, keys: list[str], argv: list[Any]) -> Cmd:
    """A call of ``code`` on ``keys`` with ``argv``."""
    return Cmd((len(keys), *keys, *argv), code)


#: An operation: yields batches of commands, receives their replies, returns its result.
Flow = Generator[list[Cmd], list[Any], T]


class Driver:
    """Drives flows on the clients that ``sync_client`` and ``async_client`` return.

    ``scrub`` removes secrets (a password) from the text of an error before it is shown.
    """

    def __init__(
        self,
        redis: Any,
        sync_client: Callable[[], Any],
        async_client: Callable[[], Any],
        *,
        cluster: bool,
        scrub: Callable[[str], str],
        sentinel: bool = False,
    ) -> None:
        self.errors = redis.exceptions
        self.sentinel = sentinel
        self.sync_client = sync_client
        self.async_client = async_client
        self.cluster = cluster
        self.scrub = scrub
        # Async cluster: the first commands of many tasks at once race redis-py's lazy
        # initialisation; the store initialises the client once, under a lock, before them.
        self._ready: Any = None
        self._init_lock: asyncio.Lock | None = None

    def unavailable(self, exc: BaseException) -> StoreUnavailable:
        """The error a failed call becomes."""
        name = exc.__class__.__name__
        return StoreUnavailable(f"Redis error: {name}: {self.scrub(str(exc))}", error=name)

    def failure(self, exc: Exception) -> Exception:
        """What an exception from the client becomes: a data error or an outage (sessio's own
        errors, such as a ConfigurationError from making the client, stay what they are)."""
        if isinstance(exc, SessionError):
            return exc
        if isinstance(exc, UnicodeError | self.errors.DataError):
            return ValueNotSerializable(
                f"Redis cannot take this value: {exc.__class__.__name__}: {self.scrub(str(exc))}"
            )
        return self.unavailable(exc)

    def ok(self, reply: Any) -> Any:
        """``reply``, unless it is a server error."""
        if isinstance(reply, Exception):
            raise self.unavailable(reply)
        return reply

    def wrong_type(self, reply: Any) -> bool:
        """Whether ``reply`` is Redis's ``WRONGTYPE`` error."""
        return isinstance(reply, self.errors.ResponseError) and str(reply).startswith("WRONGTYPE")

    def _refused(self, replies: list[Any]) -> bool:
        # A master that lost its replicas refuses writes (min-replicas-to-write): behind
        # Sentinel it is likely being failed over, so the pool's connections are dropped and
        # the next call asks the sentinels where the master is now. redis-py does the same
        # for READONLY from a demoted master.
        return self.sentinel and any(
            isinstance(r, self.errors.ResponseError) and str(r).startswith("NOREPLICAS")
            for r in replies
        )

    def _checked(self, replies: list[Any]) -> list[Any]:
        # A pipeline reports connection failures as replies; only server errors pass through.
        for reply in replies:
            if isinstance(reply, Exception) and not isinstance(reply, self.errors.ResponseError):
                raise reply
        return replies

    def _options(self, client: Any, cmd: Cmd) -> dict[str, Any]:
        if cmd.node is None or not self.cluster:
            return {}
        return {"target_nodes": self.primaries(client)[cmd.node]}

    @staticmethod
    def primaries(client: Any) -> list[Any]:
        """A cluster's primaries in a stable order (by address)."""
        return sorted(client.get_primaries(), key=lambda node: (node.host, node.port))

    # -- sync ---------------------------------------------------------------------------------------

    def run_sync(self, flow: Flow[T]) -> T:
        """Run ``flow`` to its end with the sync client."""
        try:
            batch = next(flow)
            while True:
                try:
                    replies = self.exec_sync(batch)
                    if self._refused(replies):
                        self.sync_client().connection_pool.disconnect()
                except Exception as exc:  # whatever the driver raised: never a bare error
                    raise self.failure(exc) from exc
                batch = flow.send(replies)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    def exec_sync(self, batch: list[Cmd]) -> list[Any]:
        """Send ``batch`` in one round trip; its replies."""
        client = self.sync_client()
        if len(batch) == 1:
            return [self._call_sync(client, batch[0])]
        with client.pipeline(transaction=False) as pipe:
            for cmd in batch:
                pipe.execute_command(*cmd.wire())
            replies: list[Any] = pipe.execute(raise_on_error=False)
        for i, cmd in enumerate(batch):
            if isinstance(replies[i], self.errors.NoScriptError):
                replies[i] = self._call_sync(client, cmd)
        return self._checked(replies)

    def _call_sync(self, client: Any, cmd: Cmd) -> Any:
        options = self._options(client, cmd)
        try:
            try:
                return client.execute_command(*cmd.wire(), **options)
            except self.errors.NoScriptError:
                return client.execute_command(*cmd.wire(body=True), **options)
        except self.errors.ResponseError as exc:
            return exc

    # -- async --------------------------------------------------------------------------------------

    async def run(self, flow: Flow[T]) -> T:
        """Run ``flow`` to its end with the async client."""
        try:
            batch = next(flow)
            while True:
                try:
                    replies = await self.exec(batch)
                    if self._refused(replies):
                        await self.async_client().connection_pool.disconnect()
                except Exception as exc:  # never a bare error; a cancellation is not an Exception
                    raise self.failure(exc) from exc
                batch = flow.send(replies)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    async def _client(self) -> Any:
        client = self.async_client()
        if self.cluster and self._ready is not client:
            if self._init_lock is None:
                self._init_lock = asyncio.Lock()
            async with self._init_lock:
                if self._ready is not client:
                    await client.initialize()
                    self._ready = client
        return client

    async def exec(self, batch: list[Cmd]) -> list[Any]:
        """Async twin of :meth:`exec_sync`."""
        client = await self._client()
        if len(batch) == 1:
            return [await self._call(client, batch[0])]
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
        options = self._options(client, cmd)
        try:
            try:
                return await client.execute_command(*cmd.wire(), **options)
            except self.errors.NoScriptError:
                return await client.execute_command(*cmd.wire(body=True), **options)
        except self.errors.ResponseError as exc:
            return exc

    def forget(self) -> None:
        """The async client was closed: initialise the next one again."""
        self._ready = None
        self._init_lock = None
