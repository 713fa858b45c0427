"""The bots file: which bots this deployment serves, with their credentials and limits.

```toml
[[bots]]
id = "echo"
platform = "telegram"
secret_token = "env:ECHO_WEBHOOK_SECRET"   # literal, env:NAME or file:PATH
token = "file:/run/secrets/echo_token"
api_base_url = "http://127.0.0.1:8090"    # default: the platform's public API
handler = "botstream.streams.examples.echo"
handler_path = "bots"                      # optional: the folder (relative to this file) `handler` is
                                           # looked up in first; default: this file's folder
[bots.limits]
per_chat_per_second = 1.0
[bots.integrations.llm]                    # an external API the handlers call: ctx.integrations["llm"]
base_url = "http://127.0.0.1:8090/upstream/llm"
auth_header = "Authorization"              # optional, with auth_value (literal, env:NAME or file:PATH)
auth_scheme = "Bearer"                     # optional prefix of the header value
auth_value = "env:LLM_KEY"
max_concurrency = 40                       # requests in flight per worker process
slot_wait_s = 1.0                          # how long a call may wait for a slot (then IntegrationBusy)
timeout_s = 5.0                            # hard timeout of one attempt
retries = 3                                # retries of connection errors, timeouts, 5xx and 429
backoff_s = 0.25                           # full-jitter backoff ceilings 0.25 s, 1 s, 4 s (x4 per retry)
max_retry_after_s = 30.0                   # a longer Retry-After ends the call instead of waiting
[bots.integrations.llm.breaker]
failure_ratio = 0.5                        # opens at this failure share of >= min_calls calls in window_s
min_calls = 20
window_s = 30.0
open_s = 10.0                              # fails fast this long, then lets half_open_probes calls through
half_open_probes = 1
```

Loading resolves every credential reference and refuses the whole file on the first problem, with
the file, line, bot and key named — a bot that cannot verify its webhooks must not half-start.

A handler module is found relative to the bots file: `import_handler` looks in the bot's
`handler_path` folder (default: the bots file's folder) before the installed packages, however the
process was started (`botstream streams`, `python -m botstream streams`, `botstream up`'s children).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import logging
import re
import sys
import tomllib
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

from botstream.core.errors import BotsFileError, ConfigError, HandlerError
from botstream.core.secret import Secret, resolve_secret

log = logging.getLogger(__name__)

PLATFORMS = ("telegram", "slack", "discord", "whatsapp", "generic")
# The stage packages were top-level packages before they moved under `botstream`; a bots file may
# still name a handler by its old path ("streams.examples.echo").
OLD_TOP_LEVEL_PACKAGES = ("schemas", "ingest", "streams", "sinks", "sandbox")

# Per platform: credential key -> is it a secret. All are required unless listed in OPTIONAL.
CREDENTIALS: dict[str, dict[str, bool]] = {
    "telegram": {"secret_token": True, "token": True},
    "slack": {"signing_secret": True, "bot_token": True},
    "discord": {"public_key": False, "application_id": False, "bot_token": True},
    "whatsapp": {"app_secret": True, "verify_token": True, "access_token": True, "phone_number_id": False},
    "generic": {"secret": True, "timestamp_header": False, "timestamp_tolerance_s": False},
}
# generic: the optional signed-timestamp scheme (botstream.ingest.platforms.generic documents what it signs).
OPTIONAL: dict[str, set[str]] = {"generic": {"timestamp_header", "timestamp_tolerance_s"}}

DEFAULT_API_BASE = {
    "telegram": "https://api.telegram.org",
    "slack": "https://slack.com",
    "discord": "https://discord.com",
    "whatsapp": "https://graph.facebook.com",
    "generic": "",
}

LIMIT_KEYS = {"global_per_second", "per_chat_per_second", "per_group_per_minute", "per_chat_burst"}
BOT_KEYS = {"id", "platform", "api_base_url", "handler", "handler_path", "limits", "coalesce", "api_version",
            "fallback_text", "integrations"}
# key -> (type, lower bound, bound included); the breaker's as botstream.core.breaker.CircuitBreaker checks them
INTEGRATION_BOUNDS: dict[str, tuple[type, float, bool]] = {
    "max_concurrency": (int, 1, True), "slot_wait_s": (float, 0, True), "timeout_s": (float, 0, False),
    "retries": (int, 0, True), "backoff_s": (float, 0, True), "max_retry_after_s": (float, 0, True),
}
BREAKER_BOUNDS: dict[str, tuple[type, float, bool]] = {
    "failure_ratio": (float, 0, False), "min_calls": (int, 1, True), "window_s": (float, 0, False),
    "open_s": (float, 0, True), "half_open_probes": (int, 1, True),
}
BREAKER_KEYS = set(BREAKER_BOUNDS)
INTEGRATION_KEYS = {"base_url", "auth_header", "auth_scheme", "auth_value", "breaker", *INTEGRATION_BOUNDS}
INTEGRATION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
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
class BreakerSettings:
    """When an integration's circuit breaker opens and how it closes again (see botstream.core.breaker)."""

    failure_ratio: float = 0.5
    min_calls: int = 20
    window_s: float = 30.0
    open_s: float = 10.0
    half_open_probes: int = 1


