"""Client-side stores: the whole session is sealed into the token the client carries.

A :class:`ClientSideStore` keeps no session on the server. :meth:`~ClientSideStore.seal` turns
a session (its ID and :class:`~sessio.stores.Record`) into a token and
:meth:`~ClientSideStore.open` turns a token back into them, or into ``None`` for anything the
server did not seal itself; neither does I/O. :class:`~sessio.SessionManager` takes such a store
in place of a server-side one: on load the token *is* the state, on commit every change (and
every refresh) yields a new token in ``Commit.token`` with ``CommitAction.SET``. A sealed token
authenticates itself, so transports carry it verbatim, unsigned:
``transports_for(policy, None, raw=manager.seals_tokens)``.

The threat model every client-side store shares:

* **Integrity.** A token is accepted only if it was sealed under one of the listed keys, byte
  for byte (base64 must be canonical, so not even padding bits can change). Anything else
  gives the request a fresh session and an ``invalid`` event, never an exception.
* **Replay.** A copied token stays valid until it expires. Logging out, rotating the ID or
  destroying the session issues a new token (or clears it) but cannot recall copies of the
  old one -- unless a ``revocation_store`` (any server-side :class:`~sessio.stores.Store`)
  lists the sessions ended early until they would have expired anyway. That list costs one
  lookup per request and holds only the sessions ended before their time.
* **No server state.** Listing a principal's sessions, ``revoke_all`` and per-principal
  concurrency limits need to know every live session, which only a server-side store does;
  asking for them with a client-side store raises :class:`~sessio.errors.ConfigurationError`.
* **Size.** A token longer than ``max_size`` bytes (4096 by default: what browsers keep per
  cookie) raises :class:`~sessio.errors.SessionTooLarge` naming its size; nothing is ever
  truncated. Tokens longer than ``max_size`` are rejected unread.
* **Confidentiality** depends on the store: :class:`~sessio.stores.SignedCookieStore` and
  :class:`~sessio.stores.JWTStore` tokens are readable by the client (and by anything that
  logs them); :class:`~sessio.stores.EncryptedCookieStore` tokens are not.
"""

from __future__ import annotations

import abc
import base64
import binascii
import json
import math
import re
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from .. import ids
from ..errors import ConfigurationError, SessionTooLarge, TokenInvalid
from .base import Clock, Create, Record, Rewrite, SaveOutcome, Store

if TYPE_CHECKING:
    from typing_extensions import Self

# Plain sorted(), as tests/test_public_api.py checks (ruff's isort-style order differs here).
__all__ = ["ClientSideStore", "MAX_COOKIE_BYTES", "TOKEN_PATTERN"]  # noqa: RUF022

#: What a browser keeps of one cookie (RFC 6265 6.1's minimum, and every browser's maximum).
MAX_COOKIE_BYTES = 4096

#: Every client-side token is base64url text, possibly in dot-separated parts (JWTs too).
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_.-]+")

_quote = json.encoder.encode_basestring
# Field values are the codec's JSON text: compact, non-ASCII kept as is. Re-encoding a decoded
# value with the same settings gives the same text back.
_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


