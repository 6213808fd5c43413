"""Zero-logout migration: sessions of the old cookie middleware carried over to sessio.

Pass a reader as ``legacy=`` to a sessio middleware (``StarletteCookie`` for Starlette's
``SessionMiddleware``, ``FlaskCookie`` for Flask's cookie sessions); ``docs/migration-zero-logout.md``
tells the whole story.
"""

from __future__ import annotations

from ._adopt import adopt, adopt_sync
from ._cookies import FlaskCookie, Found, LegacyCookie, StarletteCookie

__all__ = ["FlaskCookie", "Found", "LegacyCookie", "StarletteCookie", "adopt", "adopt_sync"]
