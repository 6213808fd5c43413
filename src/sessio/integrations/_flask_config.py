"""What a Flask app's config makes of the drop-in: a manager and its cookies, built once per
combination of config values and looked up on every request (Flask lets the config change)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import operator
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from flask.sessions import SessionInterface as _FlaskSessionInterface

from ..exchange import Lifecycle
from ..legacy import FlaskCookie
from ..manager import SyncSessionManager
from ..policy import CookieOptions
from ..stores.client import ClientSideStore
from ..transports.base import CookieTransport
from ..transports.signing import RawTokens, TokenSigner
from ._flask_session import FlaskSession

if TYPE_CHECKING:
    import flask

    from .flask import SessionInterface

__all__ = ["ConfigCache", "Settings"]

logger = logging.getLogger("sessio.flask")

_KEY_SALT = b"sessio.flask-session-key"
_CACHE_LIMIT = 32

#: The ``get_cookie_*`` hooks of Flask's interface read these config values and nothing else.
_COOKIE_HOOKS = (
    "get_cookie_name",
    "get_cookie_domain",
    "get_cookie_path",
    "get_cookie_httponly",
    "get_cookie_secure",
    "get_cookie_samesite",
    "get_cookie_partitioned",
)
#: Every config value the settings depend on when those hooks are Flask's own, read in one call.
_CONFIG_VALUES = operator.itemgetter(
    "SECRET_KEY",
    "PERMANENT_SESSION_LIFETIME",
    "SESSION_COOKIE_NAME",
    "SESSION_COOKIE_DOMAIN",
    "SESSION_COOKIE_PATH",
    "APPLICATION_ROOT",
    "SESSION_COOKIE_HTTPONLY",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_SAMESITE",
    "SESSION_COOKIE_PARTITIONED",
)


class _FlaskManager(SyncSessionManager):
    session_class = FlaskSession


class Settings(NamedTuple):
    """What one combination of ``app.config`` values needs, built once and cached."""

    manager: SyncSessionManager
    permanent: CookieTransport  # the cookie of a permanent session: Max-Age and Expires
    browser: CookieTransport  # any other: a browser-session cookie
    lifecycle: Lifecycle[SyncSessionManager, Any]  # reads the cookie; checks CSRF


def _derive(key: str | bytes) -> bytes:
    # Flask apps commonly carry short, human-typed keys; sessio's signer wants 32 bytes, so
    # each key is stretched through HMAC. The session ID, 256 random bits that only the store
    # can resolve, stays the real secret; the key only authenticates it.
    raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    return hmac.new(raw, _KEY_SALT, hashlib.sha256).digest()


class ConfigCache:
    """The :class:`Settings` of each combination of config values an app has had.

    When no ``get_cookie_*`` hook of the interface is overridden, the raw config values are
    the key, read in one call; otherwise the hooks are asked on every request (a subclass may
    compute a cookie setting from anything) and their answers are the key.
    """

    def __init__(self, interface: SessionInterface) -> None:
        self._interface = interface
        self._by_hooks: dict[tuple[Any, ...], Settings] = {}
        self._by_config: dict[tuple[Any, ...], Settings] | None = (
            {}
            if all(
                getattr(type(interface), hook) is getattr(_FlaskSessionInterface, hook)
                for hook in _COOKIE_HOOKS
            )
            else None
        )
        self._short_keys_reported: set[bytes] = set()

    def settings(self, app: flask.Flask) -> Settings | None:
        """The settings for ``app``'s config now; ``None`` without a ``SECRET_KEY``."""
        by_config = self._by_config
        if by_config is None:
            return self._settings_from_hooks(app)
        config = app.config
        try:
            key = (*_CONFIG_VALUES(config), tuple(config.get("SECRET_KEY_FALLBACKS") or ()))
            settings = by_config.get(key)
        except (KeyError, TypeError):  # a value missing or unhashable: Flask's own way decides
            return self._settings_from_hooks(app)
        if settings is None:
            settings = self._settings_from_hooks(app)
            if settings is not None:
                if len(by_config) >= _CACHE_LIMIT:
                    by_config.clear()
                by_config[key] = settings
        return settings

    def _settings_from_hooks(self, app: flask.Flask) -> Settings | None:
        hooks = self._interface
        secret = app.secret_key
        if not secret:
            return None
        fallbacks = tuple(app.config.get("SECRET_KEY_FALLBACKS") or ())
        samesite = hooks.get_cookie_samesite(app)
        key = (
            secret,
            fallbacks,
            app.permanent_session_lifetime,
            hooks.get_cookie_name(app),
            hooks.get_cookie_domain(app),
            hooks.get_cookie_path(app),
            hooks.get_cookie_httponly(app),
            hooks.get_cookie_secure(app),
            samesite.lower() if isinstance(samesite, str) else samesite,
            hooks.get_cookie_partitioned(app),
        )
        settings = self._by_hooks.get(key)
        if settings is None:
            if len(self._by_hooks) >= _CACHE_LIMIT:
                self._by_hooks.clear()
            settings = self._by_hooks[key] = self._build(*key)
        return settings

    def _build(
        self,
        secret: str | bytes,
        fallbacks: tuple[str | bytes, ...],
        lifetime: timedelta,
        *cookie: Any,
    ) -> Settings:
        interface = self._interface
        keys = [*fallbacks, secret]  # oldest first: SECRET_KEY signs, fallbacks verify
        for k in keys:
            raw = k.encode("utf-8") if isinstance(k, str) else bytes(k)
            seen = hashlib.sha256(raw).digest()
            if len(raw) < 32 and seen not in self._short_keys_reported:
                self._short_keys_reported.add(seen)
                logger.warning(
                    "a SECRET_KEY (or fallback) is shorter than 32 bytes; generate one with "
                    "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
                )
        # A client-side store's token is the sealed session, authenticated by the store's own
        # keys: the cookie carries it as it is.
        signer: TokenSigner | RawTokens = (
            RawTokens()
            if isinstance(interface.store, ClientSideStore)
            else TokenSigner([_derive(k) for k in keys])
        )
        name, domain, path, httponly, secure, samesite, partitioned = cookie
        options = CookieOptions(
            name=name,
            # RFC 6265 5.2.3: agents ignore a leading dot; Werkzeug drops it, and so do we.
            domain=domain.lstrip(".") if domain else None,
            path=path,
            httponly=bool(httponly),
            secure=bool(secure),
            samesite=samesite,
            partitioned=bool(partitioned),
        )
        base = interface.policy
        ends = [s for s in (base.ttl, lifetime) if s is not None]
        # Flask's lifetime binds every session alike: a Flask app "signs in" by writing keys.
        policy = base.replace(
            idle_timeout=lifetime,
            anonymous_idle_timeout=None,
            refresh_interval=min(base.refresh_interval, min(ends) / 2),
        )
        manager = _FlaskManager(
            interface.store,
            policy,
            codec=interface.codec,
            clock=interface.clock,
            events=interface.events,
        )
        # Werkzeug's spelling, so a deleted session reads "session=; Expires=Thu, 01 Jan 1970...".
        permanent = CookieTransport(signer, options, clock=interface.clock, style="werkzeug")
        browser = CookieTransport(
            signer, options.replace(max_age="session"), clock=interface.clock, style="werkzeug"
        )
        # (Quart's interface shares this config and has no legacy=: its load is async.)
        legacy = getattr(interface, "legacy", None)
        if legacy == "flask":  # Flask's own cookies, under the name the new one takes over
            legacy = FlaskCookie(
                secret,
                fallbacks=fallbacks,
                name=name,
                path=path,
                domain=options.domain,
                max_age=lifetime.total_seconds(),
            )
        lifecycle: Lifecycle[SyncSessionManager, Any] = Lifecycle(
            manager, [browser], csrf=interface.csrf, legacy=legacy
        )
        return Settings(manager, permanent, browser, lifecycle)
