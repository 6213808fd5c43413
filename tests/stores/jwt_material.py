"""Keys and a two-mode manager for the JWT tests: one key pair per algorithm, made once."""

from __future__ import annotations

import functools
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from sessio import CommitAction, EventKind, Policy, SessionEvent, SessionManager, SyncSessionManager
from sessio.stores import JWTStore

from ..conftest import FakeClock

ALGORITHMS = ("RS256", "ES256", "EdDSA")
SECRET = "jwt-asymmetric-tests-secret-" + "s" * 32


def private_key(algorithm: str, generation: int = 0) -> Any:
    """A private key for ``algorithm``; ``generation`` tells rotated keys apart."""
    return _generate(algorithm, generation)


@functools.cache
def _generate(algorithm: str, generation: int) -> Any:
    del generation  # part of the cache key only
    if algorithm == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if algorithm == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


def private_pem(algorithm: str, generation: int = 0) -> bytes:
    return bytes(
        private_key(algorithm, generation).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def public_pem(algorithm: str, generation: int = 0) -> str:
    public = private_key(algorithm, generation).public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


class Driver:
    """One manager, async or sync, behind one awaitable interface, recording its events."""

    def __init__(
        self, store: JWTStore, mode: str, clock: FakeClock, policy: Policy | None = None
    ) -> None:
        self.mode = mode
        self.events: list[SessionEvent] = []
        cls = SyncSessionManager if mode == "sync" else SessionManager
        self.manager: Any = cls(store, policy, clock=clock)
        self.manager.events.subscribe(self.events.append)

    async def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.manager, name)(*args, **kwargs)
        return result if self.mode == "sync" else await result

    async def issue(self, **values: Any) -> str:
        """A token for a new session holding ``values``."""
        session = await self("load", None)
        session.update(values)
        commit = await self("commit", session)
        assert commit.action is CommitAction.SET
        assert commit.token is not None
        return str(commit.token)

    def kinds(self) -> list[EventKind]:
        return [event.kind for event in self.events]
