"""What a handler can catch from an integration call.

    BotstreamError
    └── IntegrationError            any guarded call that did not produce a usable answer
        ├── IntegrationBusy         no slot freed within the wait budget (the cap is reached)
        ├── IntegrationUnavailable  the breaker is open: failing fast; `retry_in_s` until it probes
        ├── IntegrationTimeout      the attempts ran out of time (their own timeout or the deadline)
        ├── IntegrationFailed       retryable failures (5xx, 429, connection) and no retry left
        └── IntegrationRejected     a 4xx other than 429: the request itself is wrong

Handlers usually catch `IntegrationError` and answer with their own fallback text; one they do not
catch becomes a recorded HandlerFailed and the bot's fallback reply. Every one but a rejection could
succeed if called again later; `outcome` is the metric label.
"""

from __future__ import annotations

from typing import Any

from botstream.core.errors import BotstreamError

__all__ = ["IntegrationBusy", "IntegrationError", "IntegrationFailed", "IntegrationRejected",
           "IntegrationTimeout", "IntegrationUnavailable"]


class IntegrationError(BotstreamError):
    outcome = "error"

    def __init__(self, integration: str, message: str) -> None:
        super().__init__(f"integration {integration!r}: {message}")
        self.integration = integration


class IntegrationBusy(IntegrationError):
    outcome = "busy"


class IntegrationUnavailable(IntegrationError):
    outcome = "unavailable"

    def __init__(self, integration: str, message: str, retry_in_s: float = 0.0) -> None:
        super().__init__(integration, message)
        self.retry_in_s = retry_in_s


class IntegrationTimeout(IntegrationError):
    outcome = "timeout"


class IntegrationFailed(IntegrationError):
    outcome = "failed"

    def __init__(self, integration: str, message: str, status: int | None = None) -> None:
        super().__init__(integration, message)
        self.status = status


class IntegrationRejected(IntegrationError):
    outcome = "rejected"

    def __init__(self, integration: str, message: str, status: int, response: Any = None) -> None:
        super().__init__(integration, message)
        self.status = status
        self.response = response  # the httpx.Response, for handlers that read the error body
