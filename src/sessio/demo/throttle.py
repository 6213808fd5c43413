"""A small in-process limit on failed logins, per (username, address) and, looser, per address."""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from collections.abc import Callable

from ..errors import ConfigurationError

__all__ = ["LoginThrottle"]

#: ``("pair", username, address)`` or ``("address", address)``.
_Key = tuple[str, ...]


@dataclasses.dataclass(kw_only=True)
class LoginThrottle:
    """Refuses a login once too many attempts failed lately, counted before the password check.

    Two limits, within ``window`` seconds: ``max_failures`` per (username, address) pair, and
    the looser ``max_failures_per_address`` per address whatever the names. There is no limit
    per username alone: that would let anyone, anywhere, lock the real owner out by failing
    five times. A guesser spread over many addresses is slowed, not stopped; a real deployment
    puts its identity provider's limits (and a shared store, usually Redis) in front.

    :meth:`attempt` checks and counts in one step, under a lock and before the slow password
    check starts, so parallel attempts cannot all pass a check made before any of them failed.
    An attempt that turns out right is given back by :meth:`succeeded`. Memory holds at most
    ``max_keys`` keys (the least recently tried are forgotten first).
    """

    max_failures: int = 5
    max_failures_per_address: int = 20
    window: float = 300.0
    max_keys: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _attempts: collections.OrderedDict[_Key, list[float]] = dataclasses.field(
        default_factory=collections.OrderedDict, init=False, repr=False
    )
    _lock: threading.Lock = dataclasses.field(
        default_factory=threading.Lock, init=False, repr=False
    )

    def __post_init__(self) -> None:
        if min(self.max_failures, self.max_failures_per_address, self.max_keys) < 1:
            raise ConfigurationError(
                "max_failures, max_failures_per_address and max_keys must be >= 1"
            )
        if self.window <= 0:
            raise ConfigurationError("window must be positive")
        if self.max_failures_per_address < self.max_failures:
            raise ConfigurationError("max_failures_per_address must be at least max_failures")

    @staticmethod
    def _keys(username: str, address: str | None) -> tuple[_Key, _Key]:
        where = address or "unknown"
        return ("pair", username, where), ("address", where)

    def _recent(self, key: _Key, now: float) -> list[float]:
        horizon = now - self.window
        times = [t for t in self._attempts.get(key, ()) if t > horizon]
        if times:
            self._attempts[key] = times
        else:
            self._attempts.pop(key, None)
        return times

    def attempt(self, username: str, address: str | None) -> bool:
        """Whether one more login for ``username`` from ``address`` may be checked; if so, it is
        counted as a failure now (call :meth:`succeeded` when the password was right).

        ``username`` should be the canonical form, so ``Ada`` and ``ada`` share a count.
        """
        pair, where = self._keys(username, address)
        with self._lock:
            now = self.clock()
            if (
                len(self._recent(pair, now)) >= self.max_failures
                or len(self._recent(where, now)) >= self.max_failures_per_address
            ):
                return False
            for key in (pair, where):
                self._attempts.setdefault(key, []).append(now)
                self._attempts.move_to_end(key)
            while len(self._attempts) > self.max_keys:
                self._attempts.popitem(last=False)
            return True

    def succeeded(self, username: str, address: str | None) -> None:
        """The password was right: clear the pair's failures and give the address its attempt back."""
        pair, where = self._keys(username, address)
        with self._lock:
            self._attempts.pop(pair, None)
            times = self._attempts.get(where)
            if times:
                times.pop()  # the newest: any one of them would do, they only count
                if not times:
                    del self._attempts[where]

    def blocked(self, username: str, address: str | None) -> bool:
        """Whether :meth:`attempt` would refuse now (for display; it counts nothing)."""
        pair, where = self._keys(username, address)
        with self._lock:
            now = self.clock()
            return (
                len(self._recent(pair, now)) >= self.max_failures
                or len(self._recent(where, now)) >= self.max_failures_per_address
            )
