"""RedisStore's settings: URLs, prefixes, secrets kept out of sight, and the clients it makes.

Everything a store is given is checked when it is made (a bad URL, option or prefix raises
:class:`~sessio.errors.ConfigurationError`), and a password, in the URL's user part or in
``?password=``, never shows in a ``repr`` or a message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ..errors import ConfigurationError
from . import _redis_sentinel as sentinel

__all__ = [
    "CLUSTER_SCHEMES",
    "check_prefix",
    "check_url",
    "client_url",
    "is_cluster",
    "make_client",
    "password_of",
    "redact",
]

#: Cluster URL scheme -> the scheme redis-py's RedisCluster takes.
CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
_SCHEMES = {"redis", "rediss", "unix", *CLUSTER_SCHEMES, *sentinel.SCHEMES}


def password_of(url: str | None, options: Mapping[str, Any]) -> str | None:
    """The password a store connects with, from its options or its URL (to scrub it)."""
    if isinstance(options.get("password"), str):
        return str(options["password"])
    if url is None:
        return None
    parts = urlsplit(url)
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name == "password" and value:
            return value
    return parts.password or None


def redact(url: str) -> str:
    """``url`` with its passwords (user part, ``?password=``, ``?sentinel_password=``) shown
    as ``***``."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rpartition('@')[2]}"
    query = [(n, "***" if n.endswith("password") else v) for n, v in parse_qsl(parts.query, True)]
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(query, safe="*:")))


def client_url(url: str) -> str:
    """The URL redis-py takes: a cluster scheme becomes ``redis://`` or ``rediss://``."""
    parts = urlsplit(url)
    scheme = CLUSTER_SCHEMES.get(parts.scheme.lower())
    return url if scheme is None else urlunsplit(parts._replace(scheme=scheme))


def check_url(redis: Any, url: object, scrub: Any) -> None:
    """Refuse ``url`` unless redis-py can use it (``scrub`` hides the password in messages)."""
    if not isinstance(url, str):
        raise ConfigurationError("a Redis URL must be a string")
    scheme = urlsplit(url).scheme.lower()
    if scheme not in _SCHEMES:
        raise ConfigurationError(f"not a Redis URL (scheme {scheme!r}): {redact(url)!r}")
    try:
        if scheme in sentinel.SCHEMES:
            sentinel.parse(redis, url)
            return
        parsed = redis.connection.parse_url(client_url(url))
        if int(parsed.get("max_connections", 1)) < 1:
            raise ValueError("max_connections must be a positive integer")
    except Exception as exc:  # redis-py's ValueError, or whatever a malformed URL raises
        message = f"bad Redis URL {redact(url)!r}: {scrub(str(exc))}"
        raise ConfigurationError(message) from None


def check_prefix(prefix: object) -> bool:
    """Refuse a prefix that would share keys with other data; whether it holds a hash tag."""
    if not isinstance(prefix, str):
        raise ConfigurationError(f"prefix must be a string, got {type(prefix).__name__}")
    if not prefix:
        raise ConfigurationError("prefix must not be empty: it keeps sessio's keys apart")
    open_, close = prefix.find("{"), prefix.find("}")
    tagged = 0 <= open_ < close - 1
    if ("{" in prefix or "}" in prefix) and not tagged:
        raise ConfigurationError(
            f"prefix {prefix!r} holds a brace that is not a whole hash tag like '{{app}}:'"
        )
    return tagged


def make_client(
    redis: Any,
    module: Any,
    url: str,
    *,
    cluster: bool,
    retries: int,
    pool_timeout: float,
    options: Mapping[str, Any],
) -> Any:
    """A client of ``module`` (``redis`` or ``redis.asyncio``) for ``url``: one server (or a
    Sentinel-managed master) gets a blocking pool and retries connection errors only (a silent
    server costs one timeout); a cluster client retries timeouts too (the scripts make that
    safe)."""
    backoff = redis.backoff.ExponentialBackoff(cap=0.25, base=0.025)
    url = client_url(url)
    if cluster:
        retry = module.retry.Retry(backoff, retries)
        return module.cluster.RedisCluster.from_url(url, retry=retry, **options)
    retry = module.retry.Retry(
        backoff, retries, supported_errors=(redis.exceptions.ConnectionError,)
    )
    if urlsplit(url).scheme.lower() in sentinel.SCHEMES:
        return sentinel.make_client(
            redis, module, url, retry=retry, pool_timeout=pool_timeout, options=options
        )
    pool = module.BlockingConnectionPool.from_url(url, timeout=pool_timeout, retry=retry, **options)
    return module.Redis(connection_pool=pool)


def is_cluster(redis: Any, url: str | None, client: Any, async_client: Any) -> bool:
    """Whether a store of ``url`` and/or these clients talks to a Redis Cluster."""
    kinds = set()
    if url is not None:
        kinds.add(urlsplit(url).scheme.lower() in CLUSTER_SCHEMES)
    if client is not None:
        kinds.add(isinstance(client, redis.cluster.RedisCluster))
    if async_client is not None:
        kinds.add(isinstance(async_client, redis.asyncio.cluster.RedisCluster))
    if len(kinds) > 1:
        raise ConfigurationError("mixing Redis Cluster and standalone Redis in one store")
    return kinds.pop()
