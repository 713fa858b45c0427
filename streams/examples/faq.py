"""A small FAQ bot: /start, /help, keyword answers, /ask (an LLM-like API), /human (handoff) and a daily digest.

/ask goes through the bot's `llm` integration (declared in the bots file): capped, timed out, retried
and breaker-guarded. When the assistant cannot answer — down, busy, too slow, or not declared for this
bot — the chat gets a clear sentence instead of silence or the generic fallback.
"""

from collections.abc import Awaitable, Callable

from botstream.streams.handlers import Bot, Context, JobContext
from botstream.streams.integrations import IntegrationError

bot = Bot(fallback_text="Sorry, something went wrong on our side. Please try again in a minute.")

ANSWERS = {
    r"(?i)\b(price|pricing|cost)\b": "botstream is free and open source.",
    r"(?i)\b(hours|open)\b": "We answer around the clock; people are in from 9 to 17 UTC.",
    r"(?i)\b(refund|money back)\b": "Refunds: reply /human and a person will take it from here.",
}

HELP = ("Ask me about price, hours or refunds, or /ask <question> for the assistant. /human talks to a person; "
        "/digest on|off for a daily digest.")
ASSISTANT_DOWN = "The assistant is unavailable right now… please try again in a few minutes, or /human."


@bot.command("start")
async def start(ctx: Context) -> None:
    ctx.state["started"] = True
    ctx.reply("Welcome! " + HELP)


@bot.command("help")
async def help_(ctx: Context) -> None:
    ctx.reply(HELP)


@bot.command("human")
async def human(ctx: Context) -> None:
    ctx.reply("OK — a person will answer here shortly.")
    ctx.handoff("user asked for a human")


@bot.command("ask")
async def ask(ctx: Context) -> None:
    question = " ".join(ctx.args)
    if not question:
        ctx.reply("Usage: /ask <question>")
        return
    llm = ctx.integrations.get("llm")
    if llm is None:
        ctx.reply(ASSISTANT_DOWN)
        return
    try:
        resp = await llm.post("/v1/answer", json={"question": question, "user": ctx.chat_key})
        answer = resp.json().get("answer")
    except (IntegrationError, ValueError):  # ValueError: a body that is not JSON
        answer = None
    ctx.reply(answer if isinstance(answer, str) and answer else ASSISTANT_DOWN)


@bot.command("digest")
async def digest_switch(ctx: Context) -> None:
    on = (ctx.args[:1] or ["on"])[0].lower() != "off"
    ctx.state["digest"] = on
    ctx.reply("Daily digest " + ("on." if on else "off."))


def _keyword_handler(answer: str) -> Callable[[Context], Awaitable[None]]:
    async def handler(ctx: Context) -> None:
        ctx.reply(answer)
    return handler


for _pattern, _answer in ANSWERS.items():
    bot.text(_pattern)(_keyword_handler(_answer))


@bot.default
async def unknown(ctx: Context) -> None:
    if ctx.update.get("kind") in ("message", "command"):
        ctx.reply("I don't know that one yet. " + HELP)


@bot.cron("0 9 * * *")
async def daily_digest(job: JobContext) -> None:
    for chat_key in job.chats(lambda state: state.get("digest")):
        job.send(chat_key, "Your daily digest: nothing new — all systems green.")
