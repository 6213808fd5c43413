"""FastAPI: the session dependency, the auth guards and the error handlers."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, WebSocket
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from sessio import (
    AuthenticationRequired,
    ConfigurationError,
    MemoryStore,
    PermissionDenied,
    Policy,
    Principal,
    SessionManager,
    StoreUnavailable,
)
from sessio.errors import ValueNotSerializable
from sessio.integrations.asgi import SessionMiddleware
from sessio.integrations.fastapi import (
    PrincipalDep,
    SessionDep,
    install_error_handlers,
    require_auth,
    require_role,
)

from .apps import SECRET


def make_app(*, handlers: bool) -> FastAPI:
    app = FastAPI()
    app.add_middleware(
        SessionMiddleware,
        store=MemoryStore(),
        secret_key=SECRET,
        policy=Policy.web().development(),
        csrf=None,
    )
    if handlers:
        install_error_handlers(app)

    @app.post("/login/{user}")
    def login(user: str, session: SessionDep, roles: str = "") -> dict[str, Any]:
        session.login(Principal(user, roles=[r for r in roles.split(",") if r]))
        return {"ok": True}

    @app.post("/cart/{item}")
    def add(item: str, session: SessionDep) -> list[str]:
        cart: list[str] = session.setdefault("cart", [])
        cart.append(item)
        return cart

    @app.get("/me")
    def me(user: PrincipalDep) -> dict[str, Any]:
        return {"id": user.id, "roles": sorted(user.roles)}

    @app.get("/admin", dependencies=[Depends(require_role("admin"))])
    def admin() -> str:
        return "welcome"

    @app.get("/ops")
    def ops(user: Annotated[Principal, Depends(require_role("admin", "ops"))]) -> str:
        return user.id

    @app.get("/outage")
    def outage() -> None:
        raise StoreUnavailable("the primary at 10.1.2.3 refused the connection")

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, user: PrincipalDep) -> None:
        await websocket.accept()
        await websocket.send_json({"id": user.id})
        await websocket.close()

    return app


@pytest.fixture(params=[True, False], ids=["handlers", "middleware-only"])
def client(request: pytest.FixtureRequest) -> TestClient:
    return TestClient(make_app(handlers=request.param))


def test_session_dependency_reads_and_writes(client: TestClient) -> None:
    assert client.post("/cart/apple").json() == ["apple"]
    assert client.post("/cart/pear").json() == ["apple", "pear"]


def test_require_auth_answers_401_json(client: TestClient) -> None:
    response = client.get("/me")
    assert response.status_code == 401
    assert response.json() == {
        "error": "AUTHENTICATION_REQUIRED",
        "detail": "this route needs a logged-in session",
    }
    client.post("/login/ann", params={"roles": "ops"})
    assert client.get("/me").json() == {"id": "ann", "roles": ["ops"]}


def test_require_role_answers_401_then_403_then_passes(client: TestClient) -> None:
    assert client.get("/admin").status_code == 401
    client.post("/login/ann", params={"roles": "ops"})
    denied = client.get("/admin")
    assert denied.status_code == 403
    assert denied.json()["error"] == "PERMISSION_DENIED"
    assert client.get("/ops").status_code == 403  # every listed role is required
    client.post("/login/ann", params={"roles": "ops,admin"})
    assert client.get("/admin").json() == "welcome"
    assert client.get("/ops").json() == "ann"


def test_store_errors_raised_in_a_route_answer_503_without_their_cause(client: TestClient) -> None:
    response = client.get("/outage")
    assert response.status_code == 503
    assert response.json()["error"] == "STORE_UNAVAILABLE"
    assert "10.1.2.3" not in response.text


def test_websocket_routes_get_the_session_and_the_guards() -> None:
    client = TestClient(make_app(handlers=True))
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/ws"):
        pass
    assert refused.value.code == 1008
    client.post("/login/ann")
    with client.websocket_connect("/ws") as websocket:
        assert websocket.receive_json() == {"id": "ann"}


def test_guards_are_plain_functions_too() -> None:
    session = SessionManager(MemoryStore()).start()
    with pytest.raises(AuthenticationRequired):
        require_auth(session)
    session.login(Principal("ann", roles=["ops"]))
    assert require_auth(session).id == "ann"
    with pytest.raises(PermissionDenied):
        require_role("admin")(session)
    assert require_role("ops")(session).id == "ann"
    assert "'admin'" in require_role("admin").__qualname__
    for bad in ((), ("",)):
        with pytest.raises(ConfigurationError):
            require_role(*bad)


def test_a_programming_error_goes_on_to_the_500_and_an_outage_is_answered() -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/bug")
    def bug() -> None:
        raise ValueNotSerializable("a value the codec cannot encode")

    @app.get("/outage")
    def outage() -> None:
        raise StoreUnavailable("redis at 10.0.0.9 is down")

    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/bug").status_code == 500
    assert "VALUE_NOT_SERIALIZABLE" not in client.get("/bug").text
    down = client.get("/outage")
    assert (down.status_code, down.json()["error"]) == (503, "STORE_UNAVAILABLE")
    assert down.headers["cache-control"] == "no-store"
    assert "10.0.0.9" not in down.text
