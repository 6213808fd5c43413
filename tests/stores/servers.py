"""Fresh RedisStore and PostgresStore instances on the test servers, each with its own namespace.

Every store gets a unique key prefix (Redis) or schema (PostgreSQL) and removes it afterwards,
so tests never see each other's data, or anyone else's on the same server. The servers are
``$SESSIO_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``) and
``$SESSIO_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``); an
unreachable one skips the test, or fails it under ``CI=true``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import psycopg
import redis

from sessio.stores.postgres import PostgresStore
from sessio.stores.redis import RedisStore

from ..conftest import unavailable

REDIS_URL = os.environ.get("SESSIO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "SESSIO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


def unique(label: str) -> str:
    """A name no other test run uses."""
    return f"{label}_{uuid.uuid4().hex[:12]}"


# -- Redis ---------------------------------------------------------------------------------------


def require_redis(url: str = REDIS_URL) -> None:
    """Skip (or fail under CI) when no Redis answers at ``url``."""
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1) as client:
            client.ping()
    except redis.RedisError:
        unavailable(f"Redis at {url}")


@asynccontextmanager
async def redis_store(url: str = REDIS_URL, **options: Any) -> AsyncIterator[RedisStore]:
    """A RedisStore under a fresh prefix, cleared and closed afterwards."""
    require_redis(url.replace("redis+cluster://", "redis://"))
    options.setdefault("prefix", unique("sessio-test") + ":")
    store = RedisStore(url, **options)
    try:
        yield store
    finally:
        store.clear_sync()
        await store.close()


async def corrupt_redis(store: Any, key: str) -> None:
    """Put a string where the session hash should be (the wrong type)."""
    client = store._sync()
    name = store.record_key(key)
    client.delete(name)
    client.set(name, b"\xff\xfe garbage {")


# -- PostgreSQL ----------------------------------------------------------------------------------


def require_postgres(url: str = POSTGRES_URL) -> None:
    """Skip (or fail under CI) when no PostgreSQL answers at ``url``."""
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError:
        unavailable(f"PostgreSQL at {url}")


@contextmanager
def dropping(schema: str, url: str = POSTGRES_URL) -> Iterator[None]:
    """Drop ``schema`` (and everything in it) on the way out."""
    try:
        yield
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@asynccontextmanager
async def postgres_store(url: str = POSTGRES_URL, **options: Any) -> AsyncIterator[PostgresStore]:
    """A PostgresStore in a fresh schema, dropped afterwards."""
    require_postgres(url)
    options.setdefault("schema", unique("sessio_test"))
    store = PostgresStore(url, **options)
    with dropping(store.schema, url):
        try:
            store.create_schema_sync()
            yield store
        finally:
            await store.close()


async def corrupt_postgres(store: Any, key: str) -> None:
    """Store a JSON string where the map of fields should be."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(
            f'UPDATE "{store.schema}"."{store.table}" SET fields = %s::jsonb WHERE key = %s',
            ('"garbage"', key),
        )
