"""The ``sessio`` commands on click, rendered with rich: tables for people, ``--json`` for scripts."""

from __future__ import annotations

import functools
import json
import logging
import secrets
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar

import click
from rich.console import Console
from rich.table import Table

from .. import __version__
from ..errors import ConfigurationError, MissingDependency, SessionError, StoreUnavailable
from ..manager import SyncSessionManager
from ..principal import Principal
from ..stores import store_from_url
from ..stores.base import Store
from . import _inspect

__all__ = ["EXIT_BAD_INPUT", "EXIT_MISSING_DEPENDENCY", "EXIT_NOT_FOUND", "EXIT_STORE", "cli"]

#: Exit codes (also in ``sessio --help``): 0 success.
EXIT_NOT_FOUND = 1  # the session asked for is not there
EXIT_BAD_INPUT = 2  # a bad argument, option or store URL (click's usage errors too)
EXIT_STORE = 3  # the store is unreachable or failing
EXIT_MISSING_DEPENDENCY = 4  # the store needs an extra that is not installed

F = TypeVar("F", bound=Callable[..., Any])

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

_store_option = click.option(
    "--store",
    "url",
    envvar="SESSIO_STORE_URL",
    required=True,
    metavar="URL",
    help="Store URL, e.g. sqlite:///sessions.db or redis://host:6379/0 (env SESSIO_STORE_URL).",
)
_json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print JSON instead of a table."
)


class Failure(Exception):
    """A command's one-line failure and its exit code."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def _exit_code(exc: SessionError) -> int:
    if isinstance(exc, MissingDependency):
        return EXIT_MISSING_DEPENDENCY
    if isinstance(exc, StoreUnavailable):
        return EXIT_STORE
    return EXIT_BAD_INPUT


def reported(command: F) -> F:
    """Turn sessio's typed errors into one line on stderr and an exit code, never a traceback."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> int:
        try:
            return int(command(*args, **kwargs) or 0)
        except Failure as exc:
            err.print(f"sessio: {exc}", markup=False)
            return exc.code
        except SessionError as exc:
            cause = (
                f" ({exc.__cause__})" if isinstance(exc, StoreUnavailable) and exc.__cause__ else ""
            )
            err.print(f"sessio: {exc}{cause}", markup=False)
            return _exit_code(exc)

    return run  # type: ignore[return-value]


@contextmanager
def opened(url: str, *, read_only: bool = True) -> Iterator[Store]:
    """The store ``url`` names; read-only commands refuse to create a missing file or directory."""
    if read_only:
        _inspect.check_readable(url)
    # Drivers log each failed connection attempt; the one line we print says it better.
    for name in ("psycopg", "psycopg.pool", "redis"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    store = store_from_url(url)
    try:
        yield store
    finally:
        store.close_sync()


def _emit(data: Any) -> None:
    out.print(json.dumps(data, indent=2, default=str), markup=False)


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str]], title: str) -> None:
    table = Table(title=title, title_justify="left")
    for _, header in columns:
        table.add_column(header, overflow="fold")
    for row in rows:
        table.add_row(*("" if row[name] is None else str(row[name]) for name, _ in columns))
    out.print(table)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Exit codes: 0 success, 1 not found, 2 bad input or configuration, "
    "3 store unreachable or failing, 4 a needed extra is not installed.",
)
@click.version_option(__version__, "--version", prog_name="sessio", message="%(prog)s %(version)s")
def cli() -> None:
    """Look after a sessio session store, and run the demo."""


