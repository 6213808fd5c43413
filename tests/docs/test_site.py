"""The documentation site builds with ``mkdocs build --strict``: every page in the nav, every
link and anchor resolves, and mkdocstrings renders the API reference from the sources."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # a subprocess, about ten seconds
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    missing = [
        name
        for name in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")
        if importlib.util.find_spec(name.split(".")[0]) is None
        or importlib.util.find_spec(name) is None
    ]
    if missing:
        reason = (
            f"the docs extra is not installed (missing {', '.join(missing)}): pip install '.[docs]'"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    # The sources of this checkout come first, so the reference documents what is tested.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    build = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stderr + build.stdout
    reference = (site / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("sessio.SessionManager", "sessio.Policy", "sessio.stores.RedisStore"):
        assert f'id="{name}"' in reference, f"{name} is missing from the API reference"
    assert ":class:" not in reference, "a Sphinx role leaked into the API reference"
    assert (site / "policy" / "index.html").is_file()
