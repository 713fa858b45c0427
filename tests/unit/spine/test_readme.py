"""The README stays a short newcomer path; the tables the docs generate from the code stay in sync.

The topic catalog, the metrics and the exit codes are each listed once, in the docs page of their
section (docs/operations.md, docs/metrics.md), between `<!-- name:begin ... -->` / `<!-- name:end -->`
markers, and must equal what the code generates.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from botstream.core.settings import REPO_ROOT, Settings

README = REPO_ROOT / "README.md"
OPERATIONS = REPO_ROOT / "docs" / "operations.md"
METRICS = REPO_ROOT / "docs" / "metrics.md"
README_MAX_LINES = 160


def generated_block(path: Path, name: str) -> str:
    text = path.read_text()
    block = re.search(rf"<!-- {name}:begin[^>]*-->\n(.*?)\n<!-- {name}:end -->", text, re.S)
    assert block, f"{path.relative_to(REPO_ROOT)} lost its {name} block"
    return block.group(1).strip()


def test_readme_shows_the_two_commands_first() -> None:
    readme = README.read_text()
    assert "```sh" in readme, "README.md has no sh block"
    first_code = readme.split("```sh", 1)[1].split("```", 1)[0]
    assert "make run" in first_code and "make test" in first_code


def test_readme_is_short() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= README_MAX_LINES, (
        f"README.md has {lines} lines (at most {README_MAX_LINES}): it is the newcomer path; "
        "move reference material to a page under docs/ and link it")


def test_topic_table_matches_the_catalog() -> None:
    from botstream.schemas.topics import markdown_table

    assert generated_block(OPERATIONS, "topics") == markdown_table(Settings.from_env({})).strip(), (
        "docs/operations.md topic table is stale; regenerate with: .venv/bin/python -c "
        "'from botstream.schemas.topics import markdown_table; from botstream.core.settings import Settings; "
        "print(markdown_table(Settings.from_env({})))'")


def test_metrics_table_matches_what_the_code_exports() -> None:
    from botstream.ops.metrics_catalog import markdown_table as metrics_table

    assert generated_block(METRICS, "metrics") == metrics_table().strip(), (
        "docs/metrics.md metrics table is stale; regenerate with: .venv/bin/python -m botstream.ops.metrics_catalog")


def test_exit_codes_match_the_code() -> None:
    from botstream.core.exitcodes import markdown_table as exit_codes

    assert generated_block(OPERATIONS, "exitcodes") == exit_codes().strip(), (
        "docs/operations.md exit codes are stale; regenerate with: .venv/bin/python -c "
        "'from botstream.core.exitcodes import markdown_table; print(markdown_table())'")


@pytest.mark.parametrize("name", ["topics", "metrics", "exitcodes"])
def test_each_generated_table_is_listed_once(name: str) -> None:
    """A table copied into a second page would not be checked there and would drift."""
    pages = [README, REPO_ROOT / "ARCHITECTURE.md", *sorted((REPO_ROOT / "docs").rglob("*.md"))]
    holders = [p.relative_to(REPO_ROOT).as_posix() for p in pages if f"<!-- {name}:begin" in p.read_text()]
    assert len(holders) == 1, f"the {name} table must be in exactly one page, found in: {holders or 'none'}"
