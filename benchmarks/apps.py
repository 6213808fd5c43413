"""The one app every contender serves, in Starlette and in Flask: the same endpoints, the same work.

Scenarios (each client first calls the matching ``/seed`` endpoint once, untimed):

``write``  load, read a key, increment a counter, commit.
``read``   load, read a key.
``big``    a session of ~50 keys holding ~4 KB of random base64 (hard to compress): load, read
           one key, write one key.

A floor app serves the same routes without touching any session: subtracting it leaves what the
session layer costs.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from typing import Any

__all__ = ["BIG_KEYS", "BIG_VALUES", "SCENARIOS", "flask_app", "seed_path", "starlette_app"]

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

    routes = [Route(path, endpoint(action)) for path, action in ACTIONS.items()]
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
    return app
