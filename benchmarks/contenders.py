"""Every contender as a small adapter in one registry: add a row here and every section measures it.

A contender builds an app (ASGI or WSGI) serving :mod:`benchmarks.apps`' routes with one
session backend, or, for the physical floor, a raw store call. One whose import or construction
fails (a peer missing, a sessio integration not merged yet, a server down) is reported as not
available with the reason; it never stops the run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import warnings
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from .apps import flask_app, starlette_app
from .services import Services

__all__ = ["CONTENDERS", "Built", "Contender", "Context", "Unavailable", "by_name"]

Kind = Literal["asgi", "wsgi", "raw"]

SECRET = "bench-secret-key-" + "s" * 48


class Unavailable(Exception):
    """A contender cannot run here; the message says why."""


@dataclasses.dataclass
class Context:
    """What builders may use: the run's servers and a scratch directory."""

    services: Services
    tmp: Path
    closers: list[Callable[[], Awaitable[None]]] = dataclasses.field(default_factory=list)

    def on_close(self, closer: Callable[[], Any]) -> None:
        """Call ``closer`` (sync or async) when the run ends."""

        async def run() -> None:
            result = closer()
            if hasattr(result, "__await__"):
                await result

        self.closers.append(run)

    async def close(self) -> None:
        """Close everything builders opened, newest first."""
        for closer in reversed(self.closers):
            with contextlib.suppress(Exception):
                await closer()
        self.closers.clear()


@dataclasses.dataclass
class Built:
    """A built contender: the app (or raw call) and what to count it by."""

    app: Any
    #: Which server the round-trip counter should read: "redis", "postgres" or None.
    server: str | None = None


@dataclasses.dataclass(frozen=True)
class Contender:
    """One row of the tables."""

    name: str
    kind: Kind
    family: str  # floor, raw, starlette, starsessions, flask, flask-session, sessio, sessio-core
    store: str
    build: Callable[[Context], Awaitable[Built]]
    floor: str | None = None
    note: str = ""
    #: Scenarios the contender refuses by design (a client-side store and a 4 KB session).
    refuses: frozenset[str] = frozenset()

    @property
    def is_floor(self) -> bool:
        """Whether this row is a floor (others are measured against it)."""
        return self.family in ("floor", "raw")


def _import(module: str, what: str = "") -> Any:
    try:
        loaded = importlib.import_module(module)
    except ImportError as exc:
        raise Unavailable(f"not available yet ({module}: {exc})") from None
    if what:
        try:
            return getattr(loaded, what)
        except AttributeError:
            raise Unavailable(f"not available yet ({module}.{what} missing)") from None
    return loaded


def _need(url: str | None, what: str) -> str:
    if url is None:
        raise Unavailable(f"no {what} server reachable")
    return url


# -- sessio stores ----------------------------------------------------------------------------------


def _policy() -> Any:
    from sessio import Policy

    # Defaults, but a cookie the in-process jar and wrk's plain-HTTP loopback can carry.
    return Policy().development()


async def sessio_store(ctx: Context, store: str, tag: str) -> Any:
    """A fresh sessio store of kind ``store``; ``tag`` keeps contenders' data apart."""
    if store == "memory":
        from sessio.stores import MemoryStore

        return MemoryStore(max_sessions=None)
    if store == "file":
        from sessio.stores import FileStore

        return FileStore(ctx.tmp / f"files-{tag}")
    if store == "sqlite":
        from sessio.stores import SQLiteStore

        made = SQLiteStore(ctx.tmp / f"{tag}.db")
        ctx.on_close(made.close_sync)
        return made
    if store in ("redis", "postgres"):
        url = _need(
            ctx.services.redis_url if store == "redis" else ctx.services.postgres_url, store
        )
        store_from_url = _import("sessio.stores", "store_from_url")
        try:
            made = store_from_url(url)
        except ImportError as exc:
            raise Unavailable(f"not available yet ({exc})") from None
        except Exception as exc:
            if type(exc).__name__ in ("MissingDependency", "ModuleNotFoundError"):
                raise Unavailable(f"not available yet ({exc})") from None
            raise
        create = getattr(made, "create_schema_sync", None)
        if create is not None:  # PostgresStore: the table must exist before the first request
            create()
        ctx.on_close(made.close)
        ctx.on_close(made.close_sync)
        return made
    if store in ("signed-cookie", "jwt"):
        name = "SignedCookieStore" if store == "signed-cookie" else "JWTStore"
        stores = _import("sessio.stores")
        cls = getattr(stores, name, None)
        if cls is None:
            raise Unavailable(f"not available yet (sessio.stores.{name})")
        with warnings.catch_warnings():
            # Deliberate: the peers' cookie sessions cannot be revoked either, so the
            # comparison is like for like (sessio warns that copied tokens outlive logout).
            warnings.filterwarnings(
                "ignore", message=".* without a revocation_store", category=UserWarning
            )
            return cls(SECRET)
    raise Unavailable(f"unknown sessio store {store!r}")


