"""Fixtures for the framework integrations: Starlette's test-client factory, a cwd of one's own."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient


@pytest.fixture(autouse=True)
def _own_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The Starlette drop-in defaults to SQLiteStore("sessio.db"): keep it out of the checkout.
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def test_client_factory() -> Callable[..., TestClient]:
    """Starlette's fixture of the same name: builds a TestClient for an app."""

    def factory(app: Any, **kwargs: Any) -> TestClient:
        return TestClient(app, **kwargs)

    return factory
