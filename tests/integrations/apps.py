"""A small Starlette app exercising every session path, and a real uvicorn server to run it on."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from sessio import Principal

SECRET = "test-secret-0123456789-abcdefghijklmnopqrstuvwxyz"


async def whoami(request: Request) -> Response:
    session = request.session
    principal = session.principal
    return JSONResponse(
        {"user": principal.id if principal else None, "data": dict(session.items())}
    )


async def ping(request: Request) -> Response:
    return PlainTextResponse("pong")


async def static(request: Request) -> Response:
    return PlainTextResponse("static", headers={"has-session": str("session" in request.scope)})


async def login(request: Request) -> Response:
    form = await request.form()
    roles = str(form.get("roles", "")).split(",")
    request.session.login(Principal(str(form["user"]), roles=[r for r in roles if r]))
    return JSONResponse({"ok": True})


async def logout(request: Request) -> Response:
    request.session.logout()
    return JSONResponse({"ok": True})


async def destroy(request: Request) -> Response:
    request.session.destroy()
    return JSONResponse({"ok": True})


async def csrf(request: Request) -> Response:
    return JSONResponse({"token": request.session.csrf_token})


async def cart_add(request: Request) -> Response:
    form = await request.form()
    request.session.setdefault("cart", []).append(str(form["item"]))
    return RedirectResponse("/cart", status_code=303)


async def cart(request: Request) -> Response:
    return JSONResponse({"cart": request.session.get("cart", [])})


async def echo(request: Request) -> Response:
    """The request body as the app received it (proves a buffered body is replayed intact)."""
    body = await request.body()
    return JSONResponse({"body": body.decode("latin-1")})


async def form_note(request: Request) -> Response:
    async with request.form() as form:
        request.session["note"] = str(form["note"])
        return JSONResponse({"note": form["note"]})


async def put(request: Request) -> Response:
    request.session.update(await request.json())
    return JSONResponse({"ok": True})


async def stream(request: Request) -> Response:
    request.session["streamed"] = True

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(3):
            yield f"chunk{i};".encode()

    return StreamingResponse(chunks(), media_type="text/plain")


async def boom(request: Request) -> Response:
    request.session["half-done"] = True
    raise RuntimeError("the handler failed after writing")


async def failing(request: Request) -> Response:
    request.session["half-done"] = True
    return PlainTextResponse("upstream down", status_code=502)


async def vary(request: Request) -> Response:
    request.session.get("x")
    return PlainTextResponse("ok", headers={"Vary": request.query_params.get("vary", "")})


async def ws(websocket: WebSocket) -> None:
    session = websocket.session
    session["ws_visits"] = session.get("ws_visits", 0) + 1
    await websocket.accept()
    await websocket.send_json({"user": session.principal.id if session.principal else None})
    message = await websocket.receive_text()
    session["ws_said"] = message
    await websocket.close()


ROUTES: list[Any] = [
    Route("/whoami", whoami),
    Route("/ping", ping),
    Route("/static/app.css", static),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/destroy", destroy, methods=["POST"]),
    Route("/csrf", csrf),
    Route("/cart", cart_add, methods=["POST"]),
    Route("/cart", cart, methods=["GET"]),
    Route("/echo", echo, methods=["POST"]),
    Route("/hooks/echo", echo, methods=["POST"]),
    Route("/note", form_note, methods=["POST"]),
    Route("/put", put, methods=["POST"]),
    Route("/stream", stream),
    Route("/boom", boom),
    Route("/failing", failing),
    Route("/vary", vary),
    WebSocketRoute("/ws", ws),
]


def starlette_app(**kwargs: Any) -> Starlette:
    """The routes above as a Starlette app (wrap it in a SessionMiddleware)."""
    return Starlette(routes=ROUTES, **kwargs)


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run ``app`` on a real uvicorn server on a free loopback port; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, lifespan="off", log_level="warning", ws="websockets-sansio", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
