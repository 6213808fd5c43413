"""Flask's session status and refresh routes, answered in front of Flask so no session is opened.

Flask opens (loads) and saves (maybe touches) the session of every request it handles, so the
status route, which must not count as activity, answers before Flask does: a WSGI wrapper
around ``app.wsgi_app`` (the spot Werkzeug's ``ProxyFix`` takes) that reads the cookie with
the interface's current settings. The replies are :mod:`sessio.integrations._status_routes`'.
"""

from __future__ import annotations

import http
from collections.abc import Callable, Iterable
from typing import Any

from ..errors import ConfigurationError
from ..exchange import Lifecycle
from ..session import Session
from ..transports.base import Transport
from . import _status_routes
from ._flask_config import Settings
from .csrf import CSRFOptions
from .wsgi import environ_request

__all__ = ["StatusRoutes"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class StatusRoutes:
    """Answers ``GET path`` and ``POST refresh_path``; passes every other request to ``app``."""

    def __init__(
        self,
        app: WSGIApp,
        settings: Callable[[], Settings | None],
        csrf: CSRFOptions | None,
        path: str,
        refresh_path: str,
    ) -> None:
        if not path.startswith("/") or not refresh_path.startswith("/") or path == refresh_path:
            raise ConfigurationError("the status and refresh paths are two distinct /paths")
        self.app = app
        self.settings = settings
        # The refresh route is always CSRF-checked, even where the app's forms are not.
        self.csrf = csrf if csrf is not None else CSRFOptions()
        self.path = path
        self.refresh_path = refresh_path

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        if path == self.path and method in ("GET", "HEAD"):
            lifecycle, _ = self._lifecycle()
            reply = _status_routes.status_sync(lifecycle, environ_request(environ))
        elif path == self.refresh_path and method == "POST":
            lifecycle, settings = self._lifecycle()
            _status_routes.require_csrf(lifecycle)

            def writer(session: Session) -> Transport:
                permanent = bool(dict.get(session, "_permanent", False))
                return settings.permanent if permanent else settings.browser

            reply = _status_routes.refresh_sync(
                lifecycle, environ_request(environ), lambda limit: _body(environ, limit), writer
            )
        else:
            return self.app(environ, start_response)
        start_response(f"{reply.status} {http.HTTPStatus(reply.status).phrase}", reply.headers)
        return [b"" if method == "HEAD" else reply.body]

    def _lifecycle(self) -> tuple[Lifecycle[Any, Any], Settings]:
        settings = self.settings()
        if settings is None:
            raise ConfigurationError("SECRET_KEY is not set")
        # The app's own transports and manager, with this route's CSRF options.
        lifecycle: Lifecycle[Any, Any] = Lifecycle(
            settings.manager, settings.lifecycle.transports, csrf=self.csrf
        )
        return lifecycle, settings


def _body(environ: dict[str, Any], limit: int) -> bytes | None:
    """A form body of at most ``limit`` bytes, or ``None`` (too long, or of no stated length)."""
    declared = str(environ.get("CONTENT_LENGTH") or "")
    if not declared.isdigit() or int(declared) > limit:
        return None
    data: bytes = environ["wsgi.input"].read(int(declared))
    return data
