"""The ``sessio`` command: look after a session store from the shell, and run the demo.

Built on click and rich (``pip install 'sessio[cli]'``); :func:`main` says which extra is
missing instead of failing with an ``ImportError``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ..errors import MissingDependency, require

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sessio`` command; returns its exit code (see ``sessio --help``)."""
    try:
        click = require("click", "cli")
        require("rich", "cli")
    except MissingDependency as exc:
        print(f"sessio: {exc}", file=sys.stderr)
        return 4
    from ._app import cli

    try:
        result = cli.main(args=list(argv) if argv is not None else None, prog_name="sessio",
                          standalone_mode=False)  # fmt: skip
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return int(exc.exit_code)
    except click.exceptions.Abort:
        print("sessio: aborted", file=sys.stderr)
        return 130
    return int(result or 0)
