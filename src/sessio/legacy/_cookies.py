"""Readers of the signed cookies Starlette's and Flask's own session middleware issue.

Each reader verifies a cookie with itsdangerous (the library both frameworks sign with), checks
the cookie's own expiry, and hands back the data as plain values plus the store key that marks
the cookie as imported. Reading does no I/O; :mod:`sessio.legacy._adopt` does the one write.
"""

from __future__ import annotations

import abc
import base64
import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from .._values import finite_float, refuse_constant
from ..errors import ConfigurationError, require
from ..policy import CookieOptions
from ..stores.base import Create
from ..transports.cookies import parse_cookie_header
from ._flask_tags import TaggedJSON

__all__ = ["FlaskCookie", "Found", "LegacyCookie", "StarletteCookie"]

Headers = Callable[[str], list[str]]

#: How long a cookie with no expiry of its own (Starlette's ``max_age=None``) stays marked as
#: imported: 400 days, the longest lifetime browsers grant any cookie (RFC 6265bis).
UNBOUNDED_MARK: Final = 400 * 24 * 60 * 60

#: The prefix of the store keys that mark an imported cookie (never a session key: those
#: are hex digests of an ID, see :mod:`sessio.ids`).
MARK_PREFIX: Final = "sessio-legacy:"


def _itsdangerous() -> Any:
    return require("itsdangerous", "starlette")  # (Flask depends on it too)


def _keys(secret_key: Any, fallbacks: Sequence[Any] = ()) -> list[str | bytes]:
    """itsdangerous' key list: oldest first, the newest (``secret_key``) last."""
    keys = [k if isinstance(k, bytes) else str(k) for k in (*fallbacks, secret_key) if k]
    if not keys or not keys[-1]:
        raise ConfigurationError("a legacy cookie reader needs the secret_key that signed it")
    return keys


@dataclasses.dataclass(frozen=True, slots=True)
class Found:
    """A verified legacy cookie: its ``data``, and the write that marks it imported.

    ``mark`` is a store key derived from the whole signed value (a replay of the same cookie
    finds the mark and imports nothing); ``claim`` creates it, living as long as the cookie
    could have been honoured by its old middleware.
    """

    data: Mapping[str, Any]
    mark: str
    claim: Create
    reader: LegacyCookie

    def __repr__(self) -> str:  # the data is personal: never print it
        return f"Found({len(self.data)} keys from {self.reader!r})"


class LegacyCookie(abc.ABC):
    """A reader of one legacy cookie format: where the cookie lives, and how it verifies."""

    def __init__(self, *, name: str, path: str, domain: str | None, max_age: float | None) -> None:
        if not name:
            raise ConfigurationError("a legacy cookie needs its name")
        if max_age is not None and max_age <= 0:
            raise ConfigurationError("max_age of a legacy cookie must be positive or None")
        self.name = name
        self._bad_data: type[Exception] = _itsdangerous().BadData
        self.path = path
        self.domain = domain
        self.max_age = max_age

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    @abc.abstractmethod
    def _unsign(self, value: str) -> tuple[Any, float]:
        """The decoded payload and its signing time (epoch seconds), or raise on any fault."""

    def read(self, headers: Headers, *, now: float | None = None) -> Found | None:
        """The verified, unexpired legacy cookie in ``headers``, or ``None``.

        Anything else (absent, a sessio token under the same name, tampered, signed with
        another key, expired, not a dict of text keys) is ``None``: the request is then a
        plain new session, as if no cookie had come.
        """
        values = parse_cookie_header(headers("cookie"), self.name)
        if len(values) != 1:  # none, or ambiguous: import nothing
            return None
        value = values[0]
        try:
            data, signed_at = self._unsign(value)
        except (self._bad_data, ValueError, TypeError, AttributeError, RecursionError):
            # A forged, expired or garbled cookie (base64, JSON and Unicode faults are
            # ValueErrors; a malformed Flask tag a TypeError or AttributeError).
            return None
        if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
            return None
        clock = time.time() if now is None else now
        lifetime = UNBOUNDED_MARK if self.max_age is None else self.max_age
        expires_at = signed_at + lifetime
        if expires_at <= clock:
            return None
        digest = hashlib.sha256(f"{self.name}\0{value}".encode()).hexdigest()
        mark = MARK_PREFIX + digest
        claim = Create({"imported_at": repr(clock)}, expires_at)
        return Found(data, mark, claim, self)

    def delete_options(self) -> CookieOptions:
        """The cookie to delete once imported: its own name, path and domain."""
        return CookieOptions(
            name=self.name, path=self.path, domain=self.domain, secure=False, samesite=None
        )


