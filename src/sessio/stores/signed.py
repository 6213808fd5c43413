"""SignedCookieStore: the session in the cookie itself, signed with HMAC-SHA256 but NOT encrypted.

What the client can see: everything. The token is base64url of the session's JSON (zlib
compressed when that makes it shorter), so anyone holding the cookie -- the user, a browser
extension, a proxy log -- can read every value, the CSRF secret and the principal. Keep nothing
in it the user may not read; use :class:`~sessio.stores.EncryptedCookieStore` otherwise.

What the client cannot do: change a single byte (the HMAC covers the whole payload and is
checked in constant time under every listed key), or make the server adopt a session it did
not issue. Replay of an old token within its lifetime is possible unless a
``revocation_store`` is given (see :mod:`sessio.stores.client`).

Compression is safe here because nothing is secret from the reader; it is never used by the
encrypting stores, where it would leak the length of secrets (CRIME).
"""

from __future__ import annotations

import hashlib
import hmac
import time
import zlib
from datetime import timedelta

from ..errors import TokenInvalid
from ..keys import KeyRing, SecretKeys
from .base import Clock, Record, Store
from .client import MAX_COOKIE_BYTES, ClientSideStore, b64decode, b64encode, pack, unpack

__all__ = ["SignedCookieStore"]

_PURPOSE = "signed-cookie-store"
#: Compressed payloads are marked by a leading "." (itsdangerous's convention).
_ZLIB = "."


class SignedCookieStore(ClientSideStore):
    """Sessions kept in a signed, readable token: ``<payload>.<mac>``.

    ``secret_keys`` are listed oldest to newest: the newest signs, every one verifies, so a
    new key can be added first and the old one dropped once its tokens have expired, without
    logging anyone out. The keys actually used are derived from them for this purpose alone,
    so the same secret may also sign the transport or encrypt records. Other options are those
    of :class:`~sessio.stores.client.ClientSideStore`.
    """

    def __init__(
        self,
        secret_keys: SecretKeys,
        *,
        max_size: int = MAX_COOKIE_BYTES,
        refresh_threshold: timedelta | None = None,
        revocation_store: Store | None = None,
        clock: Clock = time.time,
    ) -> None:
        keys = KeyRing(secret_keys, _PURPOSE)  # first: the base warns once all is valid
        super().__init__(
            max_size=max_size,
            refresh_threshold=refresh_threshold,
            revocation_store=revocation_store,
            clock=clock,
        )
        self._keys = keys

    def _mac(self, key: bytes, payload: str) -> str:
        return b64encode(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest())

    def _seal(self, session_id: str, record: Record, now: float) -> str:
        data = pack(session_id, record)
        squeezed = zlib.compress(data, 9)
        payload = _ZLIB + b64encode(squeezed) if len(squeezed) < len(data) else b64encode(data)
        return f"{payload}.{self._mac(self._keys.newest[1], payload)}"

    def _unseal(self, token: str) -> tuple[str, Record]:
        payload, dot, mac = token.rpartition(".")
        if not dot or not payload:
            raise TokenInvalid("the token is not <payload>.<mac>", reason="malformed")
        if not any(
            hmac.compare_digest(self._mac(key, payload), mac)
            for _, key in self._keys.newest_first()
        ):
            raise TokenInvalid("the token's signature does not verify", reason="signature")
        # From here on the payload is one this server wrote.
        if payload.startswith(_ZLIB):
            return unpack(_inflate(b64decode(payload[1:]), limit=64 * len(token)))
        return unpack(b64decode(payload))


def _inflate(data: bytes, *, limit: int) -> bytes:
    # Authenticated data, so no bomb is expected; the bound keeps even a leaked key harmless.
    try:
        inflater = zlib.decompressobj()
        out = inflater.decompress(data, limit)
    except zlib.error:
        raise TokenInvalid("the payload does not inflate", reason="malformed") from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise TokenInvalid("the payload inflates past its bound", reason="malformed")
    return out
