"""A bot for the worker test that calls its `llm` integration without catching anything: when the
call fails, the processor must record a HandlerFailed and send the bot's fallback."""

from botstream.streams.handlers import Bot, Context

bot = Bot(fallback_text="raw fallback: handler failed")


@bot.default
async def ask(ctx: Context) -> None:
    resp = await ctx.integrations["llm"].post("/v1/answer", json={"question": ctx.text, "user": ctx.chat_key})
    ctx.reply(resp.json()["answer"])
