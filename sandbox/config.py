"""The sandbox's one settings object.

`SandboxConfig` is a frozen tree of dataclasses so a running server can swap it atomically when the
control API patches it (`PUT /_sandbox/config` is a JSON merge patch: objects merge, `null` resets a
key to its default). It loads from TOML or JSON with unknown keys rejected, because a typo in a fault
setting silently meaning "no fault" would make a test pass for the wrong reason.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

__all__ = [
    "PLATFORMS",
    "ConfigError",
    "DiscordLimits",
    "FaultConfig",
    "LatencySpec",
    "LimitsConfig",
    "SandboxConfig",
    "SlackLimits",
    "TelegramLimits",
    "UPSTREAM_BEHAVIOURS",
    "UpstreamConfig",
    "WhatsAppLimits",
]

PLATFORMS: tuple[str, ...] = ("telegram", "slack", "discord", "whatsapp")
UPSTREAM_BEHAVIOURS: tuple[str, ...] = ("ok", "error", "rate_limit", "hang")


class ConfigError(ValueError):
    """A config file or patch that does not describe a valid `SandboxConfig`."""


@dataclass(frozen=True, slots=True)
class TelegramLimits:
    """~1 msg/s per chat with a short burst, 30 msg/s per bot, 20 msg/min per group (negative id)."""

    enabled: bool = True
    per_chat_per_second: float = 1.0
    per_chat_burst: int = 3
    per_bot_per_second: float = 30.0
    per_bot_burst: int = 30
    #: replaces the per-bot budget for requests carrying `allow_paid_broadcast: true`
    paid_per_bot_per_second: float = 1000.0
    group_per_window: int = 20
    group_window_seconds: float = 60.0


@dataclass(frozen=True, slots=True)
class SlackLimits:
    """chat.postMessage: ~1 msg/s per channel, short bursts tolerated."""

    enabled: bool = True
    per_channel_per_second: float = 1.0
    per_channel_burst: int = 3


@dataclass(frozen=True, slots=True)
class DiscordLimits:
    """Fixed windows, as Discord's buckets are: 50 req/s global per bot, 5 msgs / 5 s per channel.

    Interaction follow-ups (webhooks) get their own per-webhook bucket of the same size and, as on
    Discord, are exempt from the bot's global limit.
    """

    enabled: bool = True
    global_limit: int = 50
    global_window_seconds: float = 1.0
    channel_limit: int = 5
    channel_window_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class WhatsAppLimits:
    """80 msg/s per business number (error 130429); pair limit ~1 msg / 6 s per user, burst 45 (131056)."""

    enabled: bool = True
    per_number_per_second: float = 80.0
    per_number_burst: int = 80
    pair_interval_seconds: float = 6.0
    pair_burst: int = 45


@dataclass(frozen=True, slots=True)
class LimitsConfig:
    telegram: TelegramLimits = field(default_factory=TelegramLimits)
    slack: SlackLimits = field(default_factory=SlackLimits)
    discord: DiscordLimits = field(default_factory=DiscordLimits)
    whatsapp: WhatsAppLimits = field(default_factory=WhatsAppLimits)


@dataclass(frozen=True, slots=True)
class LatencySpec:
    """Added response latency: none, fixed `ms`, uniform [`min_ms`, `max_ms`], or exponential with
    `mean_ms`; every kind is capped at `cap_ms` so a heavy tail cannot stall a test suite."""

    kind: Literal["none", "fixed", "uniform", "exponential"] = "none"
    ms: float = 0.0
    min_ms: float = 0.0
    max_ms: float = 0.0
    mean_ms: float = 0.0
    cap_ms: float = 5000.0


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Injected failures. Random ones (5xx, timeout, reset) are drawn from `random.Random(seed)` in
    request arrival order; chat-keyed ones (forbidden, missing, migrate) are deterministic.

    Chat ids are strings and apply on every platform (Telegram ids are compared in canonical integer
    form, e.g. "-100123"). `platforms` restricts the random faults to those platforms (empty = all).
    `after_delivery` makes random faults strike after the message was recorded, i.e. the response is
    lost but the message was delivered — the case that makes senders duplicate.
    """

    ratio_5xx: float = 0.0
    statuses_5xx: tuple[int, ...] = (500, 502, 503)
    latency: LatencySpec = field(default_factory=LatencySpec)
    timeout_ratio: float = 0.0
    timeout_hold_seconds: float = 30.0
    reset_ratio: float = 0.0
    after_delivery: bool = False
    platforms: tuple[str, ...] = ()
    forbidden_chats: tuple[str, ...] = ()
    missing_chats: tuple[str, ...] = ()
    #: Telegram only: chat id -> supergroup id returned in `parameters.migrate_to_chat_id`
    migrate: dict[str, str] = field(default_factory=dict)

    @property
    def random_active(self) -> bool:
        return bool(self.ratio_5xx or self.timeout_ratio or self.reset_ratio or self.latency.kind != "none")


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    """The generic upstream at `/upstream/{name}/...`: a stand-in for the external APIs bots call
    through integrations (an LLM, a CRM), so their guards are tested against a real server.

    Random outcomes (error, rate_limit, hang; mutually exclusive bands of one draw) and latency come
    from `random.Random(seed)` in arrival order. `keys` pins a behaviour ("ok", "error", "rate_limit",
    "hang") to a request key — the `X-Upstream-Key` header, else the JSON body's `key_field` — e.g. one
    chat's calls hang while the others' answer. A hang holds the request until the client disconnects
    (or `hang_max_s`, then 504). `retry_after_s` may be fractional, unlike real servers, so tests of
    Retry-After run fast. With `authorization` set, requests need exactly that Authorization header.
    """

    latency: LatencySpec = field(default_factory=LatencySpec)
    error_ratio: float = 0.0
    error_statuses: tuple[int, ...] = (500, 502, 503)
    rate_limit_ratio: float = 0.0
    retry_after_s: float = 1.0
    hang_ratio: float = 0.0
    hang_max_s: float = 300.0
    keys: dict[str, str] = field(default_factory=dict)
    key_field: str = "user"
    authorization: str = ""

    @property
    def random_active(self) -> bool:
        return bool(self.error_ratio or self.rate_limit_ratio or self.hang_ratio or self.latency.kind != "none")


