"""``python -m benchmarks``: build the benchmark environment if needed, then run the suite."""

from __future__ import annotations

import sys

from .env import ensure_venv

ensure_venv(sys.argv[1:])

from .cli import main  # noqa: E402 - only importable inside the benchmark environment

sys.exit(main(sys.argv[1:]))
