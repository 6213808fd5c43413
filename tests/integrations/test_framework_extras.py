"""Without its framework, each integration fails to import with the pip line that fixes it."""

from __future__ import annotations

import importlib
import sys

import pytest

from sessio.errors import MissingDependency


@pytest.mark.parametrize(
    ("module", "framework", "extra"),
    [
        ("aiohttp", "aiohttp", "aiohttp"),
        ("litestar", "litestar", "litestar"),
        ("quart", "quart", "quart"),
    ],
)
def test_a_missing_framework_names_its_extra(
    module: str, framework: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"sessio.integrations.{module}"
    monkeypatch.delitem(sys.modules, name, raising=False)
    for loaded in [m for m in sys.modules if m == framework or m.startswith(framework + ".")]:
        monkeypatch.setitem(sys.modules, loaded, None)  # importing it, or any part, now fails
    monkeypatch.setitem(sys.modules, framework, None)
    with pytest.raises(MissingDependency, match=rf"pip install 'sessio\[{extra}\]'"):
        importlib.import_module(name)
