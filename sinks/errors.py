"""The sinks' exceptions, under the project's one root.

    BotstreamError
    └── SinkError
        ├── InvalidReply          the record lacks what its kind needs (edit without target, bad markup)
        ├── UnsupportedReply      the platform has no such action (typing on Slack); skip, not a failure
        ├── MissingCredential     the bot's config lacks a credential this platform needs
        ├── InvalidRetryHeaders   a retry-chain header cannot be read (the record goes to quarantine)
        └── CircuitOpen           the bot's breaker is open; try again after `retry_in_s`

Platform answers are not exceptions: they are `botstream.sinks.outcomes` values, classified from the response.
`retriable` is what the retry chain reads: True only where trying the same record again can help.
"""

from __future__ import annotations

from botstream.core.errors import BotstreamError


class SinkError(BotstreamError):
    retriable: bool = False


class InvalidReply(SinkError):
    """The reply cannot become a request; retrying the same record would fail the same way."""


class UnsupportedReply(SinkError):
    """The platform cannot do this kind of reply at all; the shell records it as skipped."""


class MissingCredential(SinkError):
    """A credential is missing from the bot's config: an operator must fix the bots file."""


class InvalidRetryHeaders(SinkError):
    """A retry-chain header holds something we did not write."""


class CircuitOpen(SinkError):
    """The bot's API looks down; nothing was sent. Retry after `retry_in_s`."""

    retriable = True

    def __init__(self, bot_id: str, retry_in_s: float) -> None:
        super().__init__(f"circuit open for bot {bot_id!r}; next probe in {retry_in_s:.1f}s")
        self.bot_id = bot_id
        self.retry_in_s = retry_in_s
