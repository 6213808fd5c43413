"""The demo's HTML pages: home and cart, registration, login and logout, the device list."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ..ids import short_hash
from ..integrations.asgi import get_manager
from ..principal import Principal
from .common import Throttled, check_password, principal_for, session_of, state_of
from .error_pages import signed_out_elsewhere
from .templates import STATIC, render
from .users import AccountError

__all__ = [
    "CATALOG",
    "cart",
    "devices",
    "home",
    "login",
    "logout",
    "register",
    "revoke",
    "revoke_others",
    "static",
]

#: What the shop sells; ``POST /cart`` accepts nothing else.
CATALOG = ("Coffee", "Tea", "Croissant", "Muffin")

_STORE_KEY = re.compile(r"[0-9a-f]{64}")
#: Shown when a browser's session ended elsewhere (revoked, evicted by a newer login, expired).
SIGNED_OUT = "You were signed out on another device, or your session expired."


def _redirect(url: str) -> RedirectResponse:
    # 303: the browser follows with a GET, so reloading the next page never re-posts a form.
    return RedirectResponse(url, status_code=303)


def _page(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    session = session_of(request)
    if signed_out_elsewhere(request.scope):
        # Said once: this page's CSRF token gets the new session stored, so the next request
        # brings a cookie that loads.
        session.flash("info", SIGNED_OUT)
    principal = session.principal
    html = render(
        template,
        user=principal.id if principal else None,
        authenticated=session.is_authenticated,
        csrf_token=session.csrf_token,
        flashes=session.flashes(),
        session_tag=short_hash(session.key),
        expires_in=session.remaining.total_seconds(),
        **context,
    )
    return HTMLResponse(html, status_code=status)


async def _form(request: Request) -> dict[str, str]:
    form = await request.form()
    return {name: value for name, value in form.items() if isinstance(value, str)}


def _signed_in(request: Request) -> Principal | None:
    principal = session_of(request).principal
    if principal is None:
        if signed_out_elsewhere(request.scope):
            message = SIGNED_OUT  # say why, rather than only what to do now
        else:
            message = "Log in to see the devices signed in to your account."
        session_of(request).flash("info", message)
    return principal


async def home(request: Request) -> Response:
    """``GET /``: who is signed in, the cart, and facts about the session."""
    session = session_of(request)
    policy = get_manager(request.scope).policy
    items: dict[str, int] = session.get("cart", {})
    return _page(
        request,
        "home.html",
        title="Shop",
        page="home",
        cart=sorted(items.items()),
        catalog=CATALOG,
        created_at=session.meta.created_at,
        idle=policy.idle_seconds,
        ttl=policy.ttl_seconds,
    )


async def register(request: Request) -> Response:
    """``GET|POST /register``: create an account, then go and log in."""
    if request.method == "GET":
        return _page(request, "auth.html", title="Register", page="register", username="")
    form = await _form(request)
    username = form.get("username", "")
    users = state_of(request).users
    try:
        name = await run_in_threadpool(users.register, username, form.get("password", ""))
    except AccountError as exc:
        session_of(request).flash("error", exc.message)
        return _page(
            request, "auth.html", status=400, title="Register", page="register", username=username
        )
    session_of(request).flash("success", f"Account {name} created. Log in to start.")
    return _redirect("/login?" + urlencode({"username": name}))


async def login(request: Request) -> Response:
    """``GET|POST /login``: sign in; the session ID rotates and the cart comes along."""
    session = session_of(request)
    if request.method == "GET":
        username = request.query_params.get("username", "")
        return _page(request, "auth.html", title="Log in", page="login", username=username)
    form = await _form(request)
    username = form.get("username", "")
    try:
        name = await check_password(request, username, form.get("password", ""))
    except Throttled:
        name, message = None, "Too many failed attempts; wait a few minutes and try again."
    else:
        # One message whether the name or the password was wrong: no account enumeration.
        message = "Wrong username or password."
    if name is None:
        session.flash("error", message)
        return _page(
            request, "auth.html", status=400, title="Log in", page="login", username=username
        )
    # A guest's cart comes along into the account; another account's never does.
    previous = session.principal
    session.login(principal_for(name), keep_data=previous is None or previous.id == name)
    session.flash("success", f"Welcome, {name}! You are signed in, under a brand-new session ID.")
    return _redirect("/")


async def logout(request: Request) -> Response:
    """``POST /logout``: the session is deleted server-side and a fresh one begins."""
    session = session_of(request)
    if session.is_authenticated:
        session.logout()
        session.flash("success", "You are signed out; that session no longer exists anywhere.")
    else:
        session.flash("info", "You were not signed in.")
    return _redirect("/")


async def cart(request: Request) -> Response:
    """``POST /cart``: one more of a catalogue ``item`` in the cart."""
    session = session_of(request)
    item = (await _form(request)).get("item", "")
    if item not in CATALOG:
        session.flash("error", "That is not something this shop sells.")
        return _redirect("/")
    items: dict[str, int] = dict(session.get("cart", {}))
    items[item] = items.get(item, 0) + 1
    session["cart"] = items
    session.flash("success", f"Added {item} to your cart.")
    return _redirect("/")


async def devices(request: Request) -> Response:
    """``GET /devices``: every live session of the signed-in user, this one marked."""
    principal = _signed_in(request)
    if principal is None:
        return _redirect("/login")
    manager = get_manager(request.scope)
    sessions = await manager.sessions_of(principal, current=session_of(request))
    limit = manager.policy.concurrency.max_sessions_per_principal
    return _page(
        request, "devices.html", title="Devices", page="devices", sessions=sessions, limit=limit
    )


async def revoke(request: Request) -> Response:
    """``POST /devices/revoke``: end one of the user's own sessions (field ``session``)."""
    session = session_of(request)
    principal = _signed_in(request)
    if principal is None:
        return _redirect("/login")
    key = (await _form(request)).get("session", "")
    manager = get_manager(request.scope)
    if key == session.key:
        session.flash("info", "That is this device: use Log out to end it.")
    elif _STORE_KEY.fullmatch(key) and await manager.revoke(key, principal=principal):
        session.flash("success", "That device is signed out.")
    else:
        # Someone else's session, an ended one, or garbage: one answer for all.
        session.flash("error", "No such session among yours; it may have ended already.")
    return _redirect("/devices")


async def revoke_others(request: Request) -> Response:
    """``POST /devices/revoke-others``: log out everywhere but here."""
    session = session_of(request)
    principal = _signed_in(request)
    if principal is None:
        return _redirect("/login")
    n = await get_manager(request.scope).revoke_all(principal, except_=session)
    noun = "session" if n == 1 else "sessions"
    session.flash("success", f"Signed out {n} other {noun}; only this device remains.")
    return _redirect("/devices")


async def static(request: Request) -> Response:
    """``GET /static/{name}``: the stylesheet and the icon (no session is loaded for these)."""
    found = STATIC.get(request.path_params["name"])
    if found is None:
        return Response("not found", status_code=404, media_type="text/plain")
    media_type, content = found
    return Response(
        content, media_type=media_type, headers={"cache-control": "public, max-age=3600"}
    )
