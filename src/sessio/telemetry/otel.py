"""OpenTelemetry for sessio: a span per store call, and metrics for calls, errors and events.

::

    from sessio.telemetry import otel

    otel.instrument(manager)      # the global tracer and meter providers, or pass your own

Spans are named ``sessio.store.<operation>`` (``load``, ``save``, ``delete``...), of kind
CLIENT, with the attributes ``sessio.store`` (the store class), ``sessio.operation``,
``sessio.outcome`` (``hit``/``miss``, ``applied``/``missing``/``exists``/``rejected``...),
``sessio.write`` (for saves: ``create``, ``update``, ``rotate``, ``rewrite``),
``sessio.round_trips`` and, on failure, ``error.type`` (sessio's error code) with the span's
status set to ERROR. Metrics (meter ``sessio``): ``sessio.store.operations`` and
``sessio.store.errors`` (counters), ``sessio.store.duration`` (histogram, seconds) and
``sessio.session.events`` (counter by ``sessio.event``). No session ID, token or store key is
ever an attribute. Requires ``sessio[otel]`` (opentelemetry-api; bring your own SDK).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import require
from ..events import SessionEvent
from ._observed import Call, observe

require("opentelemetry.trace", "otel")

from opentelemetry import metrics, trace  # noqa: E402
from opentelemetry.trace import SpanKind, Status, StatusCode  # noqa: E402

__all__ = ["OpenTelemetryRecorder", "instrument"]

_SCOPE = "sessio"


class OpenTelemetryRecorder:
    """Spans and metrics for one or more managers (see the module docs for the names)."""

    def __init__(self, *, tracer_provider: Any = None, meter_provider: Any = None) -> None:
        from .. import __version__

        self.tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE, __version__, meter_provider=meter_provider)
        self.operations = meter.create_counter(
            "sessio.store.operations", description="Store calls, by operation and outcome"
        )
        self.errors = meter.create_counter(
            "sessio.store.errors", description="Failed store calls, by operation and error code"
        )
        self.duration = meter.create_histogram(
            "sessio.store.duration", unit="s", description="Store call latency"
        )
        self.events = meter.create_counter(
            "sessio.session.events", description="Session events, by kind"
        )

    @contextmanager
    def call(self, call: Call) -> Iterator[None]:
        """A CLIENT span around one store call; its metrics once it ends."""
        with self.tracer.start_as_current_span(
            f"sessio.store.{call.operation}",
            kind=SpanKind.CLIENT,
            attributes={"sessio.store": call.store, "sessio.operation": call.operation},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                yield
            finally:
                attributes: dict[str, Any] = {
                    "sessio.store": call.store,
                    "sessio.operation": call.operation,
                    "sessio.outcome": call.outcome,
                }
                if call.write is not None:
                    attributes["sessio.write"] = call.write
                span.set_attributes({**attributes, "sessio.round_trips": 1})
                if call.error is not None:
                    span.set_attribute("error.type", call.error)
                    span.set_status(Status(StatusCode.ERROR, call.error))
                    self.errors.add(1, {**attributes, "error.type": call.error})
                self.operations.add(1, attributes)
                self.duration.record(call.seconds, attributes)

    def event(self, event: SessionEvent) -> None:
        """Count ``event`` by its kind."""
        self.events.add(1, {"sessio.event": event.kind.value})


def instrument(
    manager: Any, *, tracer_provider: Any = None, meter_provider: Any = None
) -> OpenTelemetryRecorder:
    """Trace and measure ``manager`` (a SessionManager or SyncSessionManager); call it once."""
    recorder = OpenTelemetryRecorder(tracer_provider=tracer_provider, meter_provider=meter_provider)
    observe(manager, recorder)
    return recorder
