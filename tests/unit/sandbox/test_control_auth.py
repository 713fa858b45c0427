"""The control API's token and masking, without sockets; and the compose file keeping the sandbox on
the host's loopback."""

from __future__ import annotations

from pathlib import Path

import yaml

from botstream.core.settings import REPO_ROOT, Settings
from botstream.sandbox.auth import authorized, client_token, token_file, write_token_file
from botstream.sandbox.config import SandboxConfig
from botstream.sandbox.control import handle_control, masked_config
from botstream.sandbox.engine import SandboxEngine
from botstream.sandbox.http import Request


def test_authorized_by_bearer_or_header_only_with_the_exact_token() -> None:
    assert authorized({"authorization": "Bearer t0k"}, "t0k")
    assert authorized({"authorization": "bearer t0k"}, "t0k")
    assert authorized({"x-sandbox-token": "t0k"}, "t0k")
    for headers in ({}, {"authorization": "Bearer t0"}, {"authorization": "Basic t0k"}, {"x-sandbox-token": ""},
                    {"x-sandbox-token": "t0k "}, {"authorization": "Bearer t0k\u00e9"}):
        assert not authorized(headers, "t0k"), headers


def test_protected_routes_answer_401_and_do_nothing() -> None:
    engine = SandboxEngine(SandboxConfig())
    before = engine.config
    reply = handle_control(engine, Request("PUT", "/_sandbox/config", body=b'{"faults": {"ratio_5xx": 1}}'), "tok")
    assert reply.status == 401 and engine.config is before
    ok = handle_control(engine, Request("GET", "/_sandbox/stats"), "tok")
    assert ok.status == 200


def test_masked_config_hides_every_bot_token_and_the_upstream_authorization() -> None:
    config = SandboxConfig().merged({"bots": {"slack": ["xoxb-a", "xoxb-b"]},
                                     "upstream": {"authorization": "Bearer k"}}).to_dict()
    shown = masked_config(config)
    assert shown["bots"] == {"slack": ["**********", "**********"]}
    assert shown["upstream"]["authorization"] == "**********"
    assert config["bots"] == {"slack": ["xoxb-a", "xoxb-b"]}  # the engine's own copy is untouched
    assert masked_config(SandboxConfig().to_dict())["upstream"]["authorization"] == ""


def test_client_token_from_the_setting_else_the_file_of_that_port(tmp_path: Path) -> None:
    settings = Settings.from_env({"BOTSTREAM_DATA_DIR": str(tmp_path)})
    assert client_token("http://127.0.0.1:8090", settings) is None
    write_token_file(token_file(tmp_path, 8090), "from-file")
    assert (tmp_path / "sandbox" / "control-8090.token").stat().st_mode & 0o777 == 0o600
    assert client_token("http://127.0.0.1:8090", settings) == "from-file"
    assert client_token("http://127.0.0.1:8091", settings) is None
    chosen = Settings.from_env({"BOTSTREAM_DATA_DIR": str(tmp_path), "BOTSTREAM_SANDBOX_TOKEN": "chosen"})
    assert client_token("http://127.0.0.1:8090", chosen) == "chosen"
    assert "chosen" not in str(chosen.as_dict())  # `botstream config show` masks it


def test_compose_publishes_the_sandbox_on_loopback_only() -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["sandbox"]["ports"] == ["127.0.0.1:8090:8090"]
