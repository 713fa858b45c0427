"""Every relative link of the docs resolves: the file exists in the repository and, for `file#anchor`
or `#anchor`, the target has a heading that GitHub slugs to that anchor.

Checked: README.md, ARCHITECTURE.md, every page under docs/, deploy/README.md and schemas/EVOLUTION.md.
Links with a scheme (http, https, mailto) are not fetched. A link that leaves the repository fails too.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from botstream.core.settings import REPO_ROOT

FIXED = ["README.md", "ARCHITECTURE.md", "deploy/README.md", "schemas/EVOLUTION.md"]


def checked_files() -> list[Path]:
    return [REPO_ROOT / name for name in FIXED] + sorted((REPO_ROOT / "docs").rglob("*.md"))


# -- Markdown, as far as links and headings need it -------------------------------------------------

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
ATX = re.compile(r"^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
COMMENT = re.compile(r"<!--.*?-->", re.S)
INLINE_LINK = re.compile(r"\]\(\s*(<[^>\n]*>|[^)\s]+)(?:\s+(?:\"[^\"]*\"|'[^']*'|\([^)]*\)))?\s*\)")
REFERENCE_DEF = re.compile(r"^ {0,3}\[[^\]\n]+\]:\s*(<[^>\n]*>|\S+)", re.M)
HTML_ATTR = re.compile(r"<(?:a|img)\b[^>]*?\b(?:href|src)\s*=\s*[\"']([^\"']+)[\"']", re.I)
HTML_ANCHOR = re.compile(r"<a\b[^>]*?\b(?:name|id)\s*=\s*[\"']([^\"']+)[\"']", re.I)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) of everything outside fenced code blocks."""
    fence: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if fence is None:
            if match:
                fence = match.group(1)
                continue
            yield number, line
        elif match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) \
                and not line.strip()[len(match.group(1)):].strip():
            fence = None


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading (github-slugger on the rendered text): inline markup dropped,
    lower case, everything but letters, marks, digits, `_`, `-` and spaces removed, spaces to `-`."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links and images: their text
    text = re.sub(r"<[^>]+>", "", text)                         # inline HTML
    text = text.replace("`", "").replace("*", "")
    kept = (c for c in text.lower()
            if c in " -_" or unicodedata.category(c)[0] in ("L", "M", "N"))
    return "".join(kept).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    text = path.read_text()
    seen: dict[str, int] = {}
    out: set[str] = set()
    for _, line in prose_lines(text):
        match = ATX.match(line)
        if not match:
            out.update(HTML_ANCHOR.findall(line))
            continue
        slug = github_slug(match.group(1) or "")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        out.add(slug if count == 0 else f"{slug}-{count}")
    return out


def links(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, target) of every link and image in the file's prose."""
    lines = dict(prose_lines(path.read_text()))
    for number, line in lines.items():
        line = CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)
        line = COMMENT.sub("", line)
        for pattern in (INLINE_LINK, REFERENCE_DEF, HTML_ATTR):
            for target in pattern.findall(line):
                yield number, target.strip("<>")


def destination(source: Path, target: str) -> Path:
    """The file a relative link points to (a path starting with / is from the repository's root)."""
    raw_path = unquote(target.partition("#")[0])
    if not raw_path:
        return source.resolve()
    if raw_path.startswith("/"):
        return (REPO_ROOT / raw_path.lstrip("/")).resolve()
    return (source.parent / raw_path).resolve()


def problem(source: Path, target: str) -> str | None:
    """Why `target`, linked from `source`, does not resolve; None when it does (or is not ours to check)."""
    if SCHEME.match(target):
        return None
    anchor = target.partition("#")[2]
    dest = destination(source, target)
    if not dest.is_relative_to(REPO_ROOT.resolve()):
        return "points outside the repository"
    if not dest.exists():
        return f"{dest.relative_to(REPO_ROOT.resolve())} does not exist"
    if anchor and dest.suffix.lower() == ".md":
        if unquote(anchor) not in anchors(dest):
            return f"{dest.relative_to(REPO_ROOT.resolve())} has no heading with the anchor #{anchor}"
    return None


# -- the checks -------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", checked_files(), ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_every_relative_link_resolves(path: Path) -> None:
    assert path.exists(), f"{path.relative_to(REPO_ROOT)} is gone; update FIXED in this test"
    broken = [f"{path.relative_to(REPO_ROOT)}:{number}: ({target}) {why}"
              for number, target in links(path) if (why := problem(path, target))]
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_every_docs_page_is_reachable_from_the_readme() -> None:
    readme = (REPO_ROOT / "README.md").resolve()
    reached, todo = {readme}, [readme]
    while todo:
        page = todo.pop()
        for _, target in links(page):
            if SCHEME.match(target) or problem(page, target):
                continue
            dest = destination(page, target)
            if dest.suffix == ".md" and dest not in reached:
                reached.add(dest)
                todo.append(dest)
    orphans = [p.relative_to(REPO_ROOT).as_posix() for p in sorted((REPO_ROOT / "docs").rglob("*.md"))
               if p.resolve() not in reached]
    assert not orphans, f"docs pages no link leads to from README.md: {orphans}"


def test_the_readme_links_schema_evolution() -> None:
    """schemas/EVOLUTION.md is the one place that explains the default wire format."""
    for page in ("README.md", "docs/data-teams.md"):
        targets = {unquote(t.partition("#")[0]) for _, t in links(REPO_ROOT / page)}
        assert any(t.endswith("schemas/EVOLUTION.md") for t in targets), f"{page} does not link schemas/EVOLUTION.md"


@pytest.mark.parametrize(("heading", "slug"), [
    ("Kafka: embedded, or yours", "kafka-embedded-or-yours"),
    ("Alerts (`deploy/prometheus/alerts.yml`)", "alerts-deployprometheusalertsyml"),
    ("The local stack: `make run` / `botstream up`", "the-local-stack-make-run--botstream-up"),
    ("Calling external APIs (integrations)", "calling-external-apis-integrations"),
    ("\"Slow down\" and other signals", "slow-down-and-other-signals"),
    ("A [linked](x.md) *word* and snake_case", "a-linked-word-and-snake_case"),
    ("Größe → Ünicode", "größe--ünicode"),
])
def test_github_slug(heading: str, slug: str) -> None:
    assert github_slug(heading) == slug


def test_checker_finds_a_broken_link_and_anchor(tmp_path: Path) -> None:
    """The checker itself: a missing file, a missing anchor, a link outside the repository."""
    page = REPO_ROOT / "docs" / "operations.md"
    assert problem(page, "state.md#restore-standbys-and-rebalances") is None
    assert problem(page, "nothing-here.md") is not None
    assert problem(page, "state.md#no-such-heading") is not None
    assert problem(page, "../../shared/notes.md") is not None
    assert problem(page, "https://example.com/missing") is None
    duplicated = tmp_path / "dup.md"
    duplicated.write_text("# Intro\n\n## Intro\n\n```\n# not a heading\n```\n")
    assert anchors(duplicated) == {"intro", "intro-1"}
