"""Your own bot: found next to the bots file (or in its `handler_path`) however the worker is started,
every handler imported before anything starts, and `botstream new-bot` writes a bot that works."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from botstream.core.bots import import_handler, load_bots_file
from botstream.core.errors import HandlerError
from botstream.core.exitcodes import ExitCode
from botstream.ops import preflight
from botstream.ops.cli import main

REPO = Path(__file__).resolve().parents[3]
BOTSTREAM_SCRIPT = Path(sys.executable).parent / "botstream"


def _bot_folder(tmp_path: Path, module: str, *, handler: str | None = None, handler_path: str | None = None,
                body: str = "bot = Bot()\n") -> Path:
    """A bots file in tmp_path/conf naming `handler` (default `module`), the module in its folder."""
    conf = tmp_path / "conf"
    code_dir = conf / handler_path if handler_path else conf
    code_dir.mkdir(parents=True, exist_ok=True)
    (code_dir / f"{module}.py").write_text("from botstream.streams.handlers import Bot, Context\n" + body)
    entry = textwrap.dedent(f"""
        [[bots]]
        id = "{module}"
        platform = "generic"
        secret = "demo-secret-value"
        api_base_url = "http://127.0.0.1:8090"
        handler = "{handler or module}"
    """)
    if handler_path:
        entry += f'handler_path = "{handler_path}"\n'
    (conf / "bots.toml").write_text(entry)
    return conf / "bots.toml"


def _cli(*args: str, cwd: Path, script: bool = False) -> subprocess.CompletedProcess[str]:
    argv = [str(BOTSTREAM_SCRIPT)] if script else [sys.executable, "-m", "botstream"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOTSTREAM_", "PYTHONPATH"))}
    return subprocess.run([*argv, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("script", [False, True], ids=["python -m botstream", "installed botstream script"])
def test_a_bot_next_to_the_bots_file_loads_from_any_working_directory(tmp_path: Path, script: bool) -> None:
    name = f"ownbot_{'script' if script else 'module'}"
    bots_file = _bot_folder(tmp_path, name)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = _cli("config", "check", "--bots", str(bots_file), "--json", cwd=elsewhere, script=script)
    assert out.returncode == 0, out.stderr
    assert f'"handler_file": "{bots_file.parent / name}.py"' in out.stdout


def test_the_workers_own_loading_path_finds_it(tmp_path: Path) -> None:
    """What StreamsWorker does: load the bots file, then load_handlers(bots, load_bot) by import path."""
    from botstream.streams.handlers import Bot, load_bot
    from botstream.streams.processor import load_handlers

    bots_file = _bot_folder(tmp_path, "ownbot_worker")
    handlers = load_handlers(load_bots_file(bots_file), load_bot)
    assert isinstance(handlers["ownbot_worker"], Bot)
    assert sys.modules["ownbot_worker"].__file__ == str(bots_file.parent / "ownbot_worker.py")


def test_handler_path_names_another_folder(tmp_path: Path) -> None:
    bots_file = _bot_folder(tmp_path, "ownbot_sub", handler_path="code")
    bots = load_bots_file(bots_file)
    assert bots["ownbot_sub"].handler_dir == (bots_file.parent / "code").resolve()
    assert "ownbot_sub" in preflight.handlers(bots)
    (bots_file.parent / "bots.toml").write_text(bots_file.read_text().replace('"code"', '"missing"'))
    with pytest.raises(Exception, match="handler_path.*is not a folder"):
        load_bots_file(bots_file)


def test_a_handler_typo_fails_up_before_kafka_starts_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    bots_file = _bot_folder(tmp_path, "ownbot_typo", handler="ownbot_tpyo")

    def no_kafka(*_a: object, **_k: object) -> None:
        raise AssertionError("Kafka was started")

    monkeypatch.setattr("botstream.ops.commands.up.kafka_for", no_kafka)
    assert main(["up", "--bots", str(bots_file)]) == ExitCode.HANDLER
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err == (f"botstream: error: {bots_file}:7: bot 'ownbot_typo': handler 'ownbot_tpyo': no module named "
                   f"'ownbot_tpyo' (looked in {bots_file.parent} and the installed packages); did you mean 'ownbot_typo'?")
    assert main(["config", "check", "--bots", str(bots_file)]) == ExitCode.HANDLER


def test_import_errors_inside_the_bot_are_named_in_one_line(tmp_path: Path) -> None:
    bots = load_bots_file(_bot_folder(tmp_path, "ownbot_broken", body="import not_installed_dep_xyz\nbot = Bot()\n"))
    with pytest.raises(HandlerError, match=r"bot 'ownbot_broken': handler 'ownbot_broken': "
                                           r"ModuleNotFoundError: No module named 'not_installed_dep_xyz'"):
        preflight.handlers(bots)
    bots = load_bots_file(_bot_folder(tmp_path / "b", "ownbot_syntax", body="def broken(:\n"))
    with pytest.raises(HandlerError, match=r"SyntaxError: .*ownbot_syntax.py, line"):
        preflight.handlers(bots)
    bots = load_bots_file(_bot_folder(tmp_path / "c", "ownbot_nobot", body="bots = Bot()\n"))
    with pytest.raises(HandlerError, match="has nothing as `bot`; it needs a module-level `bot = Bot\\(\\)`"):
        preflight.handlers(bots)


def test_a_module_of_the_same_name_earlier_on_the_path_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = tmp_path / "first"
    first.mkdir()
    (first / "ownbot_twin.py").write_text("bot = None\n")
    monkeypatch.syspath_prepend(str(first))
    bots_file = _bot_folder(tmp_path, "ownbot_twin")
    with pytest.raises(HandlerError, match="was imported from .*first/ownbot_twin.py, not from .*conf/ownbot_twin.py"):
        import_handler("ownbot_twin", bots_file.parent)


def test_bot_folder_never_shadows_installed_modules(tmp_path: Path) -> None:
    """The bots file's folder goes at the end of the import path, and only when it holds the handler."""
    bots_file = _bot_folder(tmp_path, "ownbot_order")
    (bots_file.parent / "json.py").write_text("raise SystemExit('shadowed')\n")
    preflight.handlers(load_bots_file(bots_file))
    assert sys.path.index(str(bots_file.parent)) > sys.path.index(str(Path(os.__file__).parent))
    import importlib

    assert importlib.import_module("json").__file__ != str(bots_file.parent / "json.py")


