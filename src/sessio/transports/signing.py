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

from .._memo import Memo
from ..keys import Secret
from ..stores.client import TOKEN_PATTERN

__all__ = [
    "MAX_RAW_TOKEN_LENGTH",
    "MAX_REMEMBERED_TOKENS",
    "MAX_TOKEN_LENGTH",
    "RawTokens",
    "Secret",
    "TokenSigner",
]

#: Anything longer than this is rejected before any parsing or hashing.
MAX_TOKEN_LENGTH = 256
#: The longest sealed token a transport passes on (a header may carry more than a cookie).
MAX_RAW_TOKEN_LENGTH = 8192

_SALT = b"sessio.session-token"
#: How many verified tokens a signer remembers (see :meth:`TokenSigner.unsign`).
MAX_REMEMBERED_TOKENS = 4096


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class TokenSigner:
    """Signs session IDs as ``<id>.<mac>`` and verifies them under every listed key.

    The MAC is HMAC-SHA256 under a key derived per purpose from each secret. A browser sends
    the same token with every request (and a refreshed cookie carries the same token again),
    so a signer remembers the last :data:`MAX_REMEMBERED_TOKENS` tokens it verified or issued
    (their IDs are in this process's memory for the request anyway) and answers them again
    without hashing. Forged tokens are never remembered, so they cannot push the good ones
    out faster than real traffic does.
    """

    def __init__(self, secret: str | bytes | Secret | Sequence[str | bytes]) -> None:
        self.secret = Secret(secret)
        # Derive per-purpose keys so the same app secret can safely sign other things. Each
        # keyed HMAC is set up once and copied per use: set-up costs more than the hashing.
        self._macs = [
            hmac.new(hmac.digest(key, _SALT, "sha256"), digestmod=hashlib.sha256)
            for key in self.secret.keys
        ]
        self._verified: Memo[str, str] = Memo(MAX_REMEMBERED_TOKENS)  # token -> session ID
        self._issued: Memo[str, str] = Memo(MAX_REMEMBERED_TOKENS)  # session ID -> token

    def _mac(self, keyed: hmac.HMAC, value: str) -> str:
        mac = keyed.copy()
        mac.update(value.encode("ascii"))
        return _b64(mac.digest())

    def sign(self, session_id: str) -> str:
        """The token for ``session_id``, signed with the newest key."""
        token = self._issued.get(session_id)
        if token is None:
            token = f"{session_id}.{self._mac(self._macs[-1], session_id)}"
            self._issued.put(session_id, token)
        return token

    def unsign(self, token: str) -> str | None:
        """The session ID inside ``token`` if any key verifies it, else ``None`` (never raises)."""
        known = self._verified.get(token)
        if known is not None:
            return known
        if not token or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            return None
        value, sep, mac = token.rpartition(".")
        if not sep or not value:
            return None
        for key in reversed(self._macs):
            if hmac.compare_digest(self._mac(key, value), mac):
                self._verified.put(token, value)
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
