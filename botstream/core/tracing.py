"""Optional OpenTelemetry spans that continue the W3C `traceparent` carried in record headers.

Ingest starts (or continues) a trace and writes its `traceparent` into the Update record and headers;
streams copy it onto every Reply; sinks carry it to delivery. When OpenTelemetry is installed
(`pip install botstream[otel]`) and `OTEL_EXPORTER_OTLP_ENDPOINT` (or `BOTSTREAM_OTEL=console`) is
set, each stage records a span as a child of that context; otherwise `span()` is a no-op costing one
function call.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

_tracer: Any = None
_propagator: Any = None
_OFF = contextlib.nullcontext()  # reusable: entering it does nothing and yields None


def configure(service: str, environ: dict[str, str] | None = None, exporter: Any = None) -> bool:
    """Set up span export for this process; True when tracing is on. `exporter` is for tests."""
    global _tracer, _propagator
    env = os.environ if environ is None else environ
    endpoint, mode = env.get("OTEL_EXPORTER_OTLP_ENDPOINT"), env.get("BOTSTREAM_OTEL")
    if exporter is None and not endpoint and not mode:
        return False
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            ConsoleSpanExporter,
            SimpleSpanProcessor,
        )
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError:
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": f"botstream-{service}"}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    _tracer = provider.get_tracer("botstream")
    _propagator = TraceContextTextMapPropagator()
    return True


def enabled() -> bool:
    """True when spans are recorded (`configure` found an exporter)."""
    return _tracer is not None


def span(name: str, traceparent: str | bytes | None, **attributes: Any) -> contextlib.AbstractContextManager[Any]:
    """A span named `name`, child of `traceparent` (a W3C header value) when there is one; entered, it
    yields the span (None when tracing is off)."""
    if _tracer is None:
        return _OFF
    return _recorded_span(name, traceparent, attributes)


@contextlib.contextmanager
def _recorded_span(name: str, traceparent: str | bytes | None, attributes: dict[str, Any]) -> Iterator[Any]:
    if isinstance(traceparent, bytes):
        traceparent = traceparent.decode(errors="replace")
    context = _propagator.extract({"traceparent": traceparent}) if traceparent else None
    with _tracer.start_as_current_span(name, context=context,
                                       attributes={k: v for k, v in attributes.items() if v is not None}) as s:
        yield s


def reset() -> None:
    global _tracer, _propagator
    _tracer = _propagator = None
