"""examples/django/app.py runs: migrate, then a sign-in, the device list and a sign-out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
APP = ROOT / "examples" / "django" / "app.py"

DRIVE = """
import sys
sys.path.insert(0, sys.argv_path)
import app  # the example configures Django as it is imported
from django.test import Client
c = Client(HTTP_USER_AGENT="Example/1")
assert c.get("/").status_code == 200
r = c.post("/login/", {"username": "demo", "password": "demo"})
assert r.status_code == 302, r.status_code
page = c.get("/").content.decode()
assert "Signed in as <strong>demo</strong>" in page and "Welcome, demo." in page, page
assert "Example/1" in page and "this one" in page, page
assert c.post("/others-out/").status_code == 302
assert c.post("/logout/").status_code == 302
assert "Signed out." in c.get("/").content.decode()
print("ok")
"""


def test_the_example_app_runs(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "SESSIO_STORE": f"sqlite:///{tmp_path}/sessions.db",
    }
    run = [sys.executable, str(APP), "migrate", "-v0"]
    subprocess.run(run, cwd=tmp_path, env=env, check=True, timeout=120)
    code = DRIVE.replace("sys.argv_path", repr(str(APP.parent)))
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        timeout=120,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
