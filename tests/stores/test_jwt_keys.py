"""JWT keys are validated at construction: weak, mistyped and hostile keys and key sets raise
ConfigurationError before any token is read."""

from __future__ import annotations

import copy
import json
import sys
import warnings
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from hypothesis import given
from hypothesis import strategies as st

from sessio import ConfigurationError, MissingDependency, SessionError
from sessio.stores import JWTStore
from sessio.stores.client import NoRevocationWarning

from ..fuzz.strategies import FUZZ, json_values
from .jwt_material import SECRET, private_key, private_pem, public_pem

pytestmark = pytest.mark.filterwarnings("ignore::sessio.stores.client.NoRevocationWarning")


def _jwks(*algorithms: str) -> dict[str, Any]:
    with warnings.catch_warnings():  # built at import too, where the module's mark does not reach
        warnings.simplefilter("ignore", NoRevocationWarning)
        return JWTStore(private_keys=[private_key(a) for a in algorithms]).jwks()


def _one(algorithm: str) -> dict[str, Any]:
    jwk: dict[str, Any] = _jwks(algorithm)["keys"][0]
    return jwk


# -- keys given directly -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "match"),
    [
        (rsa.generate_private_key(public_exponent=65537, key_size=1024), "2048"),
        (ec.generate_private_key(ec.SECP384R1()), "P-256"),
        (ec.generate_private_key(ec.SECP256K1()), "P-256"),
        (ed448.Ed448PrivateKey.generate(), "Ed25519"),
        (dsa.generate_private_key(key_size=2048), "Ed25519"),
        (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "PEM"),
        ("not a key", "PEM"),
        (b"x" * 100_000, "PEM key of"),
        (7, "signs no JWT"),
    ],
)
def test_weak_or_mistyped_private_keys_are_refused(key: Any, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        JWTStore(private_keys=key)


def test_encrypted_pems_and_the_wrong_half_of_a_pair_are_refused() -> None:
    encrypted = private_key("RS256").private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    )
    with pytest.raises(ConfigurationError, match="encrypted"):
        JWTStore(private_keys=encrypted)
    with pytest.raises(ConfigurationError, match="private key was expected"):
        JWTStore(private_keys=private_key("EdDSA").public_key())
    with pytest.raises(ConfigurationError):
        JWTStore(private_keys=public_pem("RS256"))
    with pytest.raises(ConfigurationError, match="no PEM public key"):
        JWTStore(public_keys=private_pem("ES256"))
    with pytest.raises(ConfigurationError, match="public key was expected"):
        JWTStore(public_keys=private_key("ES256"))


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"secret_keys": SECRET, "private_keys": private_key("EdDSA")},
        {"secret_keys": SECRET, "public_keys": public_pem("EdDSA")},
        {"private_keys": private_key("RS256"), "algorithm": "ES256"},
        {"private_keys": private_key("RS256"), "algorithm": "HS256"},
        {"private_keys": [private_key("RS256"), private_key("EdDSA")], "algorithm": "RS256"},
        {"secret_keys": SECRET, "algorithm": "EdDSA"},
        {"secret_keys": SECRET, "algorithm": "none"},
        {"private_keys": private_key("ES256"), "algorithm": "PS256"},
        {"private_keys": []},
        {"private_keys": [private_key("ES256"), private_key("ES256")]},  # a kid twice
        {"private_keys": private_key("ES256"), "public_keys": public_pem("ES256")},
    ],
)
def test_key_families_and_algorithms_must_agree(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        JWTStore(**options)


@pytest.mark.parametrize(
    ("secret", "algorithm"),
    [
        ("s" * 31, "HS256"),
        ("s" * 47, "HS384"),
        ("s" * 63, "HS512"),
        (public_pem("RS256"), "HS256"),  # the confusion attack's favourite secret
        ("ssh-ed25519 " + "A" * 60, "HS256"),
    ],
)
def test_hmac_secrets_too_short_or_public_are_refused(secret: str, algorithm: str) -> None:
    with pytest.raises(ConfigurationError):
        JWTStore(secret, algorithm=algorithm)  # type: ignore[arg-type]


def test_todays_spellings_still_work() -> None:
    assert JWTStore(SECRET).algorithm == "HS256"
    assert JWTStore(secret_keys=[SECRET, SECRET + "2"], algorithm="HS256").can_sign
    with pytest.raises(ConfigurationError, match="never published"):
        JWTStore(SECRET).jwks()


def test_a_missing_cryptography_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cryptography", None)
    with pytest.raises(MissingDependency) as caught:
        JWTStore(private_keys=private_pem("RS256"))
    assert caught.value.evidence["extra"] == "jwt"
    assert "sessio[jwt]" in str(caught.value)
    JWTStore(SECRET)  # HMAC needs PyJWT alone


def test_keys_never_print() -> None:
    store = JWTStore(private_keys=private_pem("RS256"))
    assert "PRIVATE" not in repr(store)
    assert "PRIVATE" not in repr(store._keys)
    assert SECRET not in repr(JWTStore(SECRET)._keys)


# -- hostile JWKS documents --------------------------------------------------------------------


def _with(algorithm: str, **changes: Any) -> dict[str, Any]:
    jwk = copy.deepcopy(_one(algorithm))
    for name, value in changes.items():
        if value is None:
            jwk.pop(name, None)
        else:
            jwk[name] = value
    return {"keys": [jwk]}


RSA_N = _one("RS256")["n"]

HOSTILE: list[tuple[str, Any]] = [
    ("not json", "{"),
    ("json array", "[]"),
    ("json number", "1"),
    ("deep nesting", "[" * 100_000),
    ("huge text", json.dumps({"keys": [], "pad": "x" * 300_000})),
    ("huge int", '{"keys": [{"kty": "RSA", "n": ' + "9" * 5000 + "}]}"),
    ("no keys", {}),
    ("empty keys", {"keys": []}),
    ("keys not a list", {"keys": {"kty": "RSA"}}),
    ("key not an object", {"keys": ["RSA"]}),
    ("too many keys", {"keys": [_one("EdDSA")] * 33}),
    ("duplicate kid", {"keys": [_one("EdDSA"), {**_one("ES256"), "kid": _one("EdDSA")["kid"]}]}),
    ("missing kty", _with("RS256", kty=None)),
    ("wrong kty", _with("RS256", kty="DSA")),
    ("kty not a string", _with("RS256", kty=["RSA"])),
    ("symmetric key", {"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}),
    ("missing n", _with("RS256", n=None)),
    ("missing e", _with("RS256", e=None)),
    ("n not a string", _with("RS256", n=12345)),
    ("n not base64url", _with("RS256", n=RSA_N[:-1] + "+")),
    ("n padded", _with("RS256", n=RSA_N + "==")),
    ("n huge", _with("RS256", n="A" + "Q" * 5000)),
    ("n megabytes", _with("RS256", n="Q" * 2_000_000)),
    ("n 1024 bits", _with("RS256", n="w" + "A" * 170)),
    ("n even", _with("RS256", n=RSA_N[:-1] + "A" if RSA_N[-1] != "A" else RSA_N[:-1] + "E")),
    ("e one", _with("RS256", e="AQ")),
    ("e huge", _with("RS256", e="AQAB" * 300)),
    ("private rsa", _with("RS256", d="AQAB")),
    ("missing crv", _with("ES256", crv=None)),
    ("wrong curve", _with("ES256", crv="P-384")),
    ("short x", _with("ES256", x="AQAB")),
    ("point off the curve", _with("ES256", y=_one("ES256")["x"])),
    ("missing y", _with("ES256", y=None)),
    ("private ec", _with("ES256", d=_one("ES256")["x"])),
    ("ed448", _with("EdDSA", crv="Ed448")),
    ("x25519", _with("EdDSA", crv="X25519")),
    ("okp missing x", _with("EdDSA", x=None)),
    ("private okp", _with("EdDSA", d=_one("EdDSA")["x"])),
    ("alg mismatch", _with("RS256", alg="HS256")),
    ("alg none", _with("EdDSA", alg="none")),
    ("alg PS256", _with("RS256", alg="PS256")),
    ("use enc", _with("RS256", use="enc")),
    ("key_ops encrypt", _with("ES256", key_ops=["encrypt"])),
    ("key_ops not a list", _with("ES256", key_ops="verify")),
    ("kid empty", _with("EdDSA", kid="")),
    ("kid not a string", _with("EdDSA", kid=7)),
    ("kid huge", _with("EdDSA", kid="k" * 10_000)),
]


@pytest.mark.parametrize(("what", "document"), HOSTILE, ids=[w for w, _ in HOSTILE])
def test_hostile_jwks_documents_are_refused_at_construction(what: str, document: Any) -> None:
    with pytest.raises(ConfigurationError):
        JWTStore.from_jwks(document)


def test_a_sound_jwks_of_every_type_builds_a_verify_only_store() -> None:
    document = _jwks("RS256", "ES256", "EdDSA")
    store = JWTStore.from_jwks(json.dumps(document).encode())
    assert not store.can_sign
    assert store.jwks() == document  # what was published, read back alike
    # Members a JWK may carry are tolerated; a JWK without kid is named by its thumbprint.
    extra = {**_one("EdDSA"), "x5t": "AAAA", "ext": True, "key_ops": ["verify"]}
    bare = {k: v for k, v in _one("EdDSA").items() if k != "kid"}
    assert JWTStore.from_jwks({"keys": [extra]}).jwks()["keys"][0]["kid"] == extra["kid"]
    assert JWTStore.from_jwks({"keys": [bare]}).jwks()["keys"][0]["kid"] == _one("EdDSA")["kid"]


@FUZZ
@given(
    st.sampled_from(["RS256", "ES256", "EdDSA"]),
    st.dictionaries(
        st.sampled_from(["kty", "n", "e", "crv", "x", "y", "alg", "use", "key_ops", "kid", "d"]),
        st.one_of(json_values, st.sampled_from(["RSA", "EC", "OKP", "P-256", "Ed25519", "AQAB"])),
        max_size=4,
    ),
)
def test_any_jwk_builds_a_store_or_raises_configuration_error(
    algorithm: str, changes: dict[str, Any]
) -> None:
    jwk = {**_one(algorithm), **changes}
    try:
        store = JWTStore.from_jwks({"keys": [jwk]})
    except ConfigurationError:
        return
    except SessionError as exc:  # pragma: no cover - the failure this test exists to find
        pytest.fail(f"{type(exc).__name__} instead of ConfigurationError: {exc}")
    assert not store.can_sign


def _torsion() -> list[bytes]:
    from sessio.stores._jwks import _SMALL_ORDER

    return sorted(_SMALL_ORDER) + sorted(p[:31] + bytes([p[31] | 0x80]) for p in _SMALL_ORDER)


@pytest.mark.parametrize("raw", _torsion(), ids=lambda raw: raw.hex()[:8] + raw.hex()[-2:])
def test_ed25519_keys_of_small_order_are_refused(raw: bytes) -> None:
    """Such a key verifies forgeries (this test finds one when the library loads the key): each
    encoding listed is truly of small order, and refused as a JWK and as a key object."""
    from cryptography.exceptions import InvalidSignature

    from sessio.stores.client import b64encode

    try:
        key = ed25519.Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        key = None
    if key is not None:
        forged = 0
        for n in range(64):
            for point in _torsion():
                try:
                    key.verify(point + bytes(32), b"claims %d" % n)
                except InvalidSignature:
                    continue
                forged += 1
        assert forged > 0
        with pytest.raises(ConfigurationError, match="small order"):
            JWTStore(public_keys=key)
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64encode(raw)}
    with pytest.raises(ConfigurationError):
        JWTStore.from_jwks({"keys": [jwk]})
