"""A small Quart app on sessio: a visit counter, flash messages, a login form with its CSRF token.

Run it with ``python examples/quart/app.py`` (needs ``pip install 'sessio[quart]'``) and open
http://127.0.0.1:5000/. Sessions live in ``sessions.db`` beside where you run it.
"""

from __future__ import annotations

import os
import secrets

from quart import Quart, flash, get_flashed_messages, redirect, render_template_string, request
from quart import session as quart_session
from werkzeug.wrappers import Response

from sessio import Principal, SQLiteStore
from sessio.integrations.csrf import CSRFOptions
from sessio.integrations.quart import QuartSession, SessionInterface

PAGE = """<!doctype html><title>sessio on Quart</title>
{% for message in flashes %}<p><em>{{ message }}</em></p>{% endfor %}
<p>Visits: {{ session.visits }}. Signed in as: {{ session.principal.id if session.principal else "nobody" }}.</p>
<form method="post" action="/login">
  <input type="hidden" name="csrf_token" value="{{ session.csrf_token }}">
  <input name="name" placeholder="your name" required> <button>Sign in</button>
</form>"""


def make_app(store: SQLiteStore | None = None, secret_key: str | None = None) -> Quart:
    """The app: the one line that installs sessio is ``SessionInterface(...).init_app(app)``."""
    app = Quart(__name__)
    app.config["SECRET_KEY"] = (
        secret_key or os.environ.get("SESSIO_SECRET") or secrets.token_urlsafe(32)
    )
    SessionInterface(store or SQLiteStore("sessions.db"), csrf=CSRFOptions()).init_app(app)

    @app.get("/")
    async def home() -> str:
        quart_session["visits"] = quart_session.get("visits", 0) + 1
        return await render_template_string(PAGE, flashes=get_flashed_messages())

    @app.post("/login")
    async def login() -> Response:
        form = await request.form  # the CSRF token was checked before this view ran
        session = quart_session
        if isinstance(session, QuartSession):  # (it is, once SessionInterface is installed)
            session.login(Principal(form["name"][:64]))  # a new session ID, the data kept
        await flash(f"Welcome, {form['name'][:64]}!")
        return redirect("/")

    return app


if __name__ == "__main__":
    make_app().run(host="127.0.0.1", port=5000)
