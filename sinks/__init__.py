"""Sinks: deliver bot replies to the platforms' APIs within their limits, in chat order.

The pure core lives here and is unit-tested without network, broker or clock:

- `botstream.sinks.platforms`  the outbound adapters: one HTTP request per reply, the platform's answer classified
- `botstream.sinks.outcomes`   what an answer means (Delivered, Wait, Retryable, Permanent, Moved)
- `botstream.sinks.ratelimit`  token buckets, windows and the per-bot limiter (time is passed in)
- `botstream.sinks.limits_defaults`  each platform's documented limits, merged with a bot's overrides
- `botstream.sinks.retry`      where a failed reply goes next (retry level or DLQ) and the chain's headers,
                               on the project's one `botstream.core.retry.RetryPolicy`
- `botstream.sinks.coalesce`   which consecutive plain-text replies of a chat can go out as one message
- `botstream.core.breaker`    a circuit breaker per bot, so a dead API is not hammered
- `botstream.sinks.errors`     the exceptions (none of them passes on a retry of the same record)

The I/O shell (Faust agents, the httpx sender) wraps these and is the only part that waits or sends.
"""
