"""RedisStore over Redis Sentinel: the ``redis+sentinel://`` URL and the clients it makes.

URL shape (``rediss+sentinel://`` is the same over TLS, to the sentinels and the master)::

    redis+sentinel://[user:password@]host1:26379,host2:26379/<service>[/<db>][?options]

The hosts are the sentinels (port 26379 when left out; ``[::1]:26379`` for IPv6), the first
path segment is the monitored service's name, the second the database (default 0). The user
part authenticates to the master (and its replicas); ``?sentinel_password=`` (and
``?sentinel_username=``) to the sentinels. Other parameters are redis-py's, as for
``redis://``.

The clients come from redis-py's public Sentinel API (``Sentinel(...).master_for(...)``, sync
and asyncio), with the single-server rules: a blocking pool of ``max_connections`` waited on
for ``pool_timeout``, and retries of connection errors only, each of which asks the sentinels
where the master is now. A write that reaches a demoted master fails ``READONLY``, which
redis-py turns into a connection error, so it is retried on the new master; the scripts'
request ids make that retry safe. A master that refuses writes for want of replicas
(``NOREPLICAS``, with ``min-replicas-to-write``) makes the store drop its pool's connections,
so the next call asks the sentinels again.

**What a failover loses** (replication is asynchronous; measured in
``tests/stores/test_redis_sentinel.py``):

* The master crashes or freezes: writes it acknowledged but had not yet sent to the replica
  that is promoted. Calls fail (StoreUnavailable) from one ``socket_timeout`` after the fault
  until the sentinels promote a replica (``down-after-milliseconds`` plus the election).
* A forced ``SENTINEL FAILOVER`` is not a handover: the old master goes on taking writes
  until the sentinels reconfigure it (Sentinel's 10 s INFO period), and connected clients
  write there; all of that is dropped when it resyncs as a replica. ``min-replicas-to-write
  1`` with ``min-replicas-max-lag 1`` on the master bounds this: the old master refuses
  writes once its replica stops acknowledging, and the store moves to the new master.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

from ..errors import ConfigurationError

__all__ = ["SCHEMES", "Target", "aclose", "close", "make_client", "parse", "url_for"]

#: Sentinel URL scheme -> the scheme of the connections to the master.
SCHEMES = {"redis+sentinel": "redis", "rediss+sentinel": "rediss"}
DEFAULT_PORT = 26379
_SERVICE = re.compile(r"[A-Za-z0-9._-]{1,128}")
_HOST = re.compile(r"\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]{1,253}")
_SENTINEL_QUERY = ("sentinel_password", "sentinel_username")


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """What a sentinel URL names: the sentinels, the service, and the connection options."""

    sentinels: tuple[tuple[str, int], ...]
    service: str
    #: Options for the master's connections (db, username, password, timeouts, ...).
    kwargs: Mapping[str, Any]
    #: Options for the sentinels' connections (their own credentials, TLS).
    sentinel_kwargs: Mapping[str, Any]


def url_for(
    sentinels: Sequence[tuple[str, int]], service_name: str, db: int = 0, *, tls: bool = False
) -> str:
    """The ``redis+sentinel://`` URL of ``sentinels`` (``(host, port)`` pairs) and a service."""
    if isinstance(sentinels, str | bytes) or not sentinels:
        raise ConfigurationError("sentinels must be a non-empty list of (host, port) pairs")
    hosts = []
    for pair in sentinels:
        if not (isinstance(pair, tuple | list) and len(pair) == 2 and isinstance(pair[0], str)):
            raise ConfigurationError("each sentinel is a (host, port) pair")
        host, port = pair
        if type(port) is not int or not 0 < port < 65536:
            raise ConfigurationError(f"a sentinel's port must be an integer in 1-65535: {port!r}")
        hosts.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    if not isinstance(service_name, str) or not _SERVICE.fullmatch(service_name):
        raise ConfigurationError("service_name must be 1-128 letters, digits, '.', '_' or '-'")
    if type(db) is not int or db < 0:
        raise ConfigurationError("db must be an integer >= 0")
    scheme = "rediss+sentinel" if tls else "redis+sentinel"
    return f"{scheme}://{','.join(hosts)}/{service_name}/{db}"


