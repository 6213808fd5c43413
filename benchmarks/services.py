"""Private Redis and PostgreSQL servers on loopback ports, so counters and data are the run's own.

The shared servers on 6379/5432 serve every engineer's tests at once: their global counters
(Redis ``INFO stats``, ``pg_stat_statements``) would count strangers' commands, and a million
benchmark rows do not belong there. So each run starts its own ``redis-server`` and (as root,
through ``runuser``) its own ``postgres`` with ``pg_stat_statements`` preloaded, on free
127.0.0.1 ports, and stops them at the end. Where that is impossible the run falls back to
``SESSIO_BENCH_REDIS_URL`` / ``SESSIO_BENCH_POSTGRES_URL`` (default: the shared servers) and
says so in the results.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from .processes import free_port, stop, wait_for_port

__all__ = ["Services", "services"]


@dataclasses.dataclass
class Services:
    """Where the run's servers are, and whether they are private to it."""

    redis_url: str | None = None
    redis_private: bool = False
    postgres_url: str | None = None
    postgres_private: bool = False
    notes: list[str] = dataclasses.field(default_factory=list)

    def redis_db(self, db: int) -> str | None:
        """The Redis URL with database number ``db``."""
        if self.redis_url is None:
            return None
        base = self.redis_url.rsplit("/", 1)[0] if self.redis_url.count("/") > 2 else self.redis_url
        return f"{base}/{db}"


def _reachable(url: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    with (
        contextlib.suppress(OSError),
        socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), 0.5),
    ):
        return True
    return False


@contextlib.contextmanager
def _private_redis(work: Path) -> Iterator[str | None]:
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    args = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    args += ["--dir", str(work), "--databases", "16", "--protected-mode", "yes"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield f"redis://127.0.0.1:{port}/0" if wait_for_port(port, proc, 10) else None
    finally:
        stop(proc)


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


@contextlib.contextmanager
def _private_postgres(work: Path, notes: list[str]) -> Iterator[str | None]:
    initdb, postgres = _pg_bin("initdb"), _pg_bin("postgres")
    if initdb is None or postgres is None:
        notes.append("no PostgreSQL binaries: using the shared server")
        yield None
        return
    as_user: list[str] = []
    data = work / "pgdata"
    data.mkdir()
    if os.geteuid() == 0:  # postgres refuses to run as root; its own account does
        runuser = shutil.which("runuser")
        if runuser is None:
            notes.append("root without runuser: using the shared PostgreSQL")
            yield None
            return
        as_user = [runuser, "-u", "postgres", "--"]
        shutil.chown(work, "postgres")
        shutil.chown(data, "postgres")
    result = subprocess.run(
        [*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        notes.append(f"initdb failed ({result.stderr.decode()[-200:]!r}): using the shared server")
        yield None
        return
    port = free_port()
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": str(work),
        "shared_preload_libraries": "pg_stat_statements",
        "pg_stat_statements.track": "all",
        "max_wal_size": "2GB",  # the scale run bulk-loads a million rows
        "shared_buffers": "256MB",
    }
    args = [*as_user, postgres, "-D", str(data)]
    for name, value in settings.items():
        args += ["-c", f"{name}={value}"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_for_port(port, proc, 30):
            notes.append("private postgres did not start: using the shared server")
            yield None
            return
        url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        time.sleep(0.3)  # the port opens slightly before connections are accepted
        yield url
    finally:
        stop(proc)


@contextlib.contextmanager
def services(*, private: bool = True) -> Iterator[Services]:
    """The Redis and PostgreSQL this run uses (private ones when possible), stopped on exit."""
    found = Services()
    with (
        tempfile.TemporaryDirectory(prefix="sessio-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        work = Path(tmp)
        work.chmod(0o711)  # the postgres account must traverse it to reach its data directory
        if private:
            (work / "redis").mkdir()
            found.redis_url = stack.enter_context(_private_redis(work / "redis"))
            found.redis_private = found.redis_url is not None
            (work / "pg").mkdir()
            found.postgres_url = stack.enter_context(_private_postgres(work / "pg", found.notes))
            found.postgres_private = found.postgres_url is not None
        if found.redis_url is None:
            url = os.environ.get("SESSIO_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
            found.redis_url = url if _reachable(url) else None
            found.notes.append(f"Redis: shared server {url}" if found.redis_url else "no Redis")
        if found.postgres_url is None:
            url = os.environ.get(
                "SESSIO_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
            )
            found.postgres_url = url if _reachable(url) else None
            found.notes.append(
                f"PostgreSQL: shared {url}" if found.postgres_url else "no PostgreSQL"
            )
        yield found
