"""The failed-login limit: counted before the check, per (name, address) and per address."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from sessio.demo.throttle import LoginThrottle
from sessio.errors import ConfigurationError
from tests.conftest import FakeClock


def test_blocks_a_pair_after_max_failures_until_the_window_passes(clock: FakeClock) -> None:
    throttle = LoginThrottle(max_failures=3, max_failures_per_address=10, window=60, clock=clock)
    assert [throttle.attempt("ada", "10.0.0.1") for _ in range(4)] == [True, True, True, False]
    assert throttle.blocked("ada", "10.0.0.1")
    # The same name from elsewhere, and another name from here, are not touched.
    assert throttle.attempt("ada", "10.0.0.2")
    assert throttle.attempt("bob", "10.0.0.1")
    clock.advance(61)
    assert not throttle.blocked("ada", "10.0.0.1")
    assert throttle.attempt("ada", "10.0.0.1")


def test_refused_attempts_do_not_extend_the_lock(clock: FakeClock) -> None:
    throttle = LoginThrottle(max_failures=2, window=60, clock=clock)
    throttle.attempt("ada", "10.0.0.1")
    throttle.attempt("ada", "10.0.0.1")
    for _ in range(5):
        clock.advance(10)
        assert not throttle.attempt("ada", "10.0.0.1")
    clock.advance(11)  # 61 s after the two that counted
    assert throttle.attempt("ada", "10.0.0.1")


def test_the_address_limit_is_looser_and_spans_every_name(clock: FakeClock) -> None:
    throttle = LoginThrottle(max_failures=5, max_failures_per_address=8, window=60, clock=clock)
    # Seven failures for names that do not exist lock nobody out...
    assert all(throttle.attempt(f"nobody{i}", "10.0.0.9") for i in range(7))
    assert throttle.attempt("ada", "10.0.0.9")
    # ...the eighth fills the address's allowance: every name from there waits.
    assert not throttle.attempt("ada", "10.0.0.9")
    assert not throttle.attempt("carol", "10.0.0.9")
    assert throttle.attempt("ada", "10.0.0.1")


def test_a_right_password_gives_its_attempt_back(clock: FakeClock) -> None:
    throttle = LoginThrottle(max_failures=2, max_failures_per_address=3, window=60, clock=clock)
    throttle.attempt("ada", "10.0.0.1")  # wrong
    throttle.attempt("ada", "10.0.0.1")  # right:
    throttle.succeeded("ada", "10.0.0.1")
    # The pair starts over, and the address is charged for the one failure only.
    assert throttle.attempt("ada", "10.0.0.1")
    assert throttle.attempt("bob", "10.0.0.1")
    assert not throttle.attempt("carol", "10.0.0.1")


def test_parallel_attempts_cannot_all_pass_the_check() -> None:
    """24 threads released at once: exactly ``max_failures`` of them get to check a password."""
    throttle = LoginThrottle(max_failures=5)
    start = threading.Barrier(24)

    def one() -> bool:
        start.wait(timeout=10)
        return throttle.attempt("ada", "10.0.0.1")

    with ThreadPoolExecutor(24) as pool:
        results = list(pool.map(lambda _: one(), range(24)))
    assert results.count(True) == 5


def test_memory_is_bounded(clock: FakeClock) -> None:
    throttle = LoginThrottle(max_failures=1, max_failures_per_address=1, max_keys=4, clock=clock)
    for i in range(10):
        throttle.attempt("ada", f"10.0.0.{i}")
    assert throttle.attempt("ada", "10.0.0.0")  # forgotten: the least recently tried go first
    assert not throttle.attempt("ada", "10.0.0.9")


@pytest.mark.parametrize(
    "options",
    [
        {"max_failures": 0},
        {"max_failures_per_address": 0},
        {"max_keys": 0},
        {"window": 0},
        {"max_failures": 6, "max_failures_per_address": 5},
    ],
)
def test_settings_are_validated(options: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        LoginThrottle(**options)  # type: ignore[arg-type]
