"""JWK and JWKS documents (RFC 7517): public keys read from JSON anyone may have written.

A key set comes from outside (fetched by the caller from an issuer's ``jwks_uri``), so every
member is checked before a key is built: the document's size and key count, each member's type,
length and canonical base64url, the key's type, size and curve, and that it holds no private
material. Anything else raises :class:`~sessio.errors.ConfigurationError`. The way back --
a public key as a JWK, and its RFC 7638 thumbprint -- lives here too.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigurationError, TokenInvalid
from .client import b64decode, b64encode

__all__ = [
    "MAX_JWKS_CHARS",
    "MAX_JWKS_KEYS",
    "check_ed25519",
    "jwk_key",
    "jwk_of",
    "jwks_members",
    "thumbprint",
]

#: NIST SP 800-57 / RFC 7518 3.3: 2048 bits at least. The ceiling bounds the cost of a verify.
MIN_RSA_BITS, MAX_RSA_BITS = 2048, 8192
#: A key set bigger than these is no key set a store needs, and would cost memory to parse.
MAX_JWKS_KEYS, MAX_JWKS_CHARS = 32, 256 * 1024
#: The longest base64url member a JWK of a supported key has (an 8192-bit ``n``: 1366 chars).
_MAX_MEMBER_CHARS = 1400
_MAX_KID_CHARS = 256
#: The Ed25519 points of small order, as libsodium lists them (sign bit cleared): 0, 1, the two
#: of order 8, and p-1, p, p+1. OpenSSL verifies with such a key, and under it a signature
#: (R = a small-order point, S = 0) holds for at least one message in eight: anyone forges.
_SMALL_ORDER = frozenset(
    bytes.fromhex(text)
    for text in (
        "00" * 32,
        "01" + "00" * 31,
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "ec" + "ff" * 30 + "7f",
        "ed" + "ff" * 30 + "7f",
        "ee" + "ff" * 30 + "7f",
    )
)
#: JWK members that carry private key material (RFC 7518 6.2.2, 6.3.2, 6.4).
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def jwks_members(document: Mapping[str, Any] | str | bytes) -> list[Mapping[str, Any]]:
    """The JWKs of a JWKS document (a mapping, or its JSON text), each still to be validated."""
    if isinstance(document, (str, bytes)):
        if len(document) > MAX_JWKS_CHARS:
            raise ConfigurationError(
                f"a JWKS document of {len(document)} characters is over {MAX_JWKS_CHARS}"
            )
        try:
            document = json.loads(document)
        except (ValueError, RecursionError):
            raise ConfigurationError("the JWKS document is not JSON") from None
    if not isinstance(document, Mapping):
        raise ConfigurationError("a JWKS document is a JSON object with a 'keys' list")
    keys = document.get("keys")
    if not isinstance(keys, list) or not keys:
        raise ConfigurationError("a JWKS document needs a non-empty 'keys' list")
    if len(keys) > MAX_JWKS_KEYS:
        raise ConfigurationError(f"a JWKS of {len(keys)} keys is over {MAX_JWKS_KEYS}")
    for jwk in keys:
        if not isinstance(jwk, Mapping):
            raise ConfigurationError("every member of a JWKS 'keys' list is a JWK object")
    return keys


def jwk_key(jwk: Mapping[str, Any]) -> tuple[str, str, Any]:
    """``(kid, algorithm, public key)`` from one public JWK (RFC 7517), every member checked.

    The kid is the JWK's own, else its RFC 7638 thumbprint.
    """
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    held = _PRIVATE_MEMBERS.intersection(k for k in jwk if isinstance(k, str))
    if held:
        raise ConfigurationError(
            f"a JWK to verify with must be public; this one has private members {sorted(held)}"
        )
    kty = jwk.get("kty")
    key: Any
    try:
        if kty == "RSA":
            n, e = _uint(jwk, "n"), _uint(jwk, "e")
            if not MIN_RSA_BITS <= n.bit_length() <= MAX_RSA_BITS:
                raise ConfigurationError(
                    f"RS256 needs an RSA key of {MIN_RSA_BITS} to {MAX_RSA_BITS} bits; "
                    f"this JWK has {n.bit_length()}"
                )
            if n % 2 == 0:  # a product of two odd primes; cryptography takes an even n
                raise ConfigurationError("an RSA JWK's modulus 'n' is even: no RSA key")
            if not 3 <= e < 2**32:  # 65537 in practice; a huge exponent only slows verifying
                raise ConfigurationError("an RSA JWK's exponent 'e' is out of range")
            key, algorithm = rsa.RSAPublicNumbers(e, n).public_key(), "RS256"
        elif kty == "EC":
            _curve(jwk, "P-256", "ES256")
            point = b"\x04" + _member(jwk, "x", 32) + _member(jwk, "y", 32)
            key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
            algorithm = "ES256"
        elif kty == "OKP":
            _curve(jwk, "Ed25519", "EdDSA")
            key = ed25519.Ed25519PublicKey.from_public_bytes(check_ed25519(_member(jwk, "x", 32)))
            algorithm = "EdDSA"
        elif kty == "oct":
            raise ConfigurationError(
                "a symmetric JWK (kty 'oct') is a secret: pass it as secret_keys, never in a JWKS"
            )
        else:
            raise ConfigurationError(f"a JWK's kty must be RSA, EC or OKP, not {_shown(kty)}")
    except ValueError as exc:
        if isinstance(exc, ConfigurationError):
            raise
        # cryptography's own check: an even modulus, a point off the curve...
        raise ConfigurationError(f"the {kty} JWK is no valid public key") from None
    _check_use(jwk, algorithm)
    kid = jwk.get("kid")
    if kid is None:
        return thumbprint(key), algorithm, key
    if not isinstance(kid, str) or not 0 < len(kid) <= _MAX_KID_CHARS:
        raise ConfigurationError(f"a JWK's kid must be a string of 1 to {_MAX_KID_CHARS} chars")
    return kid, algorithm, key


def check_ed25519(raw: bytes) -> bytes:
    """``raw``, an Ed25519 public key's 32 bytes, unless it is a point of small order."""
    if raw[:31] + bytes([raw[31] & 0x7F]) in _SMALL_ORDER:
        raise ConfigurationError(
            "an Ed25519 public key of small order: every signature under it can be forged"
        )
    return raw


