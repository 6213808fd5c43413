"""Spans, metrics and logs read back from the real exporters during real ASGI and WSGI requests."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from sessio import MemoryStore, Principal, SessionManager, SQLiteStore, SyncSessionManager
from sessio.errors import StoreUnavailable
from sessio.integrations.asgi import SessionMiddleware as ASGISessionMiddleware
from sessio.integrations.asgi import get_session
from sessio.integrations.wsgi import SessionMiddleware as WSGISessionMiddleware
from sessio.stores.wrapper import StoreWrapper
from sessio.telemetry import ObservedStore, logs, otel, prometheus

SECRET = "s" * 32


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    session = get_session(scope)
    if scope["path"] == "/login":
        session.login(Principal("ada"))
    elif scope["path"] == "/count":
        session["n"] = session.get("n", 0) + 1
    body = json.dumps({"n": session.get("n")}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    session = environ["sessio.session"]
    if environ["PATH_INFO"] == "/count":
        session["n"] = session.get("n", 0) + 1
    start_response("200 OK", [("content-type", "application/json")])
    return [json.dumps({"n": session.get("n")}).encode()]


@pytest.fixture
def tracing() -> Iterator[
    tuple[TracerProvider, InMemorySpanExporter, MeterProvider, InMemoryMetricReader]
]:
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    yield tracer_provider, exporter, meter_provider, reader
    meter_provider.shutdown()
    tracer_provider.shutdown()


def points(reader: InMemoryMetricReader, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    found = []
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    found.extend(metric.data.data_points)
    return found


async def test_otel_spans_and_metrics_through_asgi(tmp_path: Path, tracing: Any) -> None:
    tracer_provider, exporter, meter_provider, reader = tracing
    manager = SessionManager(SQLiteStore(tmp_path / "s.db"))
    otel.instrument(manager, tracer_provider=tracer_provider, meter_provider=meter_provider)
    app = ASGISessionMiddleware(asgi_app, manager=manager, secret_key=SECRET)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://t") as client:
        assert (await client.get("/count")).json() == {"n": 1}
        assert (await client.get("/count")).json() == {"n": 2}
        assert (await client.get("/")).json() == {"n": 2}

    spans = exporter.get_finished_spans()
    names = [s.name for s in spans]
    assert names.count("sessio.store.load") == 2  # the first request carried no token
    assert names.count("sessio.store.save") == 2
    saves = [s for s in spans if s.name == "sessio.store.save"]
    assert [s.attributes["sessio.write"] for s in saves] == ["create", "update"]
    assert all(s.attributes["sessio.outcome"] == "applied" for s in saves)
    assert {s.attributes["sessio.store"] for s in spans} == {"SQLiteStore"}
    session_key = manager.store.inner.page_sync().records[0].key  # type: ignore[attr-defined]
    for span in spans:  # no key, token or ID in any attribute
        assert all(session_key[:12] not in str(v) for v in span.attributes.values())

    loads = [p for p in points(reader, "sessio.store.operations")
             if p.attributes["sessio.operation"] == "load"]  # fmt: skip
    assert sum(p.value for p in loads) == 2
    assert {p.attributes["sessio.outcome"] for p in loads} == {"hit"}
    durations = points(reader, "sessio.store.duration")
    assert sum(p.count for p in durations) == 4
    events = {
        p.attributes["sessio.event"]: p.value for p in points(reader, "sessio.session.events")
    }
    assert events["created"] == 1


async def test_otel_marks_a_store_outage_as_an_error(tracing: Any) -> None:
    tracer_provider, exporter, meter_provider, reader = tracing

    class Down(StoreWrapper):
        async def around(self, operation: str, call: Any, *args: Any) -> Any:
            raise StoreUnavailable("the server went away")

    manager = SessionManager(Down(MemoryStore()))
    otel.instrument(manager, tracer_provider=tracer_provider, meter_provider=meter_provider)
    app = ASGISessionMiddleware(asgi_app, manager=manager, secret_key=SECRET)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://t") as client:
        first = await client.get("/count")  # a new session: the commit's create fails
    assert first.status_code == 503
    (span,) = exporter.get_finished_spans()
    assert span.attributes["error.type"] == "STORE_UNAVAILABLE"
    assert span.status.status_code.name == "ERROR"
    (error,) = points(reader, "sessio.store.errors")
    assert error.attributes["error.type"] == "STORE_UNAVAILABLE"


def test_prometheus_through_wsgi(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    metrics = prometheus.PrometheusMetrics(registry)
    manager = SyncSessionManager(SQLiteStore(tmp_path / "s.db"))
    metrics.instrument(manager)
    app = WSGISessionMiddleware(wsgi_app, manager=manager, secret_key=SECRET)
    with httpx.Client(transport=httpx.WSGITransport(app=app), base_url="https://t") as client:
        for expected in (1, 2, 3):
            assert client.get("/count").json() == {"n": expected}
        assert client.get("/").json() == {"n": 3}

    def value(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    assert value("sessio_store_operations_total", store="SQLiteStore", operation="load",
                 outcome="hit") == 3  # fmt: skip
    assert value("sessio_store_writes_total", store="SQLiteStore", write="create",
                 outcome="applied") == 1  # fmt: skip
    assert value("sessio_store_writes_total", store="SQLiteStore", write="update",
                 outcome="applied") == 2  # fmt: skip
    assert value("sessio_store_operation_seconds_count", store="SQLiteStore",
                 operation="load") == 3  # fmt: skip
    assert value("sessio_session_events_total", event="created") == 1


def test_prometheus_counts_misses_and_shares_one_registry_between_managers() -> None:
    registry = CollectorRegistry()
    metrics = prometheus.PrometheusMetrics(registry)
    first, second = SyncSessionManager(MemoryStore()), SyncSessionManager(MemoryStore())
    metrics.instrument(first)
    metrics.instrument(second)
    for manager in (first, second):
        manager.load("A" * 43)  # well formed, never issued: one store load, a miss
    assert (
        registry.get_sample_value(
            "sessio_store_operations_total",
            {"store": "MemoryStore", "operation": "load", "outcome": "miss"},
        )
        == 2
    )


def test_structured_event_logs(caplog: pytest.LogCaptureFixture) -> None:
    manager = SyncSessionManager(MemoryStore())
    stop = logs.log_events(manager)
    session = manager.load(None)
    session["n"] = 1
    with caplog.at_level(logging.INFO, logger="sessio.audit"):
        manager.commit(session)
    stop()
    created = [r for r in caplog.records if getattr(r, "sessio_event", None) == "created"]
    assert len(created) == 1
    record = created[0]
    assert record.getMessage() == "session created"
    for name in logs.FIELDS:
        assert hasattr(record, name)
    assert record.sessio_session == session.key[:12]  # type: ignore[attr-defined]
    assert session.id not in str(record.__dict__)


def test_observed_store_keeps_the_contract(tmp_path: Path) -> None:
    class Nothing:
        calls: list[str] = []

        def call(self, call: Any) -> Any:
            import contextlib

            self.calls.append(call.operation)
            return contextlib.nullcontext()

        def event(self, event: Any) -> None:
            pass

    store = ObservedStore(SQLiteStore(tmp_path / "s.db"), Nothing())
    manager = SyncSessionManager(store)
    session = manager.load(None)
    session["n"] = 1
    manager.commit(session)
    assert manager.load(session.id)["n"] == 1
    assert store.count_sync() == 1
    assert Nothing.calls == ["save", "load", "count"]
