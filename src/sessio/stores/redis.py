"""RedisStore: sessions as Redis hashes with native TTL, one round trip per load and per save.

Layout, with the default prefix ``sessio:``:

``sessio:s:{<key>}`` (hash)
    One session. Its fields are the record's fields (a name that starts with ``#`` is stored
    with one more ``#``), plus reserved fields ``#e`` (expiry, epoch seconds as text), ``#p``
    (principal key) and, in cluster mode, ``#i`` (see below). ``PEXPIREAT`` makes Redis drop the
    hash at ``#e`` on its own clock, so :meth:`~RedisStore.cleanup` has nothing to do.
``sessio:p:{<principal>}`` (sorted set)
    The per-principal index: session keys scored by an upper bound of their expiry. Expired
    members are pruned whenever the index is written or listed, and the index key expires just
    after its last member, so nothing depends on keyspace notifications or a cron job.

The braces are Redis Cluster hash tags: each session hash lives in its own slot, each index in
its principal's. **What must be atomic, and what is atomic:**

* **One Redis server (or a prefix holding a hash tag).** Every save is one Lua script that
  checks the write may apply (a delta or a forced rewrite needs its record, a rotation the
  superseded one: a session revoked meanwhile is never brought back), deletes the superseded
  record, applies the write and files the key in its principal's index, all atomically and in
  one round trip. Listing a principal's sessions checks each member against its record in one
  script and drops members whose record is gone or has changed hands; so the index is exact.
  With ``prefix="{sessio}:"`` every key shares one slot, and a cluster gets the same guarantees
  (at the price of putting all sessions on one shard).
* **Redis Cluster.** A session's hash and its principal's index live in different slots, so no
  single operation can cover both. The invariant kept instead is the one revocation needs: *every
  live session that names a principal is a member of that principal's index*. A record carries
  ``#i``, the score under which it is filed; the save script refuses (writing nothing) to give a
  record a principal, or an expiry past ``#i``, unless the index was written first. So a save is
  one round trip, except when it files the session in an index (login, or every few lifetimes
  of a busy session, since members are filed with headroom): then the index is written first.
  A rotation deletes the superseded record before the new one is written, and writes it only if
  that ``DEL`` removed something (a session revoked meanwhile stays gone); the failure this
  ordering allows is a lost session, never two live ones. Members are only removed once their
  score has passed (plus a minute, for clocks that differ between nodes), which the invariant
  makes safe; stale members (deleted sessions, changed principals) are filtered out when
  listing and pruned when their score passes.

A load is one ``HGETALL``. Scripts run with ``EVALSHA`` and fall back to ``EVAL`` (which also
caches them) after a restart or failover. Connection failures and server errors raise
:class:`~sessio.errors.StoreUnavailable`; a key of the wrong type or bytes that are not UTF-8
make :meth:`~RedisStore.load` raise :class:`~sessio.errors.RecordCorrupt`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigurationError, RecordCorrupt, StoreUnavailable, require
from . import _redis_lua as lua
from ._redis_driver import Cmd, Driver, Flow, script
from .base import Clock, Record, Store, Write

__all__ = ["RedisStore"]

#: Cluster URL scheme -> the scheme redis-py's RedisCluster takes.
_CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

#: Cluster mode: passes over a principal's index to delete its sessions (see
#: RedisStore.delete_principal_records).
_CLUSTER_PASSES = 3


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _stored_name(name: str) -> str:
    return "#" + name if name.startswith("#") else name


def _add_fields(argv: list[Any], write: Write) -> None:
    """Append the write's name/value pairs, then its removed names, as the scripts take them."""
    for name, value in write.fields.items():
        argv += ("#" + name if name[:1] == "#" else name, value)
    if write.removed:
        argv += [_stored_name(name) for name in write.removed]


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


