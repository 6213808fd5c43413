"""Quart: ``require_fresh_login`` answers 401 REAUTHENTICATION_REQUIRED to a stale login, and
``login(remember=...)`` picks the cookie's kind, as in the Flask drop-in."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import quart

from sessio import MemoryStore, Principal
from sessio.integrations.quart import SessionInterface, require_fresh_login

from ...conftest import FakeClock


def fresh_app(clock: FakeClock) -> quart.Quart:
    app = quart.Quart(__name__)
    app.config["SECRET_KEY"] = "quart-fresh-secret-0123456789abcdef"
    SessionInterface(MemoryStore(clock=clock), clock=clock).init_app(app)

    @app.get("/login")
    async def login() -> Any:
        remember = {"1": True, "0": False}.get(quart.request.args.get("remember", ""))
        quart.session.login(Principal("alice"), remember=remember)  # type: ignore[attr-defined]
        return "in"

    @app.get("/fresh")
    @require_fresh_login(timedelta(minutes=5))
    async def fresh() -> Any:
        return "fresh"

    return app


async def test_a_stale_login_gets_401_and_passes_after_relogin(clock: FakeClock) -> None:
    client = fresh_app(clock).test_client()
    assert (await client.get("/fresh")).status_code == 401
    await client.get("/login")
    assert (await client.get("/fresh")).status_code == 200
    clock.advance(301)
    stale = await client.get("/fresh")
    assert stale.status_code == 401
    body = await stale.get_json()
    assert body["error"] == "REAUTHENTICATION_REQUIRED"
    assert body["max_age"] == 300
    await client.get("/login")
    assert (await client.get("/fresh")).status_code == 200


async def test_remember_picks_the_cookie(clock: FakeClock) -> None:
    client = fresh_app(clock).test_client()
    remembered = (await client.get("/login?remember=1")).headers["Set-Cookie"]
    assert "Max-Age=" in remembered
    browser = fresh_app(clock).test_client()
    session_only = (await browser.get("/login?remember=0")).headers["Set-Cookie"]
    assert "Max-Age" not in session_only
    assert "Expires" not in session_only
