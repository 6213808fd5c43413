"""A small aiohttp app on sessio: a visit counter, a login form with its CSRF token, a WebSocket.

Run it with ``python examples/aiohttp/app.py`` (needs ``pip install 'sessio[aiohttp]'``) and
open http://127.0.0.1:8080/. Sessions live in ``sessions.db`` beside where you run it.
"""

from __future__ import annotations

import html
import os
import secrets

from aiohttp import web

from sessio import Policy, Principal, SQLiteStore
from sessio.integrations.aiohttp import get_session, new_session, setup

PAGE = """<!doctype html><title>sessio on aiohttp</title>
<p>Visits: {visits}. Signed in as: {user}.</p>
<form method="post" action="/login">
  <input type="hidden" name="csrf_token" value="{csrf}">
  <input name="name" placeholder="your name" required> <button>Sign in</button>
</form>
<form method="post" action="/logout">
  <input type="hidden" name="csrf_token" value="{csrf}"><button>Sign out</button>
</form>"""


async def home(request: web.Request) -> web.Response:
    session = await get_session(request)
    session["visits"] = session.get("visits", 0) + 1
    principal = session.principal
    return web.Response(
        content_type="text/html",
        text=PAGE.format(
            visits=session["visits"],
            user=html.escape(principal.id) if principal else "nobody",
            csrf=session.csrf_token,
        ),
    )


async def login(request: web.Request) -> web.Response:
    form = await request.post()  # the CSRF token was checked before this handler ran
    session = await get_session(request)
    session.login(Principal(str(form["name"])[:64]))  # a new session ID, the data kept
    raise web.HTTPSeeOther("/")


async def logout(request: web.Request) -> web.Response:
    await new_session(request)  # aiohttp-session's way: a new ID, nothing kept
    raise web.HTTPSeeOther("/")


async def echo(request: web.Request) -> web.WebSocketResponse:
    session = await get_session(request)  # a WebSocket has the session of its handshake
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    async for message in socket:
        session["last_said"] = message.data  # saved when the socket closes
        await socket.send_str(f"{session.get('visits', 0)} visits; you said {message.data}")
    return socket


def make_app(store: SQLiteStore | None = None, secret_key: str | None = None) -> web.Application:
    """The app; ``development()`` drops the cookie's Secure flag for plain-HTTP localhost."""
    app = web.Application()
    app.router.add_get("/", home)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/ws", echo)
    setup(
        app,
        store=store or SQLiteStore("sessions.db"),
        secret_key=secret_key or os.environ.get("SESSIO_SECRET") or secrets.token_urlsafe(32),
        policy=Policy.web().development(),
    )
    return app


if __name__ == "__main__":
    web.run_app(make_app(), host="127.0.0.1", port=8080)
