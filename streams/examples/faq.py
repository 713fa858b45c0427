"""A small FAQ bot: /start, /help, keyword answers, /human (handoff) and a daily digest."""

from streams.handlers import Bot, Context, JobContext

bot = Bot(fallback_text="Sorry, something went wrong on our side. Please try again in a minute.")

ANSWERS = {
    r"(?i)\b(price|pricing|cost)\b": "botstream is free and open source.",
    r"(?i)\b(hours|open)\b": "We answer around the clock; people are in from 9 to 17 UTC.",
    r"(?i)\b(refund|money back)\b": "Refunds: reply /human and a person will take it from here.",
}

HELP = "Ask me about price, hours or refunds. /human talks to a person; /digest on|off for a daily digest."


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


@bot.command("digest")
async def digest_switch(ctx: Context) -> None:
    on = (ctx.args[:1] or ["on"])[0].lower() != "off"
    ctx.state["digest"] = on
    ctx.reply("Daily digest " + ("on." if on else "off."))


def _keyword_handler(answer: str):  # type: ignore[no-untyped-def]
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
    for chat_key in job.chats():
        job.send(chat_key, "Your daily digest: nothing new — all systems green.")
