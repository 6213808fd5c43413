"""Fixtures for the framework integrations: a cwd of one's own, and the lifecycle suite's
``flavour`` (ASGI, WSGI, Flask) with its ``web`` site."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sessio import MemoryStore

from ..conftest import FakeClock
from .lifecycle_apps import FLAVOURS, Site, site


@pytest.fixture(autouse=True)
def _own_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The Starlette drop-in defaults to SQLiteStore("sessio.db"): keep it out of the checkout.
    monkeypatch.chdir(tmp_path)


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest) -> str:
    """Each integration in turn: ``"asgi"``, ``"wsgi"``, ``"flask"``."""
    return str(request.param)


@pytest.fixture
def web(flavour: str, clock: FakeClock) -> Iterator[Site]:
    """The lifecycle app of ``flavour`` over a MemoryStore, on the fake clock."""
    with site(flavour, MemoryStore(clock=clock), clock=clock) as built:
        yield built
