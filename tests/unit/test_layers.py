"""The import graph shows the design: no module imports a layer above its own, and there is no cycle.

Layers, bottom to top (ARCHITECTURE.md):

    0  botstream.schemas                                   the wire contract
    1  botstream.core                                      the shared core
    2  botstream.ingest | botstream.streams | botstream.sinks   the stages, side by side
    3  botstream.ops, botstream.cli, botstream.__main__     operations
       botstream.sandbox                                   apart: imports schemas and core; only ops imports it

Every module under `botstream/` is read with `ast` (the stage folders through their symlinks), and
every import counts wherever it is written: at module level, inside a function, or under
`if TYPE_CHECKING:` (a type is a dependency too). A module may import its own package group and
any lower layer; a stage may not import another stage. A cycle between modules (A imports B imports
... A, through imports at any depth) fails as well. Each failure names the pair.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "botstream"

# group -> layer; a module's group is the longest prefix below that names one.
LAYERS: dict[str, int] = {
    "botstream.schemas": 0,
    "botstream.core": 1,
    "botstream.ingest": 2,
    "botstream.streams": 2,
    "botstream.sinks": 2,
    "botstream.ops": 3,
    "botstream.cli": 3,
    "botstream.__main__": 3,
}
APART = "botstream.sandbox"  # beside the layers: it may import these, and only these may import it
APART_MAY_IMPORT = ("botstream.schemas", "botstream.core")
APART_IMPORTED_BY = ("botstream.ops", "botstream.cli", "botstream.__main__")

Graph = Mapping[str, Iterable[str]]


# -- reading the tree ----------------------------------------------------------------------------------


def discover(root: Path, package: str = PACKAGE) -> dict[str, Path]:
    """Module name -> file for every .py file of the package, following symlinked folders."""
    base = root / package
    modules: dict[str, Path] = {}
    for folder, dirs, files in os.walk(base, followlinks=True):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.startswith("."))
        rel = Path(folder).relative_to(base)
        parts = [package, *rel.parts]
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            stem = name[:-3]
            modules[".".join(parts if stem == "__init__" else [*parts, stem])] = Path(folder) / name
    return modules


def imports_of(module: str, source: str, known: Iterable[str], *, is_package: bool = False) -> set[str]:
    """The package's modules that `source` imports, anywhere in the file.

    `from X import Y` counts as an import of the module X.Y when that is a module, else of X.
    Relative imports are resolved against `module`.
    """
    known = set(known)
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                anchor = parts[: len(parts) - node.level + 1]
                base = ".".join([*anchor, node.module] if node.module else anchor)
            else:
                base = node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return {_owning_module(name, known) for name in found if name == PACKAGE or name.startswith(PACKAGE + ".")}


def _owning_module(name: str, known: set[str]) -> str:
    """`botstream.a.b.C` (an attribute path) -> the longest prefix that is a module."""
    parts = name.split(".")
    while len(parts) > 1 and ".".join(parts) not in known:
        parts.pop()
    return ".".join(parts)


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = discover(root)
    return {name: imports_of(name, path.read_text(), modules, is_package=path.name == "__init__.py") - {name}
            for name, path in modules.items()}


# -- the rules -----------------------------------------------------------------------------------------


def group_of(module: str) -> str:
    best = ""
    for group in (*LAYERS, APART):
        if (module == group or module.startswith(group + ".")) and len(group) > len(best):
            best = group
    return best or module  # the root package `botstream` is its own group


def allowed(importer: str, imported: str) -> str | None:
    """None when `importer` may import `imported`, else why not."""
    a, b = group_of(importer), group_of(imported)
    if a == b:
        return None
    if b == PACKAGE:
        return None  # the root package holds only the version
    if a == PACKAGE:
        return f"the root package {PACKAGE} imports nothing of its own"
    if a == APART:
        return None if b in APART_MAY_IMPORT else f"{APART} may import only {' and '.join(APART_MAY_IMPORT)}"
    if b == APART:
        return None if a in APART_IMPORTED_BY else f"only the operations layer may import {APART}"
    la, lb = LAYERS[a], LAYERS[b]
    if lb > la:
        return f"upward import: {a} (layer {la}) may not import {b} (layer {lb})"
    if lb == la and la == 2:
        return f"stage to stage: {a} may not import {b} (the stages sit side by side)"
    return None


def layer_violations(graph: Graph) -> list[str]:
    out = []
    for importer in sorted(graph):
        for imported in sorted(set(graph[importer])):
            why = allowed(importer, imported)
            if why:
                out.append(f"{importer} -> {imported}: {why}")
    return out


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    edges = {node: sorted(set(targets)) for node, targets in graph.items()}

    def visit(root: str) -> None:  # iterative, so a deep graph cannot overflow the recursion limit
        nonlocal counter
        work = [(root, iter(edges.get(root, ())))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, targets = work[-1]
            advanced = False
            for target in targets:
                if target not in index:
                    index[target] = low[target] = counter
                    counter += 1
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(edges.get(target, ()))))
                    advanced = True
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return sorted(found)


def cycle_violations(graph: Graph) -> list[str]:
    out = []
    for component in cycles(graph):
        members = set(component)
        pairs = sorted((a, b) for a in component for b in graph.get(a, ()) if b in members)
        out.append("import cycle among " + ", ".join(component) + "; edges: "
                   + ", ".join(f"{a} -> {b}" for a, b in pairs))
    return out


def violations(graph: Graph) -> list[str]:
    return layer_violations(graph) + cycle_violations(graph)


# -- the tree ------------------------------------------------------------------------------------------


def test_the_package_has_no_upward_import_and_no_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 100, "the walk missed the stage folders (symlinks not followed?)"
    for stage in ("schemas", "core", "ingest", "streams", "sinks", "sandbox", "ops"):
        assert any(m.startswith(f"botstream.{stage}.") for m in graph), f"no module found under botstream.{stage}"
    problems = violations(graph)
    assert not problems, "the import graph breaks the layers:\n" + "\n".join(problems)


# -- the checker itself, on graphs small enough to read ------------------------------------------------


def test_a_clean_graph_passes() -> None:
    graph = {
        "botstream.schemas.records": set(),
        "botstream.core.settings": {"botstream.schemas.records"},
        "botstream.ingest.app": {"botstream.core.settings", "botstream.schemas.records", "botstream.ingest.sink"},
        "botstream.ingest.sink": set(),
        "botstream.sandbox.server": {"botstream.core.settings"},
        "botstream.ops.cli": {"botstream.ingest.app", "botstream.sandbox.server", "botstream"},
        "botstream.__main__": {"botstream.ops.cli"},
    }
    assert violations(graph) == []


@pytest.mark.parametrize(("importer", "imported", "why"), [
    ("botstream.schemas.topics", "botstream.core.settings", "upward import"),
    ("botstream.core.breaker", "botstream.sinks.outcomes", "upward import"),
    ("botstream.sinks.app", "botstream.ops.cli", "upward import"),
    ("botstream.streams.integrations.client", "botstream.sinks.breaker", "stage to stage"),
    ("botstream.ingest.server", "botstream.streams.app", "stage to stage"),
    ("botstream.sandbox.server", "botstream.sinks.outcomes", "botstream.sandbox may import only"),
    ("botstream.sinks.app", "botstream.sandbox.server", "only the operations layer"),
    ("botstream", "botstream.core.settings", "the root package"),
])
def test_a_forbidden_edge_fails_and_names_the_pair(importer: str, imported: str, why: str) -> None:
    problems = violations({importer: {imported}, imported: set()})
    assert len(problems) == 1
    assert problems[0].startswith(f"{importer} -> {imported}: ") and why in problems[0]


def test_a_cycle_fails_and_names_its_edges() -> None:
    graph = {
        "botstream.ops.commands.tail": {"botstream.ops.commands.topics"},
        "botstream.ops.commands.topics": {"botstream.ops.commands.tail"},
        "botstream.core.a": {"botstream.core.b"},
        "botstream.core.b": {"botstream.core.c"},
        "botstream.core.c": {"botstream.core.a"},
        "botstream.core.d": {"botstream.core.a"},  # leads into a cycle, is not part of it
    }
    assert violations(graph) == [
        "import cycle among botstream.core.a, botstream.core.b, botstream.core.c; edges: "
        "botstream.core.a -> botstream.core.b, botstream.core.b -> botstream.core.c, "
        "botstream.core.c -> botstream.core.a",
        "import cycle among botstream.ops.commands.tail, botstream.ops.commands.topics; edges: "
        "botstream.ops.commands.tail -> botstream.ops.commands.topics, "
        "botstream.ops.commands.topics -> botstream.ops.commands.tail",
    ]


def test_the_walk_reads_every_kind_of_import_and_follows_symlinks(tmp_path: Path) -> None:
    stage = tmp_path / "stage_sinks"
    stage.mkdir()
    (stage / "__init__.py").write_text("")
    (stage / "app.py").write_text(
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "from . import retry\n"
        "if TYPE_CHECKING:\n"
        "    from botstream.ops.cli import main\n"
        "def later():\n"
        "    import botstream.core.settings\n"
        "    from botstream.streams.app import control_update\n"
        "    return control_update\n")
    (stage / "retry.py").write_text("from .app import later\n")
    package = tmp_path / "botstream"
    (package / "core").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "core" / "__init__.py").write_text("")
    (package / "core" / "settings.py").write_text("")
    (package / "ops").mkdir()
    (package / "ops" / "__init__.py").write_text("")
    (package / "ops" / "cli.py").write_text("")
    (package / "streams").mkdir()
    (package / "streams" / "app.py").write_text("")
    (package / "sinks").symlink_to(stage, target_is_directory=True)

    graph = import_graph(tmp_path)

    assert graph["botstream.sinks.app"] == {"botstream.sinks.retry", "botstream.ops.cli",
                                            "botstream.core.settings", "botstream.streams.app"}
    assert graph["botstream.sinks.retry"] == {"botstream.sinks.app"}
    assert violations(graph) == [
        "botstream.sinks.app -> botstream.ops.cli: upward import: botstream.sinks (layer 2) may not import "
        "botstream.ops (layer 3)",
        "botstream.sinks.app -> botstream.streams.app: stage to stage: botstream.sinks may not import "
        "botstream.streams (the stages sit side by side)",
        "import cycle among botstream.sinks.app, botstream.sinks.retry; edges: "
        "botstream.sinks.app -> botstream.sinks.retry, botstream.sinks.retry -> botstream.sinks.app",
    ]