@cli.command("list")
@_store_option
@click.option("--principal", help="Only the sessions of this user id.")
@click.option("--kind", default="user", show_default=True, help="Principal kind of --principal.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@_json_option
@reported
def list_sessions(url: str, principal: str | None, kind: str, limit: int, as_json: bool) -> int:
    """List live sessions: hash, principal, created, last seen, expires, IP, user agent."""
    with opened(url) as store:
        if principal is not None:
            records = store.principal_records_sync(Principal(principal, kind=kind).key)[:limit]
        else:
            records = list(_inspect.iter_records(store, limit=limit))
        rows = [_inspect.summary(r) for r in records]
    if as_json:
        _emit(rows)
        return 0
    for row in rows:
        row["hash"] = row["hash"][:12]
    columns = [("hash", "hash"), ("principal", "principal"), ("created", "created"),
               ("last_seen", "last seen"), ("expires", "expires"), ("ip", "IP"),
               ("user_agent", "user agent")]  # fmt: skip
    _table(rows, columns, f"{len(rows)} session(s)")
    return 0


def _one(store: Store, prefix: str) -> Any:
    found = _inspect.find(store, prefix)
    if not found:
        raise Failure(f"no live session with hash {prefix}", EXIT_NOT_FOUND)
    if len(found) > 1:
        raise Failure(
            f"{len(found)} sessions start with {prefix}: give more digits", EXIT_BAD_INPUT
        )
    return found[0]


@cli.command()
@click.argument("hash_prefix", metavar="HASH")
@_store_option
@_json_option
@reported
def show(hash_prefix: str, url: str, as_json: bool) -> int:
    """Show one session (HASH as `sessio list` prints it); secret-looking values are masked."""
    with opened(url) as store:
        row = _inspect.describe(_one(store, hash_prefix))
    if as_json:
        _emit(row)
        return 0
    data = row.pop("data")
    for name, value in row.items():
        out.print(f"[bold]{name}[/bold]: {'' if value is None else value}")
    out.print("[bold]data[/bold]:")
    out.print_json(json.dumps(data, default=str))
    return 0


@cli.command()
@click.argument("hash_prefix", metavar="[HASH]", required=False)
@click.option("--principal", help="End every session of this user id instead.")
@click.option("--kind", default="user", show_default=True, help="Principal kind of --principal.")
@_store_option
@_json_option
@reported
def revoke(
    hash_prefix: str | None, principal: str | None, kind: str, url: str, as_json: bool
) -> int:
    """End one session (HASH) or every session of a user (--principal ID)."""
    if (hash_prefix is None) == (principal is None):
        raise Failure("give a session HASH or --principal ID (one of them)", EXIT_BAD_INPUT)
    with opened(url) as store:
        manager = SyncSessionManager(store)
        if principal is not None:
            count = manager.revoke_all(Principal(principal, kind=kind))
            result = {"revoked": count, "principal": Principal(principal, kind=kind).key}
        else:
            record = _one(store, hash_prefix or "")
            count = int(manager.revoke(record.key))
            result = {"revoked": count, "hash": record.key}
    if as_json:
        _emit(result)
    else:
        out.print(f"revoked {count} session(s)")
    return 0


@cli.command()
@_store_option
@_json_option
@reported
def purge(url: str, as_json: bool) -> int:
    """Remove expired sessions (run it from cron; stores with native TTL have little to do)."""
    with opened(url) as store:
        started = time.perf_counter()
        with err.status("purging expired sessions...", spinner="dots"):
            removed = SyncSessionManager(store).cleanup()
        seconds = time.perf_counter() - started
    if as_json:
        _emit({"removed": removed, "seconds": round(seconds, 3)})
    else:
        out.print(f"removed {removed} expired session(s) in {seconds:.2f} s")
    return 0


@cli.command()
@_store_option
@click.option("--top", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many principals to rank by sessions held.")  # fmt: skip
@click.option("--soon", type=click.FloatRange(min=0), default=3600.0, show_default=True,
              help="Count sessions expiring within this many seconds.")  # fmt: skip
@_json_option
@reported
def stats(url: str, top: int, soon: float, as_json: bool) -> int:
    """Live sessions, anonymous and signed in, top principals, expiring soon, size on disk."""
    with opened(url) as store, err.status("reading sessions...", spinner="dots"):
        data = _inspect.stats(store, top=top, soon=soon)
    if as_json:
        _emit(data)
        return 0
    for name in (
        "store",
        "live",
        "anonymous",
        "authenticated",
        "principals",
        "expiring",
        "corrupt",
    ):
        out.print(f"[bold]{name}[/bold]: {data[name]}", markup=True)
    if data["size_bytes"] is not None:
        out.print(f"[bold]size[/bold]: {data['size_bytes']:,} bytes")
    if data["top_principals"]:
        _table(data["top_principals"], [("principal", "principal"), ("sessions", "sessions")],
               "principals with most sessions")  # fmt: skip
    return 0


@cli.command()
@_store_option
@reported
def migrate(url: str) -> int:
    """Create the store's tables and indexes (PostgreSQL; others need nothing)."""
    with opened(url, read_only=False) as store:
        create = getattr(store, "create_schema_sync", None)
        if create is None:
            out.print(f"{type(store).__name__} needs no migration")
            return 0
        create()
    out.print(f"schema ready for {type(store).__name__}")
    return 0


@cli.command()
@click.option("--bytes", "size", type=click.IntRange(min=32, max=1024), default=32, show_default=True,
              help="Random bytes (at least 32: sessio refuses shorter keys).")  # fmt: skip
def secret(size: int) -> int:
    """Print a new random secret key for secret_key=."""
    out.print(secrets.token_urlsafe(size), markup=False)
    return 0


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--store", "url", envvar="SESSIO_STORE_URL", metavar="URL",
              help="Store URL (default sqlite:///sessio-demo.db).")  # fmt: skip
@reported
def demo(host: str, port: int, url: str | None) -> int:
    """Run the demo shop on http://HOST:PORT (needs the demo extra)."""
    from ..errors import require

    require("uvicorn", "demo")
    require("starlette", "demo")
    require("sessio.demo", "demo").serve(host, port, url)
    return 0


@cli.command()
@_store_option
@_json_option
def doctor(url: str, as_json: bool) -> int:
    """Check a store URL: it parses, its driver is installed, it answers, and how fast."""
    checks: list[dict[str, Any]] = []

    def check(name: str, ok: bool, detail: str, fix: str | None = None) -> bool:
        checks.append({"check": name, "ok": ok, "detail": detail, "fix": fix})
        return ok

    _doctor(url, check)
    healthy = all(c["ok"] for c in checks)
    if as_json:
        _emit({"healthy": healthy, "version": __version__, "checks": checks})
    else:
        for c in checks:
            mark = "[green]ok[/green]  " if c["ok"] else "[red]FAIL[/red]"
            out.print(f"{mark} {c['check']}: {c['detail']}")
            if c["fix"]:
                out.print(f"      fix: {c['fix']}", markup=False)
        out.print(f"sessio {__version__}: {'healthy' if healthy else 'problems found'}")
    return 0 if healthy else EXIT_STORE


def _doctor(url: str, check: Callable[..., bool]) -> None:
    try:
        _inspect.check_readable(url)
        store = store_from_url(url)
    except MissingDependency as exc:
        check("driver", False, str(exc), f"pip install 'sessio[{exc.evidence.get('extra')}]'")
        return
    except ConfigurationError as exc:
        check("url", False, str(exc), "correct the URL (see `sessio --help`)")
        return
    check("url", True, repr(store))
    try:
        probe = secrets.token_hex(32)  # a key no session has: a load costs one round trip
        times = []
        for _ in range(3):
            started = time.perf_counter()
            store.load_sync(probe)
            times.append((time.perf_counter() - started) * 1000)
        check("reachable", True, f"median load {statistics.median(times):.2f} ms")
        live = store.count_sync()
        check("schema", True, f"{live} live session(s)")
    except SessionError as exc:
        cause = exc.__cause__ or exc
        fix = "run `sessio migrate`, or check the server address, credentials and that it runs"
        check("reachable", False, f"[{exc.code}] {exc.message}: {cause}", fix)
    finally:
        with suppress(SessionError):
            store.close_sync()
