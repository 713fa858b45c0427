"""The handler API bot authors write against.

```python
from botstream.streams.handlers import Bot

bot = Bot()

@bot.command("start")
async def start(ctx):
    ctx.reply("Hello!")

@bot.text(r"(?i)\\bprice\\b")
async def price(ctx):
    ctx.reply("It's free.")

@bot.on("callback")
async def pressed(ctx): ...

@bot.default
async def fallback(ctx):
    ctx.reply(f"echo: {ctx.text}")

@bot.every(seconds=3600)            # or @bot.cron("0 9 * * *")
async def digest(job): ...
```

Scheduled jobs run on every streams worker, each over the chats of the partitions it holds: together
the workers reach every chat once, and a chat's job runs where its updates are handled.

A handler receives a `Context` and acts through it: `reply()`, `state` (the bot's own dict for this
chat, saved when the handler returns), `handoff()`, and `integrations` (the bot's declared external
APIs, guarded: `await ctx.integrations["llm"].post(...)`, see `botstream.streams.integrations`). Dispatch is
pure: `Bot.route(update)` picks the handler; the worker runs it with a timeout (`ctx.deadline`) and
turns what it did into records.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botstream.core.bots import BotConfig, import_handler
from botstream.core.errors import HandlerError

Handler = Callable[["Context"], Awaitable[None]]
JobFn = Callable[["JobContext"], Awaitable[None]]
UPDATE_KINDS = ("message", "command", "callback", "edit", "reaction", "member", "interaction", "status", "other")


@dataclass
class PlannedReply:
    text: str | None
    kind: str = "text"
    markup: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    reply_to: str | None = None
    target_message_id: str | None = None


@dataclass
class Context:
    """What a handler sees of one update, and what it asks for."""

    update: dict[str, Any]
    chat_key: str
    bot: BotConfig | None
    state: dict[str, Any]
    conversation: dict[str, Any]
    integrations: dict[str, Any] = field(default_factory=dict)
    replies: list[PlannedReply] = field(default_factory=list)
    handoff_reason: str | None = None
    handoff_requested: bool = False
    #: time.monotonic() at which the handler's timeout fires; integrations stop before it
    deadline: float | None = None

    @property
    def correlation_id(self) -> str | None:
        return self.update.get("correlation_id")

    @property
    def text(self) -> str | None:
        return self.update.get("text")

    @property
    def user_id(self) -> str | None:
        return self.update.get("user_id")

    @property
    def chat_id(self) -> str:
        return str(self.update["chat_id"])

    @property
    def locale(self) -> str | None:
        return self.update.get("locale") or self.conversation.get("locale")

    @property
    def args(self) -> list[str]:
        """Words after a command: "/start ref42" -> ["ref42"]."""
        text = self.text or ""
        return text.split()[1:] if text.startswith("/") else []

    def reply(self, text: str, *, markup: str | None = None, quote: bool = False, **options: str) -> None:
        self.replies.append(PlannedReply(text=text, markup=markup, options=dict(options),
                                         reply_to=self.update.get("reply_to") if quote else None))

    def typing(self) -> None:
        self.replies.append(PlannedReply(text=None, kind="typing"))

    def edit(self, message_id: str, text: str) -> None:
        self.replies.append(PlannedReply(text=text, kind="edit", target_message_id=message_id))

    def handoff(self, reason: str | None = None) -> None:
        """Hand this chat to people: later updates go to the handoff topic until released."""
        self.handoff_requested = True
        self.handoff_reason = reason


@dataclass
class JobContext:
    """What a scheduled job sees: the bot's config, its integrations, and the chats it may reach.

    `chats()` lists the bot's chats in the partitions this worker holds (every worker runs the job
    for its own chats); `chats(lambda state: state.get("digest"))` keeps those whose bot state (what
    handlers keep in `ctx.state`) the predicate is true for.
    """

    bot: BotConfig | None
    chats: Callable[..., list[str]]
    sends: list[tuple[str, str]] = field(default_factory=list)
    integrations: dict[str, Any] = field(default_factory=dict)

    def send(self, chat_key: str, text: str) -> None:
        self.sends.append((chat_key, text))


@dataclass(frozen=True)
class Job:
    name: str
    fn: JobFn
    seconds: float | None = None
    cron: str | None = None


def command_name(text: str | None) -> str | None:
    """"/start@MyBot arg" -> "start"."""
    if not text or not text.startswith("/"):
        return None
    head = text[1:].split(maxsplit=1)[0] if len(text) > 1 else ""
    return head.split("@", 1)[0].lower() or None


class Bot:
    """A bot's handlers. Routing order: command, kind, text pattern (in declaration order), default."""

    def __init__(self, fallback_text: str | None = None) -> None:
        self.commands: dict[str, Handler] = {}
        self.patterns: list[tuple[re.Pattern[str], Handler]] = []
        self.kinds: dict[str, Handler] = {}
        self.default_handler: Handler | None = None
        self.jobs: list[Job] = []
        self.fallback_text = fallback_text

    def command(self, *names: str) -> Callable[[Handler], Handler]:
        def register(fn: Handler) -> Handler:
            for name in names:
                self.commands[name.lstrip("/").lower()] = fn
            return fn
        return register

    def text(self, pattern: str) -> Callable[[Handler], Handler]:
        compiled = re.compile(pattern)

        def register(fn: Handler) -> Handler:
            self.patterns.append((compiled, fn))
            return fn
        return register

    def on(self, kind: str) -> Callable[[Handler], Handler]:
        if kind not in UPDATE_KINDS:
            raise ValueError(f"unknown update kind {kind!r} (one of {', '.join(UPDATE_KINDS)})")

        def register(fn: Handler) -> Handler:
            self.kinds[kind] = fn
            return fn
        return register

    def default(self, fn: Handler) -> Handler:
        self.default_handler = fn
        return fn

    def every(self, *, seconds: float) -> Callable[[JobFn], JobFn]:
        def register(fn: JobFn) -> JobFn:
            self.jobs.append(Job(fn.__name__, fn, seconds=seconds))
            return fn
        return register

    def cron(self, spec: str) -> Callable[[JobFn], JobFn]:
        """Run at the times `spec` names (five-field cron, UTC), e.g. "0 9 * * *" for 09:00 UTC."""
        from croniter import croniter

        if not croniter.is_valid(spec):
            raise ValueError(f"not a cron expression: {spec!r} (five fields, e.g. '0 9 * * *')")

        def register(fn: JobFn) -> JobFn:
            self.jobs.append(Job(fn.__name__, fn, cron=spec))
            return fn
        return register

    def route(self, update: dict[str, Any]) -> Handler | None:
        kind = update.get("kind")
        if kind == "command" or (kind == "message" and (update.get("text") or "").startswith("/")):
            name = command_name(update.get("text"))
            if name and name in self.commands:
                return self.commands[name]
        if kind in self.kinds:
            return self.kinds[kind]
        text = update.get("text")
        if text is not None and kind in ("message", "command", "edit"):
            for pattern, fn in self.patterns:
                if pattern.search(text):
                    return fn
        return self.default_handler


def load_bot(import_path: str, folder: Path | None = None) -> Bot:
    """Import a handler module and return its `bot` (a `Bot`).

    The module is looked up in `folder` first (default: the bot's `handler_path`, or the folder of
    the bots file that named it; see `botstream.core.bots.import_handler`), then in the installed
    packages. Raises `HandlerError` (one line: the module, the error, where it looked)."""
    module = import_handler(import_path, folder)
    bot = getattr(module, "bot", None)
    if not isinstance(bot, Bot):
        found = "nothing" if bot is None else f"a {type(bot).__name__}"
        raise HandlerError(f"handler {import_path!r}: the module has {found} as `bot`; "
                           "it needs a module-level `bot = Bot()`")
    return bot
