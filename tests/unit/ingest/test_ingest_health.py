"""ProducerHealth: the rules behind /healthz and /readyz, driven with explicit times."""

from __future__ import annotations

from botstream.ingest.health import ProducerHealth


def test_not_ready_before_any_broker_contact() -> None:
    health = ProducerHealth(stale_after_s=10)
    status = health.status(0.0)
    assert (status.alive, status.ready) == (True, False)


def test_ready_after_success_until_a_later_failure() -> None:
    health = ProducerHealth(stale_after_s=10)
    became = health.succeeded(1.0)
    assert became is not None and became.ready
    assert health.status(2.0).ready
    lost = health.failed(3.0, "all brokers down")
    assert lost is not None and (lost.ready, lost.reason) == (False, "all brokers down")
    assert health.status(3.5).reason == "all brokers down"
    back = health.succeeded(4.0)
    assert back is not None and back.ready


def test_transitions_are_reported_once() -> None:
    health = ProducerHealth(stale_after_s=10)
    assert health.succeeded(1.0) is not None
    assert health.succeeded(1.5) is None
    assert health.failed(2.0, "x") is not None
    assert health.failed(2.5, "x") is None


def test_success_goes_stale() -> None:
    health = ProducerHealth(stale_after_s=10)
    health.succeeded(1.0)
    assert health.status(11.0).ready
    status = health.status(11.5)
    assert not status.ready and "no broker contact" in status.reason


def test_fatal_is_not_alive_and_final() -> None:
    health = ProducerHealth(stale_after_s=10)
    health.succeeded(1.0)
    health.fatal("PID fenced")
    health.succeeded(2.0)
    status = health.status(2.0)
    assert (status.alive, status.ready) == (False, False)
    assert "PID fenced" in status.reason


def test_a_late_report_of_an_older_failure_does_not_unready_a_newer_success() -> None:
    health = ProducerHealth(stale_after_s=10)
    health.succeeded(5.0)
    health.failed(4.0, "old news")
    assert health.status(5.0).ready
