"""The app each worker process of the multi-worker section serves, named by the environment.

``SESSIO_BENCH_CONTENDER`` names the contender, ``SESSIO_BENCH_DATA_DIR`` the directory every
worker shares (so SQLite workers open one database file) and ``SESSIO_BENCH_REDIS_URL`` /
``SESSIO_BENCH_POSTGRES_URL`` the run's servers. ``asgi()`` is uvicorn's factory: the app is
built in the worker's own event loop at lifespan startup, so async clients bind to that loop.
``wsgi()`` is gunicorn's: built once in each forked worker.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from .contenders import Built, Context, by_name
from .services import Services

__all__ = ["asgi", "wsgi"]


def _context() -> Context:
    services = Services(
        redis_url=os.environ.get("SESSIO_BENCH_REDIS_URL") or None,
        postgres_url=os.environ.get("SESSIO_BENCH_POSTGRES_URL") or None,
    )
    return Context(services, Path(os.environ["SESSIO_BENCH_DATA_DIR"]))


class _Lifespan:
    """Builds the contender at lifespan startup and closes its clients at shutdown."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ctx = _context()
        self.built: Built | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            if self.built is None:
                raise RuntimeError("the app was not built: lifespan startup did not run")
            await self.built.app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.built = await by_name(self.name).build(self.ctx)
                except Exception as exc:  # reported to uvicorn, which exits and names it
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.ctx.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def asgi() -> Any:
    """uvicorn's factory: the named ASGI contender."""
    return _Lifespan(os.environ["SESSIO_BENCH_CONTENDER"])


def wsgi() -> Any:
    """gunicorn's factory: the named WSGI contender, built in this worker."""
    built = asyncio.run(by_name(os.environ["SESSIO_BENCH_CONTENDER"]).build(_context()))
    return built.app
