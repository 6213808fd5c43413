"""JWTStore: the session as a JSON Web Token (HMAC-SHA2, PyJWT), refreshed as it nears expiry.

What the client can see: everything. A JWT is signed, not encrypted: its payload is base64url
JSON that anyone holding the token can read (the user, JavaScript if the transport allows it,
any log it passes through). Use :class:`~sessio.stores.EncryptedCookieStore` for secrets.

What the client cannot do: change a byte or forge a token without a key. The algorithm is
pinned (``HS256``, ``HS384`` or ``HS512``): a token naming any other -- ``none`` included, or an
RSA/EC algorithm in an algorithm-confusion attempt -- is rejected before its signature is
computed; each key must be at least as long as the hash (RFC 7518 3.2); base64 must be
canonical, so not even the signature's padding bits can change.

Claims: ``jti`` is the session ID (the revocation list files it under the ID's hash, the key
every sessio store uses); ``sub`` the principal's id and ``kind`` its kind when logged in;
``iat``/``exp`` issue and expiry (seconds; a token issued more than :data:`IAT_LEEWAY` seconds
in the future of the store's clock is refused); ``iss``/``aud`` when configured (then required
and checked); ``ses`` the session's fields; the ``kid`` header names the key, for rotation, and
``typ`` must be ``JWT`` (RFC 8725 3.11: a token typed for another use is no session). Another
service holding the secret can verify these tokens with any JWT library.

Replay: a stolen token works until ``exp``. With ``revocation_store``, logout, ID rotation,
destroy and :meth:`SessionManager.revoke` list the session there until its tokens expire, and
every load consults it (one lookup). ``refresh_threshold`` (default 30 minutes) re-issues the
token on a request once less than that remains before its idle expiry, even if nothing changed;
refreshing pushes the idle timeout, never the absolute ``ttl``. Requires ``sessio[jwt]``.
"""

from __future__ import annotations

import json
import math
import time
from datetime import timedelta
from typing import Any, Literal

from ..errors import ConfigurationError, TokenInvalid, require
from ..keys import KeyRing, SecretKeys
from .base import Clock, Record, Store
from .client import (
    MAX_COOKIE_BYTES,
    ClientSideStore,
    b64decode,
    b64encode,
    field_data,
    record_of,
)

__all__ = ["JWTStore"]

Algorithm = Literal["HS256", "HS384", "HS512"]

#: RFC 7518 3.2: an HMAC key must be at least as long as the hash output.
_MIN_KEY_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
_REQUIRED = ["exp", "iat", "jti"]
#: How far in the future a token's ``iat`` may lie (clock skew between servers), in seconds.
IAT_LEEWAY = 60


