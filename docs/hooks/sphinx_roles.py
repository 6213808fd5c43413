"""A mkdocs hook: the docstrings' Sphinx roles (``:class:`~sessio.Policy```) read as code.

The sources keep Sphinx's roles, which IDEs and ``help()`` understand; mkdocstrings renders
them as a literal ``:class:`` before the code, so this drops the role and, as Sphinx does for a
leading ``~``, keeps only the last dotted part.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|meth|func|attr|mod|data|exc|obj|const):<code>(~?)([\w.]+)</code>")


def _code(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    return f"<code>{target.rsplit('.', 1)[-1] if tilde else target}</code>"


def on_page_content(html: str, **_: Any) -> str:
    """The page's HTML with every rendered role reduced to its code."""
    return _ROLE.sub(_code, html)
