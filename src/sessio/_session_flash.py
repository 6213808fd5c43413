"""A session's flash messages: queued for the next page that reads them, one store field each.

Mixed into :class:`~sessio.Session`, which owns the state (:class:`~sessio.flash.Flashes`);
no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .codec import Codec
from .flash import NO_FLASHES, Flashes

__all__ = ["SessionFlashes"]


class SessionFlashes:
    """Flash messages, for :class:`~sessio.Session`."""

    # Owned by Session (its slots): declared for the type checker.
    is_accessed: bool
    _codec: Codec
    _clock: Callable[[], float]
    _flashes: Flashes
    _check_alive: Callable[[], None]  # TrackedDict's, later in the method order

    def flash(self, kind: str, message: Any) -> None:
        """Queue a message for the next page that reads it (``kind``: "success", "error"...)."""
        self._check_alive()
        self._codec.dumps(message, key=f"flash:{kind}")
        if self._flashes is NO_FLASHES:
            self._flashes = Flashes()
        self._flashes.add(kind, message, self._clock())

    def peek_flash(self, kind: str | None = None) -> list[Any]:
        """The queued messages (of ``kind``, or all), left in place."""
        self.is_accessed = True
        return self._flashes.peek(kind)

    def has_flash(self, kind: str | None = None) -> bool:
        """Whether a message (of ``kind``) is queued."""
        self.is_accessed = True
        return self._flashes.has(kind)

    def pop_flash(self, kind: str) -> list[Any]:
        """The queued messages of ``kind``, consumed."""
        self.is_accessed = True
        return [message for _, message in self._flashes.take(kind)]

    def flashes(self) -> list[tuple[str, Any]]:
        """Every queued ``(kind, message)``, consumed."""
        self.is_accessed = True
        return self._flashes.take(None)

    def clear_flash(self) -> None:
        """Drop every queued message."""
        self._flashes.drop()
