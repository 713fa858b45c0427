"""Spans continue the traceparent that travels in the records: one trace from ingest to sinks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from botstream.core import tracing
from botstream.streams.handlers import PlannedReply
from tests.pipeline import make_update

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exp = InMemorySpanExporter()
    assert tracing.configure("test", environ={}, exporter=exp)
    yield exp
    tracing.reset()


def test_spans_are_children_of_the_records_traceparent(exporter: InMemorySpanExporter) -> None:
    with tracing.span("streams.update", f"00-{TRACE_ID}-{PARENT}-01", chat_key="telegram:echo:1"):
        pass
    with tracing.span("sinks.deliver", f"00-{TRACE_ID}-{PARENT}-01".encode()):
        pass
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["streams.update", "sinks.deliver"]
    assert all(format(s.context.trace_id, "032x") == TRACE_ID for s in spans)
    assert all(format(s.parent.span_id, "016x") == PARENT for s in spans)
    assert spans[0].attributes["chat_key"] == "telegram:echo:1"


def test_without_configuration_span_is_a_no_op() -> None:
    tracing.reset()
    assert not tracing.configure("test", environ={})
    with tracing.span("x", f"00-{TRACE_ID}-{PARENT}-01") as s:
        assert s is None


def test_replies_carry_the_updates_traceparent() -> None:
    from tests.unit.streams.test_processor import build

    proc, _, _ = build()
    update = make_update("1", "hi", traceparent=f"00-{TRACE_ID}-{PARENT}-01")
    reply = proc.build_reply(update, "telegram:echo:1", 0, PlannedReply(text="x"), 5)
    assert reply["traceparent"] == update["traceparent"]
