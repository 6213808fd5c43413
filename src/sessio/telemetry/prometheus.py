"""Prometheus metrics for sessio, through prometheus-client.

::

    from sessio.telemetry import prometheus

    prometheus.instrument(manager)     # into prometheus_client's default REGISTRY

Metrics (``namespace`` defaults to ``sessio``):

* ``sessio_store_operations_total{store, operation, outcome}`` -- every store call; loads are
  ``hit`` or ``miss``, saves ``applied``, ``missing`` (the session was gone), ``exists`` or
  ``rejected`` (the concurrency limit), deletes ``deleted`` or ``absent``;
* ``sessio_store_writes_total{store, write, outcome}`` -- saves by kind: ``create``,
  ``update``, ``rotate`` (ID rotations), ``rewrite``;
* ``sessio_store_errors_total{store, operation, code}`` -- failures by sessio error code;
* ``sessio_store_operation_seconds{store, operation}`` -- latency histogram;
* ``sessio_session_events_total{event}`` -- every session event (``created``, ``touched``,
  ``rotated``, ``expired``, ``evicted``, ``revoked``, ``vanished``, ``csrf_failed``...).

Several managers may share one :class:`PrometheusMetrics`. Requires ``sessio[prometheus]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import require
from ..events import SessionEvent
from ._observed import Call, observe

require("prometheus_client", "prometheus")

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram  # noqa: E402

__all__ = ["PrometheusMetrics", "instrument"]

#: Latency buckets, seconds: sub-millisecond local stores to multi-second outages.
BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class PrometheusMetrics:
    """sessio's metrics, registered once in ``registry``; a :class:`~sessio.telemetry.Recorder`."""

    def __init__(
        self, registry: CollectorRegistry = REGISTRY, *, namespace: str = "sessio"
    ) -> None:
        self.operations = Counter(
            "store_operations", "Store calls by operation and outcome",
            ["store", "operation", "outcome"], namespace=namespace, registry=registry,
        )  # fmt: skip
        self.writes = Counter(
            "store_writes", "Store writes by kind and outcome",
            ["store", "write", "outcome"], namespace=namespace, registry=registry,
        )  # fmt: skip
        self.errors = Counter(
            "store_errors", "Failed store calls by error code",
            ["store", "operation", "code"], namespace=namespace, registry=registry,
        )  # fmt: skip
        self.seconds = Histogram(
            "store_operation_seconds", "Store call latency",
            ["store", "operation"], namespace=namespace, registry=registry, buckets=BUCKETS,
        )  # fmt: skip
        self.events = Counter(
            "session_events", "Session events by kind",
            ["event"], namespace=namespace, registry=registry,
        )  # fmt: skip

    @contextmanager
    def call(self, call: Call) -> Iterator[None]:
        """Count and time one store call."""
        try:
            yield
        finally:
            self.operations.labels(call.store, call.operation, call.outcome).inc()
            self.seconds.labels(call.store, call.operation).observe(call.seconds)
            if call.write is not None and call.error is None:
                self.writes.labels(call.store, call.write, call.outcome).inc()
            if call.error is not None:
                self.errors.labels(call.store, call.operation, call.error).inc()

    def event(self, event: SessionEvent) -> None:
        """Count ``event`` by its kind."""
        self.events.labels(event.kind.value).inc()

    def instrument(self, manager: Any) -> None:
        """Measure ``manager`` (a SessionManager or SyncSessionManager); once per manager."""
        observe(manager, self)


_default: PrometheusMetrics | None = None


def instrument(manager: Any, metrics: PrometheusMetrics | None = None) -> PrometheusMetrics:
    """Measure ``manager`` into ``metrics`` (default: one set in the default REGISTRY)."""
    global _default
    if metrics is None:
        if _default is None:
            _default = PrometheusMetrics()
        metrics = _default
    metrics.instrument(manager)
    return metrics
