"""The store and managers behind Django's sessions, built once from the settings, rebuilt on change.

Django decides each session's expiry itself (``SESSION_COOKIE_AGE``, or ``set_expiry()``), so a
commit runs under a policy whose idle timeout is that session's age: the store record then lives
exactly as long as Django says. Loading trusts those record expiries (its own idle timeout is a
century); the policy's ``ttl`` still caps every session, at load and at commit.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

from django.core.signals import setting_changed

from ...events import EventKind, Events, SessionEvent
from ...manager import SessionManager, SyncSessionManager
from ...policy import Policy
from ...stores import Store
from ._config import SETTING_NAMES, read_settings

__all__ = ["EVENTS", "Engine", "engine", "reset"]

#: The events of every Django session, whatever store the settings name (they outlive a rebuild).
EVENTS = Events()

#: How many per-age commit policies an engine keeps (the ages ``set_expiry()`` asks for).
MAX_AGES = 64

_LOAD_HORIZON = timedelta(days=36500)

security_log = logging.getLogger("django.security.SuspiciousSession")


def _for_age(policy: Policy, age: timedelta, *, rotate_on_login: bool) -> Policy:
    refresh = min(policy.refresh_interval, age / 2)
    return policy.replace(
        idle_timeout=age,
        refresh_interval=refresh,
        # Django's create() stores an empty session, and a save() writes only what changed.
        save_uninitialized=True,
        resave=False,
        rotate_on_login=rotate_on_login,
    )


class Engine:
    """One store, the managers that load from it, and one commit policy per session age."""

    def __init__(self, store: Store, policy: Policy) -> None:
        self.store = store
        #: The policy of the settings (its idle timeout is replaced per session).
        self.policy = policy
        # Django's login() already cycles or flushes the key, so a sessio login() must not
        # rotate it again; the integration rotates a re-authentication itself.
        loading = _for_age(policy, _LOAD_HORIZON, rotate_on_login=False)
        self.loader = SyncSessionManager(store, loading, events=EVENTS)
        self.async_loader = SessionManager(store, loading, events=EVENTS)
        self._writers: dict[float, tuple[SyncSessionManager, SessionManager]] = {}
        self._lock = threading.Lock()

    def writer(self, age: float) -> SyncSessionManager:
        """The sync manager that commits a session Django gives ``age`` seconds (> 0)."""
        return self._pair(age)[0]

    def async_writer(self, age: float) -> SessionManager:
        """The async manager that commits a session Django gives ``age`` seconds (> 0)."""
        return self._pair(age)[1]

    def _pair(self, age: float) -> tuple[SyncSessionManager, SessionManager]:
        pair = self._writers.get(age)
        if pair is not None:
            return pair
        policy = _for_age(self.policy, timedelta(seconds=age), rotate_on_login=False)
        pair = (
            SyncSessionManager(self.store, policy, events=EVENTS),
            SessionManager(self.store, policy, events=EVENTS),
        )
        with self._lock:
            if len(self._writers) >= MAX_AGES:  # set_expiry(datetime) gives a new age each time
                del self._writers[next(iter(self._writers))]
            self._writers[age] = pair
        return pair


_current: Engine | None = None
_building = threading.Lock()


def engine() -> Engine:
    """The engine of the current settings, built on first use."""
    global _current
    current = _current
    if current is None:
        with _building:
            if _current is None:
                config = read_settings()
                _current = Engine(config.store, config.policy)
            current = _current
    return current


def reset() -> None:
    """Forget the engine (closing its store's sync connections); the next use rebuilds it."""
    global _current
    with _building:
        old, _current = _current, None
    if old is not None:
        old.store.close_sync()


def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in SETTING_NAMES:
        reset()


def _report_corrupt(event: SessionEvent) -> None:
    # Django's own backends log an undecodable session under this name; keep that contract
    # for the records sessio itself finds corrupt (their values are checked where they decode).
    if event.kind is EventKind.CORRUPT:
        security_log.warning("Session data corrupted")


setting_changed.connect(_settings_changed, dispatch_uid="sessio.integrations.django.settings")
EVENTS.subscribe(_report_corrupt)
