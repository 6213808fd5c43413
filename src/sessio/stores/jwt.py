"""JWTStore: the session as a signed JSON Web Token (PyJWT: HMAC, RSA, ECDSA or Ed25519).

What the client can see: everything. A JWT is signed, not encrypted: its payload is base64url
JSON that anyone holding the token can read (the user, JavaScript if the transport allows it,
any log it passes through). Use :class:`~sessio.stores.EncryptedCookieStore` for secrets.

What the client cannot do: change a byte or forge a token without a key. Keys are
``secret_keys`` (``HS256``, ``HS384``, ``HS512``: every verifier holds the secret) or key pairs
(``RS256``: RSA of 2048 bits or more, ``ES256``: ECDSA on P-256, ``EdDSA``: Ed25519; verifiers
hold only the public key). Each key serves exactly one algorithm and is found by the token's
``kid``: a token must name a listed kid *and* that key's algorithm, so ``none``, an HMAC
"signed" with a public key's PEM, and a kid pointing at a key of another type are all refused
before a signature is computed. Base64 must be canonical (ECDSA signatures aside, whose ``s``
has two valid values: another spelling of the same claims, never other claims).

Rotation: keys are listed oldest to newest; the newest that can sign does, with its kid in the
header, and every listed key verifies. A store built from public keys alone -- or
:meth:`JWTStore.from_jwks`, given the JWKS document the caller fetched (the library never goes
to the network) -- verifies and loads tokens but refuses to sign (:class:`SigningRefused`), and
never refreshes (so pair it with a policy without ``resave``, which would re-sign every
request). :meth:`JWTStore.jwks` gives a signing store's public keys to publish.

Claims: ``jti`` is the session ID (the revocation list files it under the ID's hash, the key
every sessio store uses); ``sub`` the principal's id and ``kind`` its kind when logged in;
``iat``/``exp`` issue and expiry (seconds; a token issued more than :data:`IAT_LEEWAY` seconds
in the future of the store's clock is refused); ``iss``/``aud`` when configured (then required
and checked); ``ses`` the session's fields; ``typ`` must be ``JWT`` (RFC 8725 3.11: a token
typed for another use is no session). Another service holding the secret or public key can
verify these tokens with any JWT library.

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
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Final

from ..errors import ConfigurationError, SessionError, TokenInvalid, require
from ..keys import SecretKeys
from ._jwks import jwks_members
from ._jwt_keys import Algorithm, JWTKeyRing, build_keys
from .base import Clock, Record, Store
from .client import (
    MAX_COOKIE_BYTES,
    ClientSideStore,
    b64decode,
    field_data,
    record_of,
)

if TYPE_CHECKING:
    from ._jwt_keys import PrivateKeys, PublicKeys

# Plain sorted(), as tests/test_public_api.py checks (ruff's isort-style order differs here).
__all__ = ["Algorithm", "IAT_LEEWAY", "JWTStore", "SigningRefused"]  # noqa: RUF022

_REQUIRED = ["exp", "iat", "jti"]
#: How far in the future a token's ``iat`` may lie (clock skew between servers), in seconds.
IAT_LEEWAY = 60
#: A verify-only store's refresh threshold: no live session has less time left, so the manager
#: never asks it to re-issue an unchanged session's token.
_NEVER = timedelta(microseconds=1)


class _Default:
    """The type of :data:`_DEFAULT`: "not passed", as opposed to ``None``."""

    def __repr__(self) -> str:
        return "<default>"


_DEFAULT: Final = _Default()


class SigningRefused(SessionError):
    """A verify-only :class:`JWTStore` (public keys, or a JWKS) was asked to sign a token.

    It holds no private key, so it can load sessions but not commit a changed one (a write,
    a login, an ID rotation). Sign where the private key lives, or build the store from
    ``private_keys``. ``evidence`` holds ``kids``: the key IDs it verifies with.
    """

    code: ClassVar[str] = "SIGNING_REFUSED"


class JWTStore(ClientSideStore):
    """Sessions carried as signed JWTs, keys rotating by ``kid``; see the module docstring.

    Give one key family, each list oldest to newest:

    * ``secret_keys`` -- HMAC secrets (``algorithm`` ``HS256`` by default, ``HS384``, ``HS512``),
      used as they are (not derived) so other services can verify with the same secret;
    * ``private_keys`` -- RSA, P-256 or Ed25519 private keys (unencrypted PEM, or
      ``cryptography`` key objects): the newest signs, each verifies;
    * ``public_keys`` -- public keys (PEM, key objects or JWK mappings) that verify only:
      retired keys, or, alone, a verify-only store (see :meth:`from_jwks`).

    ``algorithm`` defaults to ``HS256`` for secrets and to each key's own algorithm for key pairs
    (``RS256``, ``ES256``, ``EdDSA``); given with key pairs, every key must serve it. ``issuer``
    and ``audience``, when set, are written into every token and required of every token read.
    Other options are those of :class:`~sessio.stores.client.ClientSideStore`; a verify-only
    store never refreshes, so it takes no ``refresh_threshold``.
    """

    def __init__(
        self,
        secret_keys: SecretKeys | None = None,
        *,
        private_keys: PrivateKeys | None = None,
        public_keys: PublicKeys | None = None,
        algorithm: Algorithm | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        refresh_threshold: timedelta | _Default | None = _DEFAULT,
        revocation_store: Store | None = None,
        max_size: int = MAX_COOKIE_BYTES,
        clock: Clock = time.time,
    ) -> None:
        # Everything that can fail comes first: the base warns once the store is valid.
        for name, value in (("issuer", issuer), ("audience", audience)):
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigurationError(f"{name} must be a non-empty string or None")
        self._jwt: Any = require("jwt", "jwt")
        self._keys = JWTKeyRing(build_keys(secret_keys, private_keys, public_keys, algorithm))
        signer = self._keys.signer
        if signer is None and not isinstance(refresh_threshold, _Default):
            raise ConfigurationError(
                "a verify-only JWTStore never re-issues tokens: leave refresh_threshold out"
            )
        if isinstance(refresh_threshold, _Default):
            refresh_threshold = _NEVER if signer is None else timedelta(minutes=30)
        super().__init__(
            max_size=max_size,
            refresh_threshold=refresh_threshold,
            revocation_store=revocation_store,
            clock=clock,
        )
        #: The algorithm new tokens are signed with; ``None`` for a verify-only store.
        self.algorithm = None if signer is None else signer.algorithm
        self.issuer = issuer
        self.audience = audience

    @classmethod
    def from_jwks(
        cls,
        jwks: Mapping[str, Any] | str | bytes,
        *,
        issuer: str | None = None,
        audience: str | None = None,
        revocation_store: Store | None = None,
        max_size: int = MAX_COOKIE_BYTES,
        clock: Clock = time.time,
    ) -> JWTStore:
        """A verify-only store from a JWKS document (a mapping, or its JSON text).

        Fetching the document (from the issuer's ``jwks_uri``) and refreshing it are the
        caller's: build a new store when the key set changes. Every key must be a public
        ``RSA``, ``EC`` P-256 or ``OKP`` Ed25519 signing key; anything else, or a document too
        large, raises :class:`~sessio.errors.ConfigurationError`.
        """
        return cls(
            public_keys=jwks_members(jwks),
            issuer=issuer,
            audience=audience,
            revocation_store=revocation_store,
            max_size=max_size,
            clock=clock,
        )

    @property
    def can_sign(self) -> bool:
        """Whether the store holds a key to sign with (``False``: verify-only)."""
        return self._keys.signer is not None

    def jwks(self) -> dict[str, Any]:
        """Every key's public half as a JWKS document (for other services' :meth:`from_jwks`).

        Raises :class:`~sessio.errors.ConfigurationError` for HMAC secrets, which never leave.
        """
        return self._keys.public_jwks()

    def _seal(self, session_id: str, record: Record, now: float) -> str:
        signer = self._keys.signer
        if signer is None:
            raise SigningRefused(
                "this JWTStore verifies only (it holds no private key) and cannot sign the "
                "changed session; commit it where the private key lives",
                kids=self._keys.kids(),
            )
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
        token: str = self._jwt.encode(
            claims,
            signer.signer,
            algorithm=signer.algorithm,
            headers={"kid": signer.kid, "typ": "JWT"},
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
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._keys.algorithms:
            # "none", and any algorithm no listed key serves, end here.
            raise TokenInvalid("the JWT names another algorithm", reason="algorithm")
        if header.get("typ") != "JWT":  # what every token this store seals says
            raise TokenInvalid("the JWT is typed for another use", reason="type")
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise TokenInvalid("the JWT was signed with no listed key", reason="signature")
        if key.algorithm != alg:
            # Confusion: RS256 over an HMAC key, HS256 "signed" with an RSA key's PEM...
            raise TokenInvalid("the JWT names another algorithm than its key's", reason="algorithm")
        try:
            claims = jwt.decode(
                token,
                key.verifier,
                algorithms=[key.algorithm],
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
