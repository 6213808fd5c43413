"""CSRF synchronizer tokens: one secret per session, masked anew for every render (BREACH).

The secret never leaves the server in the clear: each token is ``mask || (mask XOR secret)``,
URL-safe base64, so two renders of one page never show the same bytes and compression side
channels learn nothing. Verification unmasks and compares in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

__all__ = ["SECRET_BYTES", "derive_secret", "is_secret", "mask_token", "new_secret", "verify_token"]

SECRET_BYTES = 32
_SECRET_CHARS = 43  # base64url of 32 bytes, unpadded
_TOKEN_CHARS = 86  # base64url of 64 bytes, unpadded


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def new_secret() -> str:
    """A fresh per-session CSRF secret."""
    return _b64encode(secrets.token_bytes(SECRET_BYTES))


def derive_secret(session_id: str, salt: str | None = None) -> str:
    """The CSRF secret of the session ``session_id``: HMAC-SHA256 keyed by the ID (256 secret
    bits), over a salt once the secret was rotated. Parallel first requests of one session
    thus agree on it with nothing stored, and a token reveals nothing of the ID."""
    message = b"sessio/csrf/v1" if salt is None else b"sessio/csrf/v1\x00" + salt.encode("ascii")
    return _b64encode(
        hmac.new(session_id.encode("utf-8", "surrogatepass"), message, hashlib.sha256).digest()
    )


def is_secret(value: object) -> bool:
    """Whether ``value`` has the shape of a secret from :func:`new_secret` (a stored one may not)."""
    if not isinstance(value, str) or len(value) != _SECRET_CHARS:
        return False
    try:
        return len(_b64decode(value)) == SECRET_BYTES
    except (binascii.Error, ValueError):
        return False


def mask_token(secret: str) -> str:
    """A token for ``secret`` that differs on every call."""
    raw = _b64decode(secret)
    pad = secrets.token_bytes(len(raw))
    return _b64encode(pad + bytes(a ^ b for a, b in zip(pad, raw, strict=True)))


def verify_token(secret: str, token: object) -> bool:
    """Whether ``token`` was masked from ``secret``; never raises, whatever ``token`` is."""
    if not isinstance(token, str) or len(token) != _TOKEN_CHARS:
        return False
    try:
        raw = _b64decode(token)
        expected = _b64decode(secret)
    except (binascii.Error, ValueError):
        return False
    if _b64encode(raw) != token:
        # base64 ignores stray characters and the unused low bits of the last one: accept each
        # token in exactly the spelling mask_token() produced, not 16 look-alikes.
        return False
    half = len(raw) // 2
    if half != len(expected):
        return False
    unmasked = bytes(a ^ b for a, b in zip(raw[:half], raw[half:], strict=True))
    return hmac.compare_digest(unmasked, expected)
