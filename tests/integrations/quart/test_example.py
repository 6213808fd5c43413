"""examples/quart runs: a visit, a login through its CSRF-protected form, a flash message."""

from __future__ import annotations

import re
from pathlib import Path

from sessio import SQLiteStore

from ..examples import load


async def test_the_example_app(tmp_path: Path) -> None:
    app = load("quart").make_app(SQLiteStore(tmp_path / "s.db"), "k" * 32)
    client = app.test_client()
    page = await (await client.get("/")).get_data(as_text=True)
    assert "Visits: 1. Signed in as: nobody." in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    origin = {"Origin": "http://localhost"}
    assert (await client.post("/login", form={"name": "ada"}, headers=origin)).status_code == 403
    response = await client.post(
        "/login", form={"name": "ada", "csrf_token": token[1]}, headers=origin
    )
    assert response.status_code == 302
    page = await (await client.get("/")).get_data(as_text=True)
    assert "Welcome, ada!" in page
    assert "Visits: 2. Signed in as: ada." in page
