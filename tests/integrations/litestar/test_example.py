"""examples/litestar runs: a visit, a login through its CSRF-protected form, a WebSocket."""

from __future__ import annotations

import re
from pathlib import Path

from litestar.testing import TestClient

from sessio import SQLiteStore

from ..examples import load


def test_the_example_app(tmp_path: Path) -> None:
    app = load("litestar").make_app(SQLiteStore(tmp_path / "s.db"), "k" * 32)
    with TestClient(app) as client:
        page = client.get("/").text
        assert "Visits: 1. Signed in as: nobody." in page
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token is not None
        origin = {"Origin": "http://testserver.local"}
        assert client.post("/login", data={"name": "ada"}, headers=origin).status_code == 403
        response = client.post(
            "/login", data={"name": "ada", "csrf_token": token[1]}, headers=origin
        )
        assert "Visits: 2. Signed in as: ada." in response.text
        with client.websocket_connect("/ws", headers=origin) as socket:
            socket.send_text("hi")
            assert socket.receive_text() == "2 visits; you said hi"
