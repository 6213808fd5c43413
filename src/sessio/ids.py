"""Session IDs: 256 random bits for the client, and only their SHA-256 at rest."""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import re
import secrets

__all__ = [
    "ID_BYTES",
    "is_well_formed",
    "new_session_id",
    "open_successor",
    "seal_successor",
    "short_hash",
    "store_key",
    "successor_key",
]

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


# -- following a rotation ----------------------------------------------------------------------------
# A rotation leaves a tombstone under successor_key(old_id), holding the new ID sealed with a pad
# only the old ID yields: a request still holding the old ID can follow it, a dump cannot.

_SUCCESSOR_DOMAIN = b"sessio/successor-key/v1\x00"
_PAD_DOMAIN = b"sessio/successor-pad/v1"


def successor_key(old_id: str) -> str:
    """The key of the tombstone a rotation of ``old_id`` leaves: SHA-256 of the domain-separated
    ID, so it cannot be linked to ``store_key(old_id)`` without the ID itself."""
    return hashlib.sha256(_SUCCESSOR_DOMAIN + old_id.encode("ascii")).hexdigest()


def _id_bytes(session_id: str) -> bytes:
    if not is_well_formed(session_id):
        raise ValueError("not a session ID")
    return base64.urlsafe_b64decode(session_id + "=")


def _pad(old_id: str) -> bytes:
    return hmac.new(old_id.encode("ascii"), _PAD_DOMAIN, hashlib.sha256).digest()


def seal_successor(old_id: str, new_id: str) -> str:
    """``new_id`` XOR a pad derived from ``old_id`` (HMAC-SHA256), URL-safe base64 text."""
    sealed = bytes(a ^ b for a, b in zip(_id_bytes(new_id), _pad(old_id), strict=True))
    return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")


def open_successor(old_id: str, sealed: object, successor: object) -> str | None:
    """The ID :func:`seal_successor` sealed, if ``sealed`` opens under ``old_id`` to an ID whose
    store key is ``successor`` (compared in constant time); ``None`` for anything else."""
    if not isinstance(sealed, str) or not isinstance(successor, str) or len(sealed) != 43:
        return None
    try:
        raw = base64.urlsafe_b64decode(sealed + "=")
    except (binascii.Error, ValueError):
        return None
    if len(raw) != ID_BYTES:
        return None
    plain = bytes(a ^ b for a, b in zip(raw, _pad(old_id), strict=True))
    candidate = base64.urlsafe_b64encode(plain).rstrip(b"=").decode("ascii")
    expected = hashlib.sha256(candidate.encode("ascii")).hexdigest()
    if not hmac.compare_digest(expected.encode("ascii"), successor.encode("ascii", "replace")):
        return None
    return candidate
