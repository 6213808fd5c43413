"""Test support for WSGI: a real threaded server on a free loopback port, an in-process caller
checked by ``wsgiref.validate``, concurrent writers on one session, and stores that count their
calls or fail on purpose."""

from __future__ import annotations

import dataclasses
import io
import socketserver
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.util import setup_testing_defaults
from wsgiref.validate import validator

import httpx

from sessio.errors import StoreUnavailable
from sessio.stores import MemoryStore
from sessio.stores.base import Record, Write


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


@contextmanager
def serve(app: Callable[..., Any]) -> Iterator[str]:
    """Run ``app`` (checked by ``wsgiref.validate``) under a threaded wsgiref server; yields
    its base URL."""
    server = make_server(
        "127.0.0.1", 0, validator(app), server_class=_ThreadingServer, handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def write_concurrently(client: httpx.Client, cookie: str, writers: int) -> None:
    """Send ``GET /slow-set?k{i}=v{i}`` for ``i`` in ``range(writers)``, all on the session
    ``cookie`` (a whole ``Cookie`` header value) and released at once by a barrier, so their
    loads and commits overlap. Every answer must be 200; a failure inside a writer thread is
    raised here rather than lost with the thread."""
    barrier = threading.Barrier(writers)
    failures: list[BaseException] = []

    def write(i: int) -> None:
        try:
            barrier.wait()
            response = client.get(f"/slow-set?k{i}=v{i}", headers={"Cookie": cookie})
            assert response.status_code == 200
        except BaseException as exc:  # reported below, not lost in the thread
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


@dataclasses.dataclass
class Result:
    """What an in-process WSGI call answered."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes
    environ: dict[str, Any]

    def header(self, name: str) -> list[str]:
        """Every value of header ``name``."""
        return [v for k, v in self.headers if k.lower() == name.lower()]


def call(
    app: Callable[..., Any],
    method: str = "GET",
    path: str = "/",
    *,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    environ: dict[str, Any] | None = None,
    validate: bool = True,
) -> Result:
    """Call a WSGI app in process, the way a server would (closing the iterable)."""
    env: dict[str, Any] = {}
    setup_testing_defaults(env)
    path, _, query = path.partition("?")
    env.update(
        REQUEST_METHOD=method,
        PATH_INFO=path,
        QUERY_STRING=query,
        CONTENT_LENGTH=str(len(body)) if body else "",
    )
    env["wsgi.input"] = io.BytesIO(body)
    for name, value in (headers or {}).items():
        key = name.upper().replace("-", "_")
        env[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
    env.update(environ or {})
    seen: dict[str, Any] = {}

    def start_response(status: str, response_headers: Any, exc_info: Any = None) -> Any:
        seen["status"], seen["headers"] = status, list(response_headers)
        return lambda data: None

    result = (validator(app) if validate else app)(env, start_response)
    try:
        data = b"".join(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return Result(int(seen["status"].split()[0]), seen["headers"], data, env)


class SpyStore(MemoryStore):
    """A MemoryStore that records every contract call it serves."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls: list[str] = []

    def load_sync(self, key: str) -> Record | None:
        self.calls.append("load")
        return super().load_sync(key)

    def save_sync(self, key: str, write: Write) -> bool:
        self.calls.append("save")
        return super().save_sync(key, write)

    def delete_sync(self, key: str) -> bool:
        self.calls.append("delete")
        return super().delete_sync(key)


class DownStore(MemoryStore):
    """A MemoryStore whose loads and/or saves fail as an unreachable server would."""

    def __init__(self, *, load: bool = False, save: bool = False) -> None:
        super().__init__()
        self.fail_load, self.fail_save = load, save

    def load_sync(self, key: str) -> Record | None:
        if self.fail_load:
            raise StoreUnavailable("connection refused")
        return super().load_sync(key)

    def save_sync(self, key: str, write: Write) -> bool:
        if self.fail_save:
            raise StoreUnavailable("connection refused")
        return super().save_sync(key, write)
