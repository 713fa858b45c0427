"""The Quix Streams peer's own virtualenv, made on demand under the gitignored cache.

quixstreams 3.x needs confluent-kafka < 2.13 and the project pins a newer one, so the peer never
shares the project's environment: `ensure()` makes `<cache>/bench-venvs/quix` with `python -m venv`
and `pip install -r bench/streams/quix-requirements.txt` (from the package index), and remakes it
whenever that file changes (its hash is kept next to the venv). A lock file keeps two benches from
building it at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

REQUIREMENTS = Path(__file__).with_name("quix-requirements.txt")
PEER = Path(__file__).with_name("quix_peer.py")
STAMP = "requirements.sha256"


class QuixUnavailable(RuntimeError):
    """The peer's virtualenv could not be made (no package index, a failed install)."""


def venv_dir(cache_dir: Path) -> Path:
    return cache_dir / "bench-venvs" / "quix"


def pinned(requirements: Path = REQUIREMENTS) -> dict[str, str]:
    """name -> version of the `name==version` lines."""
    out: dict[str, str] = {}
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, _, version = line.partition("==")
            out[name.strip()] = version.strip()
    return out


def ensure(cache_dir: Path, *, base_python: str = sys.executable, timeout_s: float = 600.0) -> Path:
    """The venv's python, made (or remade) first when missing or out of date with the requirements."""
    venv = venv_dir(cache_dir)
    python = venv / "bin" / "python"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    venv.parent.mkdir(parents=True, exist_ok=True)
    with (venv.parent / "quix.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = venv / STAMP
        if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
            return python
        shutil.rmtree(venv, ignore_errors=True)
        for argv in ([base_python, "-m", "venv", str(venv)],
                     [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                      "-r", str(REQUIREMENTS)]):
            try:
                done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise QuixUnavailable(f"{' '.join(argv[:4])}: {exc}") from exc
            if done.returncode != 0:
                shutil.rmtree(venv, ignore_errors=True)
                raise QuixUnavailable(f"{' '.join(argv[:4])} failed ({done.returncode}):\n{done.stderr[-2000:]}")
        stamp.write_text(digest + "\n")
        return python


def installed_versions(python: Path) -> dict[str, str]:
    """The versions actually in the venv, for the report."""
    code = ("import importlib.metadata as m, json; print(json.dumps({n: m.version(n) for n in "
            "('quixstreams', 'fastavro', 'confluent-kafka', 'rocksdict')}))")
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return {}
    return dict(json.loads(done.stdout))
