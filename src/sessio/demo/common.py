"""What the demo's pages and API share: per-app state, the request's session, password checks."""

from __future__ import annotations

import dataclasses

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from ..errors import SessionError
from ..integrations.asgi import get_session
from ..principal import Principal
from ..session import Session
from ..transports.signing import TokenSigner
from .throttle import LoginThrottle
from .users import UserStore, normalize_username

__all__ = [
    "DemoState",
    "Throttled",
    "check_password",
    "client_ip",
    "principal_for",
    "session_of",
    "state_of",
]


@dataclasses.dataclass(frozen=True)
class DemoState:
    """One app's accounts, token signer and login throttle."""

    users: UserStore
    signer: TokenSigner
    throttle: LoginThrottle


def state_of(request: Request) -> DemoState:
    """The :class:`DemoState` of the app serving ``request``."""
    state: DemoState = request.app.state.demo
    return state


def session_of(request: Request) -> Session:
    """The session sessio's middleware loaded for ``request``."""
    return get_session(request.scope)


def client_ip(request: Request) -> str | None:
    """The client's address as the server saw it (``None`` over a Unix socket)."""
    return request.client.host if request.client else None


def principal_for(username: str) -> Principal:
    """The principal a demo account signs in as."""
    return Principal(username, roles=("customer",))


class Throttled(SessionError):
    """Too many failed logins lately for this username from this address, or from this address."""

    code = "TOO_MANY_ATTEMPTS"
    status_code = 429


async def check_password(request: Request, username: str, password: str) -> str | None:
    """The account name if the password is right, else ``None``; :class:`Throttled` if limited.

    The attempt is checked and counted in one step *before* scrypt runs (in a thread, so the
    event loop keeps serving): parallel guesses cannot all slip past a limit that none of them
    has counted against yet. A right password gives its attempt back.
    """
    state = state_of(request)
    # No account name is longer than 32 characters: a longer one is counted by its first 64,
    # so a flood of megabyte names cannot make the throttle's memory hold megabytes each.
    name, address = normalize_username(username)[:64], client_ip(request)
    if not state.throttle.attempt(name, address):
        raise Throttled("try again in a few minutes")
    found = await run_in_threadpool(state.users.authenticate, username, password)
    if found is not None:
        state.throttle.succeeded(name, address)
    return found
