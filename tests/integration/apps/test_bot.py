"""A bot for the streams tests: /slow outlives its timeout, /sub subscribes to a ticking job, else echo."""

import asyncio

from botstream.streams.handlers import Bot, Context, JobContext

bot = Bot(fallback_text="fallback: handler failed")


@bot.command("slow")
async def slow(ctx: Context) -> None:
    await asyncio.sleep(60)
    ctx.reply("never")


@bot.command("sub")
async def sub(ctx: Context) -> None:
    ctx.state["digest"] = True
    ctx.reply("subscribed")


@bot.default
async def echo(ctx: Context) -> None:
    ctx.reply(f"echo: {ctx.text}")


@bot.every(seconds=1.0)
async def tick(job: JobContext) -> None:
    for chat in job.chats(lambda state: state.get("digest")):  # subscribed chats only
        job.send(chat, "tick")
