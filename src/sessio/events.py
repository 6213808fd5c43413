"""Events: every change in a session's life is announced to listeners, never with a raw ID."""

from __future__ import annotations

import dataclasses
import enum
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["EventKind", "Events", "SessionEvent"]

logger = logging.getLogger("sessio.events")


class EventKind(str, enum.Enum):
    """What happened."""

    CREATED = "created"
    LOADED = "loaded"
    SAVED = "saved"
    TOUCHED = "touched"
    ROTATED = "rotated"
    AUTHENTICATED = "authenticated"
    LOGGED_OUT = "logged_out"
    DESTROYED = "destroyed"
    EXPIRED = "expired"
    EVICTED = "evicted"
    REVOKED = "revoked"
    #: A commit found its session gone from the store (revoked, evicted, destroyed or expired
    #: while the request held it): nothing was written and the client was told to forget it.
    VANISHED = "vanished"
    #: A commit found its session rotated by a parallel request of another principal (an
    #: anonymous request in flight during a login): nothing was written, the token left alone.
    SUPERSEDED = "superseded"
    #: A commit found its session rotated by a parallel request of the same principal (a
    #: double-submitted login): its changes went to the successor, whose ID it handed out.
    FORWARDED = "forwarded"
    REJECTED = "rejected"
    CORRUPT = "corrupt"
    INVALID = "invalid"  # a client-side token failed to verify (tampered, wrong key, revoked)
    CSRF_FAILED = "csrf_failed"
    #: A legacy cookie (sessio.legacy) was imported into a new server-side session.
    MIGRATED = "migrated"
    #: A stored session was used from another IP network or user-agent family. The detail
    #: holds the coarse old/new values (``network_old``/``network_new``, ``user_agent_old``/
    #: ``user_agent_new``) and ``action``: ``"none"``, ``"flag"`` or ``"end"`` (policy ``bind``).
    CLIENT_CHANGED = "client_changed"


@dataclasses.dataclass(frozen=True, slots=True)
class SessionEvent:
    """One event. ``session`` is a short hash of the store key, never the session ID."""

    kind: EventKind
    session: str | None
    principal: str | None
    at: float
    detail: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Plain data, e.g. for structured logging."""
        return {
            "event": self.kind.value,
            "session": self.session,
            "principal": self.principal,
            "at": self.at,
            **self.detail,
        }


Listener = Callable[[SessionEvent], None]


class Events:
    """Listeners of a manager's events: ``manager.events.subscribe(fn)`` or ``@manager.events``.

    Listeners run synchronously, in subscription order, after the store call they describe
    succeeded. A listener that raises is logged with its traceback and does not stop the others
    or the request: auditing must not take sessions down.
    """

    def __init__(self) -> None:
        #: The listeners, in subscription order: a tuple replaced on every change, so emitting
        #: iterates a snapshot and "anyone listening?" is a plain truth test.
        self.listeners: tuple[Listener, ...] = ()
        self._changing = threading.Lock()  # two threads subscribing at once both stay

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Add ``listener``; returns a function that removes it."""
        with self._changing:
            self.listeners = (*self.listeners, listener)

        def unsubscribe() -> None:
            with self._changing:
                listeners = list(self.listeners)
                listeners.remove(listener)  # ValueError if already removed, as list.remove
                self.listeners = tuple(listeners)

        return unsubscribe

    def __call__(self, listener: Listener) -> Listener:
        """Decorator form of :meth:`subscribe`."""
        self.subscribe(listener)
        return listener

    def __bool__(self) -> bool:
        return bool(self.listeners)

    def emit(self, event: SessionEvent) -> None:
        """Deliver ``event`` to every listener."""
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:
                logger.exception(
                    "session event listener %r failed on %s", listener, event.kind.value
                )