class JWTStore(ClientSideStore):
    """Sessions carried as signed JWTs (``HS256`` by default), keys rotating by ``kid``.

    ``secret_keys`` are listed oldest to newest; the newest signs, every one verifies. They are
    used as they are (not derived), so other services can verify the tokens with the same
    secret. ``issuer`` and ``audience``, when set, are written into every token and required
    of every token read. Other options are those of
    :class:`~sessio.stores.client.ClientSideStore`.
    """

    def __init__(
        self,
        secret_keys: SecretKeys,
        *,
        algorithm: Algorithm = "HS256",
        issuer: str | None = None,
        audience: str | None = None,
        refresh_threshold: timedelta | None = timedelta(minutes=30),
        revocation_store: Store | None = None,
        max_size: int = MAX_COOKIE_BYTES,
        clock: Clock = time.time,
    ) -> None:
        # Everything that can fail comes first: the base warns once the store is valid.
        if algorithm not in _MIN_KEY_BYTES:
            raise ConfigurationError(
                f"JWTStore signs with HS256, HS384 or HS512, not {algorithm!r}"
            )
        for name, value in (("issuer", issuer), ("audience", audience)):
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigurationError(f"{name} must be a non-empty string or None")
        self._jwt: Any = require("jwt", "jwt")
        self._keys = KeyRing(secret_keys, "jwt", derive=False)
        shortest = min(len(key) for _, key in self._keys.newest_first())
        if shortest < _MIN_KEY_BYTES[algorithm]:
            raise ConfigurationError(
                f"{algorithm} needs keys of at least {_MIN_KEY_BYTES[algorithm]} bytes "
                f"(RFC 7518 3.2); one has {shortest}"
            )
        super().__init__(
            max_size=max_size,
            refresh_threshold=refresh_threshold,
            revocation_store=revocation_store,
            clock=clock,
        )
        self.algorithm = algorithm
        self.issuer = issuer
        self.audience = audience

    def _seal(self, session_id: str, record: Record, now: float) -> str:
        claims: dict[str, Any] = {
            "jti": session_id,
            "iat": math.floor(now),
            "exp": math.ceil(record.expires_at),
        }
        if record.principal is not None:
            kind, colon, ident = record.principal.partition(":")
            if colon:
                claims["sub"], claims["kind"] = ident, kind
            else:
                claims["sub"] = record.principal
        if self.issuer is not None:
            claims["iss"] = self.issuer
        if self.audience is not None:
            claims["aud"] = self.audience
        claims["ses"] = field_data(record)
        kid, key = self._keys.newest
        token: str = self._jwt.encode(
            claims, key, algorithm=self.algorithm, headers={"kid": b64encode(kid)}
        )
        return token

    def _unseal(self, token: str) -> tuple[str, Record]:
        jwt = self._jwt
        segments = token.split(".")
        if len(segments) != 3:
            raise TokenInvalid("a JWT has three parts", reason="malformed")
        # Canonical base64 only: one token, one spelling (PyJWT alone accepts padding variants).
        header_bytes = b64decode(segments[0])
        b64decode(segments[1])
        b64decode(segments[2])
        try:
            header = json.loads(header_bytes)
        except (ValueError, RecursionError):
            raise TokenInvalid("the JWT header does not parse", reason="malformed") from None
        if not isinstance(header, dict):
            raise TokenInvalid("the JWT header is not an object", reason="malformed")
        if header.get("alg") != self.algorithm:
            # Pinned: "none", RS256-with-the-HMAC-key and every other substitution end here.
            raise TokenInvalid("the JWT names another algorithm", reason="algorithm")
        if header.get("typ") != "JWT":  # what every token this store seals says
            raise TokenInvalid("the JWT is typed for another use", reason="type")
        kid = header.get("kid")
        key = self._keys.get(b64decode(kid)) if isinstance(kid, str) and kid else None
        if key is None:
            raise TokenInvalid("the JWT was signed with no listed key", reason="signature")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[self.algorithm],
                issuer=self.issuer,
                audience=self.audience,
                # Time is checked by the manager on its own (injectable) clock.
                options={"require": _REQUIRED, "verify_exp": False, "verify_iat": False},
            )
        except jwt.InvalidSignatureError:
            raise TokenInvalid("the JWT's signature does not verify", reason="signature") from None
        except (jwt.InvalidTokenError, ValueError, TypeError, RecursionError) as exc:
            reason = type(exc).__name__
            raise TokenInvalid(
                f"the JWT's claims are invalid ({reason})", reason="claims"
            ) from None
        return self._record(claims)

    def _record(self, claims: dict[str, Any]) -> tuple[str, Record]:
        issued = claims.get("iat")
        if isinstance(issued, bool) or not isinstance(issued, int):
            raise TokenInvalid("the JWT's issue time is malformed", reason="claims")
        if issued > self.clock() + IAT_LEEWAY:
            # Sealed "later" than now: a clock gone wrong, or a token minted to outlive its ttl.
            raise TokenInvalid("the JWT was issued in the future", reason="claims")
        sub, kind = claims.get("sub"), claims.get("kind")
        if sub is None:
            principal = None
        elif isinstance(sub, str) and (kind is None or isinstance(kind, str)):
            principal = sub if kind is None else f"{kind}:{sub}"
        else:
            raise TokenInvalid("the JWT's subject is malformed", reason="claims")
        record = record_of(claims.get("jti"), claims.get("ses"), claims.get("exp"), principal)
        return claims["jti"], record
