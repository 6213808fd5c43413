"""One OS process of the multi-process test: its own store and manager, many delta commits.

Run as ``python -m tests.distributed.worker '<json>'``; prints one JSON line with what it
wrote, removed, and when it ran. The arguments and the result travel as JSON: nothing is
pickled.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from sessio import SyncSessionManager
from sessio.stores import Store
from sessio.stores.postgres import PostgresStore
from sessio.stores.redis import RedisStore


def open_store(spec: dict[str, Any]) -> Store:
    """The store ``spec`` describes: ``{"kind": "redis"|"postgres", "url": ..., ...}``."""
    if spec["kind"] == "redis":
        return RedisStore(spec["url"], prefix=spec["prefix"])
    return PostgresStore(spec["url"], schema=spec["schema"])


def main(args: dict[str, Any]) -> dict[str, Any]:
    """Say "ready", wait for "go" on stdin, then update the shared session ``count`` times."""
    name, token = args["name"], args["token"]
    written, removed = [], []
    with open_store(args["store"]) as store:
        manager = SyncSessionManager(store)
        manager.load(token)  # connect before the start line, so the runs overlap
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            raise SystemExit(f"{name}: no start signal")
        started = time.time()
        for n in range(args["count"]):
            session = manager.load(token)
            if session.is_new:
                raise SystemExit(f"{name}: the shared session vanished at step {n}")
            key = f"{name}-{n}"
            session[key] = n
            written.append(key)
            if n % 5 == 4:  # a delta that removes one of this worker's own keys
                gone = f"{name}-{n - 1}"
                del session[gone]
                removed.append(gone)
            manager.commit(session)
        ended = time.time()
    return {"written": written, "removed": removed, "started": started, "ended": ended}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