SESSIO_STORES = ("memory", "file", "sqlite", "redis", "postgres", "signed-cookie", "jwt")


def _server(store: str) -> str | None:
    return store if store in ("redis", "postgres") else None


# -- ASGI (Starlette) ---------------------------------------------------------------------------------


async def _starlette_floor(ctx: Context) -> Built:
    return Built(starlette_app(floor=True))


async def _starlette_sessions(ctx: Context) -> Built:
    from starlette.middleware import Middleware
    from starlette.middleware.sessions import SessionMiddleware

    return Built(starlette_app(middleware=[Middleware(SessionMiddleware, secret_key=SECRET)]))


def _starsessions(store: str) -> Callable[[Context], Awaitable[Built]]:
    async def build(ctx: Context) -> Built:
        starsessions = _import("starsessions")
        from starlette.middleware import Middleware

        if store == "cookie":
            backend = starsessions.CookieStore(secret_key=SECRET)
        elif store == "memory":
            backend = starsessions.InMemoryStore()
        else:
            url = _need(ctx.services.redis_url, "redis")
            redis_store = _import("starsessions.stores.redis", "RedisStore")
            from redis.asyncio import Redis

            client = Redis.from_url(url)
            ctx.on_close(client.aclose)
            backend = redis_store(connection=client)
        middleware = [
            Middleware(starsessions.SessionMiddleware, store=backend, lifetime=timedelta(days=14)),
            Middleware(starsessions.SessionAutoloadMiddleware),
        ]
        return Built(starlette_app(middleware=middleware), _server(store))

    return build


def _sessio_asgi(store: str) -> Callable[[Context], Awaitable[Built]]:
    async def build(ctx: Context) -> Built:
        middleware_cls = _import("sessio.integrations.asgi", "SessionMiddleware")
        backend = await sessio_store(ctx, store, f"asgi-{store}")
        app = starlette_app()
        return Built(
            middleware_cls(app, store=backend, secret_key=SECRET, policy=_policy()), _server(store)
        )

    return build


def _sessio_core_asgi(store: str) -> Callable[[Context], Awaitable[Built]]:
    async def build(ctx: Context) -> Built:
        from .shim import ManagerMiddleware

        backend = await sessio_store(ctx, store, f"core-asgi-{store}")
        app = ManagerMiddleware(starlette_app(), store=backend, secret_key=SECRET, policy=_policy())
        return Built(app, _server(store))

    return build


# -- WSGI (Flask) ----------------------------------------------------------------------------------------


async def _flask_floor(ctx: Context) -> Built:
    return Built(flask_app(floor=True))


async def _flask_cookie(ctx: Context) -> Built:
    return Built(flask_app())


def _flask_session(store: str) -> Callable[[Context], Awaitable[Built]]:
    async def build(ctx: Context) -> Built:
        flask_session = _import("flask_session")

        def configure(app: Any) -> None:
            if store == "redis":
                import redis

                client = redis.Redis.from_url(_need(ctx.services.redis_url, "redis"))
                ctx.on_close(client.close)
                app.config.update(SESSION_TYPE="redis", SESSION_REDIS=client)
            else:
                cachelib = _import("cachelib")
                cache = cachelib.FileSystemCache(str(ctx.tmp / "flask-session-files"))
                app.config.update(SESSION_TYPE="cachelib", SESSION_CACHELIB=cache)
            flask_session.Session(app)

        return Built(flask_app(configure=configure), _server(store))

    return build


def _sessio_flask(store: str) -> Callable[[Context], Awaitable[Built]]:
    async def build(ctx: Context) -> Built:
        interface_cls = _import("sessio.integrations.flask", "SessionInterface")
        backend = await sessio_store(ctx, store, f"flask-{store}")

        def configure(app: Any) -> None:
            # The drop-in takes its cookie, key and lifetime from app.config, as Flask does.
            app.session_interface = interface_cls(backend)

        return Built(flask_app(configure=configure), _server(store))

    return build


