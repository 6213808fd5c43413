"""Every Python block of the README and of docs/ runs, page by page, as a reader would paste it.

The blocks of one page run in order in one namespace (a page is one script), in a fresh
working directory, so a later block may use what an earlier one built. Top-level ``await``
works, as it does in ``python -m asyncio``. A page may give a block hidden set-up the reader
does not need to see (a placeholder token, a fake request) in an HTML comment right before it::

    <!-- setup
    token_from_client = None
    -->
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import os
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

_BLOCK = re.compile(
    r"(?:<!--\s*setup\n(?P<setup>.*?)-->\s*\n)?^```(?P<lang>[\w+-]*)[^\n]*\n(?P<code>.*?)^```\s*$",
    re.DOTALL | re.MULTILINE,
)


def blocks(page: Path) -> Iterator[tuple[int, str]]:
    """``(line, code)`` of each Python block of ``page``, its hidden set-up first."""
    text = page.read_text(encoding="utf-8")
    for match in _BLOCK.finditer(text):
        if match["lang"] not in ("python", "py"):
            continue
        line = text.count("\n", 0, match.start("code")) + 1
        yield line, (match["setup"] or "") + match["code"]


def run(code: str, namespace: dict[str, Any], where: str) -> None:
    compiled = compile(code, where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    result = eval(compiled, namespace)  # our own documentation, nothing from outside
    if inspect.iscoroutine(result):
        asyncio.run(result)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_python_block_runs(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SESSIO_SECRET_KEY", "s" * 43)
    # A real module in sys.modules: frameworks (Litestar, FastAPI) resolve a handler's type
    # hints through sys.modules[handler.__module__], as they would for an imported app.
    module = types.ModuleType(f"snippets_{page.stem}")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    namespace: dict[str, Any] = module.__dict__
    ran = 0
    for line, code in blocks(page):
        run(code, namespace, f"{page.relative_to(ROOT)}:{line}")
        ran += 1
    if not ran:
        pytest.skip(f"{page.name} has no Python block")
    assert os.getcwd() == str(tmp_path)


def test_the_block_finder_sees_setup_and_skips_other_languages(tmp_path: Path) -> None:
    page = tmp_path / "p.md"
    page.write_text(
        "text\n<!-- setup\nx = 1\n-->\n```python\ny = x + 1\n```\n```console\n$ ls\n```\n"
        "```py\nz = y\n```\n",
        encoding="utf-8",
    )
    found = list(blocks(page))
    assert found == [(6, "x = 1\ny = x + 1\n"), (12, "z = y\n")]