class StarletteCookie(LegacyCookie):
    """Starlette's ``SessionMiddleware`` cookie: base64 JSON signed by a ``TimestampSigner``.

    Give the arguments the old middleware had: ``secret_key``, ``session_cookie``,
    ``max_age`` (``None``: a browser-session cookie, honoured up to :data:`UNBOUNDED_MARK`),
    ``path`` and ``domain``.
    """

    def __init__(
        self,
        secret_key: Any,
        *,
        session_cookie: str = "session",
        max_age: int | None = 14 * 24 * 60 * 60,
        path: str = "/",
        domain: str | None = None,
    ) -> None:
        super().__init__(name=session_cookie, path=path, domain=domain, max_age=max_age)
        self._signer = _itsdangerous().TimestampSigner(_keys(secret_key)[-1])

    def _unsign(self, value: str) -> tuple[Any, float]:
        raw, at = self._signer.unsign(value.encode("utf-8"), return_timestamp=True)
        data = json.loads(
            base64.b64decode(raw, validate=True),
            parse_float=finite_float,
            parse_constant=refuse_constant,
        )
        return data, _epoch(at)


class FlaskCookie(LegacyCookie):
    """Flask's ``SecureCookieSessionInterface`` cookie: tagged JSON signed by a
    ``URLSafeTimedSerializer`` (salt ``"cookie-session"``, HMAC-SHA1 key derivation).

    ``secret_key`` and ``fallbacks`` are ``SECRET_KEY`` and ``SECRET_KEY_FALLBACKS``; ``max_age``
    is ``PERMANENT_SESSION_LIFETIME`` (Flask checks it on every cookie). :meth:`from_config`
    reads them all from an app's config.
    """

    def __init__(
        self,
        secret_key: Any,
        *,
        fallbacks: Sequence[Any] = (),
        name: str = "session",
        path: str = "/",
        domain: str | None = None,
        max_age: float = timedelta(days=31).total_seconds(),
    ) -> None:
        super().__init__(name=name, path=path, domain=domain, max_age=max_age)
        self._serializer = _itsdangerous().URLSafeTimedSerializer(
            _keys(secret_key, fallbacks),
            salt="cookie-session",
            serializer=TaggedJSON(),
            signer_kwargs={"key_derivation": "hmac", "digest_method": hashlib.sha1},
        )

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> FlaskCookie:
        """The reader for the cookies an app with this Flask ``config`` issued."""
        lifetime = config.get("PERMANENT_SESSION_LIFETIME", timedelta(days=31))
        seconds = lifetime.total_seconds() if isinstance(lifetime, timedelta) else float(lifetime)
        return cls(
            config.get("SECRET_KEY"),
            fallbacks=config.get("SECRET_KEY_FALLBACKS") or (),
            name=config.get("SESSION_COOKIE_NAME") or "session",
            path=config.get("SESSION_COOKIE_PATH") or config.get("APPLICATION_ROOT") or "/",
            domain=config.get("SESSION_COOKIE_DOMAIN") or None,
            max_age=seconds,
        )

    def _unsign(self, value: str) -> tuple[Any, float]:
        data, at = self._serializer.loads(value, max_age=self.max_age, return_timestamp=True)
        return data, _epoch(at)


def _epoch(at: datetime) -> float:
    return at.timestamp()