def _sessio_core_flask(store: str) -> Callable[[Context], Awaitable[Built]]:
    async def build(ctx: Context) -> Built:
        from .shim import ManagerFlaskInterface

        backend = await sessio_store(ctx, store, f"core-flask-{store}")

        def configure(app: Any) -> None:
            app.session_interface = ManagerFlaskInterface(
                store=backend, secret_key=SECRET, policy=_policy()
            )

        return Built(flask_app(configure=configure), _server(store))

    return build


# -- the physical floor: one raw Redis round trip ------------------------------------------------------

RAW_KEY = "sessio-bench:raw"


async def _redis_raw_async(ctx: Context) -> Built:
    from redis.asyncio import Redis

    client = Redis.from_url(_need(ctx.services.redis_url, "redis"))
    ctx.on_close(client.aclose)
    await client.set(RAW_KEY, "x" * 100)
    return Built(lambda: client.get(RAW_KEY), "redis")


async def _redis_raw_sync(ctx: Context) -> Built:
    import redis

    client = redis.Redis.from_url(_need(ctx.services.redis_url, "redis"))
    ctx.on_close(client.close)
    client.set(RAW_KEY, "x" * 100)
    return Built(lambda: client.get(RAW_KEY), "redis")


# -- the registry ---------------------------------------------------------------------------------------

ASGI_FLOOR = "Starlette (no session)"
WSGI_FLOOR = "Flask (no session)"
RAW_ASYNC = "redis-py GET (async)"
RAW_SYNC = "redis-py GET (sync)"


def _refuses(store: str) -> frozenset[str]:
    # A client-side store seals the whole session into the cookie: 4 KB of random data do not
    # fit a browser's 4 KB cookie, and sessio says so (SessionTooLarge) instead of truncating.
    return frozenset({"big"}) if store in ("signed-cookie", "jwt") else frozenset()


#: The stores the sessio-core rows (manager + transports, no integration) run on.
CORE_STORES = ("memory", "sqlite", "redis", "postgres")

Builder = Callable[[str], Callable[[Context], Awaitable[Built]]]


def _sessio_rows(
    kind: Kind, label: str, full: Builder, core: Builder, floor: str
) -> list[Contender]:
    """sessio's rows for one kind of app: the integration on every store, then the bare core
    (manager + transports) on the server-side stores, each measured against ``floor``."""
    rows = [
        Contender(
            f"sessio {store} ({label})",
            kind,
            "sessio",
            store,
            full(store),
            floor,
            refuses=_refuses(store),
        )
        for store in SESSIO_STORES
    ]
    rows += [
        Contender(
            f"sessio-core {store} ({label})",
            kind,
            "sessio-core",
            store,
            core(store),
            floor,
            note="manager + transports, no integration",
        )
        for store in CORE_STORES
    ]
    return rows


def _registry() -> list[Contender]:
    rows = [
        Contender(ASGI_FLOOR, "asgi", "floor", "-", _starlette_floor),
        Contender(WSGI_FLOOR, "wsgi", "floor", "-", _flask_floor),
        Contender(RAW_ASYNC, "raw", "raw", "redis", _redis_raw_async, note="one round trip"),
        Contender(RAW_SYNC, "raw", "raw", "redis", _redis_raw_sync, note="one round trip"),
        Contender(
            "Starlette SessionMiddleware",
            "asgi",
            "starlette",
            "cookie",
            _starlette_sessions,
            ASGI_FLOOR,
        ),
    ]
    for store, label in (
        ("cookie", "CookieStore"),
        ("memory", "InMemoryStore"),
        ("redis", "RedisStore"),
    ):
        rows.append(
            Contender(
                f"starsessions {label}",
                "asgi",
                "starsessions",
                store,
                _starsessions(store),
                ASGI_FLOOR,
            )
        )
    rows += _sessio_rows("asgi", "asgi", _sessio_asgi, _sessio_core_asgi, ASGI_FLOOR)
    rows.append(
        Contender("Flask cookie session", "wsgi", "flask", "cookie", _flask_cookie, WSGI_FLOOR)
    )
    for store, label in (("redis", "Redis"), ("file", "cachelib FileSystemCache")):
        rows.append(
            Contender(
                f"Flask-Session {label}",
                "wsgi",
                "flask-session",
                store,
                _flask_session(store),
                WSGI_FLOOR,
            )
        )
    rows += _sessio_rows("wsgi", "flask", _sessio_flask, _sessio_core_flask, WSGI_FLOOR)
    return rows


CONTENDERS: list[Contender] = _registry()


def by_name(name: str) -> Contender:
    """The contender called ``name``."""
    for contender in CONTENDERS:
        if contender.name == name:
            return contender
    raise KeyError(name)
