"""Django drop-in: ``SESSION_ENGINE = "sessio.integrations.django"`` keeps ``request.session``,
``login()``, ``logout()``, messages and the admin working, over any sessio store.

::

    # settings.py  (pip install 'sessio[django]')
    SESSION_ENGINE = "sessio.integrations.django"
    SESSIO_STORE = "redis://127.0.0.1:6379/0"   # or "sqlite:///sessions.db", "postgresql://..."

What Django's own backends do not: session IDs hashed at rest; a save writes only the keys it
changed, so two parallel requests changing different keys both land; a session logged out or
revoked elsewhere is never written back; every session of a user is indexed (``login()`` files
it), for :mod:`~sessio.integrations.django.devices` ("log out everywhere else") and the
policy's per-user session limit; :data:`events` announces every change in a session's life.
The settings are described in :mod:`sessio.integrations.django._config`.
"""

from __future__ import annotations

try:
    import django  # noqa: F401
except ImportError:  # pragma: no cover - exercised only without the extra
    from ...errors import require

    require("django", "django")
    raise

from ...stores import Store
from . import devices
from ._engine import EVENTS as events
from ._engine import engine as _engine
from ._store import SessionLimitReached, SessionStore

__all__ = ["SessionLimitReached", "SessionStore", "devices", "events", "store"]


def store() -> Store:
    """The sessio store the settings name (built on first use; a settings change rebuilds it)."""
    return _engine().store
