"""Settings and the command line: typos in BOTSTREAM_* names are warned about with the nearest name,
closed sets refuse unknown values, `--version`, and `--json` on every command that prints data."""

from __future__ import annotations

import argparse
import json
import os

import pytest

from botstream import __version__
from botstream.core.errors import ConfigError
from botstream.core.exitcodes import ExitCode
from botstream.core.settings import Settings
from botstream.ops.cli import build_parser, main, unknown_variables

# Commands that run a service or change something and print no data of their own.
NO_DATA = {("up",), ("streams",), ("sinks",), ("ingest",), ("sandbox",), ("kafka", "down")}


def test_unknown_variables_name_the_nearest_setting() -> None:
    warnings = unknown_variables({"BOTSTREAM_PARTITONS": "3", "BOTSTREAM_PARTITIONS": "3", "BOTSTREAM_OTEL": "console",
                                  "BOTSTREAM_ZZZ": "1", "HOME": "/root"})
    assert warnings == ["BOTSTREAM_PARTITONS is not a botstream setting, ignored; did you mean BOTSTREAM_PARTITIONS?",
                        "BOTSTREAM_ZZZ is not a botstream setting, ignored (`botstream config show` lists the settings)"]


def test_the_warning_is_printed_once_at_start(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BOTSTREAM_LOG_LEVLE", "DEBUG")
    monkeypatch.delenv("BOTSTREAM_BOTS_FILE", raising=False)
    assert main(["config", "show"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == ["botstream: warning: BOTSTREAM_LOG_LEVLE is not a botstream setting, ignored; "
                   "did you mean BOTSTREAM_LOG_LEVEL?"]


@pytest.mark.parametrize(("variable", "value", "allowed"), [
    ("BOTSTREAM_LOG_FORMAT", "xml", "json, text"),
    ("BOTSTREAM_LOG_LEVEL", "verbose", "DEBUG, INFO, WARNING, ERROR, CRITICAL"),
])
def test_closed_sets_refuse_unknown_values(variable: str, value: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({variable: value})
    assert str(caught.value) == f"{variable}: {value!r} is not one of {allowed}"


def test_closed_sets_read_any_case() -> None:
    s = Settings.from_env({"BOTSTREAM_LOG_LEVEL": "debug", "BOTSTREAM_LOG_FORMAT": "TEXT"})
    assert (s.log_level, s.log_format) == ("DEBUG", "text")


def test_the_closed_sets_declare_their_choices() -> None:
    import dataclasses

    fields = {f.name: f for f in dataclasses.fields(Settings)}
    for name in ("log_level", "log_format", "kafka_security_protocol"):
        assert fields[name].metadata.get("choices"), name


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])
    assert caught.value.code == 0 and capsys.readouterr().out.strip() == f"botstream {__version__}"


def _leaves(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [(path, parser)]
    return [leaf for name, child in subs[0].choices.items() for leaf in _leaves(child, (*path, name))]


def test_every_command_that_prints_data_has_json() -> None:
    leaves = _leaves(build_parser())
    assert len(leaves) > 15
    missing = [" ".join(path) for path, p in leaves
               if path not in NO_DATA and "--json" not in {o for a in p._actions for o in a.option_strings}]
    assert missing == []


def test_config_show_json_masks_credentials_in_urls(monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    for name in list(os.environ):
        if name.startswith("BOTSTREAM_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SCHEMA_REGISTRY_URL", "https://reg-user:reg-pass-123@registry.example:8081")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:9092")
    assert main(["config", "show", "--json"]) == 0
    out = capsys.readouterr().out
    assert "reg-pass-123" not in out
    assert json.loads(out)["settings"]["schema_registry_url"] == "https://reg-user:**********@registry.example:8081"


def test_exit_code_of_a_bad_setting_is_settings(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("BOTSTREAM_LOG_FORMAT", "xml")
    assert main(["config", "show"]) == ExitCode.SETTINGS
    assert capsys.readouterr().err.strip() == "botstream: error: BOTSTREAM_LOG_FORMAT: 'xml' is not one of json, text"
