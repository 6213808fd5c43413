"""Telemetry: sessio's store calls and session events as spans, metrics and structured logs.

Nothing here runs unless you ask for it, and the core never imports it::

    from sessio.telemetry import otel, prometheus, logs

    otel.instrument(manager)              # spans and metrics through OpenTelemetry (sessio[otel])
    prometheus.instrument(manager)        # counters and histograms in prometheus-client (sessio[prometheus])
    logs.log_events(manager)              # one structured log line per session event

Each instrumenting call wraps the manager's store in an :class:`ObservedStore` (every store
call timed, its outcome and error code recorded) and subscribes to the manager's events. No
raw session ID, token or store key reaches any span, metric or log line.
"""

from __future__ import annotations

from ._observed import Call, ObservedStore, Recorder, observe

__all__ = ["Call", "ObservedStore", "Recorder", "observe"]
