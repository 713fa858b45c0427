"""The README's topic table is generated from the catalog; this keeps them in sync."""

from __future__ import annotations

import re

from botstream.core.settings import REPO_ROOT, Settings
from botstream.schemas.topics import markdown_table


def test_readme_topic_table_matches_the_catalog() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"<!-- topics:begin[^>]*-->\n(.*?)\n<!-- topics:end -->", readme, re.S)
    assert block, "README.md lost its topics block"
    expected = markdown_table(Settings.from_env({}))
    assert block.group(1).strip() == expected.strip(), (
        "README topic table is stale; regenerate with: .venv/bin/python -c "
        "'from botstream.schemas.topics import markdown_table; from botstream.core.settings import Settings; "
        "print(markdown_table(Settings()))'")


def test_readme_shows_the_two_commands_first() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    first_code = readme.split("```sh", 1)[1].split("```", 1)[0]
    assert "make run" in first_code and "make test" in first_code


def test_readme_metrics_table_matches_what_the_code_exports() -> None:
    from botstream.ops.metrics_catalog import markdown_table as metrics_table

    readme = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"<!-- metrics:begin[^>]*-->\n(.*?)\n<!-- metrics:end -->", readme, re.S)
    assert block, "README.md lost its metrics block"
    assert block.group(1).strip() == metrics_table().strip(), (
        "README metrics table is stale; regenerate with: .venv/bin/python -m botstream.ops.metrics_catalog")


def test_readme_exit_codes_match_the_code() -> None:
    from botstream.core.exitcodes import markdown_table as exit_codes

    readme = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"<!-- exitcodes:begin[^>]*-->\n(.*?)\n<!-- exitcodes:end -->", readme, re.S)
    assert block, "README.md lost its exit codes block"
    assert block.group(1).strip() == exit_codes().strip(), (
        "README exit codes are stale; regenerate with: .venv/bin/python -c "
        "'from botstream.core.exitcodes import markdown_table; print(markdown_table())'")
