"""Real servers for the demo's tests: uvicorn in a thread, or the ``sessio demo`` command itself."""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from sessio import SQLiteStore
from sessio.demo import create_app
from sessio.demo.users import ScryptParams, UserStore
from tests.conftest import unavailable
from tests.integrations.apps import serve

from .browsing import CHROMIUM, CHROMIUM_ARGS

#: Cheap hashing for tests only; the demo itself uses ScryptParams() (OWASP's minimum).
FAST = ScryptParams(n=2**10, r=8, p=1)
SECRET = "test-secret-key-with-at-least-32-bytes-of-entropy"
_CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclasses.dataclass
class Demo:
    """A running demo and direct handles on what it stores."""

    url: str
    store: SQLiteStore
    users: UserStore
    clients: list[httpx.Client] = dataclasses.field(default_factory=list)

    def client(self, **options: Any) -> httpx.Client:
        """A new visitor (its own cookie jar), closed when the test ends."""
        client = httpx.Client(base_url=self.url, timeout=30, **options)
        self.clients.append(client)
        return client


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    """The demo app under a real uvicorn, on a fresh SQLite store and account file."""
    store = SQLiteStore(tmp_path / "sessions.db")
    users = UserStore(tmp_path / "users.db", params=FAST)
    with serve(create_app(store, secret_key=SECRET, users=users)) as url:
        running = Demo(url, store, users)
        yield running
        for client in running.clients:
            client.close()
    users.close()
    store.close_sync()


def csrf_from(html: str) -> str:
    """The CSRF token of the first form in a page."""
    found = _CSRF_FIELD.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


def free_port() -> int:
    """A loopback port that was free a moment ago (the command binds it itself)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class DemoProcess:
    """``sessio demo`` running as a user runs it."""

    url: str
    process: subprocess.Popen[str]

    def stop(self) -> str:
        """Stop it (Ctrl-C, as a user would) and return everything it printed."""
        if self.process.poll() is None:
            self.process.send_signal(2)
        out, _ = self.process.communicate(timeout=30)
        return out


@contextmanager
def sessio_demo(
    workdir: Path, store_url: str, env: dict[str, str] | None = None
) -> Iterator[DemoProcess]:
    """Run ``python -m sessio demo`` in ``workdir`` on a free port until it answers."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SESSIO_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "sessio", "demo", "--port", str(port), "--store", store_url],
        cwd=workdir,
        env={**clean, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    running = DemoProcess(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + 60
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"sessio demo exited early:\n{running.stop()}")
            try:
                httpx.get(running.url + "/static/demo.css", timeout=5).raise_for_status()
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail(f"sessio demo did not answer:\n{running.stop()}")
                time.sleep(0.05)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium under Playwright (never Playwright's own download)."""
    if not os.access(CHROMIUM, os.X_OK):
        unavailable("Debian's chromium (/usr/bin/chromium, installed by `make browser`)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright for Python (pip install -e '.[dev]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
