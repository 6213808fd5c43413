"""One Django worker process for the multi-process test: ``python -m ... worker PORT``.

A bare Django app (sessions middleware, two views) under wsgiref's threaded server, its
sessions in the Redis that ``SESSIO_STORE`` and ``SESSIO_PREFIX`` (environment) name. It
prints ``ready`` once it listens, and serves until its parent ends it.
"""

from __future__ import annotations

import os
import socketserver
import sys
import time
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path


def put(request: HttpRequest, key: str, value: str) -> HttpResponse:
    request.session.get("_")  # loaded first, then a pause, so parallel requests overlap
    time.sleep(0.02)
    request.session[key] = value
    return JsonResponse({"pid": os.getpid()})


def show(request: HttpRequest) -> HttpResponse:
    return JsonResponse(dict(request.session.items()))


urlpatterns = [path("put/<str:key>/<str:value>/", put), path("show/", show)]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Threading(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


def main(port: int) -> None:
    settings.configure(
        SECRET_KEY="sessio-multi-process-" + "k" * 32,
        ALLOWED_HOSTS=["127.0.0.1"],
        INSTALLED_APPS=["django.contrib.sessions"],
        MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
        ROOT_URLCONF=__name__,
        SESSION_ENGINE="sessio.integrations.django",
        SESSIO_STORE=os.environ["SESSIO_STORE"],
        SESSIO_STORE_OPTIONS={"prefix": os.environ["SESSIO_PREFIX"]},
    )
    django.setup()
    from django.core.wsgi import get_wsgi_application

    server = make_server(
        "127.0.0.1", port, get_wsgi_application(), server_class=_Threading, handler_class=_Quiet
    )
    print("ready", flush=True)
    server.serve_forever(0.05)


if __name__ == "__main__":
    main(int(sys.argv[1]))