@dataclass(frozen=True)
class IntegrationConfig:
    """An external HTTP API a bot's handlers call, with the guards every call goes through.

    Defaults suit an LLM-like API: a few seconds per answer, retried on the failures that are
    likely to pass (connection errors, timeouts, 5xx, 429) on a ~0.25 s / 1 s / 4 s schedule.
    """

    name: str
    base_url: str
    auth_header: str | None = None
    auth_value: Secret | None = None
    auth_scheme: str | None = None
    max_concurrency: int = 40
    slot_wait_s: float = 1.0
    timeout_s: float = 5.0
    retries: int = 3
    backoff_s: float = 0.25
    max_retry_after_s: float = 30.0
    breaker: BreakerSettings = field(default_factory=BreakerSettings)

    def auth_headers(self) -> dict[str, str]:
        """The auth header, revealed (call at the point of use only)."""
        if self.auth_header is None or self.auth_value is None:
            return {}
        value = self.auth_value.reveal()
        return {self.auth_header: f"{self.auth_scheme} {value}" if self.auth_scheme else value}

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k not in ("auth_value", "breaker")}
        out["auth_value"] = repr(self.auth_value) if self.auth_value is not None else None
        out["breaker"] = dict(vars(self.breaker))
        return out


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
    integrations: Mapping[str, IntegrationConfig] = field(default_factory=dict)
    #: the folder `handler` is looked up in first (`handler_path`, else the bots file's folder)
    handler_dir: Path | None = field(default=None, compare=False)
    #: where the bot is declared, for messages: "bots.toml:12: bot 'echo'"
    origin: str | None = field(default=None, compare=False)

    def secret(self, key: str) -> str:
        """The revealed value of a credential (call at the point of use only)."""
        value = self.credentials[key]
        return value.reveal() if isinstance(value, Secret) else value

    def secrets(self) -> list[str]:
        found = [v.reveal() for v in self.credentials.values() if isinstance(v, Secret)]
        return found + [i.auth_value.reveal() for i in self.integrations.values() if i.auth_value is not None]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "platform": self.platform, "api_base_url": self.api_base_url,
            "handler": self.handler, "handler_dir": str(self.handler_dir) if self.handler_dir else None,
            "coalesce": self.coalesce,
            "credentials": {k: repr(v) if isinstance(v, Secret) else v for k, v in self.credentials.items()},
            "limits": {k: v for k, v in vars(self.limits).items() if v is not None},
            "integrations": {name: i.as_dict() for name, i in self.integrations.items()},
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
    """The bots file, parsed; any problem is a `BotsFileError` naming the file (and line, bot, key)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise BotsFileError(f"{path}: cannot read bots file: {exc.strerror}") from None
    try:
        return parse_bots(text, source=path, environ=environ)
    except BotsFileError:
        raise
    except ConfigError as exc:
        raise BotsFileError(str(exc)) from None


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
        if "integrations" in raw:
            integrations = _parse_integrations(raw["integrations"], where, f"bot {bot.id!r}",
                                               _table_line_finder(text, start, end), environ, base_dir)
            bot = replace(bot, integrations=integrations)
        if bot.id in seen:
            raise ConfigError(f"{where}:{line_of('id')}: bot {bot.id!r}: duplicate id "
                              f"(first declared as bot #{seen[bot.id] + 1})")
        seen[bot.id] = index
        if bot.handler is not None and bot.handler_dir is not None:
            _HANDLER_DIRS[bot.handler] = bot.handler_dir
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
    if "timestamp_header" in credentials and not HEADER_NAME.match(str(credentials["timestamp_header"])):
        raise fail("timestamp_header", "must be an HTTP header name such as 'X-Signature-Timestamp'")
    if "timestamp_tolerance_s" in credentials:
        if "timestamp_header" not in credentials:
            raise fail("timestamp_tolerance_s", "goes with timestamp_header")
        if not str(credentials["timestamp_tolerance_s"]).isdigit() or int(str(credentials["timestamp_tolerance_s"])) < 1:
            raise fail("timestamp_tolerance_s", "must be a whole number of seconds >= 1")
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
        raise fail("handler", "must be an import path such as 'botstream.streams.examples.echo'")
    if handler is not None:
        handler = current_handler_path(handler, f"{where}:{line_of('handler')}: {label}")
    handler_path = raw.get("handler_path")
    handler_dir = base_dir
    if handler_path is not None:
        if not isinstance(handler_path, str) or not handler_path:
            raise fail("handler_path", "must be a folder, relative to the bots file or absolute")
        handler_dir = (base_dir / handler_path) if base_dir is not None else Path(handler_path)
        if not handler_dir.is_dir():
            raise fail("handler_path", f"{str(handler_dir)!r} is not a folder")
    coalesce = raw.get("coalesce", True)
    if not isinstance(coalesce, bool):
        raise fail("coalesce", "must be true or false")
    return BotConfig(
        id=bot_id, platform=platform, credentials=credentials, api_base_url=base.rstrip("/"),
        handler=handler, limits=Limits(**{k: float(v) for k, v in limits_raw.items()}), coalesce=coalesce,
        api_version=str(raw.get("api_version", "v21.0")), fallback_text=raw.get("fallback_text"),
        handler_dir=handler_dir.resolve() if handler_dir is not None and handler is not None else None,
        origin=f"{where}:{line_of('handler' if handler is not None else 'id')}: {label}",
    )


def current_handler_path(handler: str, where: str = "") -> str:
    """`handler` with an old top-level stage package ("streams.examples.echo") mapped to its place
    under `botstream` ("botstream.streams.examples.echo"), with a DeprecationWarning and a log
    warning naming `where`; any other path is returned as it is."""
    top = handler.split(".", 1)[0]
    if top not in OLD_TOP_LEVEL_PACKAGES:
        return handler
    new = f"botstream.{handler}"
    message = (f"{where + ': ' if where else ''}handler {handler!r} uses the old top-level package {top!r}; "
               f"write {new!r} (the old path will stop working)")
    warnings.warn(message, DeprecationWarning, stacklevel=2)
    log.warning(message)
    return new


TableLine = Callable[[tuple[str, ...], str | None], int]


def _parse_integrations(raw: Any, where: str, label: str, line_of: TableLine,
                        environ: Mapping[str, str] | None, base_dir: Path | None) -> dict[str, IntegrationConfig]:
    """`[bots.integrations.<name>]` tables (and their `.breaker` sub-tables) -> IntegrationConfig."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}:{line_of(('integrations',), None)}: {label}, key 'integrations': "
                          "must be tables, one per integration: [bots.integrations.<name>]")
    return {name: _parse_integration(name, table, where, label, line_of, environ, base_dir)
            for name, table in raw.items()}


