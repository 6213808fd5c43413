"""Typed errors: every failure sessio raises carries a stable ``code``.

The tree::

    SessionError (Exception)                       code
    ├── SessionExpired                             SESSION_EXPIRED
    ├── SessionInvalid                             SESSION_INVALID
    ├── SessionNotFound                            SESSION_NOT_FOUND
    ├── TokenInvalid                               TOKEN_INVALID
    ├── SessionTooLarge                            SESSION_TOO_LARGE
    ├── StoreUnavailable                           STORE_UNAVAILABLE
    ├── ConcurrencyLimitExceeded                   CONCURRENCY_LIMIT
    ├── CSRFFailed                                 CSRF_FAILED
    ├── AuthenticationRequired                     AUTHENTICATION_REQUIRED
    ├── ReauthenticationRequired                   REAUTHENTICATION_REQUIRED
    ├── PermissionDenied                           PERMISSION_DENIED
    ├── ValueNotSerializable (also TypeError)      VALUE_NOT_SERIALIZABLE
    ├── RecordCorrupt (also ValueError)            RECORD_CORRUPT
    ├── ConfigurationError (also ValueError)       CONFIGURATION_ERROR
    └── MissingDependency (also ImportError)       MISSING_DEPENDENCY

Errors never carry a raw session ID: where they name a session, they use the short hash that
also appears in events and logs.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthenticationRequired",
    "CSRFFailed",
    "ConcurrencyLimitExceeded",
    "ConfigurationError",
    "MissingDependency",
    "PermissionDenied",
    "ReauthenticationRequired",
    "RecordCorrupt",
    "SessionError",
    "SessionExpired",
    "SessionInvalid",
    "SessionNotFound",
    "SessionTooLarge",
    "StoreUnavailable",
    "TokenInvalid",
    "ValueNotSerializable",
]


class SessionError(Exception):
    """Base of every sessio error; ``code`` is stable and safe to show to clients."""

    code: ClassVar[str] = "SESSION_ERROR"
    #: The HTTP status an integration answers with when this error escapes a handler.
    status_code: ClassVar[int] = 500

    def __init__(self, message: str, **evidence: Any) -> None:
        super().__init__(message)
        self.message = message
        #: Facts about the failure (a short session hash, a key name...), never a secret.
        self.evidence = evidence

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON body integrations answer with: ``{"error": code, "detail": message}``."""
        return {"error": self.code, "detail": self.message}


class SessionExpired(SessionError):
    """The session passed its idle or absolute timeout."""

    code = "SESSION_EXPIRED"
    status_code = 401


class SessionInvalid(SessionError):
    """The session exists but cannot be used (destroyed, revoked, or in an invalid state)."""

    code = "SESSION_INVALID"
    status_code = 401


class SessionNotFound(SessionError):
    """No live session matches the token or hash given."""

    code = "SESSION_NOT_FOUND"
    status_code = 404


class TokenInvalid(SessionError):
    """A token failed to parse or verify (tampered, forged, malformed, oversized)."""

    code = "TOKEN_INVALID"
    status_code = 401


class SessionTooLarge(SessionError):
    """A client-side session sealed into a token too large to send (a cookie holds 4096 bytes).

    Nothing is ever truncated: keep less in the session, or use a server-side store.
    ``evidence`` holds ``size`` and ``limit`` in bytes.
    """

    code = "SESSION_TOO_LARGE"


class StoreUnavailable(SessionError):
    """The store could not be reached or answered with an error; nothing was half-written."""

    code = "STORE_UNAVAILABLE"
    status_code = 503


class ConcurrencyLimitExceeded(SessionError):
    """The principal already holds the maximum number of sessions and the policy rejects more."""

    code = "CONCURRENCY_LIMIT"
    status_code = 409


class CSRFFailed(SessionError):
    """An unsafe request came without a valid CSRF token or from a foreign origin."""

    code = "CSRF_FAILED"
    status_code = 403


class AuthenticationRequired(SessionError):
    """The route needs an authenticated session."""

    code = "AUTHENTICATION_REQUIRED"
    status_code = 401


class ReauthenticationRequired(SessionError):
    """The route needs a login younger than ``max_age`` seconds (a step-up: sign in again).

    Answered 401 with ``{"error": "REAUTHENTICATION_REQUIRED", "detail": ..., "max_age": n}``,
    ``n`` the whole seconds the route allows, so a client can prompt for the password again.
    """

    code = "REAUTHENTICATION_REQUIRED"
    status_code = 401

    def __init__(self, message: str, *, max_age: float, **evidence: Any) -> None:
        super().__init__(message, max_age=max_age, **evidence)
        self.max_age = max_age

    def to_dict(self) -> dict[str, Any]:
        """``{"error", "detail", "max_age"}`` (``max_age`` in whole seconds)."""
        return {**super().to_dict(), "max_age": int(self.max_age)}


class PermissionDenied(SessionError):
    """The session's principal lacks a role the route requires."""

    code = "PERMISSION_DENIED"
    status_code = 403


class ValueNotSerializable(SessionError, TypeError):
    """A session value cannot be encoded by the codec; nothing was written."""

    code = "VALUE_NOT_SERIALIZABLE"


class RecordCorrupt(SessionError, ValueError):
    """A stored record or token payload could not be decoded."""

    code = "RECORD_CORRUPT"


class ConfigurationError(SessionError, ValueError):
    """A setting is invalid; raised at construction, never at first use."""

    code = "CONFIGURATION_ERROR"


class MissingDependency(SessionError, ImportError):
    """An optional feature was used without its extra installed."""

    code = "MISSING_DEPENDENCY"


def require(module: str, extra: str) -> Any:
    """Import an optional dependency or fail with the ``pip install`` line that fixes it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(
            f"{module!r} is not installed; install it with: pip install 'sessio[{extra}]'",
            module=module,
            extra=extra,
        ) from exc
