"""Django configured for these tests alone (``settings.configure``, no project), and the backends.

``backend`` runs a test on sessio's SessionStore over SQLite, Redis and PostgreSQL (each with
a prefix or schema of its own); ``reference`` adds Django's own database backend, so a test
that passes on all four proves sessio keeps what Django apps rely on.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from importlib import import_module
from pathlib import Path
from typing import Any

import pytest

django = pytest.importorskip(
    "django", reason="Django is not installed: pip install 'sessio[django]'"
)

from django.conf import settings  # noqa: E402
from django.contrib.sessions.backends.base import SessionBase  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from ...stores.servers import (  # noqa: E402
    POSTGRES_URL,
    REDIS_URL,
    dropping,
    require_postgres,
    require_redis,
    unique,
)

ENGINE = "sessio.integrations.django"
DJANGO_DB = "django.contrib.sessions.backends.db"
_HOME = Path(tempfile.mkdtemp(prefix="sessio-django-"))

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="sessio-tests-secret-key-" + "x" * 32,
        ALLOWED_HOSTS=["testserver", "127.0.0.1", "localhost"],
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        ROOT_URLCONF="tests.integrations.django.urls",
        DATABASES={
            "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(_HOME / "db.sqlite3")}
        },
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
        SESSION_ENGINE=ENGINE,
        SESSIO_STORE=f"sqlite:///{_HOME}/sessions.db",
        # Messages kept in the session, so they cross a redirect through sessio's store.
        MESSAGE_STORAGE="django.contrib.messages.storage.session.SessionStorage",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        USE_TZ=True,
    )
    django.setup()


@pytest.fixture(scope="session", autouse=True)
def _database() -> Iterator[None]:
    from django.core.management import call_command
    from django.test.utils import setup_test_environment, teardown_test_environment

    setup_test_environment()
    call_command("migrate", verbosity=0, interactive=False)
    yield
    teardown_test_environment()
    shutil.rmtree(_HOME, ignore_errors=True)


def _sessio_settings(kind: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The settings that put sessio's engine on ``kind``'s server, its namespace dropped after."""
    if kind == "sqlite":
        yield {"SESSIO_STORE": f"sqlite:///{tmp_path}/sessions.db"}
    elif kind == "redis":
        require_redis()
        prefix = unique("dj") + ":"
        try:
            yield {"SESSIO_STORE": REDIS_URL, "SESSIO_STORE_OPTIONS": {"prefix": prefix}}
        finally:
            from sessio.stores.redis import RedisStore

            with RedisStore(REDIS_URL, prefix=prefix) as leftovers:
                leftovers.clear_sync()
    else:
        require_postgres()
        schema = unique("sessio_dj")
        with dropping(schema):
            from sessio.stores.postgres import PostgresStore

            with PostgresStore(POSTGRES_URL, schema=schema) as store:
                store.create_schema_sync()
            yield {"SESSIO_STORE": POSTGRES_URL, "SESSIO_STORE_OPTIONS": {"schema": schema}}


def _engine_settings(name: str, tmp_path: Path) -> Iterator[str]:
    kind = name.removeprefix("sessio-")
    if name == "django-db":
        with override_settings(SESSION_ENGINE=DJANGO_DB):
            yield DJANGO_DB
        return
    for values in _sessio_settings(kind, tmp_path):
        with override_settings(SESSION_ENGINE=ENGINE, **values):
            yield ENGINE


SESSIO = [
    pytest.param("sessio-sqlite"),
    pytest.param("sessio-redis", marks=pytest.mark.redis),
    pytest.param("sessio-postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=SESSIO)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[type[SessionBase]]:
    """sessio's SessionStore on each store."""
    for name in _engine_settings(request.param, tmp_path):
        yield import_module(name).SessionStore


@pytest.fixture(params=[*SESSIO, pytest.param("django-db")])
def reference(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[type[SessionBase]]:
    """sessio's SessionStore on each store, and Django's database backend beside them."""
    for name in _engine_settings(request.param, tmp_path):
        yield import_module(name).SessionStore
    if request.param == "django-db":
        from django.contrib.sessions.models import Session

        Session.objects.all().delete()


@pytest.fixture
async def abackend(backend: type[SessionBase]) -> AsyncIterator[type[SessionBase]]:
    """:func:`backend` for async tests: the async connections close with the test's loop."""
    yield backend
    from sessio.integrations.django import store

    await store().close()


@pytest.fixture
async def areference(reference: type[SessionBase]) -> AsyncIterator[type[SessionBase]]:
    """:func:`reference` for async tests."""
    yield reference
    if reference.__module__.startswith("sessio"):
        from sessio.integrations.django import store

        await store().close()
