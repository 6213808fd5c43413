"""A small in-process limit on failed logins, per username and per client address."""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Callable

from ..errors import ConfigurationError

__all__ = ["LoginThrottle"]


@dataclasses.dataclass(kw_only=True)
class LoginThrottle:
    """Refuses logins for a key (a username, an IP) after ``max_failures`` within ``window``.

    Deliberately simple: one process, memory only, at most ``max_keys`` keys (the least
    recently failing are forgotten first). A real deployment puts this in front of its
    identity provider, usually in Redis.
    """

    max_failures: int = 5
    window: float = 300.0
    max_keys: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _failures: collections.OrderedDict[str, list[float]] = dataclasses.field(
        default_factory=collections.OrderedDict, init=False, repr=False
    )

    def __post_init__(self) -> None:
        if self.max_failures < 1 or self.window <= 0 or self.max_keys < 1:
            raise ConfigurationError("max_failures, window and max_keys must be positive")

    def _recent(self, key: str) -> list[float]:
        horizon = self.clock() - self.window
        times = [t for t in self._failures.get(key, ()) if t > horizon]
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times

    def blocked(self, *keys: str) -> bool:
        """Whether any of ``keys`` has used up its failures."""
        return any(len(self._recent(key)) >= self.max_failures for key in keys)

    def failed(self, *keys: str) -> None:
        """Record one failure against each of ``keys``."""
        now = self.clock()
        for key in keys:
            self._recent(key)
            self._failures.setdefault(key, []).append(now)
            self._failures.move_to_end(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        """Forget the failures of ``key`` (a correct password clears its username)."""
        self._failures.pop(key, None)