def _parse_integration(name: str, table: Any, where: str, label: str, line_of: TableLine,
                       environ: Mapping[str, str] | None, base_dir: Path | None) -> IntegrationConfig:
    path = ("integrations", name)

    def fail(key: str | None, msg: str, sub: tuple[str, ...] = ()) -> ConfigError:
        dotted = ".".join((*path, *sub, key) if key else (*path, *sub))
        return ConfigError(f"{where}:{line_of((*path, *sub), key)}: {label}, key {dotted!r}: {msg}")

    if not INTEGRATION_NAME.match(name):
        raise fail(None, "integration names are 1-64 chars of A-Za-z0-9_-")
    if not isinstance(table, dict):
        raise fail(None, "must be a table: [bots.integrations.<name>]")
    for key in table:
        if key not in INTEGRATION_KEYS:
            raise fail(key, f"unknown key (one of {', '.join(sorted(INTEGRATION_KEYS))})")
    base_url = table.get("base_url")
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise fail("base_url", "missing or not an http(s) URL")
    header, value, scheme = table.get("auth_header"), table.get("auth_value"), table.get("auth_scheme")
    if (header is None) != (value is None):
        raise fail("auth_header" if header is None else "auth_value", "auth_header and auth_value go together")
    if header is not None and (not isinstance(header, str) or not HEADER_NAME.match(header)):
        raise fail("auth_header", "must be an HTTP header name such as 'Authorization'")
    if scheme is not None and (value is None or not isinstance(scheme, str) or not HEADER_NAME.match(scheme)):
        raise fail("auth_scheme", "must be a word such as 'Bearer', with auth_header and auth_value")
    secret: Secret | None = None
    if value is not None:
        if not isinstance(value, str) or value == "":
            raise fail("auth_value", "must be a non-empty string (literal, env:NAME or file:PATH)")
        try:
            secret = resolve_secret(value, environ=dict(environ) if environ is not None else None,
                                    base_dir=base_dir)
        except ConfigError as exc:
            raise fail("auth_value", str(exc)) from None
    numbers: dict[str, Any] = {}
    for key, (kind, low, inclusive) in INTEGRATION_BOUNDS.items():
        if key in table:
            numbers[key] = _number(table[key], kind, low, inclusive, partial(fail, key))
    breaker_raw = table.get("breaker", {})
    if not isinstance(breaker_raw, dict):
        raise fail("breaker", "must be a table: [bots.integrations.<name>.breaker]")
    breaker: dict[str, Any] = {}
    for key, item in breaker_raw.items():
        if key not in BREAKER_KEYS:
            raise fail(key, f"unknown key (one of {', '.join(sorted(BREAKER_KEYS))})", ("breaker",))
        kind, low, inclusive = BREAKER_BOUNDS[key]
        breaker[key] = _number(item, kind, low, inclusive, partial(fail, key, sub=("breaker",)))
    if breaker.get("failure_ratio", 0.5) > 1:
        raise fail("failure_ratio", "must be within (0, 1]", ("breaker",))
    return IntegrationConfig(
        name=name, base_url=base_url.rstrip("/"), auth_header=header, auth_value=secret, auth_scheme=scheme,
        breaker=BreakerSettings(**breaker), **numbers,
    )