@dataclass(frozen=True, slots=True)
class SandboxConfig:
    """Everything the sandbox can be told. `bots` maps a platform to its known tokens; a platform
    with no entry accepts any well-formed token (WhatsApp: access tokens)."""

    seed: int = 0
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    faults: FaultConfig = field(default_factory=FaultConfig)
    upstream: UpstreamConfig = field(default_factory=UpstreamConfig)
    bots: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: newest deliveries kept for `GET /_sandbox/deliveries` (0 = unbounded)
    delivery_log_limit: int = 100_000
    #: how long Discord remembers an enforced `nonce`
    nonce_window_seconds: float = 300.0

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SandboxConfig:
        return _build(cls, data, "config")

    @classmethod
    def load(cls, path: str | Path) -> SandboxConfig:
        """Read a `.toml` file, or JSON for any other suffix."""
        p = Path(path)
        try:
            raw = p.read_bytes()
            data = tomllib.loads(raw.decode()) if p.suffix == ".toml" else json.loads(raw)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {p}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{p}: top level must be a table/object")
        return cls.from_dict(data)

    def to_dict(self) -> dict[str, Any]:
        plain: dict[str, Any] = _plain(dataclasses.asdict(self))
        return plain

    def merged(self, patch: Mapping[str, Any]) -> SandboxConfig:
        """Apply a JSON merge patch (RFC 7396) and validate the result."""
        return SandboxConfig.from_dict(_merge(self.to_dict(), patch))

    def with_limits_disabled(self) -> SandboxConfig:
        """Same config with every platform's limiter off (throughput benches, functional tests)."""
        off = {p: {"enabled": False} for p in PLATFORMS}
        return self.merged({"limits": off})


