from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest

from botstream.core.bots import load_bots_file, parse_bots
from botstream.core.errors import ConfigError
from botstream.core.logs import JsonFormatter, register_secrets
from botstream.core.secret import Secret
from botstream.core.settings import Settings

GOOD = """
[[bots]]
id = "echo"
platform = "telegram"
secret_token = "env:ECHO_SECRET"
token = "123:ABC"
handler = "botstream.streams.examples.echo"
[bots.limits]
per_chat_per_second = 2

[[bots]]
id = "faq"
platform = "slack"
signing_secret = "file:slack.secret"
bot_token = "xoxb-1"
api_base_url = "http://127.0.0.1:8090/"
coalesce = false
"""


def test_settings_from_env_types_and_names() -> None:
    s = Settings.from_env({"KAFKA_BOOTSTRAP_SERVERS": "b:9092", "BOTSTREAM_PARTITIONS": "12",
                           "BOTSTREAM_DATA_DIR": "/x", "BOTSTREAM_ACK_TIMEOUT_S": "0.5"})
    assert s.kafka_bootstrap_servers == "b:9092" and s.partitions == 12
    assert s.data_dir == Path("/x") and s.ack_timeout_s == 0.5
    assert s.topic("updates") == "botstream.updates"
    assert s.retry_delays == (5.0, 30.0, 300.0)
    assert s.env_names()["schema_registry_url"] == "SCHEMA_REGISTRY_URL"


def test_settings_bad_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="BOTSTREAM_PARTITIONS"):
        Settings.from_env({"BOTSTREAM_PARTITIONS": "many"})


def test_bots_file_resolves_env_and_file_secrets(tmp_path: Path) -> None:
    (tmp_path / "slack.secret").write_text("s3cr3t-signing\n")
    path = tmp_path / "bots.toml"
    path.write_text(GOOD)
    bots = load_bots_file(path, environ={"ECHO_SECRET": "tg-secret_1"})
    echo, faq = bots["echo"], bots["faq"]
    assert echo.secret("secret_token") == "tg-secret_1" and echo.secret("token") == "123:ABC"
    assert echo.limits.per_chat_per_second == 2.0 and echo.api_base_url == "https://api.telegram.org"
    assert faq.secret("signing_secret") == "s3cr3t-signing" and faq.api_base_url == "http://127.0.0.1:8090"
    assert faq.coalesce is False
    assert bots.lookup("slack", "faq") is faq and bots.lookup("telegram", "faq") is None
    shown = repr(echo.as_dict()) + repr(faq.as_dict()) + repr(echo.credentials)
    for secret in ("tg-secret_1", "123:ABC", "s3cr3t-signing", "xoxb-1"):
        assert secret not in shown


@pytest.mark.parametrize("text, message", [
    ('[[bots]]\nid = "a"\nplatform = "icq"\n', r"<bots>:3: bot 'a', key 'platform': unknown platform 'icq'"),
    ('[[bots]]\nid = "a"\nplatform = "telegram"\ntoken = "1:x"\n', r"key 'secret_token': missing credential"),
    ('[[bots]]\nid = "a"\nplatform = "generic"\nsecret = "env:NOPE_X"\n',
     r"<bots>:4: bot 'a', key 'secret': environment variable 'NOPE_X' is not set"),
    ('[[bots]]\nid = "a"\nplatform = "generic"\nsecret = "x"\n\n[[bots]]\nid = "a"\nplatform = "generic"\nsecret = "y"\n',
     r"<bots>:7: bot 'a': duplicate id"),
    ('[[bots]]\nid = "a"\nplatform = "generic"\nsecret = "x"\ncolour = "red"\n', r"key 'colour': unknown key"),
    ('[[bots]]\nid = "a"\nplatform = "generic"\nsecret = "x"\n[bots.limits]\nper_chat_per_second = -1\n',
     r"key 'limits.per_chat_per_second': must be a positive number"),
    ('[[bots]]\nid = "a"\nplatform = "telegram"\ntoken = "1:x"\nsecret_token = "has space"\n',
     r"Telegram allows"),
])
def test_bad_bots_files_name_line_bot_and_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_bots(text, environ={})


def test_secret_never_prints_and_is_masked_in_logs() -> None:
    s = Secret("hunter2-long")
    assert "hunter2" not in repr(s) and "hunter2" not in str(s) and "hunter2" not in f"{s}"
    assert s.reveal() == "hunter2-long"
    register_secrets(["hunter2-long"])
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "token is %s", ("hunter2-long",), None)
    line = JsonFormatter("test").format(record)
    assert "hunter2" not in line and "**********" in line


def test_cluster_ids_never_start_with_a_dash() -> None:
    from unittest import mock

    from botstream.ops.embedded_kafka import random_cluster_id

    dashed = mock.Mock(bytes=b"\xf8" + b"\x00" * 15)  # base64url of 0xf8... starts with '-'
    plain = mock.Mock(bytes=b"\x00" * 16)
    with mock.patch("botstream.ops.embedded_kafka.uuid.uuid4", side_effect=[dashed, plain]):
        assert random_cluster_id() == "AAAAAAAAAAAAAAAAAAAAAA"


def test_the_faust_workers_can_read_ingests_lz4_records() -> None:
    from aiokafka.codec import has_lz4

    assert has_lz4(), "aiokafka needs cramjam to decompress lz4 (ingest compresses with it)"


OLD_HANDLER = """
[[bots]]
id = "echo"
platform = "telegram"
secret_token = "tg-secret"
token = "123:ABC"
handler = "{handler}"
"""


@pytest.mark.parametrize(("old", "new"), [
    ("streams.examples.echo", "botstream.streams.examples.echo"),
    ("streams.examples.faq", "botstream.streams.examples.faq"),
    ("sinks", "botstream.sinks"),
])
def test_an_old_top_level_handler_path_still_works_with_a_deprecation_warning(
        old: str, new: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="botstream.core.bots"), \
            pytest.warns(DeprecationWarning, match=rf"<bots>:7: bot 'echo': handler '{old}'.*'{new}'"):
        bots = parse_bots(OLD_HANDLER.format(handler=old))
    assert bots["echo"].handler == new
    assert any(f"write '{new}'" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("handler", ["botstream.streams.examples.echo", "mybots.support", "streamsx.bot"])
def test_current_and_third_party_handler_paths_are_kept_without_a_warning(handler: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert parse_bots(OLD_HANDLER.format(handler=handler))["echo"].handler == handler


def test_an_old_handler_path_loads_the_bot_it_names() -> None:
    from botstream.streams.handlers import load_bot

    with pytest.warns(DeprecationWarning):
        bots = parse_bots(OLD_HANDLER.format(handler="streams.examples.echo"))
    assert bots["echo"].handler is not None
    assert load_bot(bots["echo"].handler) is load_bot("botstream.streams.examples.echo")


def test_ingest_runs_one_process_per_two_cpus_unless_told(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from botstream.core.settings import Settings

    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert Settings.from_env({}).ingest_processes == 4
    assert Settings.from_env({"BOTSTREAM_INGEST_WORKERS": "3"}).ingest_processes == 3
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert Settings.from_env({}).ingest_processes == 1
