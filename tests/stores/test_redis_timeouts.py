"""RedisStore against a server that never answers: one ``socket_timeout``, and cancellations.

The "server" is a loopback socket that accepts and then says nothing, so no Redis is needed.
On one server redis-py retries connection errors only, never a timeout: a silent server costs
one ``socket_timeout`` per call, sync and async, and the error is ``StoreUnavailable``. A task
cancelled while it waits stays cancelled (``CancelledError``, never converted).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from sessio.errors import StoreUnavailable
from sessio.ids import new_session_id, store_key
from sessio.stores.base import Create, Update
from sessio.stores.redis import RedisStore

TIMEOUT = 0.3


def key() -> str:
    return store_key(new_session_id())


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


def _store(port: int, timeout: float = TIMEOUT) -> RedisStore:
    return RedisStore(
        f"redis://127.0.0.1:{port}/0", socket_timeout=timeout, connect_timeout=timeout
    )


async def test_a_silent_server_costs_one_socket_timeout_async(silent_port: int) -> None:
    store = _store(silent_port)
    try:
        for call in (
            lambda: store.load(key()),
            lambda: store.save(key(), Create({"d:a": "1"}, time.time() + 60, "user:t")),
        ):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable) as caught:
                await call()
            took = time.monotonic() - started
            assert caught.value.code == "STORE_UNAVAILABLE"
            assert "Timeout" in str(caught.value)
            # One timeout (the handshake's read), never one per retry.
            assert TIMEOUT <= took < 2 * TIMEOUT, took
        task = asyncio.current_task()
        assert task is not None
        assert task.cancelling() == 0
    finally:
        await store.close()


async def test_a_silent_server_costs_one_socket_timeout_sync(silent_port: int) -> None:
    store = _store(silent_port)
    try:
        started = await asyncio.to_thread(time.monotonic)
        with pytest.raises(StoreUnavailable):
            await asyncio.to_thread(store.load_sync, key())
        took = time.monotonic() - started
        assert TIMEOUT <= took < 2 * TIMEOUT, took
    finally:
        await store.close()


@pytest.mark.parametrize("operation", ["load", "save", "delete_principal_records"])
async def test_a_cancelled_task_raises_cancelled_error(silent_port: int, operation: str) -> None:
    store = _store(silent_port, timeout=30)
    calls: dict[str, Any] = {
        "load": lambda: store.load(key()),
        "save": lambda: store.save(key(), Update({"d:a": "1"}, time.time() + 60)),
        "delete_principal_records": lambda: store.delete_principal_records("user:c"),
    }
    try:
        pending = asyncio.ensure_future(calls[operation]())
        await asyncio.sleep(0.1)
        pending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(pending, 5)
        assert pending.cancelled()
    finally:
        await store.close()


async def test_parallel_commands_each_time_out(silent_port: int) -> None:
    store = _store(silent_port)
    try:
        loads = [store.load(key()) for _ in range(5)]
        results = await asyncio.wait_for(asyncio.gather(*loads, return_exceptions=True), 10)
        assert all(isinstance(r, StoreUnavailable) for r in results), results
    finally:
        await store.close()


async def test_an_unreachable_cluster_is_store_unavailable_everywhere() -> None:
    """No node answers (a closed port): every operation, both twins, raises StoreUnavailable."""
    store = RedisStore("redis+cluster://127.0.0.1:1", socket_timeout=0.5, connect_timeout=0.5)
    k = key()
    calls: list[Any] = [
        lambda: store.load_sync(k),
        lambda: store.save_sync(k, Create({}, time.time() + 60, "user:u")),
        store.count_sync,
        store.clear_sync,
        store.page_sync,
        lambda: store.load(k),
        lambda: store.save(k, Update({}, time.time() + 60)),
        store.count,
        store.clear,
        lambda: store.delete_principal_records("user:u"),
    ]

    async def run(call: Any) -> None:
        result = call()
        if asyncio.iscoroutine(result):
            await asyncio.wait_for(result, 20)

    try:
        for call in calls:
            with pytest.raises(StoreUnavailable):
                await run(call)
    finally:
        await store.close()