def _validate(cfg: SandboxConfig) -> None:
    f = cfg.faults
    for name in ("ratio_5xx", "timeout_ratio", "reset_ratio"):
        v = getattr(f, name)
        if not 0.0 <= v <= 1.0:
            raise ConfigError(f"faults.{name} must be within [0, 1], got {v}")
    if f.ratio_5xx + f.timeout_ratio + f.reset_ratio > 1.0 + 1e-9:
        raise ConfigError("faults: ratio_5xx + timeout_ratio + reset_ratio must not exceed 1")
    if not f.statuses_5xx or any(not 500 <= s <= 599 for s in f.statuses_5xx):
        raise ConfigError("faults.statuses_5xx must be a non-empty list of 5xx codes")
    if f.timeout_hold_seconds < 0:
        raise ConfigError("faults.timeout_hold_seconds must be >= 0")
    lat = f.latency
    if min(lat.ms, lat.min_ms, lat.max_ms, lat.mean_ms, lat.cap_ms) < 0 or lat.min_ms > lat.max_ms:
        raise ConfigError("faults.latency: values must be >= 0 and min_ms <= max_ms")
    for p in (*f.platforms, *cfg.bots):
        if p not in PLATFORMS:
            raise ConfigError(f"unknown platform {p!r}; expected one of {', '.join(PLATFORMS)}")
    for section in dataclasses.fields(cfg.limits):
        limits = getattr(cfg.limits, section.name)
        for fld in dataclasses.fields(limits):
            v = getattr(limits, fld.name)
            if fld.name != "enabled" and not v > 0:
                raise ConfigError(f"limits.{section.name}.{fld.name} must be > 0, got {v}")
    if cfg.delivery_log_limit < 0 or cfg.nonce_window_seconds < 0:
        raise ConfigError("delivery_log_limit and nonce_window_seconds must be >= 0")
    _validate_upstream(cfg.upstream)


def _validate_upstream(up: UpstreamConfig) -> None:
    for name in ("error_ratio", "rate_limit_ratio", "hang_ratio"):
        v = getattr(up, name)
        if not 0.0 <= v <= 1.0:
            raise ConfigError(f"upstream.{name} must be within [0, 1], got {v}")
    if up.error_ratio + up.rate_limit_ratio + up.hang_ratio > 1.0 + 1e-9:
        raise ConfigError("upstream: error_ratio + rate_limit_ratio + hang_ratio must not exceed 1")
    if not up.error_statuses or any(not 500 <= s <= 599 for s in up.error_statuses):
        raise ConfigError("upstream.error_statuses must be a non-empty list of 5xx codes")
    if up.retry_after_s < 0 or up.hang_max_s < 0:
        raise ConfigError("upstream.retry_after_s and upstream.hang_max_s must be >= 0")
    lat = up.latency
    if min(lat.ms, lat.min_ms, lat.max_ms, lat.mean_ms, lat.cap_ms) < 0 or lat.min_ms > lat.max_ms:
        raise ConfigError("upstream.latency: values must be >= 0 and min_ms <= max_ms")
    for key, behaviour in up.keys.items():
        if behaviour not in UPSTREAM_BEHAVIOURS:
            raise ConfigError(f"upstream.keys.{key} must be one of {', '.join(UPSTREAM_BEHAVIOURS)}, "
                              f"got {behaviour!r}")


T = TypeVar("T")


def _build(cls: type[T], data: Any, path: str) -> T:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path} must be an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    kwargs = {k: _coerce(hints[k], v, f"{path}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:  # pragma: no cover - every field has a default
        raise ConfigError(f"{path}: {exc}") from exc


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path)  # type: ignore[arg-type]
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{path} must be one of {typing.get_args(tp)}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path} must be a list")
        (item,) = typing.get_args(tp)[:1]
        return tuple(_coerce(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path} must be an object")
        _, item = typing.get_args(tp)
        return {str(k): _coerce(item, v, f"{path}.{k}") for k, v in value.items()}
    if origin in (types.UnionType, typing.Union):  # pragma: no cover - no optional fields yet
        raise ConfigError(f"{path}: unsupported type")
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path} must be true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path} must be an integer")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path} must be a number")
        return float(value)
    if tp is str:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise ConfigError(f"{path} must be a string")
        return str(value)
    raise ConfigError(f"{path}: unsupported type {tp!r}")  # pragma: no cover


def _merge(base: dict[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(patch, Mapping):
        raise ConfigError("config patch must be an object")
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _plain(value: Any) -> Any:
    """asdict leaves tuples; JSON wants lists (and round-trips them back through `_coerce`)."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
