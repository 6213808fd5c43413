"""The ``sessio`` command: run the demo and look after a session store from the shell."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Sequence

from .errors import SessionError
from .manager import SyncSessionManager
from .principal import Principal
from .stores import store_from_url
from .stores.base import Store

__all__ = ["main"]

DEFAULT_STORE_URL = "sqlite:///sessio.db"


def _store(url: str | None) -> Store:
    return store_from_url(url or os.environ.get("SESSIO_STORE_URL") or DEFAULT_STORE_URL)


def _cmd_demo(args: argparse.Namespace) -> int:
    from .errors import require

    require("uvicorn", "demo")
    require("starlette", "demo")
    demo = require("sessio.demo", "demo")
    demo.serve(args.host, args.port, args.store)
    return 0


def _cmd_purge(args: argparse.Namespace) -> int:
    with _store(args.store) as store:
        removed = SyncSessionManager(store).cleanup()
    print(f"removed {removed} expired session(s)")
    return 0


def _cmd_migrate(args: argparse.Namespace) -> int:
    with _store(args.store) as store:
        create = getattr(store, "create_schema_sync", None)
        if create is None:
            print(f"{type(store).__name__} needs no migration")
            return 0
        create()
    print(f"schema ready for {type(store).__name__}")
    return 0


def _cmd_stats(args: argparse.Namespace) -> int:
    with _store(args.store) as store:
        print(f"store: {store!r}")
        print(f"live sessions: {store.count_sync()}")
    return 0


def _cmd_revoke(args: argparse.Namespace) -> int:
    with _store(args.store) as store:
        n = SyncSessionManager(store).revoke_all(Principal(args.principal, kind=args.kind))
    print(f"revoked {n} session(s) of {args.kind} {args.principal!r}")
    return 0


def _cmd_secret(args: argparse.Namespace) -> int:
    print(secrets.token_urlsafe(args.bytes))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(prog="sessio", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    store_help = f"store URL (default: $SESSIO_STORE_URL or {DEFAULT_STORE_URL})"

    demo = sub.add_parser("demo", help="run the demo web app (uvicorn)")
    demo.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    demo.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    demo.add_argument(
        "--store", help=store_help.replace(DEFAULT_STORE_URL, "sqlite:///sessio-demo.db")
    )
    demo.set_defaults(func=_cmd_demo)

    purge = sub.add_parser("purge", help="remove expired sessions (run it from cron)")
    purge.add_argument("--store", help=store_help)
    purge.set_defaults(func=_cmd_purge)

    migrate = sub.add_parser("migrate", help="create the store's tables/indexes (PostgreSQL)")
    migrate.add_argument("--store", help=store_help)
    migrate.set_defaults(func=_cmd_migrate)

    stats = sub.add_parser("stats", help="count live sessions")
    stats.add_argument("--store", help=store_help)
    stats.set_defaults(func=_cmd_stats)

    revoke = sub.add_parser("revoke", help="end every session of one principal")
    revoke.add_argument("principal", help="the principal id (a user id)")
    revoke.add_argument("--kind", default="user", help="principal kind (default: user)")
    revoke.add_argument("--store", help=store_help)
    revoke.set_defaults(func=_cmd_revoke)

    secret = sub.add_parser("secret", help="print a new random secret key")
    secret.add_argument("--bytes", type=int, default=32, help="random bytes (default 32)")
    secret.set_defaults(func=_cmd_secret)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sessio`` command."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SessionError as exc:
        print(f"sessio: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
