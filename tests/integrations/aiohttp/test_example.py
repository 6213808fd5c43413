"""examples/aiohttp runs: a visit, a login through its CSRF-protected form, a WebSocket."""

from __future__ import annotations

import re
from pathlib import Path

from sessio import SQLiteStore

from ..examples import load
from .conftest import MakeClient


async def test_the_example_app(tmp_path: Path, aiohttp_client: MakeClient) -> None:
    app = load("aiohttp").make_app(SQLiteStore(tmp_path / "s.db"), "k" * 32)
    client = await aiohttp_client(app)
    page = await (await client.get("/")).text()
    assert "Visits: 1. Signed in as: nobody." in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    origin = str(client.make_url("")).rstrip("/")
    refused = await client.post("/login", data={"name": "ada"}, headers={"Origin": origin})
    assert refused.status == 403
    response = await client.post(
        "/login", data={"name": "ada", "csrf_token": token[1]}, headers={"Origin": origin}
    )
    assert "Visits: 2. Signed in as: ada." in await response.text()
    socket = await client.ws_connect("/ws", origin=origin)
    await socket.send_str("hi")
    assert await socket.receive_str() == "2 visits; you said hi"
    await socket.close()
