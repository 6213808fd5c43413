"""Private servers for tests that stop, freeze or cluster them: never the shared ones.

:class:`RedisServer` runs one ``redis-server`` on a free loopback port in a temporary directory;
:func:`redis_cluster` runs three of them as a Redis Cluster (3 masters, no replicas);
:class:`PostgresServer` runs a throwaway PostgreSQL cluster (``initdb`` + ``pg_ctl``, as the
``postgres`` user when the tests run as root) that a test can crash, restart, or freeze whole
(SIGSTOP to the postmaster and its backends). Each stops only the processes it started.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import redis

from ..conftest import unavailable

PG_BIN = Path(os.environ.get("SESSIO_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port(*, with_bus: bool = False) -> int:
    """A loopback port nobody listens on (and, ``with_bus``, port + 10000 too)."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if not with_bus:
            return port
        if port < 55_000:
            with socket.socket() as s, contextlib.suppress(OSError):
                s.bind(("127.0.0.1", port + 10_000))
                return port
    raise RuntimeError("no free port")


def _wait(check: object, what: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except Exception:
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not come up in {timeout}s")
        time.sleep(0.05)


# -- Redis ---------------------------------------------------------------------------------------


def redis_binary() -> str:
    """The ``redis-server`` path, or skip (fail under CI) without one."""
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )
    if found is None:
        unavailable("the redis-server binary (apt-get install redis-server)")
    assert found is not None
    return found


class RedisServer:
    """One ``redis-server`` process on ``127.0.0.1:port``, working in ``directory``.

    ``durable`` keeps an AOF fsynced on every write, so a killed server restarts with exactly
    what it acknowledged; otherwise nothing is persisted.
    """

    def __init__(
        self, directory: Path, *extra: str, port: int | None = None, durable: bool = False
    ) -> None:
        self.binary = redis_binary()
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port(with_bus="yes" in extra)
        self.extra = extra
        self.durable = durable
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start (or restart) the server and wait until it answers."""
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes" if self.durable else "no",
            "--appendfsync", "always",
            "--logfile", "redis.log",
            *self.extra,
        ]  # fmt: skip
        self.process = subprocess.Popen(args, cwd=self.directory)
        _wait(self.ping, f"redis-server on port {self.port}")
        return self

    def ping(self) -> bool:
        """Whether the server answers."""
        with redis.Redis(port=self.port, socket_timeout=0.5, socket_connect_timeout=0.5) as c:
            return bool(c.ping())

    def client(self) -> redis.Redis:
        """A plain client to this server (for the test's own checks)."""
        return redis.Redis(port=self.port, socket_timeout=2)

    def kill(self) -> None:
        """Stop the process the hard way (a crash), and reap it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def freeze(self) -> None:
        """SIGSTOP: the port accepts connections but nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT after :meth:`freeze`."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


@contextlib.contextmanager
def redis_server(directory: Path, *, durable: bool = False) -> Iterator[RedisServer]:
    """A started :class:`RedisServer`, killed afterwards."""
    server = RedisServer(directory, durable=durable).start()
    try:
        yield server
    finally:
        if server.process is not None:
            server.thaw()  # a frozen process cannot act on SIGKILL until it runs again
        server.kill()


@contextlib.contextmanager
def redis_cluster(directory: Path, masters: int = 3) -> Iterator[list[RedisServer]]:
    """``masters`` cluster-enabled servers joined into one Redis Cluster, killed afterwards."""
    options = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
    nodes = [
        RedisServer(directory / f"node{i}", *options, "--cluster-node-timeout", "2000")
        for i in range(masters)
    ]
    try:
        for node in nodes:
            node.start()
        cli = shutil.which("redis-cli") or "/usr/bin/redis-cli"
        addresses = [f"127.0.0.1:{n.port}" for n in nodes]
        subprocess.run(
            [cli, "--cluster", "create", *addresses, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )

        def ready() -> bool:
            for node in nodes:
                with node.client() as c:
                    info = c.execute_command("CLUSTER", "INFO").decode()
                    if "cluster_state:ok" not in info or "cluster_known_nodes:3" not in info:
                        return False
            return True

        _wait(ready, "the Redis Cluster", timeout=30)
        yield nodes
    finally:
        for node in nodes:
            node.kill()


# -- PostgreSQL ----------------------------------------------------------------------------------


class PostgresServer:
    """A throwaway PostgreSQL cluster on a free port, in a temporary directory."""

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            unavailable(f"PostgreSQL server binaries in {PG_BIN}")
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="sessio-pg-"))
        self.data = self.directory / "data"
        self._user: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            self._user = ["runuser", "-u", "postgres", "--"]
            pw = pwd.getpwnam("postgres")
            os.chown(self.directory, pw.pw_uid, pw.pw_gid)
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "--no-sync", "-E", "UTF8")  # fmt: skip

    @property
    def url(self) -> str:
        """The libpq URL of the ``postgres`` database."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        subprocess.run([*self._user, *args], check=True, capture_output=True, timeout=60)

    def start(self) -> PostgresServer:
        """Start (or restart, with crash recovery) and wait until it accepts connections."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories="
            f"{self.directory} -c fsync=off"
        )
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.directory / "log"), "-w", "start")  # fmt: skip

        def ready() -> bool:
            psycopg.connect(self.url, connect_timeout=1).close()
            return True

        _wait(ready, f"PostgreSQL on port {self.port}")
        return self

    def crash(self) -> None:
        """Stop immediately (no shutdown checkpoint, clients cut off): a crash."""
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def processes(self) -> list[int]:
        """The postmaster's pid and its children's (the backends serving connections)."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        pids = [postmaster]
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    # /proc/<pid>/stat: "pid (comm) state ppid ..."; comm may hold spaces.
                    stat = (entry / "stat").read_text()
                    if int(stat.rsplit(")", 1)[1].split()[1]) == postmaster:
                        pids.append(int(entry.name))
        return pids

    def freeze(self) -> list[int]:
        """SIGSTOP the whole server: connections stay open, the port accepts, nothing answers.

        Returns the stopped pids, for :meth:`thaw` (a backend forked later was never stopped).
        """
        pids = self.processes()
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        return pids

    def thaw(self, pids: list[int]) -> None:
        """SIGCONT the processes :meth:`freeze` stopped."""
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def destroy(self) -> None:
        """Stop if running and remove every file."""
        with contextlib.suppress(subprocess.CalledProcessError):
            self.crash()
        shutil.rmtree(self.directory, ignore_errors=True)


# -- Redis Sentinel ------------------------------------------------------------------------------


class SentinelSet:
    """A master, its replica and ``len(sentinels)`` sentinels watching them as ``service``."""

    def __init__(
        self, master: RedisServer, replica: RedisServer, sentinels: list[RedisServer], service: str
    ) -> None:
        self.master = master
        self.replica = replica
        self.sentinels = sentinels
        self.service = service

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """The sentinels' ``(host, port)`` pairs."""
        return [("127.0.0.1", s.port) for s in self.sentinels]

    @property
    def url(self) -> str:
        """``redis+sentinel://127.0.0.1:<p1>,.../<service>/0``."""
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://{hosts}/{self.service}/0"

    def master_port(self) -> int:
        """The master's port as the first sentinel reports it."""
        with self.sentinels[0].client() as c:
            _, port = c.sentinel_get_master_addr_by_name(self.service)
            return int(port)

    def servers(self) -> list[RedisServer]:
        """The data servers, the current master first."""
        port = self.master_port()
        return sorted((self.master, self.replica), key=lambda s: s.port != port)


