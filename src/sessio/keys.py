"""Secret keys: lists of keys that never print, and the per-purpose keys derived from them.

Keys are listed oldest to newest (itsdangerous's convention): the newest signs or encrypts,
every key verifies or decrypts, so adding a key and later dropping the old one rotates secrets
without logging anyone out. This module sits below stores and transports so both can use it.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Iterator, Sequence

from .errors import ConfigurationError

__all__ = ["KEY_ID_BYTES", "KeyRing", "Secret", "SecretKeys"]

#: Length of a key ID: enough to tell a handful of keys apart, too short to say anything else.
KEY_ID_BYTES = 4


class Secret:
    """Signing keys that never print: ``repr`` shows ``Secret('**********')``.

    Accepts one key or a sequence of keys, oldest first. Each key must have at least 32
    bytes of material (OWASP: at least 256 bits for HMAC keys).
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: SecretKeys) -> None:
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


#: What every keyed component accepts: one key, keys oldest first, or a :class:`Secret`.
SecretKeys = str | bytes | Secret | Sequence[str | bytes]


class KeyRing:
    """One key per listed secret, for one ``purpose``, each with a short public key ID.

    With ``derive=True`` (the default) each key is ``HMAC-SHA256(secret, purpose)``: the same
    application secret can then sign cookies, encrypt records and sign JWTs without one use
    ever standing in for another. ``derive=False`` keeps the secrets as they are (JWTs, which
    other services verify with the shared secret itself). Key IDs are
    ``HMAC-SHA256(secret, "kid:" + purpose)`` truncated to :data:`KEY_ID_BYTES`: stable across
    restarts and list order, and no help in guessing a key.
    """

    __slots__ = ("_by_id", "_entries", "purpose")

    def __init__(self, secret: SecretKeys, purpose: str, *, derive: bool = True) -> None:
        raw = Secret(secret).keys
        label = purpose.encode("utf-8")
        entries = []
        for key in raw:
            kid = hmac.new(key, b"sessio.kid:" + label, hashlib.sha256).digest()[:KEY_ID_BYTES]
            material = hmac.new(key, b"sessio.key:" + label, hashlib.sha256).digest()
            entries.append((kid, material if derive else key))
        by_id = dict(entries)
        if len(by_id) != len(entries):
            raise ConfigurationError(
                "two secret keys share a key ID: a key is listed twice, or (once in four "
                "billion) two keys collide; generate another key"
            )
        self.purpose = purpose
        self._entries: tuple[tuple[bytes, bytes], ...] = tuple(entries)
        self._by_id = by_id

    @property
    def newest(self) -> tuple[bytes, bytes]:
        """``(key_id, key)`` of the newest key: the one that signs or encrypts."""
        return self._entries[-1]

    def get(self, key_id: bytes) -> bytes | None:
        """The key with ``key_id``, or ``None`` when no listed key has it."""
        return self._by_id.get(key_id)

    def newest_first(self) -> Iterator[tuple[bytes, bytes]]:
        """Every ``(key_id, key)``, newest first (the order to try them in)."""
        return reversed(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"KeyRing({self.purpose!r}, {len(self._entries)} key(s))"
