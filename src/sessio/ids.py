"""Session IDs: 256 random bits for the client, and only their SHA-256 at rest."""

from __future__ import annotations

import functools
import hashlib
import re
import secrets

__all__ = ["ID_BYTES", "is_well_formed", "new_session_id", "short_hash", "store_key"]

#: Bytes of randomness in a session ID (256 bits, as OWASP's session cheat sheet asks for >= 64).
ID_BYTES = 32

# token_urlsafe(32) is exactly 43 characters of the URL-safe base64 alphabet.
_ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")


def new_session_id() -> str:
    """A fresh, unguessable session ID (``secrets.token_urlsafe``, 256 bits)."""
    return secrets.token_urlsafe(ID_BYTES)


def is_well_formed(session_id: str) -> bool:
    """Whether ``session_id`` has the exact shape sessio issues; cheap, checked before any I/O."""
    return _ID_PATTERN.fullmatch(session_id) is not None


@functools.lru_cache(maxsize=4096)
def store_key(session_id: str) -> str:
    """The key a store sees: SHA-256 of the ID, so a dump of the store yields no usable token.

    A plain hash is enough (no salt, no HMAC): the input has 256 bits of entropy, so the hash
    cannot be reversed or brute-forced, and it must be deterministic for lookups. The keys of
    the IDs seen last are remembered: a client presents the same ID request after request.
    """
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()


def short_hash(key: str) -> str:
    """The first 12 hex digits of a store key: what logs, events and errors show."""
    return key[:12]
