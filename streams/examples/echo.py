"""The echo bot: answers every text message with exactly `echo: <text>`."""

from botstream.streams.handlers import Bot, Context

bot = Bot()


@bot.default
async def echo(ctx: Context) -> None:
    if ctx.text is not None and ctx.update.get("kind") in ("message", "command"):
        ctx.reply(f"echo: {ctx.text}")
