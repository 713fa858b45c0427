"""Prometheus metrics of the integrations, per bot and integration, in every streams worker process.

A saturated integration shows as slot waits and `busy` calls, a dying one as `failed`/`timeout`
calls, retries and then the breaker state; `in_flight` against `max_concurrency` shows the headroom.
"""

from prometheus_client import Counter, Gauge, Histogram

LABELS = ["bot", "integration"]

CALLS = Counter("botstream_integration_calls_total",
                "Integration calls by outcome: ok, rejected, failed, timeout, busy, unavailable, cancelled, error",
                [*LABELS, "outcome"])
CALL_SECONDS = Histogram("botstream_integration_call_seconds", "Integration call duration, retries included",
                         LABELS, buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
IN_FLIGHT = Gauge("botstream_integration_in_flight", "Requests in flight (slots held)", LABELS)
SLOT_WAIT_SECONDS = Histogram("botstream_integration_slot_wait_seconds", "Time calls waited for a slot", LABELS,
                              buckets=(0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
RETRIES = Counter("botstream_integration_retries_total", "Retries, by what the failed attempt came to",
                  [*LABELS, "reason"])
BREAKER_STATE = Gauge("botstream_integration_breaker_state", "Circuit breaker: 0 closed, 1 half-open, 2 open",
                      LABELS)

BREAKER_VALUE = {"closed": 0, "half_open": 1, "open": 2}
