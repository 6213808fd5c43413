"""The socket deadline under PostgresStore, on a socket pair: no server needed.

An overdue block has its socket shut down (the peer reads EOF, the block's own reads end); a
block that finished in time never does, however many run, and from how many threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import time
from collections.abc import Iterator

import pytest

from sessio.stores._postgres_deadline import Watchdog, async_deadline

TIMEOUT = 0.2
#: The watchdog's tick (TIMEOUT / 10) and a loaded machine's scheduling.
SLACK = 1.0


class _Conn:
    """What the deadline needs of a connection: its socket's descriptor."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def _is_cut(sock: socket.socket) -> bool:
    """Whether ``sock`` was shut down (reads end at once) rather than merely silent."""
    sock.settimeout(0.05)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False


def test_an_overdue_sync_block_is_cut(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _ = pair
    watchdog = Watchdog(TIMEOUT)
    started = time.monotonic()
    with watchdog.guard(_Conn(ours)) as deadline:
        ours.settimeout(TIMEOUT + SLACK + 1)
        assert ours.recv(1) == b""  # the silent "server" never wrote: the cut ended the read
    assert time.monotonic() - started < TIMEOUT + SLACK
    assert deadline.fired


def test_blocks_that_finish_in_time_are_never_cut(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, _ = pair
    watchdog = Watchdog(TIMEOUT)

    def quick(_: int) -> bool:
        with watchdog.guard(_Conn(ours)) as deadline:
            time.sleep(0.001)
        return deadline.fired

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        fired = list(pool.map(quick, range(400)))
    time.sleep(TIMEOUT * 2)  # every deadline has passed: none of them may act now
    assert not any(fired)
    assert not _is_cut(ours)


async def test_an_overdue_async_block_is_cut(pair: tuple[socket.socket, socket.socket]) -> None:
    ours, _ = pair
    ours.setblocking(False)
    loop = asyncio.get_running_loop()
    started = time.monotonic()
    with async_deadline(_Conn(ours), TIMEOUT) as deadline:
        assert await asyncio.wait_for(loop.sock_recv(ours, 1), TIMEOUT + SLACK + 1) == b""
    assert time.monotonic() - started < TIMEOUT + SLACK
    assert deadline.fired


async def test_an_async_block_in_time_is_never_cut(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    ours, _ = pair
    for _ in range(50):
        with async_deadline(_Conn(ours), TIMEOUT) as deadline:
            await asyncio.sleep(0)
        assert not deadline.fired
    await asyncio.sleep(TIMEOUT * 2)
    assert not _is_cut(ours)
