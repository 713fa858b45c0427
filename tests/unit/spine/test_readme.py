"""The README's topic table is generated from the catalog; this keeps them in sync."""

from __future__ import annotations

import re

from botstream.settings import REPO_ROOT, Settings
from schemas.topics import markdown_table


def test_readme_topic_table_matches_the_catalog() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"<!-- topics:begin[^>]*-->\n(.*?)\n<!-- topics:end -->", readme, re.S)
    assert block, "README.md lost its topics block"
    expected = markdown_table(Settings.from_env({}))
    assert block.group(1).strip() == expected.strip(), (
        "README topic table is stale; regenerate with: .venv/bin/python -c "
        "'from schemas.topics import markdown_table; from botstream.settings import Settings; "
        "print(markdown_table(Settings()))'")


def test_readme_shows_the_two_commands_first() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    first_code = readme.split("```sh", 1)[1].split("```", 1)[0]
    assert "make run" in first_code and "make test" in first_code