class ClientSideStore(abc.ABC):
    """Base of the stores that seal a session into its token; see the module docstring.

    Options every client-side store takes (keyword-only):

    * ``max_size`` -- the longest token issued or read, in bytes (default 4096).
    * ``refresh_threshold`` -- on a request that changed nothing, issue a fresh token (pushing
      the idle expiry) only once less than this much time remains, and at most once per the
      policy's ``refresh_interval``; ``None`` refreshes once per ``refresh_interval``, as a
      server-side store would touch. A threshold ``R`` under an ``idle_timeout`` ``I`` trades
      precision for fewer ``Set-Cookie`` s: every idle gap shorter than ``R`` is survived, and
      every gap of ``I`` ends the session. The absolute ``ttl`` is never extended.
    * ``revocation_store`` -- a server-side store that remembers sessions ended early
      (logout, rotation, :meth:`SessionManager.revoke`) until their tokens expire.
    * ``clock`` -- the time source of :meth:`open` (the manager uses its own).

    Subclasses implement :meth:`_seal` and :meth:`_unseal`.
    """

    def __init__(
        self,
        *,
        max_size: int = MAX_COOKIE_BYTES,
        refresh_threshold: timedelta | None = None,
        revocation_store: Store | None = None,
        clock: Clock = time.time,
    ) -> None:
        if isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 256:
            raise ConfigurationError(f"max_size must be an int of at least 256 bytes: {max_size!r}")
        if refresh_threshold is not None and (
            not isinstance(refresh_threshold, timedelta) or refresh_threshold.total_seconds() <= 0
        ):
            raise ConfigurationError(
                f"refresh_threshold must be a positive timedelta or None: {refresh_threshold!r}"
            )
        if revocation_store is not None and not isinstance(revocation_store, Store):
            raise ConfigurationError(
                "revocation_store must be a server-side sessio Store, "
                f"got {type(revocation_store).__name__}"
            )
        self.max_size = max_size
        self.refresh_threshold = refresh_threshold
        self.revocations = revocation_store
        self.clock = clock

    def __repr__(self) -> str:
        revocations = "" if self.revocations is None else f", revocation_store={self.revocations!r}"
        return f"{type(self).__name__}(max_size={self.max_size}{revocations})"

    # -- sealing: pure, no I/O -----------------------------------------------------------------

    @abc.abstractmethod
    def _seal(self, session_id: str, record: Record, now: float) -> str:
        """The token for ``record`` (any size: :meth:`seal` checks it)."""

    @abc.abstractmethod
    def _unseal(self, token: str) -> tuple[str, Record]:
        """The session ID and record in ``token``; :class:`TokenInvalid` for anything else.

        ``token`` has passed the length and alphabet checks. Expiry is not checked here.
        """

    def seal(self, session_id: str, record: Record, *, now: float | None = None) -> str:
        """The token carrying ``record``; ``now`` is its issue time (default: ``clock()``).

        Raises :class:`~sessio.errors.SessionTooLarge` when the token exceeds ``max_size``.
        """
        token = self._seal(session_id, record, self.clock() if now is None else now)
        if len(token) > self.max_size:
            raise SessionTooLarge(
                f"the session sealed into a {len(token)}-byte token, over the limit of "
                f"{self.max_size} bytes; store less in it, or use a server-side store",
                size=len(token),
                limit=self.max_size,
            )
        return token

    def unseal(self, token: str) -> tuple[str, Record]:
        """``(session_id, record)`` from a token this store sealed, even an expired one.

        Raises :class:`~sessio.errors.TokenInvalid` (with a ``reason``) for anything else:
        tampered, truncated, oversized, garbage, or sealed under a key no longer listed.
        """
        if not isinstance(token, str) or not token:
            raise TokenInvalid("no token", reason="empty")
        if len(token) > self.max_size:
            raise TokenInvalid("the token is longer than any this store issues", reason="size")
        if not TOKEN_PATTERN.fullmatch(token):
            raise TokenInvalid("the token has characters no sealed token has", reason="alphabet")
        return self._unseal(token)

    def open(self, token: str) -> tuple[str, Record] | None:
        """``(session_id, record)`` from a live token this store sealed, else ``None``.

        Never raises, whatever the input: forged, tampered and expired tokens are all ``None``.
        """
        try:
            session_id, record = self.unseal(token)
        except TokenInvalid:
            return None
        if record.expires_at <= self.clock():
            return None
        return session_id, record

    # -- the revocation list: the only I/O, and only with a revocation_store -----------------------

    async def is_revoked(self, key: str) -> bool:
        """Whether the session stored as ``key`` was ended before its token expired."""
        return self.revocations is not None and await self.revocations.exists(key)

    def is_revoked_sync(self, key: str) -> bool:
        """Sync twin of :meth:`is_revoked`."""
        return self.revocations is not None and self.revocations.exists_sync(key)

    async def revoke(self, key: str, until: float) -> None:
        """List the session ``key`` as revoked until ``until`` (when its tokens expire)."""
        store, (create, rewrite) = self._revocations(), _revocation(until)
        if (await store.save(key, create)).outcome is SaveOutcome.EXISTS:
            await store.save(key, rewrite)  # listed already: the later end wins

    def revoke_sync(self, key: str, until: float) -> None:
        """Sync twin of :meth:`revoke`."""
        store, (create, rewrite) = self._revocations(), _revocation(until)
        if store.save_sync(key, create).outcome is SaveOutcome.EXISTS:
            store.save_sync(key, rewrite)

    def _revocations(self) -> Store:
        if self.revocations is None:
            raise ConfigurationError(
                f"{type(self).__name__} has no revocation_store: a client-side token cannot be "
                "revoked before it expires without one"
            )
        return self.revocations

    async def cleanup(self) -> int:
        """Drop revocations whose tokens have expired; how many (0 without a revocation list)."""
        return 0 if self.revocations is None else await self.revocations.cleanup()

    def cleanup_sync(self) -> int:
        """Sync twin of :meth:`cleanup`."""
        return 0 if self.revocations is None else self.revocations.cleanup_sync()

    async def close(self) -> None:
        """Close the revocation store, if any."""
        if self.revocations is not None:
            await self.revocations.close()

    def close_sync(self) -> None:
        """Sync twin of :meth:`close`."""
        if self.revocations is not None:
            self.revocations.close_sync()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_sync()


