"""CookieOptions: how the session cookie is written (name and prefix, scope, flags, lifetime), frozen."""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Literal

from .errors import ConfigurationError

__all__ = ["DEFAULT_COOKIE_NAME", "CookieOptions", "SameSite"]

SameSite = Literal["lax", "strict", "none"]

# RFC 6265 cookie-name token: visible ASCII without separators.
_COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 6265 4.1.1 path-value: printable ASCII (SP to ~) except ';'. No CTL (NUL, TAB, CR, LF,
# DEL) and nothing beyond ASCII, which browsers and servers would encode each their own way.
_COOKIE_PATH = re.compile(r"/[ -:<-~]*")
# A host name: dot-separated ASCII labels, an optional leading dot (which browsers ignore).
_COOKIE_DOMAIN = re.compile(
    r"\.?[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?)*"
)

#: The session cookie's name before :class:`CookieOptions` adds a ``__Host-``/``__Secure-`` prefix.
DEFAULT_COOKIE_NAME = "sessio"


@dataclasses.dataclass(frozen=True, kw_only=True)
class CookieOptions:
    """How the session cookie is written. Defaults follow OWASP: HttpOnly, Secure, SameSite=Lax.

    ``name`` left unset picks the strongest prefix the other options allow (ASVS 5.0 3.3.1,
    3.3.3): ``__Host-sessio`` for a Secure, host-only cookie on path ``/`` (the default),
    ``__Secure-sessio`` for a Secure cookie with a ``domain`` or a narrower ``path``, plain
    ``sessio`` without ``secure``; :meth:`replace` keeps choosing it. A name you pass is used
    as given.

    ``samesite=None`` leaves the attribute out (the browser's default applies), which is what
    Flask's ``SESSION_COOKIE_SAMESITE = None`` means; sessio's own presets never do that.

    ``max_age`` is the cookie's lifetime in seconds; ``None`` follows the session's own expiry
    and ``"session"`` makes a browser-session cookie (no ``Max-Age``/``Expires``), which the
    server still expires on its own clock.
    """

    name: str = ""
    path: str = "/"
    domain: str | None = None
    secure: bool = True
    httponly: bool = True
    samesite: SameSite | None = "lax"
    max_age: int | Literal["session"] | None = None
    partitioned: bool = False

    def __post_init__(self) -> None:
        chosen = self.name == ""
        object.__setattr__(self, "_name_chosen", chosen)  # not a field: replace() re-chooses
        if chosen:
            prefix = ""
            if self.secure:
                host_only = self.path == "/" and self.domain is None
                prefix = "__Host-" if host_only else "__Secure-"
            object.__setattr__(self, "name", prefix + DEFAULT_COOKIE_NAME)
        if not (isinstance(self.name, str) and _COOKIE_NAME.fullmatch(self.name)):
            raise ConfigurationError(f"invalid cookie name {self.name!r}")
        if self.samesite not in ("lax", "strict", "none", None):
            raise ConfigurationError(
                f"samesite must be 'lax', 'strict', 'none' or None, got {self.samesite!r}"
            )
        if self.samesite == "none" and not self.secure:
            raise ConfigurationError("SameSite=None cookies must be Secure (browsers drop them)")
        if self.partitioned and not self.secure:
            raise ConfigurationError("Partitioned cookies must be Secure")
        if not isinstance(self.path, str) or not _COOKIE_PATH.fullmatch(self.path):
            raise ConfigurationError(
                "cookie path must start with '/' and hold printable ASCII only, without ';': "
                f"{self.path!r}"
            )
        if self.domain is not None and (
            not isinstance(self.domain, str)
            or len(self.domain) > 253
            or not _COOKIE_DOMAIN.fullmatch(self.domain)
        ):
            raise ConfigurationError(
                f"cookie domain must be an ASCII host name (IDNA-encode others): {self.domain!r}"
            )
        if self.max_age is not None and self.max_age != "session":
            if isinstance(self.max_age, bool) or not isinstance(self.max_age, int):
                raise ConfigurationError(
                    f"max_age must be int seconds, 'session' or None: {self.max_age!r}"
                )
            if self.max_age <= 0:
                raise ConfigurationError("max_age must be positive")
        # RFC 6265bis 4.1.3: browsers match the prefixes case-insensitively and drop a cookie
        # that breaks their rules, so break them here, at construction, instead.
        folded = self.name.lower()
        if folded.startswith("__host-"):
            if not self.secure or self.path != "/" or self.domain is not None:
                raise ConfigurationError(
                    "a __Host- cookie must be Secure, have path '/' and no domain "
                    "(leave name unset to have sessio pick a prefix that fits)"
                )
        elif folded.startswith("__secure-") and not self.secure:
            raise ConfigurationError("a __Secure- cookie must be Secure")

    def replace(self, **changes: Any) -> CookieOptions:
        """A copy with ``changes`` applied (and validated); a chosen name is chosen again."""
        if getattr(self, "_name_chosen", False) and "name" not in changes:
            changes["name"] = ""
        return dataclasses.replace(self, **changes)
