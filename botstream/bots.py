"""The bots file: which bots this deployment serves, with their credentials and limits.

```toml
[[bots]]
id = "echo"
platform = "telegram"
secret_token = "env:ECHO_WEBHOOK_SECRET"   # literal, env:NAME or file:PATH
token = "file:/run/secrets/echo_token"
api_base_url = "http://127.0.0.1:8090"    # default: the platform's public API
handler = "streams.examples.echo"
[bots.limits]
per_chat_per_second = 1.0
```

Loading resolves every credential reference and refuses the whole file on the first problem, with
the file, line, bot and key named — a bot that cannot verify its webhooks must not half-start.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botstream.exceptions import ConfigError
from botstream.secret import Secret, resolve_secret

PLATFORMS = ("telegram", "slack", "discord", "whatsapp", "generic")

# Per platform: credential key -> is it a secret. All are required unless listed in OPTIONAL.
CREDENTIALS: dict[str, dict[str, bool]] = {
    "telegram": {"secret_token": True, "token": True},
    "slack": {"signing_secret": True, "bot_token": True},
    "discord": {"public_key": False, "application_id": False, "bot_token": True},
    "whatsapp": {"app_secret": True, "verify_token": True, "access_token": True, "phone_number_id": False},
    "generic": {"secret": True},
}
OPTIONAL: dict[str, set[str]] = {"generic": set()}

DEFAULT_API_BASE = {
    "telegram": "https://api.telegram.org",
    "slack": "https://slack.com",
    "discord": "https://discord.com",
    "whatsapp": "https://graph.facebook.com",
    "generic": "",
}

LIMIT_KEYS = {"global_per_second", "per_chat_per_second", "per_group_per_minute", "per_chat_burst"}
BOT_KEYS = {"id", "platform", "api_base_url", "handler", "limits", "coalesce", "api_version", "fallback_text"}
TELEGRAM_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
BOT_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclass(frozen=True)
class Limits:
    """Overrides of the platform's default send limits; None means "the platform default"."""

    global_per_second: float | None = None
    per_chat_per_second: float | None = None
    per_group_per_minute: float | None = None
    per_chat_burst: float | None = None


@dataclass(frozen=True)
class BotConfig:
    id: str
    platform: str
    credentials: Mapping[str, Secret | str]
    api_base_url: str
    handler: str | None = None
    limits: Limits = field(default_factory=Limits)
    coalesce: bool = True
    api_version: str = "v21.0"
    fallback_text: str | None = None

    def secret(self, key: str) -> str:
        """The revealed value of a credential (call at the point of use only)."""
        value = self.credentials[key]
        return value.reveal() if isinstance(value, Secret) else value

    def secrets(self) -> list[str]:
        return [v.reveal() for v in self.credentials.values() if isinstance(v, Secret)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "platform": self.platform, "api_base_url": self.api_base_url,
            "handler": self.handler, "coalesce": self.coalesce,
            "credentials": {k: repr(v) if isinstance(v, Secret) else v for k, v in self.credentials.items()},
            "limits": {k: v for k, v in vars(self.limits).items() if v is not None},
        }


class BotRegistry(Mapping[str, BotConfig]):
    """Bots by id, as loaded from the bots file."""

    def __init__(self, bots: list[BotConfig], source: Path | None = None) -> None:
        self._bots = {b.id: b for b in bots}
        self.source = source

    def __getitem__(self, key: str) -> BotConfig:
        return self._bots[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._bots)

    def __len__(self) -> int:
        return len(self._bots)

    def lookup(self, platform: str, bot_id: str) -> BotConfig | None:
        bot = self._bots.get(bot_id)
        return bot if bot is not None and bot.platform == platform else None

    def all_secrets(self) -> list[str]:
        return [s for b in self._bots.values() for s in b.secrets()]


def load_bots_file(path: Path, environ: Mapping[str, str] | None = None) -> BotRegistry:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read bots file: {exc.strerror}") from None
    return parse_bots(text, source=path, environ=environ)


def parse_bots(text: str, source: Path | None = None, environ: Mapping[str, str] | None = None) -> BotRegistry:
    where = str(source) if source else "<bots>"
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML: {exc}") from None
    extra = set(doc) - {"bots"}
    if extra:
        raise ConfigError(f"{where}: unknown top-level key {sorted(extra)[0]!r} (expected [[bots]])")
    raw_bots = doc.get("bots", [])
    if not isinstance(raw_bots, list):
        raise ConfigError(f"{where}: 'bots' must be an array of tables ([[bots]])")
    sections = _section_lines(text)
    base_dir = source.parent if source else None
    bots: list[BotConfig] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_bots):
        start, end = sections[index] if index < len(sections) else (0, 0)
        line_of = _line_finder(text, start, end)
        bot = _parse_bot(raw, index, where, line_of, environ, base_dir)
        if bot.id in seen:
            raise ConfigError(f"{where}:{line_of('id')}: bot {bot.id!r}: duplicate id "
                              f"(first declared as bot #{seen[bot.id] + 1})")
        seen[bot.id] = index
        bots.append(bot)
    return BotRegistry(bots, source)


