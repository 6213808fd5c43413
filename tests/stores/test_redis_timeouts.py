"""RedisStore's async timeouts: a server that never answers costs one ``socket_timeout``.

The async lane enforces the timeout with one watchdog timer for all commands instead of a
timer per command; these tests hold it to what a per-command timeout promised. The "server"
is a loopback socket that accepts and then says nothing, so no Redis is needed.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator

import pytest

from sessio.errors import StoreUnavailable
from sessio.ids import new_session_id, store_key
from sessio.stores.redis import RedisStore

TIMEOUT = 0.3
CONNECT = 0.2


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A loopback port whose server accepts connections, reads what comes and never replies."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        while await reader.read(65536):
            pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_silent_server_times_out_within_the_timeout_and_a_half(silent_port: int) -> None:
    store = RedisStore(
        f"redis://127.0.0.1:{silent_port}/0", socket_timeout=TIMEOUT, connect_timeout=CONNECT
    )
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as caught:
            await store.load(store_key(new_session_id()))
        took = time.monotonic() - started
        assert caught.value.code == "STORE_UNAVAILABLE"
        assert "Timeout" in str(caught.value)
        # The first command also connects (the handshake goes unanswered too): its budget is
        # the connect timeout plus the socket timeout; the watchdog may add half of it.
        budget = TIMEOUT + CONNECT
        assert budget <= took < budget * 1.5 + 0.5
        # The next command is cut off as well, on a fresh connection, and the task that ran
        # them is not left marked as cancelled.
        with pytest.raises(StoreUnavailable):
            await store.load(store_key(new_session_id()))
        task = asyncio.current_task()
        assert task is not None
        if sys.version_info >= (3, 11):
            assert task.cancelling() == 0
    finally:
        await store.close()


async def test_an_outside_cancellation_stays_a_cancellation(silent_port: int) -> None:
    store = RedisStore(
        f"redis://127.0.0.1:{silent_port}/0", socket_timeout=30, connect_timeout=30
    )
    try:
        pending = asyncio.ensure_future(store.load(store_key(new_session_id())))
        await asyncio.sleep(0.1)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await pending
    finally:
        await store.close()


async def test_commands_in_parallel_each_get_their_own_deadline(silent_port: int) -> None:
    store = RedisStore(
        f"redis://127.0.0.1:{silent_port}/0", socket_timeout=TIMEOUT, connect_timeout=CONNECT
    )
    try:
        loads = [store.load(store_key(new_session_id())) for _ in range(5)]
        results = await asyncio.gather(*loads, return_exceptions=True)
        assert all(isinstance(r, StoreUnavailable) for r in results), results
    finally:
        await store.close()
