"""EncryptedCookieStore: the session in the cookie itself, encrypted and authenticated (AES-GCM).

What the client can see: that it holds a token, and roughly how large the session is (the
token's length follows the payload's, which is deliberately never compressed: compression
before encryption leaks secrets through lengths, as CRIME showed). Not a single value, the
principal, the CSRF secret nor the expiry can be read without a key.

What the client cannot do: change a byte (AES-GCM's tag authenticates the whole token, the
key ID included), or make the server adopt a session it did not issue. Replay of an old token
within its lifetime is possible unless a ``revocation_store`` is given (see
:mod:`sessio.stores.client`).

Keys rotate like every sessio key list (oldest to newest; the newest encrypts, every one
decrypts, found by the key ID each token carries). Random 96-bit nonces bound one key to about
four billion tokens (NIST SP 800-38D); every refresh issues a token, so a busy site should
add a new key well before then -- yearly is plenty for most. Requires ``sessio[crypto]``.
"""

from __future__ import annotations

import time
from datetime import timedelta

from ..errors import TokenInvalid
from ..keys import SecretKeys
from ._aead import AEAD
from .base import Clock, Record, Store
from .client import MAX_COOKIE_BYTES, ClientSideStore, b64decode, b64encode, pack, unpack

__all__ = ["EncryptedCookieStore"]

_PURPOSE = "encrypted-cookie-store"
#: Associated data: binds a token to this use, so a blob from another AES-GCM use never opens.
_CONTEXT = b"sessio.encrypted-cookie"


class EncryptedCookieStore(ClientSideStore):
    """Sessions kept in an encrypted token, unreadable and unforgeable by the client.

    ``keys`` are secrets of at least 32 bytes, oldest to newest; the AES-256 keys are derived
    from them for this purpose alone, so the same secret may serve elsewhere. Other options are
    those of :class:`~sessio.stores.client.ClientSideStore`.
    """

    def __init__(
        self,
        keys: SecretKeys,
        *,
        max_size: int = MAX_COOKIE_BYTES,
        refresh_threshold: timedelta | None = None,
        revocation_store: Store | None = None,
        clock: Clock = time.time,
    ) -> None:
        aead = AEAD(keys, _PURPOSE)  # first: the base warns once all is valid
        super().__init__(
            max_size=max_size,
            refresh_threshold=refresh_threshold,
            revocation_store=revocation_store,
            clock=clock,
        )
        self._aead = aead

    def _seal(self, session_id: str, record: Record, now: float) -> str:
        return b64encode(self._aead.encrypt(pack(session_id, record), _CONTEXT))

    def _unseal(self, token: str) -> tuple[str, Record]:
        plain = self._aead.decrypt(b64decode(token), _CONTEXT)
        if plain is None:
            raise TokenInvalid(
                "the token does not decrypt under any listed key", reason="signature"
            )
        return unpack(plain)
