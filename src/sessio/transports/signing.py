"""Signed tokens: the session ID plus an HMAC, verified under a list of rotating keys.

Keys are listed oldest to newest (itsdangerous's convention): the newest signs, every key
verifies, so adding a key and later dropping the old one rotates secrets without logging
anyone out.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Sequence

from ..errors import ConfigurationError

__all__ = ["MAX_TOKEN_LENGTH", "Secret", "TokenSigner"]

#: Anything longer than this is rejected before any parsing or hashing.
MAX_TOKEN_LENGTH = 256

_SALT = b"sessio.session-token"


class Secret:
    """Signing keys that never print: ``repr`` shows ``Secret('**********')``.

    Accepts one key or a sequence of keys, oldest first. Each key must have at least 32
    bytes of material (OWASP: at least 256 bits for HMAC keys).
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: str | bytes | Secret | Sequence[str | bytes]) -> None:
        if isinstance(keys, Secret):
            self._keys: tuple[bytes, ...] = keys._keys
            return
        items: Iterable[str | bytes] = [keys] if isinstance(keys, (str, bytes)) else keys
        encoded = tuple(k.encode("utf-8") if isinstance(k, str) else bytes(k) for k in items)
        if not encoded:
            raise ConfigurationError("at least one secret key is required")
        for key in encoded:
            if len(key) < 32:
                raise ConfigurationError(
                    "secret keys need at least 32 bytes; generate one with "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
                )
        self._keys = encoded

    @property
    def keys(self) -> tuple[bytes, ...]:
        """The raw keys, oldest first (the last one signs)."""
        return self._keys

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class TokenSigner:
    """Signs session IDs as ``<id>.<mac>`` and verifies them under every listed key."""

    def __init__(self, secret: str | bytes | Secret | Sequence[str | bytes]) -> None:
        self.secret = Secret(secret)
        # Derive per-purpose keys so the same app secret can safely sign other things.
        self._macs = [hmac.new(key, _SALT, hashlib.sha256).digest() for key in self.secret.keys]

    def _mac(self, key: bytes, value: str) -> str:
        return _b64(hmac.digest(key, value.encode("ascii"), "sha256"))

    def sign(self, session_id: str) -> str:
        """The token for ``session_id``, signed with the newest key."""
        return f"{session_id}.{self._mac(self._macs[-1], session_id)}"

    def unsign(self, token: str) -> str | None:
        """The session ID inside ``token`` if any key verifies it, else ``None`` (never raises)."""
        if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            return None
        value, sep, mac = token.rpartition(".")
        if not sep or not value:
            return None
        for key in reversed(self._macs):
            if hmac.compare_digest(self._mac(key, value), mac):
                return value
        return None
