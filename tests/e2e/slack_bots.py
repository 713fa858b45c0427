"""A Slack bot for the end-to-end tests: it answers a slash command ephemerally (only the user who
typed it sees the answer, through the command's response_url) and a button press in channel."""

from botstream.streams.handlers import Bot, Context

bot = Bot()


@bot.command("secret")
async def secret(ctx: Context) -> None:
    ctx.reply(f"only you can see: {' '.join(ctx.args)}", response_type="ephemeral")


@bot.on("callback")
async def pressed(ctx: Context) -> None:
    ctx.reply(f"pressed {ctx.text}")
