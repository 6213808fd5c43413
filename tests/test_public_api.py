"""The public API: ``__all__`` sorted and honest, every name importable and documented."""

from __future__ import annotations

import importlib
import inspect
import types
from typing import Any

import pytest

import sessio

MODULES = [
    "sessio",
    "sessio.codec",
    "sessio.csrf",
    "sessio.errors",
    "sessio.events",
    "sessio.ids",
    "sessio.keys",
    "sessio.manager",
    "sessio.policy",
    "sessio.principal",
    "sessio.sealed",
    "sessio.session",
    "sessio.typed",
    "sessio.stores",
    "sessio.stores.base",
    "sessio.stores.client",
    "sessio.stores.encrypted",
    "sessio.stores.encrypted_cookie",
    "sessio.stores.file",
    "sessio.stores.jwt",
    "sessio.stores.memory",
    "sessio.stores.signed",
    "sessio.stores.sqlite",
    "sessio.stores.url",
    "sessio.transports",
    "sessio.transports.base",
    "sessio.transports.cookies",
    "sessio.transports.signing",
]


def public_members(cls: type) -> list[tuple[str, Any]]:
    """The public methods and properties ``cls`` defines or inherits from sessio classes."""
    members = []
    for klass in cls.__mro__:
        if not klass.__module__.startswith("sessio"):
            continue
        for name, member in vars(klass).items():
            if name.startswith("_") or name in dict(members):
                continue
            if isinstance(member, (staticmethod, classmethod)):
                member = member.__func__
            if inspect.isfunction(member) or isinstance(member, property):
                members.append((name, member))
    return members


@pytest.mark.parametrize("module_name", MODULES)
def test_all_is_sorted_unique_and_importable(module_name: str) -> None:
    module = importlib.import_module(module_name)
    names = module.__all__
    assert names == sorted(names)
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(module, name), f"{module_name}.{name} is listed but missing"


@pytest.mark.parametrize("module_name", MODULES)
def test_every_public_name_is_documented(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert inspect.getdoc(module), f"{module_name} has no module docstring"
    undocumented = []
    for name in module.__all__:
        obj = getattr(module, name)
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue  # constants and instances are documented where they are defined
        if not inspect.getdoc(obj):
            undocumented.append(name)
        if inspect.isclass(obj):
            for member_name, member in public_members(obj):
                doc = member.__doc__ if isinstance(member, property) else inspect.getdoc(member)
                if not doc and not _documented_upstream(obj, member_name):
                    undocumented.append(f"{name}.{member_name}")
    assert undocumented == []


def _documented_upstream(cls: type, name: str) -> bool:
    """An override documented by the method it overrides (``inspect.getdoc`` rules)."""
    return bool(inspect.getdoc(getattr(cls, name, None)))


def test_the_package_namespace_holds_nothing_public_outside_all() -> None:
    extra = {
        name
        for name, value in vars(sessio).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"  # from __future__
    }
    assert extra == set(sessio.__all__) - {"__version__"}


def test_the_version_is_the_packaged_one() -> None:
    from importlib.metadata import version

    assert sessio.__version__ == version("sessio")


def test_names_are_re_exported_not_copied() -> None:
    from sessio import manager, policy, session, stores

    assert sessio.Session is session.Session
    assert sessio.SessionManager is manager.SessionManager
    assert sessio.Policy is policy.Policy
    assert sessio.SQLiteStore is stores.SQLiteStore
    for name in stores.__all__:
        if hasattr(sessio, name):
            assert getattr(sessio, name) is getattr(stores, name)


def test_the_core_imports_no_optional_dependency() -> None:
    import subprocess
    import sys

    optional = ["redis", "psycopg", "cryptography", "jwt", "starlette", "fastapi", "flask"]
    optional += ["pydantic", "msgspec", "httpx", "uvicorn", "pytest", "pytest_asyncio"]
    code = (
        "import sys, sessio, sessio.transports, sessio.stores, sessio.typed\n"
        f"print(sorted(m for m in {optional!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


def test_server_stores_are_exported_lazily() -> None:
    """``sessio.stores`` names RedisStore and PostgresStore, importing their modules on use."""
    import subprocess
    import sys

    code = (
        "import sys, sessio.stores as stores\n"
        "def loaded(): return sorted(m for m in sys.modules if m.split('.')[0] in "
        "('redis', 'psycopg', 'psycopg_pool') or m in ('sessio.stores.redis', "
        "'sessio.stores.postgres'))\n"
        "before = loaded()\n"
        "from sessio.stores import RedisStore, PostgresStore\n"
        "import sessio.stores.redis, sessio.stores.postgres\n"
        "same = [RedisStore is sessio.stores.redis.RedisStore, "
        "PostgresStore is sessio.stores.postgres.PostgresStore]\n"
        "print(before, same, 'RedisStore' in dir(stores))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[] [True, True] True"
    with pytest.raises(AttributeError, match="NoSuchStore"):
        _ = sessio.stores.NoSuchStore  # type: ignore[attr-defined]
