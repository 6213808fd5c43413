"""Child servers on loopback ports: pick a free port, wait until the child listens, stop it.

The private Redis/PostgreSQL (``services``) and the uvicorn contenders (``http``) start and
stop their servers the same way; this is that way, written once.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time

__all__ = ["free_port", "stop", "wait_for_port"]


def free_port() -> int:
    """A loopback port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, proc: subprocess.Popen[bytes], seconds: float, poll: float = 0.05
) -> bool:
    """Whether ``proc`` accepts connections on ``port`` within ``seconds``; ``False`` at once
    if it exits, so a crashed server costs no wait."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        time.sleep(poll)
    return False


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate ``proc`` if it still runs, and kill it if it will not go within 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