def _check_use(jwk: Mapping[str, Any], algorithm: str) -> None:
    alg, use, ops = jwk.get("alg"), jwk.get("use"), jwk.get("key_ops")
    if alg is not None and alg != algorithm:
        raise ConfigurationError(f"a {jwk.get('kty')} JWK serves {algorithm}, not {_shown(alg)}")
    if use is not None and use != "sig":
        raise ConfigurationError(f"a JWK to verify with has use 'sig', not {_shown(use)}")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        raise ConfigurationError("a JWK to verify with lists 'verify' in its key_ops")


def _curve(jwk: Mapping[str, Any], curve: str, algorithm: str) -> None:
    if jwk.get("crv") != curve:
        raise ConfigurationError(f"{algorithm} needs crv {curve!r}, not {_shown(jwk.get('crv'))}")


def _member(jwk: Mapping[str, Any], name: str, size: int | None = None) -> bytes:
    """The bytes of the base64url member ``name``, which must be there, short and canonical."""
    text = jwk.get(name)
    if not isinstance(text, str) or not 0 < len(text) <= _MAX_MEMBER_CHARS:
        raise ConfigurationError(f"a {jwk.get('kty')} JWK needs a base64url {name!r} member")
    try:
        data = b64decode(text)  # canonical only: one key, one spelling
    except TokenInvalid:
        raise ConfigurationError(f"a JWK's {name!r} is not canonical base64url") from None
    if size is not None and len(data) != size:
        raise ConfigurationError(f"a JWK's {name!r} must be {size} bytes")
    return data


def _uint(jwk: Mapping[str, Any], name: str) -> int:
    return int.from_bytes(_member(jwk, name), "big")


def _shown(value: Any) -> str:
    """``value`` for an error message, cut short (it came from a document anyone may write)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def jwk_of(public: Any) -> dict[str, str]:
    """The RFC 7638 required members of ``public``'s JWK (what its thumbprint hashes)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(public, rsa.RSAPublicKey):
        numbers = public.public_numbers()
        return {
            "e": b64encode(_octets(numbers.e)),
            "kty": "RSA",
            "n": b64encode(_octets(numbers.n)),
        }
    if isinstance(public, ec.EllipticCurvePublicKey):
        point = public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "crv": "P-256",
            "kty": "EC",
            "x": b64encode(point[1:33]),
            "y": b64encode(point[33:]),
        }
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"crv": "Ed25519", "kty": "OKP", "x": b64encode(raw)}


def thumbprint(public: Any) -> str:
    """RFC 7638: SHA-256 of the required members, sorted, without whitespace."""
    canonical = json.dumps(jwk_of(public), sort_keys=True, separators=(",", ":"))
    return b64encode(hashlib.sha256(canonical.encode("ascii")).digest())


def _octets(value: int) -> bytes:
    return value.to_bytes((value.bit_length() + 7) // 8 or 1, "big")
