"""Ingest's per-request work (issue 15): no INFO line per request, warnings for refusals rate-limited,
metric children looked up once, no tracing span (nor its context object) while tracing is off."""

from __future__ import annotations

import logging

import pytest
from ingest_shell_support import call, make_app, telegram_headers, telegram_update

from botstream.core import tracing
from botstream.ingest.metrics import IngestMetrics
from botstream.ingest.notices import RateLimitedWarnings


async def test_an_accepted_request_logs_nothing_at_info(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = make_app()
    with caplog.at_level(logging.INFO, logger="botstream.ingest"):
        for n in range(5):
            reply = await call(app, "POST", "/webhooks/telegram/tg", headers=telegram_headers(),
                               body=telegram_update(update_id=n))
            assert reply.status == 200
    assert [r for r in caplog.records if r.name.startswith("botstream.ingest")] == []


async def test_the_request_line_is_debug(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = make_app()
    with caplog.at_level(logging.DEBUG, logger="botstream.ingest.access"):
        await call(app, "POST", "/webhooks/telegram/tg", headers=telegram_headers(), body=telegram_update())
    [record] = [r for r in caplog.records if r.name == "botstream.ingest.access"]
    assert record.levelno == logging.DEBUG and "-> 200" in record.getMessage()


async def test_signature_failures_warn_once_per_interval_and_are_all_counted(
        caplog: pytest.LogCaptureFixture) -> None:
    app, _ = make_app()
    now = [0.0]
    app.warnings = RateLimitedWarnings(logging.getLogger("botstream.ingest.access"), 60.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="botstream.ingest"):
        for _ in range(50):
            reply = await call(app, "POST", "/webhooks/telegram/tg", headers=telegram_headers("wrong"),
                               body=telegram_update())
            assert reply.status == 401
        now[0] = 61.0
        await call(app, "POST", "/webhooks/telegram/tg", headers=telegram_headers("wrong"), body=telegram_update())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings
    assert "401 signature_mismatch (telegram)" in warnings[0]
    assert "49 more like it" in warnings[1]
    reply = await call(app, "POST", "/webhooks/telegram/nobody", headers=telegram_headers(), body=b"{}")
    assert reply.status == 404  # a stranger's probe: counted, never logged above DEBUG
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 2


def test_warnings_are_kept_apart_by_kind() -> None:
    logged: list[str] = []

    class Sink(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            logged.append(record.getMessage())

    logger = logging.getLogger("test.notices")
    logger.addHandler(Sink())
    logger.propagate = False
    warnings = RateLimitedWarnings(logger, 60.0, clock=lambda: 0.0)
    assert warnings.warn((401, "telegram", "signature_mismatch"), "a")
    assert warnings.warn((503, "telegram", "ack_timeout"), "b")
    assert not warnings.warn((401, "telegram", "signature_mismatch"), "a")
    assert logged == ["a", "b"]


def test_metric_children_are_looked_up_once_per_label_set(monkeypatch: pytest.MonkeyPatch) -> None:
    metrics = IngestMetrics()
    lookups = []
    real = IngestMetrics._child

    def counting(self: IngestMetrics, metric: object, *labels: str) -> object:
        lookups.append(labels)
        return real(self, metric, *labels)

    monkeypatch.setattr(IngestMetrics, "_child", counting)
    for _ in range(100):
        metrics.request("telegram", "tg", 200, 0.001)
    assert len(lookups) == 2  # the counter's and the histogram's children, once


def test_tracing_off_costs_no_span_and_no_context_object() -> None:
    tracing.reset()
    assert not tracing.enabled()
    first, second = tracing.span("a", None, x=1), tracing.span("b", "00-x")
    assert first is second  # one shared no-op context manager
    with first as span:
        assert span is None
