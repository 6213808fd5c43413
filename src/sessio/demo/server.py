"""Running the demo: where its files live, its persistent secret key, and the uvicorn server."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import uvicorn

from ..errors import ConfigurationError
from ..stores import store_from_url
from ..stores.base import Store
from ..stores.sqlite import SQLiteStore
from .app import create_app
from .users import UserStore

__all__ = ["DEFAULT_STORE_URL", "SECRET_ENV", "load_secret_key", "redact_url", "serve"]

DEFAULT_STORE_URL = "sqlite:///sessio-demo.db"
#: One key, or several separated by commas (oldest first: the last signs, all verify).
SECRET_ENV = "SESSIO_SECRET_KEY"  # noqa: S105 - the variable's name, not a secret


#: Query options that carry a credential in some store URLs (``redis://host?password=...``).
_SECRET_OPTIONS = frozenset({"password", "pass", "passwd", "pwd", "secret", "token", "key"})


def redact_url(url: str) -> str:
    """``url`` fit to print: a password in it, or in a credential option, becomes ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not parseable as a URL: show nothing of it
        return "<unparseable store URL>"
    netloc = parts.netloc
    if password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.partition(":")[0]
        netloc = f"{user}:***@{hostport}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(name.lower() in _SECRET_OPTIONS for name, _ in pairs):
            pairs = [(n, "***" if n.lower() in _SECRET_OPTIONS else v) for n, v in pairs]
            query = urlencode(pairs, safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return url  # (urlunsplit would also drop the empty authority of sqlite:///)
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def data_files(store: Store) -> tuple[Path, Path]:
    """Where the demo keeps its accounts and secret key: beside a SQLite store's file, else here.

    ``sqlite:///shop.db`` gives ``shop.users.db`` and ``shop.secret`` next to ``shop.db``;
    any other store gives ``sessio-demo.users.db`` and ``sessio-demo.secret`` in the current
    directory.
    """
    if isinstance(store, SQLiteStore) and store.path != ":memory:":
        db = Path(store.path)
        base = db.with_suffix("") if db.suffix else db
    else:
        base = Path("sessio-demo")
    return base.with_name(base.name + ".users.db"), base.with_name(base.name + ".secret")


def load_secret_key(path: Path) -> tuple[list[str], str]:
    """The signing keys and a sentence saying where they came from (never the keys themselves).

    ``$SESSIO_SECRET_KEY`` wins; otherwise a key is read from ``path``, which is created
    (mode 0600, exclusively, so two processes cannot race) the first time. Keeping the key
    means restarting the demo logs nobody out.
    """
    env = os.environ.get(SECRET_ENV, "").strip()
    if env:
        keys = [k.strip() for k in env.split(",") if k.strip()]
        return keys, f"from ${SECRET_ENV} ({len(keys)} key{'s' if len(keys) > 1 else ''})"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key_file(path)
    key = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(key + "\n")
    return [key], f"generated and saved to {path} (mode 0600); set ${SECRET_ENV} to choose one"


def _read_key_file(path: Path) -> tuple[list[str], str]:
    note = ""
    if os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        note = f"; WARNING: others can read it, run `chmod 600 {path}`"
    keys = path.read_text("ascii").split()
    if not keys:
        raise ConfigurationError(f"{path} holds no key; delete it to have a new one made")
    return keys, f"read from {path}{note}"


def serve(host: str = "127.0.0.1", port: int = 8000, store_url: str | None = None) -> None:
    """Run the demo under uvicorn until interrupted (what ``sessio demo`` calls).

    ``store_url`` defaults to ``$SESSIO_STORE_URL``, then ``sqlite:///sessio-demo.db``.
    """
    url = store_url or os.environ.get("SESSIO_STORE_URL") or DEFAULT_STORE_URL
    shown = redact_url(url)
    try:
        store = store_from_url(url)
    except ConfigurationError as exc:
        # Its message quotes the URL whole; a terminal or a log is no place for the password.
        raise ConfigurationError(str(exc).replace(url, shown)) from None
    users_path, secret_path = data_files(store)
    keys, origin = load_secret_key(secret_path)
    users = UserStore(users_path)
    app = create_app(store, secret_key=keys, users=users)
    print(f"sessio demo: http://{host}:{port}/")
    print(f"  sessions: {shown} ({type(store).__name__})")
    print(f"  accounts: {users_path}")
    print(f"  secret key: {origin}")
    try:
        uvicorn.run(app, host=host, port=port, server_header=False, log_level="info")
    finally:
        users.close()
        store.close_sync()
