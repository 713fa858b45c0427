"""docker-compose.yml needs Compose v2 (its top-level `name:`): `make compose` checks for it first and
says so in one line, instead of Compose v1's schema error."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit.deploy.support import DEPLOY, load_compose

REPO = DEPLOY.parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")


def _fake_docker(tmp_path: Path, version: str | None) -> Path:
    """A `docker` client whose `compose version --short` prints `version` (None: no compose plugin)."""
    docker = tmp_path / "docker"
    answer = f'echo "{version}"; exit 0' if version else 'echo "docker: unknown command: docker compose" >&2; exit 1'
    docker.write_text(f'#!/bin/sh\nif [ "$1 $2 $3" = "compose version --short" ]; then {answer}; fi\nexit 0\n')
    docker.chmod(0o755)
    return docker


def _check(tmp_path: Path, version: str | None) -> subprocess.CompletedProcess[str]:
    docker = _fake_docker(tmp_path, version)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    return subprocess.run(["make", "-s", "compose-check", f"DOCKER={docker}"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("version", ["2.27.1", "v2.29.7-desktop.1"])
def test_compose_v2_passes(tmp_path: Path, version: str) -> None:
    out = _check(tmp_path, version)
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("version", [None, "1.29.2"])
def test_without_compose_v2_it_says_what_is_needed(tmp_path: Path, version: str | None) -> None:
    out = _check(tmp_path, version)
    assert out.returncode != 0
    assert "needs Docker Compose v2" in out.stderr and "rejects its top-level 'name:'" in out.stderr


def test_the_compose_file_is_v2_only_and_says_so() -> None:
    assert load_compose()["name"] == "botstream"  # the reason v2 is needed
    header = (REPO / "docker-compose.yml").read_text().split("\nname:", 1)[0]
    assert "Compose v2" in header and "make compose" in header
    assert "Compose v2" in (DEPLOY / "README.md").read_text()