class RedisStore(Store):
    """Sessions in Redis (or Valkey), standalone or Redis Cluster; ``pip install 'sessio[redis]'``.

    Give a ``url`` (``redis://``, ``rediss://``, ``unix://``; ``redis+cluster://host:port`` or
    ``rediss+cluster://`` for a cluster) and the store creates its clients lazily: a
    ``redis.Redis`` for the ``_sync`` methods, a ``redis.asyncio.Redis`` for the async ones
    (bound to the event loop that first uses it), or their ``RedisCluster`` counterparts. Or pass your own ``client`` and/or
    ``async_client`` (cluster clients are recognised); the store then leaves them open on
    :meth:`close`. Clients should not set ``decode_responses``.

    ``prefix`` namespaces every key (default ``"sessio:"``). ``socket_timeout`` and
    ``connect_timeout`` bound how long an unreachable server can stall a request before
    :class:`~sessio.errors.StoreUnavailable`; ``client_options`` go to the clients it creates.
    The layout and what is atomic where are described in the module documentation.
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
        client_options: Mapping[str, Any] | None = None,
        clock: Clock = time.time,
    ) -> None:
        super().__init__(clock=clock)
        self._redis = require("redis", "redis")
        require("redis.asyncio", "redis")
        if not isinstance(prefix, str):
            raise ConfigurationError(f"prefix must be a string, got {type(prefix).__name__}")
        open_, close = prefix.find("{"), prefix.find("}")
        tagged = 0 <= open_ < close - 1
        if ("{" in prefix or "}" in prefix) and not tagged:
            raise ConfigurationError(
                f"prefix {prefix!r} holds a brace that is not a whole hash tag like '{{app}}:'"
            )
        if url is None and client is None and async_client is None:
            url = "redis://localhost:6379/0"
        cluster = self._is_cluster(url, client, async_client)
        self.url = url
        self.prefix = prefix
        self.cluster = cluster
        #: Whether one script can touch every key of an operation (see the module docstring).
        self.atomic = not cluster or tagged
        self._client = client
        self._async_client = async_client
        self._owns_client = client is None
        self._owns_async_client = async_client is None
        self._options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": connect_timeout,
            **(client_options or {}),
        }
        self._lock = threading.Lock()
        self._io = Driver(self._redis, self._sync, self._async, direct=not cluster)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisStore:
        """The store for ``url``; what :func:`~sessio.stores.store_from_url` calls.

        A ``prefix`` query parameter sets the key prefix (``redis://host/0?prefix=app:``); the
        other parameters are redis-py's (``?socket_timeout=1``).
        """
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        for name, value in query:
            if name == "prefix":
                options.setdefault("prefix", value)
        rest = urlencode([(n, v) for n, v in query if n != "prefix"])
        return cls(urlunsplit(parts._replace(query=rest)), **options)

    def _is_cluster(self, url: str | None, client: Any, async_client: Any) -> bool:
        sync_cluster = self._redis.cluster.RedisCluster
        async_cluster = require("redis.asyncio.cluster", "redis").RedisCluster
        kinds = set()
        if url is not None:
            kinds.add(urlsplit(url).scheme.lower() in _CLUSTER_SCHEMES)
        if client is not None:
            kinds.add(isinstance(client, sync_cluster))
        if async_client is not None:
            kinds.add(isinstance(async_client, async_cluster))
        if len(kinds) > 1:
            raise ConfigurationError("mixing Redis Cluster and standalone Redis in one store")
        return kinds.pop()

    def __repr__(self) -> str:
        where = _redact(self.url) if self.url else "<client>"
        return f"RedisStore({where!r}, prefix={self.prefix!r})"

    # -- clients --------------------------------------------------------------------------------------

    def _client_url(self) -> str:
        if self.url is None:
            raise ConfigurationError(
                "this RedisStore was given one client only; pass both client= and async_client= "
                "(or a url=) to use both the sync and the async methods"
            )
        parts = urlsplit(self.url)
        scheme = _CLUSTER_SCHEMES.get(parts.scheme.lower())
        return self.url if scheme is None else urlunsplit(parts._replace(scheme=scheme))

    def _sync(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    r = self._redis
                    retry = r.retry.Retry(r.backoff.ExponentialBackoff(cap=0.25, base=0.025), 2)
                    cls = r.cluster.RedisCluster if self.cluster else r.Redis
                    self._client = cls.from_url(self._client_url(), retry=retry, **self._options)
        return self._client

    def _async(self) -> Any:
        if self._async_client is None:
            r = self._redis
            retry = r.asyncio.retry.Retry(r.backoff.ExponentialBackoff(cap=0.25, base=0.025), 2)
            cls = r.asyncio.cluster.RedisCluster if self.cluster else r.asyncio.Redis
            self._async_client = cls.from_url(self._client_url(), retry=retry, **self._options)
        return self._async_client

    # -- key names and records ------------------------------------------------------------------------

    def _rec(self, key: str) -> str:
        return f"{self.prefix}s:{{{key}}}"

    def _idx(self, principal: str) -> str:
        return f"{self.prefix}p:{{{principal}}}"

    def _record(self, key: str, raw: Any) -> Record | None:
        if not raw:
            return None
        if isinstance(raw, dict):  # through a client: its reply callback made a dict
            raw = [item for pair in raw.items() for item in pair]
        try:
            text = [item.decode() if type(item) is bytes else str(item) for item in raw]
        except UnicodeDecodeError:
            raise RecordCorrupt("a stored session holds bytes that are not UTF-8") from None
        fields = dict(zip(text[::2], text[1::2], strict=True))
        expires = fields.pop("#e", None)
        principal = fields.pop("#p", None)
        reserved = [name for name in fields if name[:1] == "#"]
        for name in reserved:  # a record field whose name starts with "#" is stored as "##..."
            value = fields.pop(name)
            if name[:2] == "##":
                fields[name[1:]] = value
        try:
            expires_at = float(expires)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise RecordCorrupt("a stored session has no valid expiry") from None
        if not math.isfinite(expires_at):
            raise RecordCorrupt("a stored session has no valid expiry")
        return Record(key, fields, expires_at, principal)

    # -- flows ---------------------------------------------------------------------------------------

    def _load_flow(self, key: str) -> Flow[Record | None]:
        (raw,) = yield [Cmd(("HGETALL", self._rec(key)))]
        if self._io.wrong_type(raw):
            raise RecordCorrupt("a stored session is not a Redis hash")
        return self._record(key, self._io.ok(raw))

    def _save_flow(self, key: str, write: Write) -> Flow[bool]:
        rec = self._rec(key)
        expires_at = float(write.expires_at)
        if not write.replace and write.principal is None:
            # The common write (an anonymous session's changes or touch): the lean script.
            argv: list[Any] = [repr(expires_at), math.floor(expires_at * 1000), len(write.fields)]
            _add_fields(argv, write)
            (result,) = yield [script(lua.DELTA, [rec], argv)]
            return bool(self._io.ok(result))
        has_principal = write.principal is not None
        principal = write.principal or ""
        old = write.supersedes if write.replace else None
        if not write.replace:
            mode = "delta"
        elif old == key:
            mode, old = "rewrite", None  # the script checks the record itself
        else:
            mode = "create"  # conditional on ``old`` (if any), checked below
        argv = [
            "1" if self.atomic else "0",
            mode,
            "1" if has_principal else "0",
            principal,
            key,
            repr(expires_at),
            str(math.floor(expires_at * 1000)),
            "",  # registered: cluster mode, filled in below
            len(write.fields),
        ]
        _add_fields(argv, write)
        if self.atomic:
            keys = [rec, self._idx(principal) if has_principal else rec]
            if old is not None:
                keys.append(self._rec(old))
            (result,) = yield [script(lua.SAVE, keys, argv)]
            return bool(self._io.ok(result))
        # Cluster: whatever must precede the record write goes first, in one pipelined batch.
        first: list[Cmd] = [] if old is None else [Cmd(("DEL", self._rec(old)))]
        # A new record must be filed first; a delta or a rewrite usually is already (the script
        # answers -1 when not, and the loop files it then).
        register = has_principal and mode == "create" and expires_at > time.time()
        for _ in range(2):
            if register:
                score = self._index_score(expires_at)
                first.append(script(lua.REGISTER, [self._idx(principal)], [key, score]))
                argv[7] = score
            if first:
                replies = [self._io.ok(result) for result in (yield first)]
                if old is not None and not replies[0]:
                    return False  # the superseded record was revoked meanwhile: stays gone
                old, first = None, []
            (result,) = yield [script(lua.SAVE, [rec], argv)]
            result = self._io.ok(result)
            if result != -1:
                return bool(result)
            register = True
        raise StoreUnavailable("Redis kept refusing a registered write")  # pragma: no cover

    def _index_score(self, expires_at: float) -> str:
        # Headroom: a session extended by each request is refiled once per lifetime or so.
        return repr(expires_at + max(expires_at - time.time(), 60.0))

    def _principal_flow(self, principal: str) -> Flow[list[Record]]:
        idx = self._idx(principal)
        (members,) = yield [script(lua.LIST, [idx], [])]
        keys = [_text(m) for m in self._io.ok(members)]
        if not keys:
            return []
        if self.atomic:
            recs = [self._rec(k) for k in keys]
            (found,) = yield [script(lua.VERIFY, [idx, *recs], [principal, *keys])]
            pairs = list(zip(self._io.ok(found)[::2], found[1::2], strict=True))
        else:
            rows = yield [Cmd(("HGETALL", self._rec(k))) for k in keys]
            pairs = list(zip(keys, rows, strict=True))
        records = []
        for member, raw in pairs:
            if isinstance(raw, Exception):
                continue  # garbage under a member's key: listing skips it, loading reports it
            try:
                record = self._record(_text(member), raw)
            except RecordCorrupt:
                continue
            if record is not None and record.principal == principal:
                records.append(record)
        return records

    def _delete_flow(self, key: str) -> Flow[bool]:
        (n,) = yield [Cmd(("DEL", self._rec(key)))]
        return bool(self._io.ok(n))

    def _exists_flow(self, key: str) -> Flow[bool]:
        (n,) = yield [Cmd(("EXISTS", self._rec(key)))]
        return bool(self._io.ok(n))

    # -- contract: async ------------------------------------------------------------------------------

    async def load(self, key: str) -> Record | None:
        return await self._io.run(self._load_flow(key))

    async def save(self, key: str, write: Write) -> bool:
        return await self._io.run(self._save_flow(key, write))

    async def delete(self, key: str) -> bool:
        return await self._io.run(self._delete_flow(key))

    async def principal_records(self, principal: str) -> list[Record]:
        return await self._io.run(self._principal_flow(principal))

    async def exists(self, key: str) -> bool:
        return await self._io.run(self._exists_flow(key))

    async def count(self) -> int:
        """Counts with ``SCAN`` (on every primary of a cluster): for housekeeping, not hot paths."""
        try:
            return sum([1 async for _ in self._async().scan_iter(**self._scan("s:"))])
        except self._redis.exceptions.RedisError as exc:
            raise self._io.unavailable(exc) from exc

    async def clear(self) -> int:
        client = self._async()
        n = 0
        try:
            batch: list[Any] = []
            async for name in client.scan_iter(**self._scan("")):
                batch.append(name)
                n += self._is_record(name)
                if len(batch) >= 500:
                    await client.unlink(*batch)
                    batch = []
            if batch:
                await client.unlink(*batch)
        except self._redis.exceptions.RedisError as exc:
            raise self._io.unavailable(exc) from exc
        return n

    async def cleanup(self) -> int:
        """Nothing to do: Redis expires sessions, and indexes prune themselves. Returns 0."""
        return 0

    async def close(self) -> None:
        await self._io.close()
        if self._owns_async_client and self._async_client is not None:
            client, self._async_client = self._async_client, None
            await client.aclose()
        self.close_sync()

    # -- contract: sync -------------------------------------------------------------------------------

    def load_sync(self, key: str) -> Record | None:
        return self._io.run_sync(self._load_flow(key))

    def save_sync(self, key: str, write: Write) -> bool:
        return self._io.run_sync(self._save_flow(key, write))

    def delete_sync(self, key: str) -> bool:
        return self._io.run_sync(self._delete_flow(key))

    def principal_records_sync(self, principal: str) -> list[Record]:
        return self._io.run_sync(self._principal_flow(principal))

    def exists_sync(self, key: str) -> bool:
        return self._io.run_sync(self._exists_flow(key))

    def count_sync(self) -> int:
        """Sync twin of :meth:`count`."""
        try:
            return sum(1 for _ in self._sync().scan_iter(**self._scan("s:")))
        except self._redis.exceptions.RedisError as exc:
            raise self._io.unavailable(exc) from exc

    def clear_sync(self) -> int:
        client = self._sync()
        n = 0
        try:
            batch: list[Any] = []
            for name in client.scan_iter(**self._scan("")):
                batch.append(name)
                n += self._is_record(name)
                if len(batch) >= 500:
                    client.unlink(*batch)
                    batch = []
            if batch:
                client.unlink(*batch)
        except self._redis.exceptions.RedisError as exc:
            raise self._io.unavailable(exc) from exc
        return n

    def cleanup_sync(self) -> int:
        """Sync twin of :meth:`cleanup`."""
        return 0

    def close_sync(self) -> None:
        """Close the sync client the store created (an async one needs :meth:`close`)."""
        self._io.close_sync()
        if self._owns_client and self._client is not None:
            client, self._client = self._client, None
            client.close()

    # -- housekeeping helpers ------------------------------------------------------------------------

    def _scan(self, kind: str) -> dict[str, Any]:
        return {"match": _glob_escape(self.prefix + kind) + "*", "count": 1000}

    def _is_record(self, name: Any) -> bool:
        return _text(name).startswith(self.prefix + "s:")

    # -- deleting every session of a principal -----------------------------------------------------

    async def delete_principal_records(self, principal: str, keep: str | None = None) -> list[str]:
        """Every record of ``principal`` but ``keep`` deleted; the keys deleted.

        On one server, or with a hash-tagged prefix (:attr:`atomic`), one script deletes every
        record the principal's index names, in one round trip and atomically with respect to
        saves: a rotation that landed first is in the index (the save script files it there in
        the same step) and goes too; one that lands after finds its superseded record gone.
        The script reaches the records through the index, so it touches keys it does not
        declare: Redis and Redis Cluster (within the one slot a hash-tagged prefix gives) allow
        that, but a proxy that insists on declared keys refuses the script, before it has
        deleted any session, with :class:`~sessio.errors.StoreUnavailable`.

        **On Redis Cluster without a hash-tagged prefix this is not atomic**: the index and the
        records live in different slots. The index is read, then each record still naming the
        principal is deleted, and the pass repeats while it finds something (catching sessions
        that rotated during the previous pass). A rotation whose new record is written after
        the last pass read the index can still escape; use a hash-tagged prefix where "log out
        everywhere" must be airtight.
        """
        return await self._io.run(self._delete_principal_flow(principal, keep))

    def delete_principal_records_sync(self, principal: str, keep: str | None = None) -> list[str]:
        """Sync twin of :meth:`delete_principal_records`."""
        return self._io.run_sync(self._delete_principal_flow(principal, keep))

    def _delete_principal_flow(self, principal: str, keep: str | None) -> Flow[list[str]]:
        if not self.atomic:
            return (yield from self._delete_principal_passes(principal, keep))
        head, tail = self._rec("\0").split("\0")  # what a record key puts around its member
        argv = [principal, keep or "", head, tail]
        (deleted,) = yield [script(lua.DELETE_PRINCIPAL_RECORDS, [self._idx(principal)], argv)]
        return [_text(m) for m in self._io.ok(deleted)]

    def _delete_principal_passes(self, principal: str, keep: str | None) -> Flow[list[str]]:
        idx = self._idx(principal)
        removed: list[str] = []
        for _ in range(_CLUSTER_PASSES):
            (members,) = yield [script(lua.LIST, [idx], [])]
            targets = [k for k in map(_text, self._io.ok(members)) if k != keep]
            if not targets:
                break
            replies = yield [
                script(lua.DELETE_IF_OWNED, [self._rec(k)], [principal]) for k in targets
            ]
            gone = [k for k, n in zip(targets, replies, strict=True) if self._io.ok(n)]
            removed += gone
            if not gone:
                break
        return removed