def parse(redis: Any, url: str) -> Target:
    """The :class:`Target` of a sentinel ``url``; anything malformed is a ConfigurationError
    (whose message the caller redacts)."""
    parts = urlsplit(url)
    scheme = SCHEMES[parts.scheme.lower()]
    userinfo, at, hosts = parts.netloc.rpartition("@")
    sentinels = tuple(_address(item) for item in hosts.split(","))
    segments = parts.path.split("/")[1:] if parts.path else []
    if not 1 <= len(segments) <= 2 or not _SERVICE.fullmatch(unquote(segments[0])):
        raise ConfigurationError("a sentinel URL's path is /<service name>[/<db>]")
    service = unquote(segments[0])
    db = segments[1] if len(segments) == 2 else "0"
    if not (db.isascii() and db.isdigit()):
        raise ConfigurationError("a sentinel URL's database is a number")
    query = parse_qsl(parts.query, keep_blank_values=True)
    own = {n: v for n, v in query if n in _SENTINEL_QUERY}
    rest = urlencode([(n, v) for n, v in query if n not in _SENTINEL_QUERY])
    # redis-py parses the rest of the URL as for one server (types, credentials, TLS).
    single = urlunsplit((scheme, f"{userinfo}{at}localhost", f"/{db}", rest, ""))
    kwargs = dict(redis.connection.parse_url(single))
    for name in ("host", "port", "connection_class"):
        kwargs.pop(name, None)
    sentinel_kwargs: dict[str, Any] = {}
    if scheme == "rediss":
        kwargs["ssl"] = sentinel_kwargs["ssl"] = True
        # The sentinels take the master's TLS settings (certificates, verification).
        sentinel_kwargs.update({k: v for k, v in kwargs.items() if k.startswith("ssl_")})
    for name, value in own.items():
        sentinel_kwargs[name.removeprefix("sentinel_")] = value
    return Target(sentinels, service, kwargs, sentinel_kwargs)


def _address(item: str) -> tuple[str, int]:
    host, port = item, str(DEFAULT_PORT)
    if item.startswith("[") and "]:" in item:
        host, _, port = item.rpartition(":")
    elif not item.startswith("[") and ":" in item:
        host, _, port = item.partition(":")
    if not _HOST.fullmatch(host) or not (port.isascii() and port.isdigit()):
        raise ConfigurationError(f"not a sentinel address: {quote(item, safe='[]:.')!r}")
    if not 0 < int(port) < 65536:
        raise ConfigurationError(f"a sentinel's port must be in 1-65535: {port}")
    return host.strip("[]"), int(port)


@functools.cache
def _pool_class(module: Any) -> type:
    # redis-py's sentinel pool never waits for a free connection; its blocking pool does.
    # Both are public classes, and master_for takes the pool class to use.
    sentinel_pool = module.sentinel.SentinelConnectionPool
    return type(
        "BlockingSentinelConnectionPool", (sentinel_pool, module.BlockingConnectionPool), {}
    )


def make_client(
    redis: Any,
    module: Any,
    url: str,
    *,
    retry: Any,
    pool_timeout: float,
    options: Mapping[str, Any],
) -> Any:
    """The master client of ``module`` (``redis`` or ``redis.asyncio``) for sentinel ``url``.

    ``options`` may hold ``sentinel_kwargs`` (redis-py's name): options of the connections to
    the sentinels, over the URL's; they take the socket timeouts of ``options`` by default.
    """
    target = parse(redis, url)
    kwargs = {**target.kwargs, **options}
    sentinel_kwargs = {k: v for k, v in kwargs.items() if k.startswith("socket_")}
    sentinel_kwargs.update(target.sentinel_kwargs)
    sentinel_kwargs.update(kwargs.pop("sentinel_kwargs", None) or {})
    sentinel = module.sentinel.Sentinel(target.sentinels, sentinel_kwargs=sentinel_kwargs)
    return sentinel.master_for(
        target.service,
        connection_pool_class=_pool_class(module),
        timeout=pool_timeout,
        retry=retry,
        **kwargs,
    )


def _sentinels(client: Any) -> list[Any]:
    manager = getattr(client.connection_pool, "sentinel_manager", None)
    return list(manager.sentinels) if manager is not None else []


def close(client: Any) -> None:
    """Close a sync master client and its sentinels' connections."""
    client.close()
    client.connection_pool.disconnect()
    for sentinel in _sentinels(client):
        sentinel.close()
        sentinel.connection_pool.disconnect()


async def aclose(client: Any) -> None:
    """Close an async master client and its sentinels' connections."""
    await client.aclose()
    await client.connection_pool.disconnect()
    for sentinel in _sentinels(client):
        await sentinel.aclose()
        await sentinel.connection_pool.disconnect()
