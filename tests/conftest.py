"""Shared fixtures: a controllable clock, and the rule for tests that need a real server."""

from __future__ import annotations

import os
import time

import pytest

#: Under CI a missing Redis or PostgreSQL fails the run instead of skipping.
IN_CI = os.environ.get("CI", "").lower() == "true"


def unavailable(what: str) -> None:
    """Skip for a user on a laptop without ``what``; fail under ``CI=true``."""
    message = f"{what} is not reachable"
    if IN_CI:
        pytest.fail(f"{message}, and CI=true requires it", pytrace=False)
    pytest.skip(message)


class FakeClock:
    """A clock that starts at the real time and moves only when told."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    """A :class:`FakeClock`."""
    return FakeClock()
