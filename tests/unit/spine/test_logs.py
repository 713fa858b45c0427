"""The JSON log line: ISO-8601 UTC time, exceptions as fields, no control codes, librdkafka and
Faust through the same formatter, and the sampled INFO summary."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
from datetime import UTC, datetime

import pytest

from botstream.core.kafka import client_logger_config
from botstream.core.logs import (
    LIBRDKAFKA_LOGGER,
    JsonFormatter,
    SampledSummary,
    TextFormatter,
    iso_utc,
    quiet_faust_worker,
    setup_logging,
    strip_control,
)

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _record(msg: str = "hello", *args: object, exc_info: object = None, name: str = "x",
            level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord(name, level, __file__, 1, msg, args, exc_info)  # type: ignore[arg-type]
    record.__dict__.update(extra)
    return record


def test_ts_is_iso_8601_utc_with_milliseconds() -> None:
    record = _record()
    record.created = 1764666903.042
    line = json.loads(JsonFormatter("svc").format(record))
    assert line["ts"] == "2025-12-02T09:15:03.042Z" and ISO.match(line["ts"])
    assert datetime.fromisoformat(line["ts"]) == datetime.fromtimestamp(1764666903.042, UTC).replace(microsecond=42000)
    assert iso_utc(0.9999) == "1970-01-01T00:00:00.999Z"
    assert line["service"] == "svc" and line["level"] == "info" and line["msg"] == "hello"


def test_text_format_has_the_same_utc_time() -> None:
    record = _record()
    record.created = 1764666903.042
    record.msecs = 42.0
    assert TextFormatter("svc").format(record).startswith("2025-12-02T09:15:03.042Z svc INFO x: hello")


def test_an_exception_is_three_fields_not_a_multi_line_blob() -> None:
    def fail() -> None:
        raise KeyError("missing")

    try:
        try:
            fail()
        except KeyError as exc:
            raise RuntimeError("handler failed\nsecond line") from exc
    except RuntimeError:
        record = _record("boom", exc_info=sys.exc_info(), level=logging.ERROR)
    line = JsonFormatter("svc").format(record)
    assert "\n" not in line
    event = json.loads(line)
    assert event["exc_type"] == "RuntimeError" and event["exc_message"] == "handler failed\nsecond line"
    trace = event["exc_traceback"]
    assert isinstance(trace, list) and all("\n" not in t for t in trace)
    assert trace[-1] == "second line" and any("KeyError: 'missing'" in t for t in trace)  # the cause too
    assert any("in fail" in t for t in trace) and "exc" not in event


def test_qualified_type_for_library_exceptions() -> None:
    from botstream.core.errors import ConfigError

    try:
        raise ConfigError("bad")
    except ConfigError:
        event = json.loads(JsonFormatter("s").format(_record("x", exc_info=sys.exc_info())))
    assert event["exc_type"] == "botstream.core.errors.ConfigError" and event["exc_message"] == "bad"


def test_terminal_control_codes_never_reach_a_line() -> None:
    spinner = "\x1b[?25lstarting\x08\x08\x1b[?25h OK \x1b[32mgreen\x1b[0m\x07"
    assert strip_control(spinner) == "starting OK green"
    line = JsonFormatter("s").format(_record(spinner))
    assert json.loads(line)["msg"] == "starting OK green" and "\\u001b" not in line
    assert "\x1b" not in TextFormatter("s").format(_record(spinner))


def test_context_fields_are_kept() -> None:
    event = json.loads(JsonFormatter("s").format(_record("m", bot="echo", chat_key="telegram:echo:1", partition=3)))
    assert (event["bot"], event["chat_key"], event["partition"]) == ("echo", "telegram:echo:1", 3)


def test_librdkafka_lines_are_json_with_facility_and_client() -> None:
    """A real confluent-kafka client with `client_logger_config()` logs through our formatter."""
    from confluent_kafka import Producer

    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("svc"))
    logger = logging.getLogger(LIBRDKAFKA_LOGGER)
    logger.addHandler(handler)
    try:
        conf = {"bootstrap.servers": "127.0.0.1:1", "reconnect.backoff.ms": 10, **client_logger_config()}
        assert conf["logger"] is logger
        producer = Producer(conf)
        for _ in range(20):
            producer.poll(0.1)
            if out.getvalue():
                break
    finally:
        logger.removeHandler(handler)
    event = json.loads(out.getvalue().splitlines()[0])
    assert event["logger"] == LIBRDKAFKA_LOGGER and event["kafka_facility"] == "FAIL"
    assert event["kafka_client"].startswith("rdkafka#producer") and "Connection refused" in event["msg"]
    assert ISO.match(event["ts"])


def test_setup_logging_routes_library_loggers(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        setup_logging("svc", "INFO", "json")
        logging.getLogger("faust.worker").info("Ready")
        logging.getLogger("aiokafka.consumer").warning("rebalancing")
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
        logging.captureWarnings(False)
    assert [(e["logger"], e["msg"]) for e in lines[:2]] == [("faust.worker", "Ready"), ("aiokafka.consumer", "rebalancing")]


def test_quiet_faust_worker_writes_no_spinner_or_escape_codes() -> None:
    import faust
    from faust.worker import Worker

    out = io.StringIO()
    app = faust.App("logs-test", broker="kafka://127.0.0.1:1", web_enabled=False)
    worker = Worker(app, stdout=out, stderr=out, override_logging=False, redirect_stdouts=False)
    assert worker.spinner is not None  # what Faust does by default
    worker.spinner.update()
    worker._on_startup_end_spinner()
    assert "\x1b" in out.getvalue() or "\x08" in out.getvalue()  # escape codes, even into a file
    out.truncate(0)
    out.seek(0)
    worker = quiet_faust_worker(Worker(app, stdout=out, stderr=out, override_logging=False, redirect_stdouts=False))
    worker._on_startup_end_spinner()
    worker.say("banner")
    assert out.getvalue() == ""


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_sampled_summary_logs_records_at_debug_and_a_summary_at_info(caplog: pytest.LogCaptureFixture) -> None:
    clock = _Clock()
    log = logging.getLogger("botstream.test.summary")
    summary = SampledSummary(log, "updates", every_s=10, clock=clock)
    with caplog.at_level(logging.INFO, logger=log.name):
        for i in range(5):
            summary.record("handled", "update handled", bot="echo", chat_key=f"telegram:echo:{i}")
        summary.record("duplicate", "update dropped")
        assert caplog.records == []  # nothing per record at INFO, no summary before the interval
        clock.now += 10
        summary.record("handled")
    [line] = caplog.records
    assert line.levelno == logging.INFO
    assert line.getMessage() == "updates: 7 in 10.0s (0.7/s): handled 6, duplicate 1"
    assert line.__dict__["counts"] == {"handled": 6, "duplicate": 1} and line.__dict__["total"] == 7
    event = json.loads(JsonFormatter("s").format(line))
    assert event["counts"] == {"handled": 6, "duplicate": 1} and event["interval_s"] == 10.0 and event["what"] == "updates"
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger=log.name):
        summary.record("handled", "update handled", bot="echo")
        clock.now += 3
        summary.close()  # the rest, at stop
    debug, info = caplog.records
    assert debug.levelno == logging.DEBUG and debug.__dict__["bot"] == "echo" and debug.__dict__["status"] == "handled"
    assert info.getMessage().startswith("updates: 1 in 3.0s")
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=log.name):
        summary.close()  # nothing counted since: no line
    assert caplog.records == []
