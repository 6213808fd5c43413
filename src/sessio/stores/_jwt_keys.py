"""JWT keys: each signing or verifying key a JWTStore holds, validated and named at construction.

A :class:`JWTKey` is one key with its one algorithm and its ``kid``; a :class:`JWTKeyRing` is
the ordered list a store signs and verifies with. Everything a key could get wrong -- too short
a secret, too small an RSA modulus, the wrong curve, an Ed25519 point of small order (under
which anyone forges), private material in a published key set, a field a megabyte long --
raises :class:`~sessio.errors.ConfigurationError` here, before the first token is read.

Key IDs: an HMAC secret keeps sessio's short ID (``HMAC-SHA256(secret, purpose)`` truncated,
:class:`~sessio.keys.KeyRing`), so tokens issued before asymmetric keys existed still verify;
an asymmetric key is named by its JWK's ``kid`` when it comes from a JWK, else by its RFC 7638
thumbprint, which any service holding the public key computes alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..errors import ConfigurationError, require
from ..keys import KeyRing, SecretKeys
from ._jwks import MAX_RSA_BITS, MIN_RSA_BITS, check_ed25519, jwk_key, jwk_of, thumbprint
from .client import b64encode

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import (
        EllipticCurvePrivateKey,
        EllipticCurvePublicKey,
    )
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

    #: A private key: PEM text or bytes (unencrypted), or a ``cryptography`` key object.
    PrivateKey = str | bytes | RSAPrivateKey | EllipticCurvePrivateKey | Ed25519PrivateKey
    #: A public key: PEM text or bytes, a ``cryptography`` key object, or a JWK (a mapping).
    PublicKey = (
        str | bytes | RSAPublicKey | EllipticCurvePublicKey | Ed25519PublicKey | Mapping[str, Any]
    )
    #: One key, or keys oldest first.
    PrivateKeys = PrivateKey | Iterable[PrivateKey]
    PublicKeys = PublicKey | Iterable[PublicKey]

__all__ = ["ASYMMETRIC", "HMAC_MIN_BYTES", "Algorithm", "JWTKey", "JWTKeyRing", "build_keys"]

Algorithm = Literal["HS256", "HS384", "HS512", "RS256", "ES256", "EdDSA"]

#: RFC 7518 3.2: an HMAC key must be at least as long as the hash output.
HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
#: One algorithm per asymmetric key type: RSA signs RS256, P-256 ES256, Ed25519 EdDSA.
ASYMMETRIC = ("RS256", "ES256", "EdDSA")
_MAX_PEM_BYTES = 16 * 1024


@dataclass(frozen=True, repr=False)
class JWTKey:
    """One key: its ``kid``, its algorithm, the key that verifies and, if held, the one that signs.

    ``verifier`` is the HMAC secret (bytes) or a ``cryptography`` public key; ``signer`` is the
    secret or the private key, or ``None`` for a key that only verifies.
    """

    kid: str
    algorithm: str
    verifier: Any
    signer: Any = None

    def __repr__(self) -> str:
        role = "signs" if self.signer is not None else "verifies"
        return f"JWTKey(kid={self.kid!r}, algorithm={self.algorithm!r}, {role})"


class JWTKeyRing:
    """Keys listed oldest to newest: the newest that holds a signer signs, every one verifies."""

    __slots__ = ("_by_kid", "_keys", "algorithms", "signer")

    def __init__(self, keys: Sequence[JWTKey]) -> None:
        if not keys:
            raise ConfigurationError("a JWTStore needs at least one key")
        by_kid = {key.kid: key for key in keys}
        if len(by_kid) != len(keys):
            raise ConfigurationError(
                "two JWT keys share a kid: a key is listed twice, or a key set reuses an ID"
            )
        self._keys = tuple(keys)
        self._by_kid = by_kid
        #: Every algorithm some key verifies; a token naming another is refused unread.
        self.algorithms = frozenset(key.algorithm for key in keys)
        signers = [key for key in keys if key.signer is not None]
        #: The key new tokens are signed with, or ``None`` for a verify-only ring.
        self.signer: JWTKey | None = signers[-1] if signers else None

    def get(self, kid: str) -> JWTKey | None:
        """The key named ``kid``, or ``None``."""
        return self._by_kid.get(kid)

    def kids(self) -> list[str]:
        """Every key's ID, oldest first."""
        return [key.kid for key in self._keys]

    def public_jwks(self) -> dict[str, Any]:
        """The public half of every asymmetric key, as a JWKS document to publish."""
        if any(key.algorithm in HMAC_MIN_BYTES for key in self._keys):
            raise ConfigurationError("HMAC secrets verify tokens too: they are never published")
        return {"keys": [_public_jwk(key) for key in self._keys]}

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"JWTKeyRing({len(self._keys)} key(s), {sorted(self.algorithms)})"