def test_new_bot_writes_a_module_an_entry_and_a_passing_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("BOTSTREAM_BOTS_FILE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["new-bot", "ownbot_new"]) == 0
    assert "created bots.toml" in capsys.readouterr().out
    bots = load_bots_file(tmp_path / "bots.toml")
    bot = bots["ownbot_new"]
    assert bot.platform == "telegram" and bot.handler == "ownbot_new" and bot.api_base_url == "http://127.0.0.1:8090"
    assert "ownbot_new" in preflight.handlers(bots)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_ownbot_new.py"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "2 passed" in run.stdout, run.stdout + run.stderr
    # a second bot goes into the same file; nothing is ever overwritten
    assert main(["new-bot", "ownbot_other", "--platform", "whatsapp", "--json"]) == 0
    assert set(load_bots_file(tmp_path / "bots.toml")) == {"ownbot_new", "ownbot_other"}
    capsys.readouterr()
    assert main(["new-bot", "ownbot_new"]) == ExitCode.FAILED
    assert "exists already; nothing was written" in capsys.readouterr().err
    assert main(["new-bot", "json"]) == ExitCode.FAILED
    assert "already an importable module" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["new-bot", "Not-A-Module"])
    assert usage.value.code == ExitCode.USAGE


def test_new_bot_makes_the_bots_files_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOTSTREAM_BOTS_FILE", raising=False)
    bots_file = tmp_path / "bots" / "prod" / "bots.toml"
    assert main(["new-bot", "ownbot_far", "--bots", str(bots_file)]) == 0
    assert (bots_file.parent / "ownbot_far.py").is_file() and (bots_file.parent / "test_ownbot_far.py").is_file()
    assert set(load_bots_file(bots_file)) == {"ownbot_far"}
