"""Transports: where the session token travels (a cookie, a header), read and written.

A transport sees request headers as a :class:`Headers` view and answers with response
header pairs, so the same objects serve ASGI, WSGI and any framework.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Sequence

from .. import ids
from ..errors import ConfigurationError, SessionTooLarge
from ..manager import Commit, CommitAction
from ..policy import CookieOptions, Policy
from ..stores.client import MAX_COOKIE_BYTES
from .cookies import CookieStyle, parse_cookie_header, render_delete_cookie, render_set_cookie
from .signing import RawTokens, Secret, TokenSigner

__all__ = [
    "BearerTransport",
    "CookieTransport",
    "HeaderTransport",
    "Headers",
    "Transport",
    "read_token",
    "transports_for",
]

SecretLike = str | bytes | Secret | Sequence[str | bytes] | TokenSigner | RawTokens

#: ``headers(name)`` -> every value of request header ``name`` (lower-case), in order.
Headers = Callable[[str], list[str]]

# HTTP's optional whitespace (RFC 9110 5.6.3): only these are trimmed from a token, not every
# Unicode space ``str.strip()`` knows, so a token is accepted in exactly one spelling.
_OWS = " \t"


class Transport(abc.ABC):
    """Reads the session ID a request carries and says how a response carries a new one."""

    def __init__(self, secret: SecretLike) -> None:
        self.signer = (
            secret if isinstance(secret, (TokenSigner, RawTokens)) else TokenSigner(secret)
        )

    @abc.abstractmethod
    def read(self, headers: Headers) -> str | None:
        """The verified session ID in the request, or ``None`` (absent, tampered, ambiguous)."""

    @abc.abstractmethod
    def response_headers(self, commit: Commit, *, had_token: bool) -> list[tuple[str, str]]:
        """Headers that give the client what ``commit`` decided (``had_token``: it sent one)."""

    def wrap(self, token: str) -> str:
        """``token`` as it travels: signed, or verbatim for :class:`RawTokens`.

        A signing transport wraps session IDs only. A client-side store's sealed token handed
        to one raises :class:`~sessio.errors.ConfigurationError` at once -- it needs
        ``transports_for(..., raw=manager.seals_tokens)`` -- rather than work while sessions
        are small and be refused silently once they outgrow the signer's length limit.
        """
        if isinstance(self.signer, TokenSigner) and not ids.is_well_formed(token):
            raise ConfigurationError(
                "this transport signs session IDs, and was handed a client-side store's sealed "
                "token: build transports with transports_for(policy, secret, "
                "raw=manager.seals_tokens)"
            )
        return self.signer.sign(token)

    def _unique(self, values: list[str]) -> str | None:
        # Zero or several candidates is no token: ambiguity is how fixation attacks start.
        if len(values) != 1:
            return None
        return self.signer.unsign(values[0].strip(_OWS))


class CookieTransport(Transport):
    """The token in a signed cookie, written with every attribute of :class:`CookieOptions`
    (in the spelling ``style`` names: a drop-in writes its framework's own text)."""

    def __init__(
        self,
        secret: SecretLike,
        options: CookieOptions | None = None,
        *,
        clock: Callable[[], float] = time.time,
        style: CookieStyle = "sessio",
    ) -> None:
        super().__init__(secret)
        self.options = options if options is not None else CookieOptions()
        self.clock = clock
        self.style: CookieStyle = style

    def read(self, headers: Headers) -> str | None:
        return self._unique(parse_cookie_header(headers("cookie"), self.options.name))

    def cookie_value(self, commit: Commit) -> str:
        """The ``Set-Cookie`` value for a commit that sets the token."""
        if commit.token is None or commit.cookie_expires_at is None:
            raise ValueError("a commit that sets the token carries the token and its expiry")
        max_age: float | None
        if self.options.max_age == "session" or commit.browser_session:
            max_age = None
        elif self.options.max_age is not None:
            max_age = float(self.options.max_age)
        else:
            max_age = commit.cookie_expires_at - self.clock()
        value = self.wrap(commit.token)
        size = len(self.options.name) + 1 + len(value)
        if size > MAX_COOKIE_BYTES:
            # Browsers drop such a cookie silently; fail loudly instead (client-side sessions).
            raise SessionTooLarge(
                f"the session cookie would be {size} bytes, over the {MAX_COOKIE_BYTES} a "
                "browser keeps; store less in the session, or use a server-side store",
                size=size,
                limit=MAX_COOKIE_BYTES,
            )
        return render_set_cookie(
            self.options, value, max_age=max_age, now=self.clock(), style=self.style
        )

    def response_headers(self, commit: Commit, *, had_token: bool) -> list[tuple[str, str]]:
        if commit.action is CommitAction.SET:
            return [("set-cookie", self.cookie_value(commit))]
        if commit.action is CommitAction.CLEAR and had_token:
            return [("set-cookie", render_delete_cookie(self.options, style=self.style))]
        return []


class HeaderTransport(Transport):
    """The token in a request header (``X-Session-ID`` by default), echoed back when it changes."""

    def __init__(self, secret: SecretLike, name: str = "X-Session-ID") -> None:
        super().__init__(secret)
        self.name = name

    def read(self, headers: Headers) -> str | None:
        return self._unique(headers(self.name.lower()))

    def response_headers(self, commit: Commit, *, had_token: bool) -> list[tuple[str, str]]:
        if commit.action is CommitAction.SET and commit.token is not None:
            return [(self.name.lower(), self.wrap(commit.token))]
        if commit.action is CommitAction.CLEAR and had_token:
            return [(self.name.lower(), "")]
        return []


class BearerTransport(HeaderTransport):
    """The token as ``Authorization: Bearer <token>``; a new token is echoed in ``X-Session-ID``."""

    def read(self, headers: Headers) -> str | None:
        values = headers("authorization")
        if len(values) != 1:
            return None
        scheme, _, token = values[0].strip(_OWS).partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self.signer.unsign(token.strip(_OWS))


def read_token(
    transports: Sequence[Transport], headers: Headers
) -> tuple[str | None, Transport | None]:
    """The first verified session ID the transports find, in order, and which one found it."""
    for transport in transports:
        session_id = transport.read(headers)
        if session_id is not None:
            return session_id, transport
    return None, None


def transports_for(
    policy: Policy, secret: SecretLike | None, *, raw: bool = False
) -> list[Transport]:
    """The transports ``policy.transports`` names, sharing one signer.

    ``raw=True`` carries tokens verbatim (:class:`RawTokens`): pass
    ``raw=manager.seals_tokens``, so that a client-side store's sealed tokens, which
    authenticate themselves, are not signed a second time. ``secret`` is then unused and may
    be ``None``.
    """
    signer: TokenSigner | RawTokens
    if raw:
        signer = RawTokens()
    elif secret is None:
        raise ConfigurationError("transports need a secret to sign session IDs (or raw=True)")
    else:
        signer = secret if isinstance(secret, (TokenSigner, RawTokens)) else TokenSigner(secret)
    built: list[Transport] = []
    for name in policy.transports:
        if name == "cookie":
            built.append(CookieTransport(signer, policy.cookie))
        elif name == "header":
            built.append(HeaderTransport(signer, policy.header_name or "X-Session-ID"))
        else:
            built.append(BearerTransport(signer, policy.header_name or "X-Session-ID"))
    return built
