"""Sinks: deliver bot replies to the platforms' APIs within their limits, in chat order.

The pure core lives here and is unit-tested without network, broker or clock:

- `sinks.platforms`  build one HTTP request per reply and classify the platform's answer
- `sinks.outcomes`   what an answer means (Delivered, Wait, Retryable, Permanent, Moved)
- `sinks.ratelimit`  token buckets, windows and the per-bot limiter (time is passed in)
- `sinks.limits_defaults`  each platform's documented limits, merged with a bot's overrides
- `sinks.retry`      where a failed reply goes next (retry level or DLQ) and the chain's headers
- `sinks.coalesce`   which consecutive plain-text replies of a chat can go out as one message
- `sinks.breaker`    a circuit breaker per bot, so a dead API is not hammered
- `sinks.errors`     the exceptions, with `retriable` for the retry chain

The I/O shell (Faust agents, the httpx sender) wraps these and is the only part that waits or sends.
"""
