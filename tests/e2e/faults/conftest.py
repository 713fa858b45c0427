"""The fault suite runs only when asked for (`make faults`: `pytest tests/e2e/faults -m faults`, or
BOTSTREAM_FAULTS=1): it takes several minutes of a whole pipeline per scenario, so `make test`
deselects it (`-m "not faults"`); a bare `pytest` skips it."""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: whole-pipeline fault scenarios (make faults), not part of make test")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "faults" in (config.getoption("-m") or "") or os.environ.get("BOTSTREAM_FAULTS") == "1":
        return  # `-m faults` selects them, `-m "not faults"` (make test) deselects them: pytest decides
    skip = pytest.mark.skip(reason="fault suite: run it with `make faults` (pytest tests/e2e/faults -m faults)")
    for item in items:
        if "faults" in item.keywords:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The results table, also when pytest captured the output of the tests."""
    from tests.e2e.faults import test_faults

    if test_faults.ROWS and test_faults.RESULTS_MD.exists():
        terminalreporter.write_sep("=", "fault suite results")
        terminalreporter.write(test_faults.RESULTS_MD.read_text())
        terminalreporter.write_line(f"(written to {test_faults.RESULTS_MD.relative_to(test_faults.ROOT)})")