@contextlib.contextmanager
def redis_sentinel(
    directory: Path,
    *,
    sentinels: int = 1,
    service: str = "mymaster",
    down_after_ms: int = 1000,
    master_options: tuple[str, ...] = (),
) -> Iterator[SentinelSet]:
    """A master (started with ``master_options``), one replica and ``sentinels`` sentinels
    (``redis-server --sentinel``, config files in ``directory``), ready for a failover (the
    sentinels know the replica); every process is killed afterwards."""
    master = RedisServer(directory / "master", *master_options)
    replica = RedisServer(directory / "replica")
    watchers = [RedisServer(directory / f"sentinel{i}") for i in range(sentinels)]
    quorum = sentinels // 2 + 1
    started: list[RedisServer] = []
    try:
        started.append(master.start())
        replica.extra = ("--replicaof", "127.0.0.1", str(master.port))
        started.append(replica.start())

        def linked() -> bool:
            with replica.client() as c:
                return c.info("replication").get("master_link_status") == "up"

        _wait(linked, "the replica's link to its master")
        for watcher in watchers:
            conf = watcher.directory / "sentinel.conf"
            conf.write_text(
                f"port {watcher.port}\nbind 127.0.0.1\ndir {watcher.directory}\n"
                f"logfile sentinel.log\n"
                f"sentinel monitor {service} 127.0.0.1 {master.port} {quorum}\n"
                f"sentinel down-after-milliseconds {service} {down_after_ms}\n"
                f"sentinel failover-timeout {service} 10000\n"
                f"sentinel parallel-syncs {service} 1\n"
            )
            watcher.process = subprocess.Popen(
                [watcher.binary, str(conf), "--sentinel"], cwd=watcher.directory
            )
            started.append(watcher)
            _wait(watcher.ping, f"sentinel on port {watcher.port}")

        def ready() -> bool:
            for watcher in watchers:
                with watcher.client() as c:
                    state = c.sentinel_master(service)
                    if int(state["num-slaves"]) < 1:
                        return False
                    if int(state["num-other-sentinels"]) < sentinels - 1:
                        return False
            return True

        _wait(ready, "the sentinels", timeout=30)
        yield SentinelSet(master, replica, watchers, service)
    finally:
        for server in started:
            if server.process is not None:
                server.thaw()
            server.kill()
