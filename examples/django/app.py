"""A one-file Django app on sessio: sign in, messages, a device list, "log out everywhere else".

The only session settings are ``SESSION_ENGINE`` and ``SESSIO_STORE``; the rest is plain Django
(``login()``, ``logout()``, ``messages``, the admin)::

    SESSIO_STORE=sqlite:///sessions.db python examples/django/app.py migrate
    SESSIO_STORE=sqlite:///sessions.db python examples/django/app.py runserver

Sign in as ``demo`` / ``demo`` (created on first sign-in) from two browsers, then end the other
session from the device list.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import django
from django.conf import settings

HERE = Path.cwd()  # the databases are made where the app is run

settings.configure(
    DEBUG=os.environ.get("DEBUG", "1") == "1",
    SECRET_KEY=os.environ.get("SECRET_KEY", "change-me-" + "x" * 40),
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=[
        "django.contrib.admin",
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",  # for manage.py clearsessions
        "django.contrib.messages",
    ],
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
    ],
    TEMPLATES=[
        {
            "BACKEND": "django.template.backends.django.DjangoTemplates",
            "APP_DIRS": True,
            "OPTIONS": {
                "context_processors": [
                    "django.template.context_processors.request",
                    "django.contrib.auth.context_processors.auth",
                    "django.contrib.messages.context_processors.messages",
                ]
            },
        }
    ],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": HERE / "app.sqlite3"}},
    DEFAULT_AUTO_FIELD="django.db.models.AutoField",
    USE_TZ=True,
    # The two session settings:
    SESSION_ENGINE="sessio.integrations.django",
    SESSIO_STORE=os.environ.get("SESSIO_STORE", f"sqlite:///{HERE / 'sessions.db'}"),
)
django.setup()

from django.contrib import admin, messages  # noqa: E402
from django.contrib.auth import authenticate, get_user_model, login, logout  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.shortcuts import redirect  # noqa: E402
from django.template import engines  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.http import require_POST  # noqa: E402

from sessio.integrations.django import devices  # noqa: E402

PAGE = engines["django"].from_string(
    """<!doctype html><title>sessio on Django</title>
<style>body{font:16px system-ui;max-width:44rem;margin:2rem auto}td,th{padding:.3rem .6rem}</style>
{% for m in messages %}<p><em>{{ m }}</em></p>{% endfor %}
<p>Visits in this session: {{ visits }}</p>
{% if user.is_authenticated %}
  <p>Signed in as <strong>{{ user }}</strong>.
  <form method="post" action="/logout/">{% csrf_token %}<button>Sign out</button></form></p>
  <h2>Your sessions</h2>
  <table><tr><th>Device</th><th>IP</th><th></th></tr>
  {% for s in sessions %}<tr><td>{{ s.user_agent|default:"?"|truncatechars:60 }}</td><td>{{ s.ip }}</td><td>
    {% if s.current %}this one{% else %}<form method="post" action="/revoke/">{% csrf_token %}
    <input type="hidden" name="key" value="{{ s.key }}"><button>End</button></form>{% endif %}</td></tr>
  {% endfor %}</table>
  <form method="post" action="/others-out/">{% csrf_token %}<button>Log out everywhere else</button></form>
{% else %}
  <form method="post" action="/login/">{% csrf_token %}
    <input name="username" value="demo"> <input name="password" type="password" value="demo">
    <button>Sign in</button></form>
{% endif %}
<p><a href="/admin/">Admin</a> (for staff users)</p>"""
)


def home(request: HttpRequest) -> HttpResponse:
    request.session["visits"] = request.session.get("visits", 0) + 1
    sessions = devices.user_sessions(request) if request.user.is_authenticated else []
    context = {"visits": request.session["visits"], "sessions": sessions}
    return HttpResponse(PAGE.render(context, request))


@require_POST
def sign_in(request: HttpRequest) -> HttpResponse:
    name, password = request.POST.get("username", ""), request.POST.get("password", "")
    if name == "demo" and not get_user_model().objects.filter(username="demo").exists():
        get_user_model().objects.create_user("demo", password="demo")  # noqa: S106 - the demo account
    user = authenticate(request, username=name, password=password)
    if user is None:
        messages.error(request, "Wrong name or password.")
    else:
        login(request, user)
        messages.success(request, f"Welcome, {user}.")
    return redirect("/")


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.info(request, "Signed out.")
    return redirect("/")


@require_POST
def revoke(request: HttpRequest) -> HttpResponse:
    if devices.revoke(request, request.POST.get("key", "")):
        messages.info(request, "That session has ended.")
    return redirect("/")


@require_POST
def others_out(request: HttpRequest) -> HttpResponse:
    ended = devices.logout_everywhere_else(request)
    messages.info(request, f"Ended {ended} other session(s).")
    return redirect("/")


urlpatterns = [
    path("", home),
    path("login/", sign_in),
    path("logout/", sign_out),
    path("revoke/", revoke),
    path("others-out/", others_out),
    path("admin/", admin.site.urls),
]

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
