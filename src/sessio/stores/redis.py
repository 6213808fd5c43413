"""RedisStore: sessions as Redis hashes with native TTL, one round trip per load and per save.

Layout, with the default prefix ``sessio:``:

``sessio:s:{<key>}`` (hash)
    One session. Its fields are the record's fields (a name that starts with ``#`` is stored
    with one more ``#``), plus reserved fields ``#e`` (expiry, epoch seconds as text), ``#p``
    (principal key), ``#r`` (the request id of the create or rotation that wrote it, so a
    retry sees its own write) and, in cluster mode, ``#i`` (see below). ``PEXPIREAT`` makes
    Redis drop the hash at ``#e`` on its own clock, so :meth:`~RedisStore.cleanup` has nothing
    to do.
``sessio:p:{<principal>}`` (sorted set)
    The per-principal index: session keys scored by an upper bound of their expiry. Expired
    members are pruned whenever the index is written or listed, and the index key expires just
    after its last member.
``sessio:q:{<key>}``, ``sessio:v:{<principal>}`` (hashes, one minute)
    Replies by request id of the scripts whose second run would differ (a write that evicted,
    a cluster takeover or deletion; a revocation, a cluster limit), so a retried script
    returns the first run's reply (see :mod:`~sessio.stores._redis_lua`). In cluster mode
    ``v:`` also notes the index's recent filings and the evictions under way.

The braces are Redis Cluster hash tags. **What is atomic, and what is not:**

* **One Redis server, or a prefix holding a hash tag** (``prefix="{sessio}:"``: every key in
  one slot, so a cluster gets the same guarantees at the price of one shard). Every save is one
  Lua script: a Create, Update, Rotate or Rewrite checks that it may apply, enforces the
  principal limit (counting the principal's other live records, evicting the oldest or
  rejecting), deletes a rotation's superseded record and index entry, writes the record, its
  index entry and the tombstone, all in one atomic step and one round trip. Revoking every
  session of a principal is one script too, atomic with respect to saves.
* **Redis Cluster, untagged prefix.** A record, its principal's index, a rotation's superseded
  record and its tombstone live in different slots; no single script covers them. Each step is
  atomic on its own slot and idempotent (a retry after a timeout gets the first run's reply).
  The invariant kept is the one revocation needs: *every live record that names a principal is
  filed in that principal's index* (a record carries ``#i``, the score it is filed under, and
  the save script refuses to name a principal beyond it). A login (Rotate with a principal)
  takes four round trips: (1) the index files the new key and enforces the limit, atomically
  on the index's slot, so racing logins count each other (past the limit the others' records
  are read first: one more round trip); (2) the new record, provisional (it lives one minute),
  and the tombstone are written; (3) the superseded record is taken over: deleted if live, and
  if it was gone (revoked meanwhile) steps 1-2 are undone and the save is MISSING; (4) the new
  record gets its lifetime, the old index entry and the evicted records go (their index
  entries one round trip later). **Not atomic there:** between steps 2 and 3 the old and the
  new record are both live (the new ID is not handed out yet); a failure before step 3 leaves
  the old session live and at most a provisional record for a minute; a failure after step 3
  loses the session (the old record is gone, the response never carried the new ID). The
  limit reads the others' records outside the index's step, so a record that changes between
  that read and the count is counted as it was read; a member filed within the last minute is
  counted unread. A delete is two round trips (the record, then its index entry). Revoking a
  principal's sessions reads the index, then deletes, in up to three passes: a rotation that
  lands after the last pass escapes.

**Redis Sentinel** (``redis+sentinel://``) is the one-server mode on whichever server the
sentinels name master; replication is asynchronous, so a write acknowledged just before a
failover may be lost (see :mod:`~sessio.stores._redis_sentinel`).

A load is one ``HGETALL``. All I/O goes through redis-py's public client API: its connection
pool (a ``BlockingConnectionPool`` of ``max_connections``, waited on for ``pool_timeout``), its
timeouts and its ``Retry`` (one server: connection errors only, so a silent server costs one
``socket_timeout``; a cluster also retries timeouts, which the scripts' request ids make safe).
Every driver error raises :class:`~sessio.errors.StoreUnavailable`; a value Redis cannot take
raises :class:`~sessio.errors.ValueNotSerializable`; a key of the wrong type or bytes that are
not UTF-8 make :meth:`~RedisStore.load` raise :class:`~sessio.errors.RecordCorrupt`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigurationError, require
from . import _redis_config as config
from . import _redis_sentinel as sentinel_mode
from ._redis_driver import Driver
from ._redis_flows import Flows
from ._redis_keyspace import Keyspace
from .base import Clock, Page, Record, Saved, Store, Write

__all__ = ["RedisStore"]


class RedisStore(Store):
    """Sessions in Redis (or Valkey), standalone or Redis Cluster; ``pip install 'sessio[redis]'``.

    Give a ``url`` (``redis://``, ``rediss://``, ``unix://``; ``redis+cluster://host:port`` or
    ``rediss+cluster://`` for a cluster) and the store creates its clients lazily: a
    ``redis.Redis`` for the ``_sync`` methods, a ``redis.asyncio.Redis`` for the async ones
    (bound to the event loop that first uses it), or their ``RedisCluster`` counterparts. Or
    pass your own ``client`` and/or ``async_client`` (cluster clients are recognised; they keep
    their own pools and retries); the store then leaves them open on :meth:`close`. Clients
    should not set ``decode_responses``.

    ``prefix`` namespaces every key (default ``"sessio:"``; never empty). ``socket_timeout`` and
    ``connect_timeout`` bound how long an unreachable server can stall a request before
    :class:`~sessio.errors.StoreUnavailable`. ``max_connections`` (default 50) bounds each
    client's pool (per node on a cluster); a caller waits up to ``pool_timeout`` (default 2 s)
    for a free connection (an async cluster client does not wait: it fails at once).
    ``retries`` (default 2) is how often redis-py retries a command after a connection error
    (and, on a cluster, a timeout). ``client_options`` go to the clients it creates. The layout
    and what is atomic where are described in the module documentation.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: Any = None,
        async_client: Any = None,
        prefix: str = "sessio:",
        socket_timeout: float = 2.0,
        connect_timeout: float = 2.0,
        max_connections: int = 50,
        pool_timeout: float = 2.0,
        retries: int = 2,
        client_options: Mapping[str, Any] | None = None,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(clock=clock)
        self._redis = require("redis", "redis")
        require("redis.asyncio", "redis")
        options = dict(client_options or {})
        self._secret = config.password_of(url, options)
        tagged = config.check_prefix(prefix)
        for name, value in (("socket_timeout", socket_timeout), ("connect_timeout", connect_timeout),
                            ("pool_timeout", pool_timeout)):  # fmt: skip
            if not isinstance(value, int | float) or not value > 0:
                raise ConfigurationError(f"{name} must be a positive number of seconds")
        if type(max_connections) is not int or max_connections < 1:
            raise ConfigurationError("max_connections must be a positive integer")
        if type(retries) is not int or retries < 0:
            raise ConfigurationError("retries must be an integer >= 0")
        if url is None and client is None and async_client is None:
            url = "redis://localhost:6379/0"
        if url is not None:
            config.check_url(self._redis, url, self._scrub)
        self.cluster = config.is_cluster(self._redis, url, client, async_client)
        self.url = url
        self.prefix = prefix
        #: Whether one script can touch every key of an operation (see the module docstring).
        self.atomic = not self.cluster or tagged
        self._client = client
        self._async_client = async_client
        self._owns_client = client is None
        self._owns_async_client = async_client is None
        self._timeouts = (float(socket_timeout), float(connect_timeout), float(pool_timeout))
        self._max_connections = max_connections
        self._retries = retries
        self._options = options
        self._lock = threading.Lock()
        sentinel = urlsplit(url).scheme.lower() in sentinel_mode.SCHEMES if url else False
        self._io = Driver(
            self._redis, self._sync, self._async, cluster=self.cluster, scrub=self._scrub,
            sentinel=sentinel,
        )  # fmt: skip
        self._flows = Flows(self._io, prefix, atomic=self.atomic)
        self._keys = Keyspace(prefix)

    @classmethod
    def sentinel(
        cls,
        sentinels: Sequence[tuple[str, int]],
        service_name: str = "mymaster",
        *,
        db: int = 0,
        tls: bool = False,
        **options: Any,
    ) -> RedisStore:
        """The store on the master that ``sentinels`` (``(host, port)`` pairs) monitor as
        ``service_name``; ``options`` are the constructor's. Pass the master's password as
        ``client_options={"password": ...}``, the sentinels' as ``client_options={
        "sentinel_kwargs": {"password": ...}}``. Failover, pools and retries are described in
        :mod:`~sessio.stores._redis_sentinel`."""
        return cls(sentinel_mode.url_for(sentinels, service_name, db, tls=tls), **options)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisStore:
        """The store for ``url``; what :func:`~sessio.stores.store_from_url` calls.

        A ``prefix`` query parameter sets the key prefix (``redis://host/0?prefix=app:``); the
        other parameters are redis-py's (``?socket_timeout=1``). A URL or option the store
        cannot use raises :class:`~sessio.errors.ConfigurationError`.
        """
        if not isinstance(url, str):
            raise ConfigurationError("a Redis URL must be a string")
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        for name, value in query:
            if name == "prefix":
                options.setdefault("prefix", value)
        rest = urlencode([(n, v) for n, v in query if n != "prefix"])
        try:
            return cls(urlunsplit(parts._replace(query=rest)), **options)
        except TypeError as exc:
            raise ConfigurationError(f"RedisStore does not take these options: {exc}") from None

    def _scrub(self, message: str) -> str:
        return message.replace(self._secret, "***") if self._secret else message

    def __repr__(self) -> str:
        where = config.redact(self.url) if self.url else "<client>"
        return f"RedisStore({where!r}, prefix={self.prefix!r})"

    def record_key(self, key: str) -> str:
        """The Redis key of the record under ``key`` (for inspection and operations)."""
        return self._flows.rec(key)

    def index_key(self, principal: str) -> str:
        """The Redis key of ``principal``'s index (a sorted set of record keys)."""
        return self._flows.idx(principal)

    # -- clients --------------------------------------------------------------------------------------

    def _client_url(self) -> str:
        if self.url is None:
            raise ConfigurationError(
                "this RedisStore was given one client only; pass both client= and async_client= "
                "(or a url=) to use both the sync and the async methods"
            )
        return config.client_url(self.url)

    def _sync(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._make(self._redis)
        return self._client

    def _async(self) -> Any:
        if self._async_client is None:
            self._async_client = self._make(self._redis.asyncio)
        return self._async_client

    def _make(self, module: Any) -> Any:
        timeout, connect, pool_timeout = self._timeouts
        options = {
            "socket_timeout": timeout,
            "socket_connect_timeout": connect,
            "max_connections": self._max_connections,
            **self._options,
        }
        return config.make_client(
            self._redis,
            module,
            self._client_url(),
            cluster=self.cluster,
            retries=self._retries,
            pool_timeout=pool_timeout,
            options=options,
        )

    # -- contract: async ------------------------------------------------------------------------------

    async def load(self, key: str) -> Record | None:
        return await self._io.run(self._flows.load(key))

    async def save(self, key: str, write: Write) -> Saved:
        return await self._io.run(self._flows.save(key, write))

    async def delete(self, key: str) -> bool:
        return await self._io.run(self._flows.delete(key))

    async def principal_records(self, principal: str) -> list[Record]:
        return await self._io.run(self._flows.principal_records(principal))

    async def delete_principal_records(self, principal: str, keep: str | None = None) -> list[str]:
        """Every record of ``principal`` but ``keep`` deleted; the keys deleted.

        With :attr:`atomic`, one script, atomic with respect to saves: a rotation that landed
        first is in the index and goes too; one that lands after finds its superseded record
        gone. **On Redis Cluster without a hash-tagged prefix it is not atomic**: up to three
        passes of reading the index and deleting what it names (see the module docstring).
        """
        return await self._io.run(self._flows.delete_principal_records(principal, keep))

    async def exists(self, key: str) -> bool:
        return await self._io.run(self._flows.exists(key))

    async def count(self) -> int:
        """Counts with ``SCAN`` (on every primary of a cluster): for housekeeping, not hot paths."""
        try:
            return sum([1 async for _ in self._async().scan_iter(**self._keys.scan("s:"))])
        except Exception as exc:
            raise self._io.failure(exc) from exc

    async def clear(self) -> int:
        """Remove this store's keys (and only those: names are checked against the layout)."""
        n = 0
        try:
            client = self._async()
            batch: list[Any] = []
            async for name in client.scan_iter(**self._keys.scan()):
                n += self._keys.take(name, batch)
                if len(batch) >= 500:
                    await client.unlink(*batch)
                    batch = []
            if batch:
                await client.unlink(*batch)
        except Exception as exc:
            raise self._io.failure(exc) from exc
        return n

    async def cleanup(self) -> int:
        """Nothing to do: Redis expires sessions, and indexes prune themselves. Returns 0."""
        return 0

    async def close(self) -> None:
        if self._owns_async_client and self._async_client is not None:
            client, self._async_client = self._async_client, None
            self._io.forget()
            await (client.aclose() if self.cluster else sentinel_mode.aclose(client))
        self.close_sync()

    # -- contract: sync -------------------------------------------------------------------------------

    def load_sync(self, key: str) -> Record | None:
        return self._io.run_sync(self._flows.load(key))

    def save_sync(self, key: str, write: Write) -> Saved:
        return self._io.run_sync(self._flows.save(key, write))

    def delete_sync(self, key: str) -> bool:
        return self._io.run_sync(self._flows.delete(key))

    def principal_records_sync(self, principal: str) -> list[Record]:
        return self._io.run_sync(self._flows.principal_records(principal))

    def delete_principal_records_sync(self, principal: str, keep: str | None = None) -> list[str]:
        """Sync twin of :meth:`delete_principal_records`."""
        return self._io.run_sync(self._flows.delete_principal_records(principal, keep))

    def exists_sync(self, key: str) -> bool:
        return self._io.run_sync(self._flows.exists(key))

    def count_sync(self) -> int:
        """Sync twin of :meth:`count`."""
        try:
            return sum(1 for _ in self._sync().scan_iter(**self._keys.scan("s:")))
        except Exception as exc:
            raise self._io.failure(exc) from exc

    def clear_sync(self) -> int:
        """Sync twin of :meth:`clear`."""
        n = 0
        try:
            client = self._sync()
            batch: list[Any] = []
            for name in client.scan_iter(**self._keys.scan()):
                n += self._keys.take(name, batch)
                if len(batch) >= 500:
                    client.unlink(*batch)
                    batch = []
            if batch:
                client.unlink(*batch)
        except Exception as exc:
            raise self._io.failure(exc) from exc
        return n

    def cleanup_sync(self) -> int:
        """Sync twin of :meth:`cleanup`."""
        return 0

    def page_sync(self, cursor: str | None = None, limit: int = 100) -> Page:
        """One page of records by ``SCAN`` (node by node on a cluster); the cursor says where
        the walk stands (``node:scan-cursor:skip``). Index and marker keys are never listed."""
        try:
            client = self._sync()
            if self.cluster:
                nodes = [client.get_redis_connection(n) for n in Driver.primaries(client)]
            else:
                nodes = [client]
            return self._keys.page(nodes, client, cursor, limit)
        except ConfigurationError:
            raise
        except Exception as exc:
            raise self._io.failure(exc) from exc

    def close_sync(self) -> None:
        """Close the sync client the store created (an async one needs :meth:`close`)."""
        if self._owns_client and self._client is not None:
            client, self._client = self._client, None
            if self.cluster:
                client.close()
            else:
                sentinel_mode.close(client)
