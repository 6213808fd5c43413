"""``python -m benchmarks.serve NAME PORT``: one contender behind uvicorn on 127.0.0.1, for wrk.

The run's server URLs arrive in ``SESSIO_BENCH_REDIS_URL`` / ``SESSIO_BENCH_POSTGRES_URL``.
The app is built inside the server's event loop, so async store clients bind to that loop.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from .contenders import Context, by_name
from .services import Services


async def _serve(name: str, port: int) -> None:
    import uvicorn

    services = Services(
        redis_url=os.environ.get("SESSIO_BENCH_REDIS_URL") or None,
        postgres_url=os.environ.get("SESSIO_BENCH_POSTGRES_URL") or None,
    )
    with tempfile.TemporaryDirectory(prefix="sessio-serve-") as tmp:
        ctx = Context(services, Path(tmp))
        built = await by_name(name).build(ctx)
        config = uvicorn.Config(
            built.app,
            host="127.0.0.1",
            port=port,
            loop="none",
            http="httptools",
            lifespan="off",
            access_log=False,
            log_level="warning",
        )
        try:
            await uvicorn.Server(config).serve()
        finally:
            await ctx.close()


def main() -> None:
    """Serve the contender named in ``argv[1]`` on port ``argv[2]`` until terminated."""
    name, port = sys.argv[1], int(sys.argv[2])
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(name, port))
    else:
        uvloop.run(_serve(name, port))


if __name__ == "__main__":
    main()
