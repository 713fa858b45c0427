"""The Dockerfile's shape, checked without an engine: a builder stage that installs under the pins of
constraints.txt, a runtime stage that copies only the result and runs as a non-root user, and the
`botstream` entry point every compose service and k8s manifest relies on."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field

from botstream.core.settings import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arg for kw, arg in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, stages) from the instructions, with line continuations joined."""
    joined = re.sub(r"\\\n", " ", text)
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            m = re.fullmatch(r"(\S+)(?:\s+AS\s+(\S+))?", rest, re.IGNORECASE)
            assert m, f"cannot read FROM {rest!r}"
            stages.append(Stage(m.group(1), m.group(2)))
        elif stages:
            stages[-1].instructions.append((keyword, rest))
        elif keyword == "ARG":
            name, _, default = rest.partition("=")
            args[name] = default
    return args, stages


ARGS, STAGES = parse_dockerfile(DOCKERFILE.read_text())
BY_NAME = {s.name: s for s in STAGES if s.name}
RUNTIME = STAGES[-1]


def test_multi_stage_with_a_builder_and_a_slim_runtime() -> None:
    assert len(STAGES) >= 2
    builder = BY_NAME["builder"]
    assert builder is not RUNTIME
    base = re.sub(r"\$\{(\w+)\}", lambda m: ARGS[m.group(1)], RUNTIME.base)
    assert "slim" in base and "3.11" in base, f"runtime base {base!r}: the slim Python the project targets"
    copies = RUNTIME.all("COPY")
    assert any(c.startswith("--from=builder") for c in copies), "the runtime takes the builder's result"
    assert not any(re.search(r"\bpip\b", r) for r in RUNTIME.all("RUN")), "nothing is installed in the runtime"
    assert not any("build-essential" in r or "gcc" in r for r in RUNTIME.all("RUN"))


def test_builder_installs_under_the_constraints() -> None:
    builder = BY_NAME["builder"]
    assert any("constraints.txt" in c for c in builder.all("COPY"))
    installs = [cmd for run in builder.all("RUN") for cmd in run.split("&&") if "pip install" in cmd]
    pinned = [cmd for cmd in installs if re.search(r"(-c|--constraint)[ =]\S*constraints\.txt", cmd)]
    assert pinned, "dependencies must be installed with -c constraints.txt (the pins make test runs with)"


def test_every_package_of_the_project_is_copied() -> None:
    # botstream/ and the stage folders it links in (botstream/streams -> ../streams, ...)
    linked = {p.resolve().name for p in (REPO_ROOT / "botstream").iterdir() if p.is_symlink()}
    packages = {"botstream", *linked}
    assert {"schemas", "ingest", "streams", "sinks", "sandbox"} <= linked
    copied = {shlex.split(c)[0].rstrip("/") for c in BY_NAME["builder"].all("COPY") if not c.startswith("--")}
    assert packages <= copied, f"not copied into the build: {packages - copied}"
    assert {"pyproject.toml", "constraints.txt", "README.md"} <= {
        word for c in BY_NAME["builder"].all("COPY") for word in shlex.split(c)}


def test_runs_as_a_non_root_user() -> None:
    users = RUNTIME.all("USER")
    assert users, "the runtime stage must set USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    if user.isdigit():
        assert int(user) >= 1000  # numeric: Kubernetes can check runAsNonRoot against it


def test_entrypoint_is_botstream() -> None:
    entrypoints = RUNTIME.all("ENTRYPOINT")
    assert entrypoints and json.loads(entrypoints[-1]) == ["botstream"], \
        "exec-form ENTRYPOINT [\"botstream\"]: compose and k8s pass only the subcommand"


def test_dockerignore_keeps_local_state_out_and_the_build_inputs_in() -> None:
    patterns = [p.strip() for p in DOCKERIGNORE.read_text().splitlines() if p.strip() and not p.startswith("#")]

    def ignored(path: str) -> bool:
        """Docker's rules, as far as these patterns need: `**/x` matches at any depth, `x` at the root."""
        parts = path.split("/")
        for p in patterns:
            if p.startswith("**/"):
                if any(fnmatch.fnmatch("/".join(parts[i:]), p[3:]) for i in range(len(parts))):
                    return True
            elif fnmatch.fnmatch(path, p) or fnmatch.fnmatch(parts[0], p):
                return True
        return False

    for path in (".venv", ".git", ".cache", ".botstream", "tests", "botstream/__pycache__"):
        assert ignored(path), f"{path} would be sent to the build"
    for path in ("pyproject.toml", "constraints.txt", "README.md", "botstream", "schemas", "ingest", "streams",
                 "sinks", "sandbox"):
        assert not ignored(path), f"{path} is needed by the build but ignored"


def test_the_bots_image_example_adds_bots_to_the_botstream_image_and_stays_non_root() -> None:
    from botstream import __version__

    args, stages = parse_dockerfile((REPO_ROOT / "deploy" / "bots.Dockerfile").read_text())
    [stage] = stages
    assert stage.base == "${BOTSTREAM_IMAGE}" and args["BOTSTREAM_IMAGE"] == f"botstream:{__version__}"
    assert any(c.endswith("/opt/bots/") for c in stage.all("COPY"))
    assert stage.instructions[-1] == ("USER", "10001:10001")  # the runtime user again after installing
    assert "ENTRYPOINT" not in {kw for kw, _ in stage.instructions}  # still `botstream`
