"""Device lists and "log out everywhere else" for Django apps, over sessio's per-user index.

``login()`` files the session under its user (through ``user_logged_in``); these helpers read
and end a user's sessions. ``SessionInfo.key`` is the store's hash of a session ID, safe to put
in a page or a form: it cannot be used as a session ID.

::

    from sessio.integrations.django import devices

    def security_page(request):
        return render(request, "devices.html", {"sessions": devices.user_sessions(request)})

    def sign_out_others(request):
        devices.logout_everywhere_else(request)
        return redirect("security")
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpRequest

from ...manager import SessionInfo
from ...principal import Principal
from ._engine import engine
from ._store import SessionStore

__all__ = [
    "alogout_everywhere_else",
    "arevoke",
    "auser_sessions",
    "logout_everywhere",
    "logout_everywhere_else",
    "revoke",
    "user_sessions",
]


def _principal(user: Any) -> Principal:
    if user is None or not getattr(user, "is_authenticated", False) or user.pk is None:
        raise PermissionDenied("a device list needs a logged-in user")
    return Principal(str(user.pk))


def _session(request: HttpRequest) -> SessionStore:
    session = getattr(request, "session", None)
    if not isinstance(session, SessionStore):
        raise ImproperlyConfigured(
            "sessio's device helpers need SESSION_ENGINE = 'sessio.integrations.django'"
        )
    return session


def user_sessions(request: HttpRequest) -> list[SessionInfo]:
    """The live sessions of ``request.user``, newest first; this one has ``current=True``."""
    current = _session(request).sessio_session()
    return engine().loader.sessions_of(_principal(request.user), current=current)


async def auser_sessions(request: HttpRequest) -> list[SessionInfo]:
    """See :func:`user_sessions` (``request.user`` must be resolved: ``await request.auser()``)."""
    current = await _session(request).asessio_session()
    user = await request.auser()
    return await engine().async_loader.sessions_of(_principal(user), current=current)


def revoke(request: HttpRequest, key: str) -> bool:
    """End the session ``key`` (a :attr:`SessionInfo.key`) if it is one of ``request.user``'s."""
    return engine().loader.revoke(key, principal=_principal(request.user))


async def arevoke(request: HttpRequest, key: str) -> bool:
    """See :func:`revoke`."""
    user = await request.auser()
    return await engine().async_loader.revoke(key, principal=_principal(user))


def logout_everywhere_else(request: HttpRequest) -> int:
    """End every session of ``request.user`` but this one; how many were ended."""
    current = _session(request).sessio_session()
    return engine().loader.revoke_all(_principal(request.user), except_=current)


async def alogout_everywhere_else(request: HttpRequest) -> int:
    """See :func:`logout_everywhere_else`."""
    current = await _session(request).asessio_session()
    user = await request.auser()
    return await engine().async_loader.revoke_all(_principal(user), except_=current)


def logout_everywhere(user: Any) -> int:
    """End every session of ``user`` (after a password reset, from the admin...)."""
    return engine().loader.revoke_all(_principal(user))


def _link_on_login(
    sender: Any, request: HttpRequest | None = None, user: Any = None, **_: Any
) -> None:
    session = getattr(request, "session", None)
    if request is None or user is None or not isinstance(session, SessionStore):
        return
    meta = request.META
    session.link_user(user.pk, ip=meta.get("REMOTE_ADDR"), user_agent=meta.get("HTTP_USER_AGENT"))


user_logged_in.connect(_link_on_login, dispatch_uid="sessio.integrations.django.link")
