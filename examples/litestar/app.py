"""A small Litestar app on sessio: a visit counter, a login form with its CSRF token, a WebSocket.

Run it with ``uvicorn examples.litestar.app:app`` from the checkout, or
``python examples/litestar/app.py`` (needs ``pip install 'sessio[litestar]' uvicorn``), and open
http://127.0.0.1:8000/. Sessions live in ``sessions.db`` beside where you run it.
"""

from __future__ import annotations

import html
import os
import secrets
from typing import Any

from litestar import Litestar, MediaType, Request, WebSocket, get, post, websocket
from litestar.response import Redirect

from sessio import Policy, Principal, SQLiteStore
from sessio.integrations.litestar import SessionConfig

PAGE = """<!doctype html><title>sessio on Litestar</title>
<p>Visits: {visits}. Signed in as: {user}.</p>
<form method="post" action="/login">
  <input type="hidden" name="csrf_token" value="{csrf}">
  <input name="name" placeholder="your name" required> <button>Sign in</button>
</form>
<form method="post" action="/logout">
  <input type="hidden" name="csrf_token" value="{csrf}"><button>Sign out</button>
</form>"""


@get("/", media_type=MediaType.HTML)
async def home(request: Request[Any, Any, Any]) -> str:
    session = request.session
    session["visits"] = session.get("visits", 0) + 1
    principal = session.principal
    user = html.escape(principal.id) if principal else "nobody"
    return PAGE.format(visits=session["visits"], user=user, csrf=session.csrf_token)


@post("/login")
async def login(request: Request[Any, Any, Any]) -> Redirect:
    form = await request.form()  # the CSRF token was checked before this handler ran
    request.session.login(Principal(str(form["name"])[:64]))  # a new ID, the data kept
    return Redirect("/", status_code=303)


@post("/logout")
async def logout(request: Request[Any, Any, Any]) -> Redirect:
    request.clear_session()  # Litestar's call: the record goes, the cookie is cleared
    return Redirect("/", status_code=303)


@websocket("/ws")
async def echo(socket: WebSocket[Any, Any, Any]) -> None:
    await socket.accept()
    said = await socket.receive_text()
    socket.session["last_said"] = said  # saved when the socket closes
    await socket.send_text(f"{socket.session.get('visits', 0)} visits; you said {said}")
    await socket.close()


def make_app(store: SQLiteStore | None = None, secret_key: str | None = None) -> Litestar:
    """The app; ``development()`` drops the cookie's Secure flag for plain-HTTP localhost."""
    config = SessionConfig(
        store=store or SQLiteStore("sessions.db"),
        secret_key=secret_key or os.environ.get("SESSIO_SECRET") or secrets.token_urlsafe(32),
        policy=Policy.web().development(),
    )
    return Litestar(
        [home, login, logout, echo],
        middleware=[config.middleware],
        exception_handlers=config.exception_handlers,
    )


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(make_app(), host="127.0.0.1", port=8000)
