"""The failed-login limit: per key, within a window, bounded in memory."""

from __future__ import annotations

import pytest

from sessio.demo.throttle import LoginThrottle
from sessio.errors import ConfigurationError
from tests.conftest import FakeClock


def test_blocks_after_max_failures_until_the_window_passes(clock: FakeClock) -> None:
    throttle = LoginThrottle(max_failures=3, window=60, clock=clock)
    for _ in range(2):
        throttle.failed("name:ada", "ip:10.0.0.1")
    assert not throttle.blocked("name:ada")
    throttle.failed("name:ada", "ip:10.0.0.1")
    assert throttle.blocked("name:ada")
    assert throttle.blocked("name:bob", "ip:10.0.0.1")  # any key blocked is enough
    assert not throttle.blocked("name:bob", "ip:10.0.0.2")
    clock.advance(61)
    assert not throttle.blocked("name:ada", "ip:10.0.0.1")


def test_success_clears_the_username(clock: FakeClock) -> None:
    throttle = LoginThrottle(max_failures=2, window=60, clock=clock)
    throttle.failed("name:ada")
    throttle.succeeded("name:ada")
    throttle.failed("name:ada")
    assert not throttle.blocked("name:ada")


def test_memory_is_bounded(clock: FakeClock) -> None:
    throttle = LoginThrottle(max_failures=1, window=60, max_keys=3, clock=clock)
    for i in range(10):
        throttle.failed(f"ip:{i}")
    assert not throttle.blocked("ip:0")  # forgotten: the least recently failing go first
    assert throttle.blocked("ip:9")


def test_settings_are_validated() -> None:
    with pytest.raises(ConfigurationError):
        LoginThrottle(max_failures=0)
