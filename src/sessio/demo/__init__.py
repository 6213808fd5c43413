"""The sessio demo: a small shop on Starlette and sessio's ASGI middleware (``sessio demo``).

Install with ``pip install 'sessio[demo]'`` and run ``sessio demo`` (``make demo`` in a clone):
it serves http://127.0.0.1:8000 with sessions in ``sessio-demo.db`` (SQLite), accounts in
``sessio-demo.users.db`` and the signing key in ``sessio-demo.secret`` (mode 0600, made on first
run so restarts log nobody out) unless ``$SESSIO_SECRET_KEY`` is set.

Routes (stable; every form carries ``csrf_token``, which may also come as ``X-CSRF-Token``)::

    GET  /                       who is signed in, flash messages, the cart, the session's facts
    GET  /register               the registration form
    POST /register               username, password, csrf_token -> account created, go log in
    GET  /login                  the login form (?username= pre-fills it)
    POST /login                  username, password, csrf_token -> signed in, new session ID
    POST /logout                 csrf_token -> the session is deleted server-side
    POST /cart                   item, csrf_token -> one more of a catalogue item in the cart
    GET  /devices                every live session of the user: device, IP, last seen, this one
    POST /devices/revoke         session (a listed hash), csrf_token -> that session ends;
                                 only the user's own sessions can be named
    POST /devices/revoke-others  csrf_token -> every other session of the user ends
    GET  /api/session            JSON {authenticated, user, expires_in, csrf_token} for SPAs
    POST /api/login              JSON {username, password} -> {token, token_type, expires_in}:
                                 a new session carried by ``Authorization: Bearer <token>``
                                 or ``X-Session-ID: <token>`` (no cookie, so no CSRF token)
    GET  /api/me                 JSON {user, roles, session, expires_in} for a header token;
                                 401 {"error": "AUTHENTICATION_REQUIRED", ...} without one

Security: sessions rotate at login and are deleted at logout; at most five per user (a sixth
login ends the oldest); signing in as another account leaves the first one's cart behind;
failed logins say nothing about which part was wrong, and each attempt is counted before its
password is checked: five per username and address, twenty per address, in five minutes (per
process), so nobody elsewhere can lock an owner out; passwords are 8 to 1024 characters,
hashed with scrypt and a per-user salt; pages are autoescaped and sent with a strict
Content-Security-Policy (no script at all).

Errors: a browser on the shop's pages gets a page of the demo's own (a refused form, "you were
signed out on another device", no such page, a crash, a store outage); ``/api/`` and clients
that ask for no HTML get ``{"error": CODE, "detail": ...}`` with the same status.
"""

from __future__ import annotations

from .app import DEMO_POLICY, create_app
from .pages import CATALOG
from .server import serve

__all__ = ["CATALOG", "DEMO_POLICY", "create_app", "serve"]
