"""`botstream new-bot NAME`: a bot module, its bots-file entry and a test that runs it without Kafka.

    botstream new-bot mybot [--bots bots.toml] [--platform telegram] [--json]

writes, next to the bots file (default BOTSTREAM_BOTS_FILE, else ./bots.toml, created if missing):

- `mybot.py`: `bot = Bot()` with a /start command and a default handler;
- `test_mybot.py`: runs those handlers through `Bot.route` with a plain `Context` (no broker, no
  worker): `python -m pytest test_mybot.py`;
- a `[[bots]]` entry appended to the bots file: `handler = "mybot"` (found next to the bots file
  by every way of starting a worker), demo credentials and `api_base_url` pointing at the local
  sandbox, so `botstream up --bots bots.toml` answers it at once.

Nothing is overwritten: an existing module, test or bot id is an error.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import secrets
import tomllib
from pathlib import Path

from botstream.core.bots import PLATFORMS, parse_bots
from botstream.core.errors import BotsFileError, BotstreamError
from botstream.core.settings import Settings
from botstream.ops.cli import add_json_flag, print_json


class NewBotError(BotstreamError):
    """new-bot would overwrite or shadow something: nothing was written."""


NAME = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
SANDBOX = "http://127.0.0.1:{port}"

MODULE = '''"""The {name} bot: its handlers run in the streams worker, one update of a chat at a time.

The bots file names it `handler = "{name}"`; it is found next to the bots file. Test it without
Kafka: python -m pytest {test}
"""

from botstream.streams.handlers import Bot, Context

bot = Bot(fallback_text="Sorry, something went wrong.")  # sent when a handler raises or times out


@bot.command("start")
async def start(ctx: Context) -> None:
    ctx.state["started"] = True  # this chat's own state, saved when the handler returns
    ctx.reply("Hello! I am {name}. Say anything and I will answer.")


@bot.default
async def answer(ctx: Context) -> None:
    if ctx.text:
        ctx.reply(f"You said: {{ctx.text}}")
'''

TEST = '''"""The {name} bot's handlers, run without a broker: python -m pytest {test}"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from botstream.streams.handlers import Context, load_bot

# the way the streams worker finds it: in the folder of the bots file that names it
bot = load_bot("{name}", Path(__file__).resolve().parent)


def send(text: str, state: dict[str, Any] | None = None) -> Context:
    """Route one text update to its handler and run it, as the worker would; the Context holds
    what the handler did (replies, state, handoff)."""
    update = {{"kind": "command" if text.startswith("/") else "message", "text": text,
              "chat_id": "1", "platform": "{platform}", "bot_id": "{name}"}}
    ctx = Context(update=update, chat_key="{platform}:{name}:1", bot=None,
                  state={{}} if state is None else state, conversation={{}})
    handler = bot.route(update)
    assert handler is not None, f"no handler for {{text!r}}"
    asyncio.run(handler(ctx))
    return ctx


def test_start_greets_and_remembers_it() -> None:
    ctx = send("/start")
    assert [r.text for r in ctx.replies] == ["Hello! I am {name}. Say anything and I will answer."]
    assert ctx.state["started"] is True


def test_anything_else_gets_an_answer() -> None:
    assert [r.text for r in send("hi there").replies] == ["You said: hi there"]
