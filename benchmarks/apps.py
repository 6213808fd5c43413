"""The one app every contender serves, in Starlette and in Flask: the same endpoints, the same work.

Scenarios (each client first calls the matching ``/seed`` endpoint once, untimed):

``write``  load, read a key, increment a counter, commit.
``read``   load, read a key.
``big``    a session of ~50 keys holding ~4 KB of random base64 (hard to compress): load, read
           one key, write one key.

``/login`` (the multi-worker section's login-heavy mix) signs the visitor in the way each
backend offers: a new session ID with the data kept (sessio's ``login()``, starsessions'
``regenerate_session_id``, Flask-Session's ``regenerate``); a cookie session, which has no ID,
just writes.

A floor app serves the same routes without touching any session: subtracting it leaves what the
session layer costs.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from typing import Any

__all__ = [
    "BIG_KEYS",
    "BIG_VALUES",
    "LOGIN_PATH",
    "SCENARIOS",
    "flask_app",
    "seed_path",
    "starlette_app",
]

SCENARIOS = ("write", "read", "big")

BIG_KEYS = 50
_rng = random.Random(20240601)
#: 80 characters of base64 from random bytes each: 50 keys hold 4,000 bytes that do not compress.
BIG_VALUES = [base64.b64encode(_rng.randbytes(60)).decode() for _ in range(BIG_KEYS * 2)]


def seed_path(scenario: str) -> str:
    """The untimed request that gives a client's session its starting data."""
    return "/seed-big" if scenario == "big" else "/seed"


def _seed(session: Any) -> None:
    session["user"] = "alice"
    session["counter"] = 0


def _seed_big(session: Any) -> None:
    for i in range(BIG_KEYS):
        session[f"k{i}"] = BIG_VALUES[i]


def _write(session: Any) -> None:
    session.get("user")
    session["counter"] = session.get("counter", 0) + 1


def _read(session: Any) -> None:
    session.get("user")


def _big(session: Any) -> None:
    session.get("k7")
    n = session.get("n", 0) + 1
    session["n"] = n
    session[f"k{n % BIG_KEYS}"] = BIG_VALUES[n % len(BIG_VALUES)]


LOGIN_PATH = "/login"


def _login(session: Any, rotate: Callable[[], None] | None) -> None:
    login = getattr(session, "login", None)
    if callable(login):  # sessio: rotates the ID and the CSRF token, records the principal
        from sessio import Principal

        login(Principal("alice"))
    elif rotate is not None:
        rotate()
    session["user"] = "alice"


ACTIONS: dict[str, Callable[[Any], None]] = {
    "/seed": _seed,
    "/seed-big": _seed_big,
    "/write": _write,
    "/read": _read,
    "/big": _big,
}


def starlette_app(*, floor: bool = False, middleware: list[Any] | None = None) -> Any:
    """A Starlette app with the scenario routes; ``floor`` serves them without a session."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route

    def endpoint(action: Callable[[Any], None]) -> Any:
        if floor:

            async def bare(request: Any) -> Any:
                return PlainTextResponse("ok")

            return bare

        async def handler(request: Any) -> Any:
            action(request.session)
            return PlainTextResponse("ok")

        return handler

    async def login(request: Any) -> Any:
        rotate = None
        if "session_handler" in request.scope:  # starsessions' middleware is in front
            from starsessions import regenerate_session_id

            def rotate() -> None:
                regenerate_session_id(request)

        _login(request.session, rotate)
        return PlainTextResponse("ok")

    routes = [Route(path, endpoint(action)) for path, action in ACTIONS.items()]
    routes.append(Route(LOGIN_PATH, endpoint(_read) if floor else login))
    return Starlette(routes=routes, middleware=middleware or [])


def flask_app(
    *, floor: bool = False, configure: Callable[[Any], None] | None = None, name: str = "bench"
) -> Any:
    """A Flask app with the scenario routes; ``configure(app)`` installs a session backend."""
    import flask

    app = flask.Flask(name)
    app.secret_key = "bench-secret-" + "x" * 40
    if configure is not None:
        configure(app)

    def endpoint(path: str, action: Callable[[Any], None]) -> None:
        if floor:

            def bare() -> str:
                return "ok"

            view = bare
        else:

            def handler() -> str:
                action(flask.session)
                return "ok"

            view = handler
        app.add_url_rule(path, endpoint=path, view_func=view)

    for path, action in ACTIONS.items():
        endpoint(path, action)

    def login() -> str:
        regenerate = getattr(app.session_interface, "regenerate", None)  # Flask-Session >= 0.6
        session = flask.session
        _login(session, None if regenerate is None else lambda: regenerate(session))
        return "ok"

    if floor:
        endpoint(LOGIN_PATH, _read)
    else:
        app.add_url_rule(LOGIN_PATH, endpoint=LOGIN_PATH, view_func=login)
    return app