def build_keys(
    secret_keys: SecretKeys | None,
    private_keys: PrivateKeys | None,
    public_keys: PublicKeys | None,
    algorithm: str | None,
) -> list[JWTKey]:
    """The keys a store was given, validated: HMAC secrets, or private and public keys."""
    if algorithm is not None and algorithm not in HMAC_MIN_BYTES and algorithm not in ASYMMETRIC:
        raise ConfigurationError(
            f"JWTStore signs with HS256, HS384, HS512, RS256, ES256 or EdDSA, not {algorithm!r}"
        )
    if secret_keys is not None:
        if private_keys is not None or public_keys is not None:
            raise ConfigurationError(
                "pass secret_keys (HMAC) or private_keys/public_keys, not both: one key "
                "family per store leaves no key to confuse with another"
            )
        return _hmac_keys(secret_keys, algorithm or "HS256")
    if private_keys is None and public_keys is None:
        raise ConfigurationError("a JWTStore needs secret_keys, private_keys or public_keys")
    if algorithm in HMAC_MIN_BYTES:
        raise ConfigurationError(f"{algorithm} signs with secret_keys, not with key pairs")
    require("cryptography", "jwt")
    keys = [_public_key(item) for item in _listed(public_keys, "public_keys")]
    keys += [_private_key(item) for item in _listed(private_keys, "private_keys")]
    for key in keys:
        if algorithm is not None and key.algorithm != algorithm:
            raise ConfigurationError(
                f"algorithm={algorithm!r}, but key {key.kid!r} is a {key.algorithm} key"
            )
    return keys


def _listed(items: Any, name: str) -> list[Any]:
    if items is None:
        return []
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        # One key on its own is a list of one (a PEM is a str, a JWK a mapping).
        return [items]
    listed = list(items)
    if not listed:
        raise ConfigurationError(f"{name} is empty")
    return listed


def _hmac_keys(secret_keys: SecretKeys, algorithm: str) -> list[JWTKey]:
    if algorithm not in HMAC_MIN_BYTES:
        raise ConfigurationError(f"secret_keys sign HS256, HS384 or HS512, not {algorithm}")
    ring = KeyRing(secret_keys, "jwt", derive=False)
    keys = []
    # KeyRing lists newest first; a store's keys run oldest to newest.
    for kid, secret in reversed(list(ring.newest_first())):
        if len(secret) < HMAC_MIN_BYTES[algorithm]:
            raise ConfigurationError(
                f"{algorithm} needs keys of at least {HMAC_MIN_BYTES[algorithm]} bytes "
                f"(RFC 7518 3.2); one has {len(secret)}"
            )
        if secret.lstrip().startswith((b"-----BEGIN", b"ssh-", b"ecdsa-")):
            raise ConfigurationError(
                "an HMAC secret that is a PEM or SSH key: public keys are public, so a token "
                "MACed with one proves nothing; pass it as public_keys"
            )
        keys.append(JWTKey(b64encode(kid), algorithm, secret, secret))
    return keys


def _private_key(item: Any) -> JWTKey:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    if isinstance(item, (str, bytes)):
        pem = _pem_bytes(item)
        try:
            item = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ConfigurationError(
                "private_keys holds no unencrypted PEM private key (load an encrypted one "
                f"with cryptography and pass the key object): {type(exc).__name__}"
            ) from None
    algorithm = _algorithm_of(item, private=True)
    public = item.public_key()
    return JWTKey(thumbprint(public), algorithm, public, item)


def _public_key(item: Any) -> JWTKey:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization

    if isinstance(item, Mapping):
        return JWTKey(*jwk_key(item))
    if isinstance(item, (str, bytes)):
        pem = _pem_bytes(item)
        try:
            item = serialization.load_pem_public_key(pem)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise ConfigurationError(
                f"public_keys holds no PEM public key: {type(exc).__name__}"
            ) from None
    algorithm = _algorithm_of(item, private=False)
    return JWTKey(thumbprint(item), algorithm, item)


def _pem_bytes(item: str | bytes) -> bytes:
    pem = item.encode("utf-8", "surrogatepass") if isinstance(item, str) else item
    if len(pem) > _MAX_PEM_BYTES:
        raise ConfigurationError(f"a PEM key of {len(pem)} bytes is no key a JWT signs with")
    return pem


def _algorithm_of(key: Any, *, private: bool) -> str:
    """The one algorithm ``key`` serves, once its type and size pass."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    kinds: tuple[tuple[type, type, str], ...] = (
        (rsa.RSAPrivateKey, rsa.RSAPublicKey, "RS256"),
        (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey, "ES256"),
        (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey, "EdDSA"),
    )
    found = [(mine, name) for mine, theirs, name in kinds if isinstance(key, (mine, theirs))]
    if not found:
        raise ConfigurationError(
            f"{type(key).__name__} signs no JWT here: use an RSA (RS256), "
            "P-256 (ES256) or Ed25519 (EdDSA) key"
        )
    private_type, algorithm = found[0]
    if private != isinstance(key, private_type):
        wanted = "private" if private else "public"
        raise ConfigurationError(f"a {wanted} key was expected, got {type(key).__name__}")
    if algorithm == "RS256" and not MIN_RSA_BITS <= key.key_size <= MAX_RSA_BITS:
        raise ConfigurationError(
            f"RS256 needs an RSA key of {MIN_RSA_BITS} to {MAX_RSA_BITS} bits; "
            f"this one has {key.key_size}"
        )
    if algorithm == "ES256" and not isinstance(key.curve, ec.SECP256R1):
        raise ConfigurationError(f"ES256 is ECDSA on P-256; this key is on {key.curve.name}")
    if algorithm == "EdDSA" and not private:  # a private key's public half never is
        check_ed25519(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    return algorithm


def _public_jwk(key: JWTKey) -> dict[str, str]:
    jwk = jwk_of(key.verifier)
    jwk.update(kid=key.kid, alg=key.algorithm, use="sig")
    return jwk
