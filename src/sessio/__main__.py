"""``python -m sessio``: the same as the ``sessio`` command."""

import sys

from .cli import main

sys.exit(main())
