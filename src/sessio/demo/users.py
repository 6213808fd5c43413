"""The demo's accounts: usernames and salted scrypt password hashes in a small SQLite table."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import threading
import time
from pathlib import Path

from ..errors import ConfigurationError

__all__ = [
    "MAX_PASSWORD",
    "MIN_PASSWORD",
    "PASSWORD_RULE",
    "AccountError",
    "ScryptParams",
    "UserStore",
]

#: Lower-case letters, digits and ``._-``; shown in pages and used as the principal id.
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{2,31}")
#: Password length in characters (code points), any characters. The upper bound keeps one
#: request from making scrypt hash megabytes; the form's hint and errors state both bounds.
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
PASSWORD_RULE = f"Passwords need {MIN_PASSWORD} to {MAX_PASSWORD} characters"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS demo_users (
    username   TEXT PRIMARY KEY,
    password   TEXT NOT NULL,
    created_at REAL NOT NULL
) WITHOUT ROWID;
"""


class AccountError(ValueError):
    """A registration the demo refuses; ``message`` is safe to show on the form."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclasses.dataclass(frozen=True, kw_only=True)
class ScryptParams:
    """scrypt cost settings; the defaults are one of OWASP's equivalent minimums (16 MiB).

    Every hash records the settings it was made with, so raising them later keeps old
    passwords working. Tests may lower ``n`` to keep suites fast; production should not.
    """

    n: int = 2**14
    r: int = 8
    p: int = 5
    salt_bytes: int = 16
    key_bytes: int = 32

    def __post_init__(self) -> None:
        if self.n < 2 or self.n & (self.n - 1):
            raise ConfigurationError(f"scrypt n must be a power of two >= 2, got {self.n!r}")
        if self.r < 1 or self.p < 1:
            raise ConfigurationError("scrypt r and p must be >= 1")
        if self.salt_bytes < 16 or self.key_bytes < 16:
            raise ConfigurationError("scrypt salts and keys need at least 16 bytes")

    def derive(self, password: str, salt: bytes) -> bytes:
        """The scrypt key of ``password`` under ``salt`` with these settings."""
        return _scrypt(password, salt, self.n, self.r, self.p, self.key_bytes)

    def hash(self, password: str) -> str:
        """``scrypt$n$r$p$salt$key`` for ``password``, with a fresh random salt."""
        salt = secrets.token_bytes(self.salt_bytes)
        key = self.derive(password, salt)
        return f"scrypt${self.n}${self.r}${self.p}${_b64(salt)}${_b64(key)}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    # scrypt needs 128 * n * r bytes (plus p-fold work); allow that much and a margin.
    maxmem = 128 * n * r * 2 + 1024 * 1024
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=dklen
    )


def verify_password(encoded: str, password: str) -> bool:
    """Whether ``password`` matches ``encoded`` (a :meth:`ScryptParams.hash`), in constant time."""
    try:
        scheme, n, r, p, salt, key = encoded.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key, validate=True)
        actual = _scrypt(
            password, base64.b64decode(salt, validate=True), int(n), int(r), int(p), len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def normalize_username(username: str) -> str:
    """The canonical form of a username: trimmed and lower-cased."""
    return username.strip().lower()


class UserStore:
    """Demo accounts in one SQLite file (the table ``demo_users``).

    Only the username and the password hash are kept. Hashing costs tens of milliseconds by
    design, so async callers should run :meth:`register` and :meth:`authenticate` in a thread.
    """

    def __init__(
        self, path: str | os.PathLike[str] = ":memory:", *, params: ScryptParams | None = None
    ) -> None:
        self.path = str(path)
        self.params = params if params is not None else ScryptParams()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.executescript(_SCHEMA)
        # Unknown usernames are checked against this hash, so a miss costs what a hit costs
        # and response times do not reveal which accounts exist.
        self._decoy = self.params.hash(secrets.token_urlsafe(16))

    def __repr__(self) -> str:
        return f"UserStore({self.path!r})"

    def register(self, username: str, password: str) -> str:
        """Create an account; returns the canonical username or raises :class:`AccountError`."""
        name = normalize_username(username)
        if not USERNAME.fullmatch(name):
            raise AccountError(
                "Usernames are 3 to 32 characters: letters, digits, '.', '_' or '-', "
                "starting with a letter or digit."
            )
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise AccountError(f"{PASSWORD_RULE}; that one has {len(password)}.")
        try:
            password.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate, which only hand-made JSON can carry
            raise AccountError(f"{PASSWORD_RULE} of valid Unicode text.") from None
        encoded = self.params.hash(password)
        with self._lock:
            try:
                self._db.execute(
                    "INSERT INTO demo_users (username, password, created_at) VALUES (?, ?, ?)",
                    (name, encoded, time.time()),
                )
            except sqlite3.IntegrityError:
                raise AccountError("That username is taken; choose another.") from None
        return name

    def authenticate(self, username: str, password: str) -> str | None:
        """The canonical username if ``password`` is right for it, else ``None``."""
        name = normalize_username(username)
        if len(password) > MAX_PASSWORD:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT password FROM demo_users WHERE username = ?", (name,)
            ).fetchone()
        if row is None:
            verify_password(self._decoy, password)
            return None
        return name if verify_password(row[0], password) else None

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
