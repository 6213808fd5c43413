"""JWTStore with key pairs: RS256, ES256 and EdDSA round trips, kid rotation, verify-only
stores from public keys and JWKS documents, and the algorithm-confusion attacks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest

from sessio import CommitAction, EventKind, MemoryStore, Principal, Session, TokenInvalid
from sessio.stores import JWTStore
from sessio.stores.jwt import SigningRefused

from ..conftest import FakeClock
from .jwt_material import ALGORITHMS, SECRET, Driver, private_key, private_pem, public_pem

pytestmark = pytest.mark.filterwarnings("ignore::sessio.stores.client.NoRevocationWarning")


@pytest.fixture(params=["async", "sync"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=ALGORITHMS)
def algorithm(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    header, payload, signature = token.split(".")
    return (
        json.loads(base64.urlsafe_b64decode(header + "==")),
        json.loads(base64.urlsafe_b64decode(payload + "==")),
        signature,
    )


def _assemble(header: dict[str, Any], claims: dict[str, Any], signature: str) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}.{signature}"


def _reason(store: JWTStore, token: str) -> str:
    with pytest.raises(TokenInvalid) as caught:
        store.unseal(token)
    return str(caught.value.evidence["reason"])


# -- round trips -------------------------------------------------------------------------------


async def test_each_algorithm_round_trips_through_the_manager(
    algorithm: str, mode: str, clock: FakeClock
) -> None:
    store = JWTStore(private_keys=private_pem(algorithm), issuer="auth", clock=clock)
    assert store.algorithm == algorithm
    assert store.can_sign
    drive = Driver(store, mode, clock)
    session = await drive("load", None)
    session["cart"] = ["apple", {"qty": 2}]
    session.login(Principal("42", kind="admin"))
    token = (await drive("commit", session)).token
    loaded = await drive("load", token)
    assert loaded["cart"] == ["apple", {"qty": 2}]
    assert loaded.principal is not None
    assert loaded.principal.id == "42"
    assert loaded.id == session.id
    header = jwt.get_unverified_header(token)
    assert header["alg"] == algorithm
    assert header["typ"] == "JWT"
    assert header["kid"] == store.jwks()["keys"][0]["kid"]
    # Any JWT library verifies it with the public key alone.
    public = private_key(algorithm).public_key()
    claims = jwt.decode(token, public, algorithms=[algorithm], issuer="auth")
    assert claims["jti"] == session.id
    assert claims["sub"] == "42"
    loaded["cart"] = []
    again = (await drive("commit", loaded)).token
    assert again != token
    assert (await drive("load", again))["cart"] == []


async def test_two_parallel_requests_of_one_session_each_get_a_token_that_verifies(
    algorithm: str, clock: FakeClock
) -> None:
    drive = Driver(JWTStore(private_keys=private_key(algorithm), clock=clock), "async", clock)
    token = await drive.issue(n=0)

    async def request(n: int) -> str:
        session = await drive("load", token)
        await asyncio.sleep(0)  # let the other request load the same token first
        session["n"] = n
        return str((await drive("commit", session)).token)

    first, second = await asyncio.gather(request(1), request(2))
    a, b = await drive("load", first), await drive("load", second)
    assert {a["n"], b["n"]} == {1, 2}
    assert a.id == b.id  # one session; the last token the client keeps wins, as with any cookie


async def test_expired_tokens_give_a_fresh_session(
    algorithm: str, mode: str, clock: FakeClock
) -> None:
    store = JWTStore(private_keys=private_key(algorithm), clock=clock)
    drive = Driver(store, mode, clock)
    token = await drive.issue(n=1)
    clock.advance(timedelta(days=2).total_seconds())
    session = await drive("load", token)
    assert session.is_new
    assert dict(session) == {}
    assert EventKind.EXPIRED in drive.kinds()
    assert store.open(token) is None
    store.unseal(token)  # authentic, only expired: unseal reads it, open and the manager refuse


# -- rotation ----------------------------------------------------------------------------------


async def test_rotation_the_newest_key_signs_and_every_listed_key_verifies(
    algorithm: str, mode: str, clock: FakeClock
) -> None:
    old, new = private_key(algorithm, 0), private_key(algorithm, 1)
    old_token = await Driver(JWTStore(private_keys=old, clock=clock), mode, clock).issue(n=1)
    rotated = JWTStore(private_keys=[old, new], clock=clock)
    drive = Driver(rotated, mode, clock)
    assert (await drive("load", old_token))["n"] == 1  # the old kid still verifies
    new_token = await drive.issue(n=2)
    kids = [k["kid"] for k in rotated.jwks()["keys"]]
    assert jwt.get_unverified_header(old_token)["kid"] == kids[0]
    assert jwt.get_unverified_header(new_token)["kid"] == kids[1]  # the new kid signs
    # Retired: the old private key is gone, its public half still verifies until tokens expire.
    retiring = JWTStore(private_keys=new, public_keys=public_pem(algorithm, 0), clock=clock)
    assert retiring.open(old_token) is not None
    assert retiring.open(new_token) is not None
    # Dropped: an unknown kid is no key.
    dropped = JWTStore(private_keys=new, clock=clock)
    assert _reason(dropped, old_token) == "signature"
    assert dropped.open(new_token) is not None


def test_a_ring_may_move_from_one_algorithm_to_another(clock: FakeClock) -> None:
    issued = _issued(JWTStore(private_keys=private_key("RS256"), clock=clock), clock)
    moved = JWTStore(private_keys=[private_key("RS256"), private_key("EdDSA")], clock=clock)
    assert moved.algorithm == "EdDSA"
    assert moved.open(issued) is not None


# -- verify-only -------------------------------------------------------------------------------


@pytest.mark.parametrize("as_text", [False, True])
async def test_verify_only_from_a_jwks_loads_but_refuses_to_sign(
    algorithm: str, mode: str, clock: FakeClock, as_text: bool
) -> None:
    signer = JWTStore(private_keys=private_key(algorithm), audience="api", clock=clock)
    token = await Driver(signer, mode, clock).issue(cart=["pear"])
    document = signer.jwks()
    assert all(not {"d", "p", "q"} & set(jwk) for jwk in document["keys"])
    verifier = JWTStore.from_jwks(
        json.dumps(document) if as_text else document, audience="api", clock=clock
    )
    assert not verifier.can_sign
    assert verifier.algorithm is None
    drive = Driver(verifier, mode, clock)
    session = await drive("load", token)
    assert session["cart"] == ["pear"]
    # An unchanged session commits nothing, even close to its idle expiry: no refresh to sign.
    clock.advance(timedelta(minutes=25).total_seconds())
    idle = await drive("load", token)
    assert (await drive("commit", idle)).action is CommitAction.NONE
    idle["cart"] = []
    with pytest.raises(SigningRefused) as caught:
        await drive("commit", idle)
    assert caught.value.code == "SIGNING_REFUSED"
    assert caught.value.evidence["kids"] == [document["keys"][0]["kid"]]
    # Ending a session signs nothing: it clears the cookie.
    ending = await drive("load", token)
    ending.destroy()
    assert (await drive("commit", ending)).action is CommitAction.CLEAR


def test_verify_only_from_public_pems(algorithm: str, clock: FakeClock) -> None:
    manager = Driver(JWTStore(private_keys=private_pem(algorithm), clock=clock), "sync", clock)
    session = manager.manager.load(None)
    session.login(Principal("alice"))
    token = manager.manager.commit(session).token
    verifier = JWTStore(public_keys=[public_pem(algorithm)], clock=clock)
    opened = verifier.open(token)
    assert opened is not None
    assert opened[1].principal == "user:alice"
    login = Driver(verifier, "sync", clock).manager.load(None)
    login.login(Principal("bob"))
    with pytest.raises(SigningRefused):
        Driver(verifier, "sync", clock).manager.commit(login)


def test_a_verify_only_store_takes_no_refresh_threshold() -> None:
    from sessio import ConfigurationError

    with pytest.raises(ConfigurationError, match="refresh_threshold"):
        JWTStore(public_keys=public_pem("EdDSA"), refresh_threshold=timedelta(minutes=5))


@pytest.mark.slow
def test_another_worker_process_verifies_with_the_published_jwks(clock: FakeClock) -> None:
    """The deployment this mode is for: one service signs, another verifies with the key set
    it was handed (here through the environment; in production, fetched from a jwks_uri)."""
    signer = JWTStore(private_keys=private_key("ES256"), revocation_store=MemoryStore())
    manager = Driver(signer, "sync", clock).manager
    session = manager.load(None)
    session["n"] = 7
    token = manager.commit(session).token
    script = (
        "import json, os, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "from sessio import SyncSessionManager\n"
        "from sessio.stores import JWTStore\n"
        "store = JWTStore.from_jwks(os.environ['JWKS'])\n"
        "print(json.dumps(SyncSessionManager(store).load(os.environ['TOKEN'])['n']))\n"
    )
    src = str(Path(__file__).resolve().parents[2] / "src")
    env = {**os.environ, "JWKS": json.dumps(signer.jwks()), "TOKEN": str(token)}
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == 7


# -- algorithm confusion -----------------------------------------------------------------------


def _issued(store: JWTStore, clock: FakeClock) -> str:
    manager = Driver(store, "sync", clock).manager
    session: Session = manager.load(None)
    session.login(Principal("42", kind="admin"))
    return str(manager.commit(session).token)


def test_alg_none_is_refused(algorithm: str, clock: FakeClock) -> None:
    store = JWTStore(private_keys=private_key(algorithm), clock=clock)
    header, claims, _ = _parts(_issued(store, clock))
    for alg in ("none", "None", "NONE", ""):
        forged = _assemble({**header, "alg": alg}, claims, "")
        assert _reason(store, forged) == "algorithm"
        assert store.open(forged) is None


def test_hs256_signed_with_the_public_key_pem_is_refused(algorithm: str, clock: FakeClock) -> None:
    """The classic confusion: the verifier's public key, used as an HMAC secret by the attacker."""
    store = JWTStore(private_keys=private_key(algorithm), clock=clock)
    header, claims, _ = _parts(_issued(store, clock))
    claims["sub"] = "root"
    for secret in (public_pem(algorithm).encode(), public_pem(algorithm).strip().encode()):
        for alg, digest in (("HS256", hashlib.sha256), ("HS512", hashlib.sha512)):
            unsigned = _assemble({**header, "alg": alg}, claims, "").rstrip(".")
            mac = hmac.new(secret, unsigned.encode(), digest).digest()
            forged = f"{unsigned}.{_b64(mac)}"
            assert _reason(store, forged) == "algorithm"
    # Nor does an HMAC store take an RS256 token, whatever key signed it.
    hmac_store = JWTStore(SECRET, clock=clock)
    hmac_kid = jwt.get_unverified_header(_issued(hmac_store, clock))["kid"]
    rsa_signed = jwt.encode(
        claims, private_key("RS256"), algorithm="RS256", headers={"kid": hmac_kid}
    )
    assert _reason(hmac_store, rsa_signed) == "algorithm"


