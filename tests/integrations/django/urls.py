"""The small app the middleware tests drive: session reads and writes, login, messages, admin."""

from __future__ import annotations

import threading
from typing import Any

from django.contrib import admin, messages
from django.contrib.auth import get_user_model, login, logout
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from sessio.integrations.django import devices

#: Set by a test: the views named "held" wait here after loading the session, so two requests
#: hold one session at once.
GATE: dict[str, threading.Barrier] = {}
#: Set by a test: "late" views wait for it after the barrier, to order two requests.
LATER = threading.Event()


def put(request: HttpRequest, key: str, value: str) -> HttpResponse:
    request.session[key] = value
    return JsonResponse({"ok": True})


def held_put(request: HttpRequest, key: str, value: str) -> HttpResponse:
    request.session.get("_")  # loaded before waiting
    GATE["held"].wait()
    request.session[key] = value
    return JsonResponse({"ok": True})


def late_put(request: HttpRequest, key: str, value: str) -> HttpResponse:
    request.session.get("_")
    GATE["held"].wait()
    LATER.wait(20)
    request.session[key] = value
    return JsonResponse({"ok": True})


def held_logout(request: HttpRequest) -> HttpResponse:
    request.session.get("_")
    GATE["held"].wait()
    logout(request)
    return JsonResponse({"ok": True})


def show(request: HttpRequest) -> HttpResponse:
    data: dict[str, Any] = {k: v for k, v in request.session.items() if not k.startswith("_")}
    return JsonResponse({"data": data, "user": request.user.get_username() or None})


@csrf_exempt
def sign_in(request: HttpRequest) -> HttpResponse:
    user = get_user_model().objects.get(username=request.POST["username"])
    login(request, user)
    messages.success(request, f"Welcome, {user.get_username()}")
    return redirect("/after/")


def after(request: HttpRequest) -> HttpResponse:
    shown = [str(m) for m in messages.get_messages(request)]
    return JsonResponse({"messages": shown, "user": request.user.get_username() or None})


def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.info(request, "Signed out")
    return redirect("/after/")


@login_required(login_url="/nope/")
def private(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"user": request.user.get_username()})


@login_required(login_url="/nope/")
def device_list(request: HttpRequest) -> HttpResponse:
    rows = [
        {"key": s.key, "current": s.current, "ip": s.ip, "agent": s.user_agent}
        for s in devices.user_sessions(request)
    ]
    return JsonResponse({"sessions": rows})


@csrf_exempt
@login_required(login_url="/nope/")
def others_out(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"ended": devices.logout_everywhere_else(request)})


urlpatterns = [
    path("put/<str:key>/<str:value>/", put),
    path("held-put/<str:key>/<str:value>/", held_put),
    path("late-put/<str:key>/<str:value>/", late_put),
    path("held-logout/", held_logout),
    path("show/", show),
    path("login/", sign_in),
    path("after/", after),
    path("logout/", sign_out),
    path("private/", private),
    path("devices/", device_list),
    path("others-out/", others_out),
    path("admin/", admin.site.urls),
]