def _parse_bot(raw: Any, index: int, where: str, line_of: Any, environ: Mapping[str, str] | None,
               base_dir: Path | None) -> BotConfig:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: bot #{index + 1} is not a table")
    bot_id = raw.get("id")
    label = f"bot {bot_id!r}" if isinstance(bot_id, str) else f"bot #{index + 1}"

    def fail(key: str, msg: str) -> ConfigError:
        return ConfigError(f"{where}:{line_of(key)}: {label}, key {key!r}: {msg}")

    if not isinstance(bot_id, str) or not BOT_ID.match(bot_id):
        raise fail("id", "missing or invalid (1-64 chars of A-Za-z0-9_.-)")
    platform = raw.get("platform")
    if platform not in PLATFORMS:
        raise fail("platform", f"unknown platform {platform!r} (one of {', '.join(PLATFORMS)})")
    known = BOT_KEYS | set(CREDENTIALS[platform])
    for key in raw:
        if key not in known:
            raise fail(key, f"unknown key for a {platform} bot")
    credentials: dict[str, Secret | str] = {}
    for key, is_secret in CREDENTIALS[platform].items():
        value = raw.get(key)
        if value is None:
            if key in OPTIONAL.get(platform, set()):
                continue
            raise fail(key, "missing credential")
        if not isinstance(value, str | int) or value == "":
            raise fail(key, "must be a non-empty string")
        try:
            resolved = resolve_secret(str(value), environ=dict(environ) if environ is not None else None,
                                      base_dir=base_dir)
        except ConfigError as exc:
            raise fail(key, str(exc)) from None
        credentials[key] = resolved if is_secret else resolved.reveal()
    if platform == "telegram" and not TELEGRAM_SECRET_TOKEN.match(credentials["secret_token"].reveal()):  # type: ignore[union-attr]
        raise fail("secret_token", "Telegram allows 1-256 characters of A-Za-z0-9_-")
    limits_raw = raw.get("limits", {})
    if not isinstance(limits_raw, dict):
        raise fail("limits", "must be a table")
    for key, value in limits_raw.items():
        if key not in LIMIT_KEYS:
            raise fail(f"limits.{key}", f"unknown limit (one of {', '.join(sorted(LIMIT_KEYS))})")
        if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
            raise fail(f"limits.{key}", "must be a positive number")
    base = raw.get("api_base_url", DEFAULT_API_BASE[platform])
    if not isinstance(base, str) or (base and not base.startswith(("http://", "https://"))):
        raise fail("api_base_url", "must be an http(s) URL")
    handler = raw.get("handler")
    if handler is not None and (not isinstance(handler, str) or not handler):
        raise fail("handler", "must be an import path such as 'streams.examples.echo'")
    coalesce = raw.get("coalesce", True)
    if not isinstance(coalesce, bool):
        raise fail("coalesce", "must be true or false")
    return BotConfig(
        id=bot_id, platform=platform, credentials=credentials, api_base_url=base.rstrip("/"),
        handler=handler, limits=Limits(**{k: float(v) for k, v in limits_raw.items()}), coalesce=coalesce,
        api_version=str(raw.get("api_version", "v21.0")), fallback_text=raw.get("fallback_text"),
    )


def _section_lines(text: str) -> list[tuple[int, int]]:
    """(start, end) line numbers (1-based, end exclusive) of each [[bots]] section."""
    lines = text.splitlines()
    starts = [i + 1 for i, line in enumerate(lines) if re.match(r"^\s*\[\[\s*bots\s*\]\]", line)]
    bounds = []
    for n, start in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(lines) + 1
        bounds.append((start, end))
    return bounds


def _line_finder(text: str, start: int, end: int) -> Any:
    lines = text.splitlines()

    def line_of(key: str) -> int:
        leaf = key.split(".")[-1]
        for n in range(start, min(end, len(lines) + 1)):
            if re.match(rf"^\s*{re.escape(leaf)}\s*=", lines[n - 1]):
                return n
        return start
    return line_of