def _revocation(until: float) -> tuple[Create, Rewrite]:
    # A true create (contract v2 has no upsert), and the rewrite for a key listed already.
    fields = {"revoked": "true"}
    return Create(fields, until), Rewrite(fields, until)


# -- helpers the concrete stores share -------------------------------------------------------------


def b64encode(data: bytes) -> str:
    """Unpadded base64url text."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64decode(text: str) -> bytes:
    """The bytes of unpadded base64url ``text``, which must be canonical (or TokenInvalid).

    Canonical means re-encoding gives ``text`` back: the decoder alone would ignore stray
    characters and the unused bits of the last one, letting one token have many spellings.
    """
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenInvalid("malformed base64", reason="malformed") from None
    if b64encode(data) != text:
        raise TokenInvalid("non-canonical base64", reason="malformed")
    return data


def pack(session_id: str, record: Record) -> bytes:
    """The compact JSON a cookie store seals: ``{"i": id, "e": exp, "p": principal, "f": {...}}``.

    Field values are already JSON text, so they are spliced in, not re-encoded. ``e`` is
    rounded up to whole seconds; the manager re-derives the exact expiry from the metadata.
    """
    parts = [f'"i":{_quote(session_id)}', f'"e":{math.ceil(record.expires_at)}']
    if record.principal is not None:
        parts.append(f'"p":{_quote(record.principal)}')
    fields = ",".join([_quote(name) + ":" + text for name, text in record.fields.items()])
    parts.append('"f":{' + fields + "}")
    # surrogatepass: the codec keeps lone surrogates a user may have stored in a str.
    return ("{" + ",".join(parts) + "}").encode("utf-8", "surrogatepass")


def unpack(data: bytes) -> tuple[str, Record]:
    """The inverse of :meth:`pack`; :class:`TokenInvalid` when ``data`` is not of its shape."""
    try:
        doc = json.loads(data.decode("utf-8", "surrogatepass"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise TokenInvalid("the payload is not JSON", reason="malformed") from None
    if not isinstance(doc, dict):
        raise TokenInvalid("the payload is not an object", reason="malformed")
    session_id, expires, principal, fields = doc.get("i"), doc.get("e"), doc.get("p"), doc.get("f")
    if principal is not None and not isinstance(principal, str):
        raise TokenInvalid("the payload names no valid principal", reason="malformed")
    return session_id_of(session_id), record_of(session_id, fields, expires, principal)


def session_id_of(value: Any) -> str:
    """``value`` if it is a session ID of the shape sessio issues, else :class:`TokenInvalid`."""
    if not isinstance(value, str) or not ids.is_well_formed(value):
        raise TokenInvalid("the payload carries no valid session ID", reason="malformed")
    return value


def record_of(session_id: Any, fields: Any, expires: Any, principal: str | None) -> Record:
    """A :class:`Record` from decoded payload parts, each checked (or TokenInvalid)."""
    session_id = session_id_of(session_id)
    if isinstance(expires, bool) or not isinstance(expires, int):
        raise TokenInvalid("the payload has no valid expiry", reason="malformed")
    if not isinstance(fields, dict):
        raise TokenInvalid("the payload has no fields", reason="malformed")
    try:
        texts = {str(name): _encoder.encode(value) for name, value in fields.items()}
    except (ValueError, TypeError, RecursionError):
        raise TokenInvalid("the payload has an unencodable field", reason="malformed") from None
    return Record(ids.store_key(session_id), texts, float(expires), principal)


def field_data(record: Record) -> dict[str, Any]:
    """The record's fields as decoded JSON (for formats that encode the payload themselves)."""
    return {name: json.loads(text) for name, text in record.fields.items()}
