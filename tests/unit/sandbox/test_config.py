"""SandboxConfig: loading, strictness, merge patches."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from botstream.sandbox.config import ConfigError, SandboxConfig


def test_defaults_round_trip_through_dict() -> None:
    cfg = SandboxConfig()
    assert SandboxConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.limits.telegram.per_chat_per_second == 1.0
    assert cfg.limits.whatsapp.pair_burst == 45


def test_loads_toml_with_integer_chat_ids(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.toml"
    path.write_text(
        """
seed = 9
[limits.telegram]
enabled = false
[faults]
ratio_5xx = 0.25
forbidden_chats = [42, "C1"]
[faults.migrate]
"-5" = -1005
[faults.latency]
kind = "uniform"
min_ms = 1
max_ms = 3
[bots]
telegram = ["123:abc"]
"""
    )
    cfg = SandboxConfig.load(path)
    assert cfg.seed == 9 and not cfg.limits.telegram.enabled and cfg.limits.slack.enabled
    assert cfg.faults.forbidden_chats == ("42", "C1")
    assert cfg.faults.migrate == {"-5": "-1005"}
    assert cfg.faults.latency.kind == "uniform"
    assert cfg.bots == {"telegram": ("123:abc",)}


def test_loads_json(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.json"
    path.write_text(json.dumps({"faults": {"reset_ratio": 0.5}}))
    assert SandboxConfig.load(path).faults.reset_ratio == 0.5


@pytest.mark.parametrize(
    "data",
    [
        {"faults": {"ratio_5xxx": 0.1}},
        {"limits": {"telegram": {"enabled": "yes"}}},
        {"faults": {"ratio_5xx": 1.5}},
        {"faults": {"ratio_5xx": 0.6, "reset_ratio": 0.6}},
        {"faults": {"statuses_5xx": [404]}},
        {"faults": {"latency": {"kind": "gaussian"}}},
        {"faults": {"platforms": ["irc"]}},
        {"limits": {"slack": {"per_channel_per_second": 0}}},
        {"bots": {"telegram": "123:abc"}},
        {"seed": 1.5},
    ],
)
def test_rejects_invalid_config(data: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        SandboxConfig.from_dict(data)


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("seed = [")
    with pytest.raises(ConfigError):
        SandboxConfig.load(bad)
    with pytest.raises(ConfigError):
        SandboxConfig.load(tmp_path / "absent.json")


def test_merge_patch_merges_objects_and_null_restores_default() -> None:
    cfg = SandboxConfig().merged({"faults": {"ratio_5xx": 0.3, "migrate": {"-1": "-1001"}}})
    cfg = cfg.merged({"faults": {"migrate": {"-2": "-1002"}}, "limits": {"slack": {"per_channel_burst": 9}}})
    assert cfg.faults.ratio_5xx == 0.3
    assert cfg.faults.migrate == {"-1": "-1001", "-2": "-1002"}
    assert cfg.limits.slack.per_channel_burst == 9
    reverted = cfg.merged({"faults": {"ratio_5xx": None, "migrate": {"-1": None}}})
    assert reverted.faults.ratio_5xx == 0.0 and reverted.faults.migrate == {"-2": "-1002"}


def test_with_limits_disabled_turns_off_every_platform() -> None:
    cfg = SandboxConfig().with_limits_disabled()
    assert not any(
        (
            cfg.limits.telegram.enabled,
            cfg.limits.slack.enabled,
            cfg.limits.discord.enabled,
            cfg.limits.whatsapp.enabled,
        )
    )


def test_example_config_documents_the_defaults() -> None:
    example = Path(__file__).resolve().parents[3] / "sandbox" / "sandbox.example.toml"
    assert SandboxConfig.load(example) == SandboxConfig()
