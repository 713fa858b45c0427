"""Rate-limit arithmetic: buckets and windows fed the time, and the per-bot limiter composing them.

Nothing here sleeps or reads a clock. Every call takes `now` (seconds, monotonic) and answers with a
number of seconds to wait, so the I/O shell decides how to wait and tests run on a fake clock.

Every limiter answers `wait(now)` without consuming, and `take(now)` consumes; `BotLimiter.reserve`
asks all the limiters that apply to a send and takes from them only if all of them grant, so a chat
that is throttled does not burn the bot's global budget while it waits.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from typing import Protocol

from botstream.core.bots import BotConfig
from botstream.schemas.records import parse_chat_key
from botstream.sinks.limits_defaults import SendLimits, resolve_limits
from botstream.sinks.outcomes import DiscordBucketUpdate, Wait

EPS = 1e-9  # float slack: a grant due at t must not be refused at t for a rounding error
MIN_SHARE_RATE = 0.2  # msg/s: the least a worker's slice of a bot's budget can be
DEFAULT_MAX_CHATS = 500_000
GROUP_WINDOW_S = 60.0
GROUP_CHAT_TYPES = frozenset({"group", "supergroup"})
EVICT_PER_CALL = 2  # idle chats dropped per reserve(): amortised, no sweep pauses


class Limiter(Protocol):
    def wait(self, now: float, n: float = 1.0) -> float: ...
    def take(self, now: float, n: float = 1.0) -> None: ...
    def pause_until(self, t: float) -> None: ...
    def idle(self, now: float) -> bool: ...


class TokenBucket:
    """`rate_per_s` sustained, up to `burst` at once; starts full.

    A pause (a 429 on this bucket) refuses everything until its end and resumes with at most one
    token: the platform's counter has just reset, and a full burst at once would likely trip it again.
    """

    def __init__(self, rate_per_s: float, burst: float) -> None:
        _check_rate(rate_per_s, burst)
        self._rate = rate_per_s
        self._burst = burst
        self._tokens = burst
        self._last = -math.inf
        self._paused_until = -math.inf
        self._capped = False  # the pause's one-token cap is still to apply

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def burst(self) -> float:
        return self._burst

    def try_take(self, now: float, n: float = 1.0) -> float:
        """0.0 and consumed when `n` tokens are there; else the seconds until they would be."""
        wait = self.wait(now, n)
        if wait <= 0.0:
            self.take(now, n)
        return wait

    def wait(self, now: float, n: float = 1.0) -> float:
        if n > self._burst + EPS:
            raise ValueError(f"cannot take {n} from a bucket of burst {self._burst}")
        self._advance(now)
        now = max(now, self._last)
        start = max(now, self._paused_until)
        tokens = self._project(start)
        if tokens >= n - EPS:
            return start - now
        return start - now + (n - tokens) / self._rate

    def take(self, now: float, n: float = 1.0) -> None:
        self._advance(now)
        self._tokens -= n

    def settle(self, now: float, n: float = 1.0) -> None:
        """The last `n` tokens, taken when a request left, count as taken at `now` instead.

        The platform counts a send when it arrives, anywhere between leaving and its response. A bucket
        that was full when the request left refills from the moment of leaving, the platform's from
        the later arrival: the difference is the one thing that lets a sender pacing exactly at the
        limit overrun it. Re-dating the take to the response (which the arrival cannot be later than)
        keeps this bucket at or below the platform's: delaying a take never leaves more tokens, since
        min(burst, x + n) - n <= min(burst, x).
        """
        self._advance(now)
        self._tokens = min(self._tokens, self._burst - n)

    def pause_until(self, t: float) -> None:
        if t > self._paused_until:
            self._paused_until = t
            self._capped = True

    def set_rate(self, rate_per_s: float, burst: float | None = None) -> None:
        """Change the rate (a rebalance changed this worker's share); tokens above a new burst go."""
        burst = self._burst if burst is None else burst
        _check_rate(rate_per_s, burst)
        self._rate, self._burst = rate_per_s, burst
        self._tokens = min(self._tokens, burst)

    def idle(self, now: float) -> bool:
        """Full and unpaused: indistinguishable from a new bucket, so it may be dropped."""
        return now >= self._paused_until and self._project(max(now, self._last)) >= self._burst - EPS

    def _project(self, t: float) -> float:
        """Tokens at `t` (>= the last update), without changing state."""
        tokens, last = self._tokens, self._last
        if self._capped:
            p = self._paused_until
            if t < p:
                return min(tokens + (t - last) * self._rate, self._burst, 1.0)
            tokens = min(tokens + max(0.0, p - last) * self._rate, self._burst, 1.0)
            last = max(last, p)
        return min(self._burst, tokens + (t - last) * self._rate)

    def _advance(self, now: float) -> None:
        if now <= self._last:
            return  # time never runs backwards for a bucket (concurrent callers, same clock)
        self._tokens = self._project(now)
        if self._capped and now >= self._paused_until:
            self._capped = False
        self._last = now


class SlidingWindow:
    """At most `limit` sends in any `window_s` seconds: exact for limits stated per window.

    Telegram's 20 per minute per group and Discord's observed 5 per 5 s per channel are such limits;
    memory is `limit` timestamps.
    """

    def __init__(self, limit: int, window_s: float) -> None:
        if limit < 1 or not window_s > 0:
            raise ValueError(f"limit must be >= 1 and window_s > 0, not {limit}, {window_s}")
        self.limit = limit
        self.window_s = window_s
        self._stamps: deque[float] = deque()
        self._paused_until = -math.inf

    def try_take(self, now: float, n: float = 1.0) -> float:
        wait = self.wait(now, n)
        if wait <= 0.0:
            self.take(now, n)
        return wait

    def wait(self, now: float, n: float = 1.0) -> float:
        count = int(n)
        if count > self.limit:
            raise ValueError(f"cannot take {count} from a window of {self.limit}")
        self._prune(now)
        start = max(now, self._paused_until)
        excess = len(self._stamps) + count - self.limit
        if excess <= 0:
            return start - now
        return max(start, self._stamps[excess - 1] + self.window_s) - now

    def take(self, now: float, n: float = 1.0) -> None:
        at = max(now, self._stamps[-1]) if self._stamps else now
        self._stamps.extend([at] * int(n))

    def settle(self, now: float, n: float = 1.0) -> None:
        """Re-date the last `n` sends to `now`, when their response came (see `TokenBucket.settle`)."""
        for i in range(1, min(int(n), len(self._stamps)) + 1):
            self._stamps[-i] = max(self._stamps[-i], now)

    def pause_until(self, t: float) -> None:
        self._paused_until = max(self._paused_until, t)

    def idle(self, now: float) -> bool:
        self._prune(now)
        return not self._stamps and now >= self._paused_until

    def _prune(self, now: float) -> None:
        while self._stamps and self._stamps[0] + self.window_s <= now + EPS:
            self._stamps.popleft()


class LearnedWindow:
    """A Discord route bucket as the API reports it: `remaining` sends until `reset_at`, then `limit`.

    Local sends count down between reports; a report of the same window can only lower the count
    (requests still in flight are not in the server's number yet), a report of a new window replaces it.
    """

    def __init__(self, limit: int, remaining: int, reset_at: float, window_s: float) -> None:
        self.limit = limit
        self.remaining = remaining
        self.reset_at = reset_at
        self.window_s = window_s
        self._paused_until = -math.inf

    @classmethod
    def from_update(cls, update: DiscordBucketUpdate, now: float) -> LearnedWindow:
        return cls(update.limit, update.remaining, now + update.reset_after_s, update.reset_after_s)

    def update(self, update: DiscordBucketUpdate, now: float) -> None:
        reset_at = now + update.reset_after_s
        if now < self.reset_at and update.limit == self.limit:
            self.remaining = min(self.remaining, update.remaining)
        else:
            self.remaining = update.remaining
        self.limit = update.limit
        self.reset_at = reset_at
        self.window_s = max(self.window_s, update.reset_after_s)

    def wait(self, now: float, n: float = 1.0) -> float:
        start = max(now, self._paused_until)
        available = self.limit if start >= self.reset_at else self.remaining
        if available >= n:
            return start - now
        return max(start, self.reset_at) - now

    def take(self, now: float, n: float = 1.0) -> None:
        if now >= self.reset_at:
            self.remaining = self.limit
            self.reset_at = now + self.window_s
        self.remaining -= int(n)

    def pause_until(self, t: float) -> None:
        self._paused_until = max(self._paused_until, t)

    def idle(self, now: float) -> bool:
        return now >= self.reset_at and now >= self._paused_until


class ChatLimits:
    """The limiters of one chat, created on first use and dropped when idle."""

    __slots__ = ("bucket", "group", "route", "route_bucket", "paused_until")

    def __init__(self) -> None:
        self.bucket: TokenBucket | None = None
        self.group: SlidingWindow | None = None
        self.route: SlidingWindow | LearnedWindow | None = None
        self.route_bucket: str | None = None
        self.paused_until = -math.inf

    def limiters(self) -> list[Limiter]:
        return [lim for lim in (self.bucket, self.group, self.route) if lim is not None]

    def pause_until(self, t: float) -> None:
        self.paused_until = max(self.paused_until, t)
        for lim in self.limiters():
            lim.pause_until(t)

    def idle(self, now: float) -> bool:
        return now >= self.paused_until and all(lim.idle(now) for lim in self.limiters())


def share_of_budget(global_rate: float, owned_partitions: int, total_partitions: int,
                    floor: float = MIN_SHARE_RATE) -> float:
    """This worker's slice of a bot-wide rate, when `total_partitions` are split among workers.

    Replies are keyed by chat, and chats hash evenly over partitions, so a bot's load is close to
    uniform across partitions: a worker owning k of n partitions needs about k/n of the budget, and
    the workers' slices add up to the whole. The floor keeps a worker with a sliver of partitions (or
    a hot chat among them) from starving; it can oversubscribe only when rate * k/n < floor, by at
    most `floor` per worker. This is the rate; a limiter takes the share itself: on every rebalance,
    `BotLimiter.rescale(owned_partitions / total_partitions)` applies the same arithmetic to its bucket.
    """
    if total_partitions < 1 or not 0 <= owned_partitions <= total_partitions:
        raise ValueError(f"owned {owned_partitions} of {total_partitions} partitions")
    return _scaled(global_rate, owned_partitions / total_partitions, floor)


def _scaled(rate: float, share: float, floor: float = MIN_SHARE_RATE) -> float:
    return max(rate * share, min(rate, floor))


class BotLimiter:
    """All the limits one bot's sends must respect, on this worker.

    Per send: the bot-wide bucket (per Slack workspace / WhatsApp number), the chat's bucket (the
    WhatsApp pair limit), the group window (Telegram groups), and the chat's Discord route bucket.
    Per-chat state is created lazily and dropped once idle (it is then identical to fresh state), so
    memory follows the chats active in the last minute, bounded by `max_chats` as a backstop.
    """

    def __init__(self, platform: str, limits: SendLimits, *, share: float = 1.0,
                 max_chats: int = DEFAULT_MAX_CHATS) -> None:
        self.platform = platform
        self.limits = limits
        self.max_chats = max_chats
        self._share = share
        self._senders: dict[str, TokenBucket] = {}
        self._chats: OrderedDict[str, ChatLimits] = OrderedDict()
        self._paused_until = -math.inf

    @classmethod
    def for_bot(cls, bot: BotConfig, *, share: float = 1.0, max_chats: int = DEFAULT_MAX_CHATS) -> BotLimiter:
        return cls(bot.platform, resolve_limits(bot), share=share, max_chats=max_chats)

    def __len__(self) -> int:
        """Chats with state held."""
        return len(self._chats)

    @property
    def global_rate(self) -> float:
        """This worker's bot-wide rate after its share."""
        return self._scaled_rate()

    def reserve(self, chat_key: str, chat_type: str | None, now: float) -> float:
        """0.0: send now (taken from every applicable limiter); else seconds to wait, nothing taken."""
        self._evict_some(now)
        if now < self._paused_until:
            return self._paused_until - now
        chat_id = _chat_id(chat_key)
        state = self._chat(chat_key, chat_id, chat_type)
        limiters = [self._sender(chat_id), *state.limiters()]
        wait = max([state.paused_until - now, *(lim.wait(now) for lim in limiters)])
        if wait > 0.0:
            return wait
        for lim in limiters:
            lim.take(now)
        return 0.0

    def settle(self, chat_key: str, now: float) -> None:
        """The chat's last reserved send has reached the platform by `now` (its response is back).

        Only the chat's own limiters are re-dated: a chat sends one request at a time, so its last
        take is this send's. The bot-wide bucket has many sends in flight and keeps a burst far below
        the platform's, which absorbs the arrival jitter instead.
        """
        state = self._chats.get(chat_key)
        if state is None:
            return
        for lim in (state.bucket, state.group, state.route):
            if isinstance(lim, (TokenBucket, SlidingWindow)):
                lim.settle(now)

    def on_wait(self, outcome: Wait, chat_key: str, now: float) -> None:
        """Pause what the 429 concerns, and only that: a chat's 429 leaves the bot's other chats flowing."""
        until = now + outcome.retry_after_s
        if outcome.scope in ("global", "bot"):
            self._paused_until = max(self._paused_until, until)
            for bucket in self._senders.values():
                bucket.pause_until(until)
            return
        state = self._chat(chat_key, _chat_id(chat_key), None)
        if outcome.scope.startswith("route:") and state.route is not None:
            state.route.pause_until(until)
        else:
            state.pause_until(until)

    def learn_discord(self, chat_key: str, update: DiscordBucketUpdate, now: float) -> None:
        """Adopt the route bucket Discord reported for this chat's channel (bucket hash + channel)."""
        state = self._chat(chat_key, _chat_id(chat_key), None)
        if isinstance(state.route, LearnedWindow) and state.route_bucket == update.bucket:
            state.route.update(update, now)
            return
        learned = LearnedWindow.from_update(update, now)
        if state.paused_until > now:
            learned.pause_until(state.paused_until)
        state.route, state.route_bucket = learned, update.bucket

    def rescale(self, share: float) -> None:
        """Set this worker's share (owned/total partitions) of the bot-wide budget; per-chat limits
        stay whole, since a chat lives on one partition and so on one worker."""
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"share must be within [0, 1], not {share}")
        self._share = share
        for bucket in self._senders.values():
            bucket.set_rate(self._scaled_rate(), self._scaled_burst())

    def evict_idle(self, now: float) -> int:
        """Drop every idle chat's state; the amortised eviction in `reserve` usually suffices."""
        idle = [key for key, state in self._chats.items() if state.idle(now)]
        for key in idle:
            del self._chats[key]
        return len(idle)

    def _scaled_rate(self) -> float:
        return _scaled(self.limits.global_per_second, self._share)

    def _scaled_burst(self) -> float:
        return max(1.0, self.limits.global_burst * self._share)

    def _sender(self, chat_id: str) -> TokenBucket:
        key = chat_id.partition("/")[0] if self.platform in ("slack", "whatsapp") and "/" in chat_id else ""
        bucket = self._senders.get(key)
        if bucket is None:
            bucket = self._senders[key] = TokenBucket(self._scaled_rate(), self._scaled_burst())
            if self._paused_until > -math.inf:
                bucket.pause_until(self._paused_until)
        return bucket

    def _chat(self, chat_key: str, chat_id: str, chat_type: str | None) -> ChatLimits:
        state = self._chats.get(chat_key)
        if state is None:
            state = self._chats[chat_key] = ChatLimits()
            lim = self.limits
            if lim.per_chat_per_second is not None:
                state.bucket = TokenBucket(lim.per_chat_per_second, lim.per_chat_burst)
            if lim.chat_window is not None:
                state.route = SlidingWindow(*lim.chat_window)
        else:
            self._chats.move_to_end(chat_key)
        if state.group is None and self.limits.per_group_per_minute is not None \
                and self._is_group(chat_id, chat_type):
            state.group = SlidingWindow(self.limits.per_group_per_minute, GROUP_WINDOW_S)
        return state

    def _is_group(self, chat_id: str, chat_type: str | None) -> bool:
        return chat_type in GROUP_CHAT_TYPES or (self.platform == "telegram" and chat_id.startswith("-"))

    def _evict_some(self, now: float) -> None:
        for _ in range(EVICT_PER_CALL):
            if not self._chats:
                return
            key, state = next(iter(self._chats.items()))
            if len(self._chats) < self.max_chats and not state.idle(now):  # < : room for a new one
                return
            del self._chats[key]


def _chat_id(chat_key: str) -> str:
    """The chat id of a chat key; a string that is no chat key is taken as the chat id itself."""
    try:
        return parse_chat_key(chat_key).chat_id
    except ValueError:
        return chat_key


def _check_rate(rate_per_s: float, burst: float) -> None:
    if not (rate_per_s > 0 and math.isfinite(rate_per_s)) or not burst >= 1:
        raise ValueError(f"rate must be > 0 and burst >= 1, not {rate_per_s}, {burst}")
