"""Fixtures for the framework integrations: Starlette's test-client factory, a cwd of one's own."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _own_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The Starlette drop-in defaults to SQLiteStore("sessio.db"): keep it out of the checkout.
    monkeypatch.chdir(tmp_path)
