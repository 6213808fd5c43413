"""sessio at manager level: the thinnest ASGI and Flask glue around SessionManager and transports.

These are not sessio's integrations (``sessio.integrations.asgi`` and ``.flask`` are); they
measure what the core (manager, session, codec, store, transports) costs with nearly nothing
around it, so the integrations' own cost shows as the difference between the two rows.
"""

from __future__ import annotations

from typing import Any

from sessio import Policy, SessionManager, SyncSessionManager
from sessio.stores import Store
from sessio.transports import read_token, transports_for

__all__ = ["ManagerFlaskInterface", "ManagerMiddleware"]


class ManagerMiddleware:
    """ASGI: load from the cookie, put the session in ``scope["session"]``, commit at response start."""

    def __init__(self, app: Any, *, store: Store, secret_key: str, policy: Policy) -> None:
        self.app = app
        self.manager = SessionManager(store, policy)
        self.transports = transports_for(policy, secret_key)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = scope["headers"]

        def headers(name: str) -> list[str]:
            wanted = name.encode()
            return [v.decode("latin-1") for k, v in raw if k == wanted]

        token, transport = read_token(self.transports, headers)
        agent = headers("user-agent")
        client = scope.get("client")
        session = await self.manager.load(
            token, ip=client[0] if client else None, user_agent=agent[0] if agent else None
        )
        scope["session"] = session
        writer = transport or self.transports[0]

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                commit = await self.manager.commit(session)
                extra = writer.response_headers(commit, had_token=token is not None)
                if extra:
                    message = dict(message)
                    message["headers"] = [
                        *message.get("headers", ()),
                        *((k.encode("latin-1"), v.encode("latin-1")) for k, v in extra),
                    ]
            await send(message)

        await self.app(scope, receive, send_wrapper)


def ManagerFlaskInterface(*, store: Store, secret_key: str, policy: Policy) -> Any:
    """A Flask ``SessionInterface`` that hands out sessio Sessions through SyncSessionManager."""
    import flask
    from flask.sessions import SessionInterface

    manager = SyncSessionManager(store, policy)
    transports = transports_for(policy, secret_key)

    class _Interface(SessionInterface):
        def open_session(self, app: Any, request: Any) -> Any:
            token, transport = read_token(transports, request.headers.getlist)
            request.environ["sessio.bench"] = (token, transport or transports[0])
            return manager.load(
                token, ip=request.remote_addr, user_agent=request.headers.get("user-agent")
            )

        def save_session(self, app: Any, session: Any, response: Any) -> None:
            token, writer = flask.request.environ["sessio.bench"]
            commit = manager.commit(session)
            for name, value in writer.response_headers(commit, had_token=token is not None):
                response.headers.add(name, value)

    return _Interface()
