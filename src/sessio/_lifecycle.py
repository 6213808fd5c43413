"""A middleware's lifecycle: the configuration every request of it shares, checked once."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Final, Generic, TypeVar

from ._exchange import Exchange
from ._exchange_events import Request
from .errors import ConfigurationError
from .integrations._common import TransportName, transport_name, vary_names, with_vary
from .integrations.csrf import CSRFOptions
from .legacy import LegacyCookie
from .manager import SessionManager, SyncSessionManager
from .policy import Policy
from .stores.base import Store
from .stores.client import ClientSideStore
from .transports.base import CookieTransport, SecretLike, Transport, transports_for

__all__ = ["DEFAULT_CSRF", "Lifecycle"]

H = TypeVar("H")  # the on_error hook's type, whatever the integration makes of it
M = TypeVar("M", SessionManager, SyncSessionManager)

#: Frozen, so one shared default is safe.
DEFAULT_CSRF: Final = CSRFOptions()


class Lifecycle(Generic[M, H]):
    """What every request of one middleware shares; :meth:`begin` opens a request's exchange.

    ``manager`` is only read (its policy, events and clock), never called: the plumbing calls
    it. ``on_error`` is handed back in every :class:`Answer` for the plumbing to call.
    """

    def __init__(
        self,
        manager: M,
        transports: Sequence[Transport],
        *,
        csrf: CSRFOptions | None = DEFAULT_CSRF,
        exclude_paths: Sequence[str] = (),
        trust_forwarded: bool = False,
        on_error: H | None = None,
        legacy: LegacyCookie | None = None,
    ) -> None:
        if legacy is not None and not isinstance(legacy, LegacyCookie):
            raise ConfigurationError("legacy must be a sessio.legacy reader (or None)")
        if legacy is not None and manager.seals_tokens:
            raise ConfigurationError("legacy sessions import into a server-side store only")
        if not transports or not all(isinstance(t, Transport) for t in transports):
            raise ConfigurationError("transports must be a non-empty list of Transport")
        if csrf is not None and not isinstance(csrf, CSRFOptions):
            raise ConfigurationError("csrf must be a CSRFOptions or None")
        if isinstance(exclude_paths, str) or not all(
            isinstance(p, str) and p for p in exclude_paths
        ):
            raise ConfigurationError("exclude_paths must be a sequence of path patterns")
        if on_error is not None and not callable(on_error):
            raise ConfigurationError("on_error must be callable")
        self.manager: M = manager
        self.transports: tuple[Transport, ...] = tuple(transports)
        self.csrf = csrf if manager.policy.csrf else None
        self.exclude_paths = tuple(exclude_paths)
        self.trust_forwarded = trust_forwarded
        self.on_error: H | None = on_error
        #: The reader of the old middleware's cookies to import (zero-logout migration).
        self.legacy = legacy
        #: What ``sessio.transport`` says for a token each transport found (looked up, not
        #: recomputed, on every request).
        self.names: dict[Transport | None, TransportName | None] = {
            t: transport_name(t) for t in (None, *self.transports)
        }
        self.vary = vary_names(self.transports)
        #: The ``Vary`` of a response that has none (most of them), computed once.
        self.fresh_vary = with_vary(None, self.vary)
        self.cookies = any(isinstance(t, CookieTransport) for t in self.transports)

    @classmethod
    def configure(
        cls,
        manager_class: type[M],
        *,
        store: Store | ClientSideStore | None = None,
        secret_key: SecretLike | None = None,
        policy: Policy | None = None,
        manager: M | None = None,
        transports: Sequence[Transport] | None = None,
        csrf: CSRFOptions | None = DEFAULT_CSRF,
        exclude_paths: Sequence[str] = (),
        trust_forwarded: bool = False,
        on_error: H | None = None,
        legacy: LegacyCookie | None = None,
    ) -> Lifecycle[M, H]:
        """The lifecycle a middleware's keyword arguments describe, checked as a whole.

        Give ``store`` (and optionally ``policy``) or a ready ``manager`` of ``manager_class``;
        ``secret_key`` signs the tokens of the transports the policy names, unless
        ``transports`` are given ready-made (they sign their own). ``legacy`` reads the old
        middleware's cookies, imported once into new sessions (:mod:`sessio.legacy`).
        """
        if manager is None:
            if store is None:
                raise ConfigurationError("the middleware needs a store (or a manager)")
            manager = manager_class(store, policy)
        elif store is not None or policy is not None:
            raise ConfigurationError("pass a manager, or a store and policy, not both")
        elif not isinstance(manager, manager_class):
            kind = "the async one" if manager_class is SessionManager else "no event loop"
            raise ConfigurationError(
                f"manager must be a {manager_class.__name__} ({kind}), got {type(manager).__name__}"
            )
        if transports is None:
            if secret_key is None and not manager.seals_tokens:
                raise ConfigurationError("secret_key is required to sign session tokens")
            built = transports_for(manager.policy, secret_key, raw=manager.seals_tokens)
        else:
            if secret_key is not None:
                raise ConfigurationError("transports sign their own tokens: drop secret_key")
            built = list(transports)
        return cls(
            manager,
            built,
            csrf=csrf,
            exclude_paths=exclude_paths,
            trust_forwarded=trust_forwarded,
            on_error=on_error,
            legacy=legacy,
        )

    def excludes(self, path: str) -> bool:
        """Whether ``path`` matches ``exclude_paths`` (it then gets no session at all)."""
        return bool(self.exclude_paths) and any(
            fnmatchcase(path, pattern) for pattern in self.exclude_paths
        )

    def begin(self, request: Request) -> Exchange[H]:
        """The exchange of one request."""
        return Exchange(self, request)
