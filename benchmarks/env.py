"""The benchmark's own environment: build ``benchmarks/.venv`` with the pinned peers, re-exec there.

The peers (starsessions, Flask-Session...) never enter the project's environment: they live in
``benchmarks/.venv``, rebuilt whenever ``requirements.txt`` or ``pyproject.toml`` changes, so
one command measures the exact versions the results file names.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

__all__ = ["ROOT", "VENV", "ensure_venv", "inside_venv"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = HERE / ".venv"
REQUIREMENTS = HERE / "requirements.txt"
_STAMP = VENV / ".sessio-bench-stamp"
_GUARD = "SESSIO_BENCH_REEXEC"


def _python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def inside_venv() -> bool:
    """Whether this interpreter is the benchmark environment's."""
    return Path(sys.prefix).resolve() == VENV.resolve()


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for path in (REQUIREMENTS, ROOT / "pyproject.toml"):
        digest.update(path.read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def ensure_venv(argv: list[str]) -> None:
    """Build or refresh ``benchmarks/.venv`` if needed, then replace this process with it.

    Returns only when already running inside the benchmark environment.
    """
    if inside_venv():
        return
    if os.environ.get(_GUARD):
        sys.exit(f"benchmarks: re-exec into {VENV} did not land there (sys.prefix={sys.prefix})")
    fingerprint = _fingerprint()
    if not _python().exists() or not _STAMP.exists() or _STAMP.read_text() != fingerprint:
        print(
            f"benchmarks: installing the pinned peers into {VENV.relative_to(ROOT)} ...", flush=True
        )
        if not _python().exists():
            venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        pip = [str(_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        for args in (["--upgrade", "pip"], ["-e", ".[all]", "-r", str(REQUIREMENTS)]):
            done = subprocess.run([*pip, *args], capture_output=True, text=True, cwd=ROOT)
            if done.returncode != 0:  # pip's chatter is shown only when it matters
                sys.stderr.write(done.stdout + done.stderr)
                sys.exit(f"benchmarks: pip install {' '.join(args)} failed")
        _STAMP.write_text(fingerprint)
    os.environ[_GUARD] = "1"
    os.chdir(ROOT)
    python = str(_python())
    os.execv(python, [python, "-m", "benchmarks", *argv])
