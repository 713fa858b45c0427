"""The sinks' exceptions, under the project's one root.

    BotstreamError
    └── SinkError
        ├── InvalidReply          the record lacks what its kind needs (edit without target, bad markup)
        ├── UnsupportedReply      the platform has no such action (typing on Slack); skip, not a failure
        ├── MissingCredential     the bot's config lacks a credential this platform needs
        └── InvalidRetryHeaders   a retry-chain header cannot be read (the record goes to quarantine)

None of these can pass on a retry of the same record. Platform answers are not exceptions: they are
`botstream.sinks.outcomes` values, classified from the response, and the retry chain acts on those
(an open circuit breaker is a retryable outcome that waits for the breaker's next probe; it raises
nothing).
"""

from __future__ import annotations

from botstream.core.errors import BotstreamError


class SinkError(BotstreamError):
    """Root of the sinks' exceptions."""


class InvalidReply(SinkError):
    """The reply cannot become a request; retrying the same record would fail the same way."""


class UnsupportedReply(SinkError):
    """The platform cannot do this kind of reply at all; the shell records it as skipped."""


class MissingCredential(SinkError):
    """A credential is missing from the bot's config: an operator must fix the bots file."""


class InvalidRetryHeaders(SinkError):
    """A retry-chain header holds something we did not write."""

