"""AES-256-GCM under rotating keys, from ``cryptography``: the one cipher the encrypting stores use.

A sealed blob is ``version (1) | key ID (4) | nonce (12) | ciphertext | tag (16)``. The newest
key encrypts; the key ID picks the key that decrypts, so rotation costs no trial decryptions.
The version and key ID are authenticated as associated data along with the caller's context
(what the blob belongs to), so a blob moved to another context fails to decrypt.

Nonces are 96 random bits per message: NIST SP 800-38D bounds one key to 2**32 such messages.
Rotating keys (adding a new one) well before that restarts the count; stores say so.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import require
from ..keys import KeyRing, SecretKeys

__all__ = ["AEAD"]

_VERSION = b"\x01"
_NONCE = 12
_HEADER = 1 + 4  # version + key ID
_TAG = 16


class AEAD:
    """Encrypts with the newest key of ``secret`` (derived for ``purpose``), decrypts with any."""

    __slots__ = ("_ciphers", "_invalid", "_newest")

    def __init__(self, secret: SecretKeys, purpose: str) -> None:
        aead = require("cryptography.hazmat.primitives.ciphers.aead", "crypto")
        self._invalid: type[Exception] = require("cryptography.exceptions", "crypto").InvalidTag
        ring = KeyRing(secret, purpose)
        self._ciphers: dict[bytes, Any] = {
            kid: aead.AESGCM(key) for kid, key in ring.newest_first()
        }
        self._newest = ring.newest[0]

    def encrypt(self, plaintext: bytes, context: bytes) -> bytes:
        """``plaintext`` sealed for ``context``, under the newest key."""
        header = _VERSION + self._newest
        nonce = os.urandom(_NONCE)
        sealed: bytes = self._ciphers[self._newest].encrypt(nonce, plaintext, header + context)
        return header + nonce + sealed

    def decrypt(self, blob: bytes, context: bytes) -> bytes | None:
        """The plaintext of ``blob`` if a listed key sealed it for ``context``, else ``None``."""
        if len(blob) < _HEADER + _NONCE + _TAG or blob[:1] != _VERSION:
            return None
        cipher = self._ciphers.get(blob[1:_HEADER])
        if cipher is None:
            return None
        nonce = blob[_HEADER : _HEADER + _NONCE]
        try:
            plain: bytes = cipher.decrypt(nonce, blob[_HEADER + _NONCE :], blob[:_HEADER] + context)
        except self._invalid:
            return None
        return plain