def _number(value: Any, kind: type, low: float, inclusive: bool, fail: Callable[[str], ConfigError]) -> Any:
    """An int (or, for float settings, any number) at or above / strictly above `low`."""
    ok_type = isinstance(value, int) if kind is int else isinstance(value, int | float)
    bound = ">=" if inclusive else ">"
    noun = "an integer" if kind is int else "a number"
    if isinstance(value, bool) or not ok_type or (value < low if inclusive else value <= low):
        raise fail(f"must be {noun} {bound} {low:g}")
    return kind(value)


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


def _table_line_finder(text: str, start: int, end: int) -> Callable[[tuple[str, ...], str | None], int]:
    """Line of `key` inside the table `[bots.<path>]` of one bot section (or of the table header).

    Needed for integrations: several of them repeat the same keys, so the leaf alone is ambiguous.
    Falls back to the bot's first line when the table is written inline.
    """
    lines = text.splitlines()

    def line_of(path: tuple[str, ...], key: str | None) -> int:
        parts = [r"\s*bots\s*", *(rf"\s*(?:{re.escape(p)}|\"{re.escape(p)}\"|'{re.escape(p)}')\s*" for p in path)]
        header = re.compile(r"^\s*\[" + r"\.".join(parts) + r"\]\s*(#.*)?$")
        for n in range(start, min(end, len(lines) + 1)):
            if header.match(lines[n - 1]):
                if key is None:
                    return n
                for m in range(n + 1, min(end, len(lines) + 1)):
                    if lines[m - 1].lstrip().startswith("["):
                        break
                    if re.match(rf"^\s*{re.escape(key)}\s*=", lines[m - 1]):
                        return m
                return n
        leaf = key or path[-1]  # an inline table or a dotted key: the first line that names it
        for n in range(start, min(end, len(lines) + 1)):
            if re.match(rf"^\s*{re.escape(leaf)}\s*=", lines[n - 1]):
                return n
        return start
    return line_of