'''


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("new-bot", help="create a bot module, its bots-file entry and a test (no broker needed)")
    p.add_argument("name", type=_name, help="the bot's id and module name (lower case letters, digits, _)")
    p.add_argument("--bots", type=Path, help="bots file to add it to (default BOTSTREAM_BOTS_FILE, else ./bots.toml)")
    p.add_argument("--platform", choices=PLATFORMS, default="telegram", help="default telegram")
    add_json_flag(p, "print the files written as JSON")
    p.set_defaults(func=cmd_new_bot)


def _name(text: str) -> str:
    if not NAME.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not usable as a bot id and module name "
                                         "(lower case letters, digits and _, not starting with a digit)")
    return text


def credentials(platform: str) -> dict[str, str]:
    """Demo credentials the local sandbox accepts (fresh random values; never real ones)."""
    token = secrets.token_urlsafe(18).replace("-", "_")
    if platform == "telegram":
        return {"secret_token": f"demo_{token}", "token": f"100001:demo-{token}"}
    if platform == "slack":
        return {"signing_secret": f"demo-{token}", "bot_token": f"xoxb-demo-{token}"}
    if platform == "discord":
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        public = Ed25519PrivateKey.generate().public_key().public_bytes_raw().hex()
        return {"public_key": public, "application_id": str(100000000000000000 + secrets.randbelow(10**17)),
                "bot_token": f"demo.{token}"}
    if platform == "whatsapp":
        return {"app_secret": f"demo-{token}", "verify_token": f"demo-{token[:8]}", "access_token": f"demo-{token}",
                "phone_number_id": str(100000000 + secrets.randbelow(10**8))}
    return {"secret": f"demo-{token}"}


def bots_entry(name: str, platform: str, sandbox_url: str) -> str:
    lines = ["", "[[bots]]", f'id = "{name}"', f'platform = "{platform}"',
             "# DEMO credentials for the local sandbox; for the real platform write env:NAME or file:PATH",
             *(f"{key} = {json.dumps(value)}" for key, value in credentials(platform).items()),
             f'api_base_url = "{sandbox_url}"   # the sandbox `botstream up` starts; leave it out for the real API',
             f'handler = "{name}"                  # {name}.py, next to this file']
    return "\n".join(lines) + "\n"


def cmd_new_bot(args: argparse.Namespace, settings: Settings) -> int:
    name = args.name
    bots_file: Path = (args.bots or settings.bots_file or Path("bots.toml")).absolute()
    folder = bots_file.parent
    module, test = folder / f"{name}.py", folder / f"test_{name}.py"
    for path in (module, test):
        if path.exists():
            raise NewBotError(f"new-bot: {path} exists already; nothing was written")
    here = os.listdir(folder) if folder.is_dir() else []  # a missing folder is made below
    taken = importlib.util.find_spec(name) if name not in here else None
    if taken is not None:
        raise NewBotError(f"new-bot: {name!r} is already an importable module ({taken.origin or 'built in'}); "
                          "a bot module of that name would be shadowed: pick another name")
    existing = bots_file.read_text() if bots_file.exists() else ""
    try:
        ids = [b.get("id") for b in tomllib.loads(existing).get("bots", [])] if existing else []
    except tomllib.TOMLDecodeError as exc:
        raise BotsFileError(f"{bots_file}: not valid TOML: {exc}") from None
    if name in ids:
        raise NewBotError(f"new-bot: {bots_file} already has a bot {name!r}; nothing was written")
    entry = bots_entry(name, args.platform, SANDBOX.format(port=settings.sandbox_port))
    parse_bots(entry, source=bots_file)  # the entry is valid on its own
    folder.mkdir(parents=True, exist_ok=True)
    module.write_text(MODULE.format(name=name, test=test.name))
    test.write_text(TEST.format(name=name, test=test.name, platform=args.platform))
    header = "" if existing else ("# Bots served by botstream (`botstream up --bots <this file>`); credentials may be\n"
                                  "# literals, env:NAME or file:PATH. See `botstream config check`.\n")
    with bots_file.open("a") as f:
        f.write(header + ("\n" if existing and not existing.endswith("\n") else "") + entry)
    if args.json:
        print_json({"bot": name, "platform": args.platform, "bots_file": str(bots_file), "module": str(module),
                    "test": str(test), "bots_file_created": not existing})
        return 0
    rel = os.path.relpath(bots_file)
    print(f"{'created' if not existing else 'updated'} {rel}: bot {name!r} ({args.platform}, talks to the local sandbox)")
    print(f"created {os.path.relpath(module)}: its handlers")
    print(f"created {os.path.relpath(test)}: runs them without Kafka")
    print("\nNext:")
    print(f"  python -m pytest {os.path.relpath(test)}")
    print(f"  botstream config check --bots {rel}")
    print(f"  botstream up --bots {rel}      # prints a curl that sends your bot a message")
    return 0
