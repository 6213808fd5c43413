"""Signed tokens: the session ID plus an HMAC, verified under a list of rotating keys.

Keys are listed oldest to newest (itsdangerous's convention): the newest signs, every key
verifies, so adding a key and later dropping the old one rotates secrets without logging
anyone out. :class:`RawTokens` is the other way a transport wraps tokens: not at all, for the
sealed tokens of client-side stores, which authenticate themselves.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from ..keys import Secret
from ..stores.client import TOKEN_PATTERN

__all__ = ["MAX_RAW_TOKEN_LENGTH", "MAX_TOKEN_LENGTH", "RawTokens", "Secret", "TokenSigner"]

#: Anything longer than this is rejected before any parsing or hashing.
MAX_TOKEN_LENGTH = 256
#: The longest sealed token a transport passes on (a header may carry more than a cookie).
MAX_RAW_TOKEN_LENGTH = 8192

_SALT = b"sessio.session-token"
_BLOCK = 64  # SHA-256's block size in bytes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class _HmacSha256:
    """HMAC-SHA256 under one key, with the key's two padded blocks hashed once (RFC 2104).

    ``hmac.digest`` sets its key up again on every call, which costs more than the hashing of
    a session ID itself; copying the two keyed SHA-256 states costs about half as much. The
    result is byte for byte ``hmac.digest(key, message, "sha256")`` (tested).
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        block = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in block))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in block))

    def __call__(self, message: bytes) -> bytes:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


class TokenSigner:
    """Signs session IDs as ``<id>.<mac>`` and verifies them under every listed key."""

    def __init__(self, secret: str | bytes | Secret | Sequence[str | bytes]) -> None:
        self.secret = Secret(secret)
        # Derive per-purpose keys so the same app secret can safely sign other things.
        self._macs = [_HmacSha256(hmac.digest(key, _SALT, "sha256")) for key in self.secret.keys]

    def _mac(self, mac: _HmacSha256, value: str) -> str:
        return _b64(mac(value.encode("ascii")))

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


class RawTokens:
    """Carries tokens verbatim: for client-side stores, whose sealed tokens authenticate themselves.

    Signing them again would only add bytes to a cookie that has few to spare. ``unsign``
    passes on only what has a sealed token's shape (base64url and dots, at most
    :data:`MAX_RAW_TOKEN_LENGTH` characters); the store verifies the rest.
    """

    def sign(self, token: str) -> str:
        """``token`` itself."""
        return token

    def unsign(self, token: str) -> str | None:
        """``token`` if it has a sealed token's shape, else ``None`` (never raises)."""
        if not token or len(token) > MAX_RAW_TOKEN_LENGTH or not TOKEN_PATTERN.fullmatch(token):
            return None
        return token

    def __repr__(self) -> str:
        return "RawTokens()"