def test_a_kid_pointing_to_the_other_key_type_is_refused(clock: FakeClock) -> None:
    """A ring of several key types: each kid answers for its one algorithm only."""
    ring = JWTStore(private_keys=[private_key("ES256"), private_key("RS256")], clock=clock)
    es_kid, rs_kid = (k["kid"] for k in ring.jwks()["keys"])
    token = _issued(ring, clock)  # RS256, the newest
    header, claims, signature = _parts(token)
    assert header["kid"] == rs_kid
    assert _reason(ring, _assemble({**header, "kid": es_kid}, claims, signature)) == "algorithm"
    # ES256 named on the RSA key's kid, with a real ES256 signature: still the wrong key.
    es_signed = jwt.encode(claims, private_key("ES256"), algorithm="ES256", headers={"kid": rs_kid})
    assert _reason(ring, es_signed) == "algorithm"
    # And an algorithm the ring serves, under a kid it does not hold.
    assert _reason(ring, _assemble({**header, "kid": "A" * 43}, claims, signature)) == "signature"


def test_tampered_payload_or_header_is_refused(algorithm: str, clock: FakeClock) -> None:
    store = JWTStore(private_keys=private_key(algorithm), clock=clock)
    token = _issued(store, clock)
    header, claims, signature = _parts(token)
    for forged in (
        _assemble(header, {**claims, "sub": "1"}, signature),
        _assemble(header, {**claims, "exp": claims["exp"] + 3600}, signature),
        _assemble(header, {**claims, "ses": {}}, signature),
        _assemble({**header, "cty": "JWT"}, claims, signature),
        _assemble(header, claims, _b64(b"\x00" * len(base64.urlsafe_b64decode(signature + "==")))),
        token[:-2] + ("AA" if token[-2:] != "AA" else "BA"),
    ):
        assert _reason(store, forged) in {"signature", "malformed"}
        assert store.open(forged) is None
    assert store.open(token) is not None
