"""Loads an example app from examples/ (they are scripts, not a package)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load(framework: str) -> ModuleType:
    """``examples/<framework>/app.py`` as a module."""
    path = EXAMPLES / framework / "app.py"
    spec = importlib.util.spec_from_file_location(f"sessio_example_{framework}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # Litestar resolves handler annotations through it
    spec.loader.exec_module(module)
    return module