def load_service_bots(settings: Any) -> BotRegistry:
    """The bots a service process serves: `BOTSTREAM_BOTS_FILE`, loaded, and its secrets registered
    for masking in every log line (a last line of defence; code does not log them)."""
    from botstream.core.logs import register_secrets

    if settings.bots_file is None:
        raise BotsFileError("BOTSTREAM_BOTS_FILE is not set (see deploy/bots.example.toml)")
    bots = load_bots_file(settings.bots_file)
    register_secrets(bots.all_secrets())
    return bots


# handler import path -> the folder it is looked up in, as the last bots file loaded declared it
_HANDLER_DIRS: dict[str, Path] = {}


def handler_dir_of(handler: str) -> Path | None:
    """The folder the loaded bots file says `handler` is looked up in (None: installed packages only)."""
    return _HANDLER_DIRS.get(handler)


def import_handler(handler: str, folder: Path | None = None) -> ModuleType:
    """Import a bot's handler module, looking in `folder` (default: what the bots file said, see
    `handler_dir_of`) before the installed packages.

    The folder goes at the *end* of `sys.path` and only when it holds the module (`<top>.py` or a
    `<top>/` package), so a bot folder never shadows the standard library or botstream; a module of
    the same name found elsewhere first is refused rather than silently used. Any failure is a
    `HandlerError` of one line: what was imported, the exception's type and message, where it looked.
    """
    folder = folder if folder is not None else handler_dir_of(handler)
    top = handler.split(".", 1)[0]
    local = _local_module(folder, top) if folder is not None else None
    if local is not None and str(folder) not in sys.path:
        sys.path.append(str(folder))
        importlib.invalidate_caches()
    try:
        module = importlib.import_module(handler)
    except Exception as exc:  # the user's module may raise anything at import
        raise HandlerError(_import_failure(handler, exc, folder)) from exc
    if local is not None:
        found = getattr(sys.modules.get(top), "__file__", None) or ""
        if found and not Path(found).resolve().is_relative_to(local.resolve()):
            raise HandlerError(f"handler {handler!r}: {top!r} was imported from {found}, not from {local} "
                               "(another module of that name comes first on the import path; rename the bot module)")
    return module


def _local_module(folder: Path, top: str) -> Path | None:
    if (folder / f"{top}.py").is_file():
        return folder / f"{top}.py"
    if (folder / top).is_dir():
        return folder / top
    return None


def _import_failure(handler: str, exc: Exception, folder: Path | None) -> str:
    where = f"{folder} and the installed packages" if folder is not None else "the installed packages"
    if isinstance(exc, ModuleNotFoundError) and exc.name and (handler == exc.name or handler.startswith(exc.name + ".")):
        hint = ""
        if folder is not None and folder.is_dir():
            names = [p.stem for p in folder.glob("*.py")] + [p.name for p in folder.iterdir()
                                                                if p.is_dir() and (p / "__init__.py").exists()]
            near = difflib.get_close_matches(exc.name.rsplit(".", 1)[-1], names, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
        return f"handler {handler!r}: no module named {exc.name!r} (looked in {where}){hint}"
    detail = " ".join(str(exc).split())  # one line
    return f"handler {handler!r}: {type(exc).__name__}: {detail}"
