"""The import map of docs/architecture.md: shared code ← runtime model / dataset ← services ← the
harness ← benches, scripts and tests; and no import cycle, between folders or between the modules of one.

Walks every import of every module with the ast module: at the top, under `if TYPE_CHECKING:` and
deferred inside functions, so a stray import fails here rather than in review.
"""

from __future__ import annotations

import ast
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
RUNTIME = {"nids_common", "nids_model", "nids_dataset"}
SERVICES = {"detector", "producer", "training", "incidents"}
HARNESS = "nids_harness"
# What each top-level folder may import besides itself: the layers of docs/architecture.md.
ALLOWED: dict[str, set[str]] = {
    "nids_common": set(),
    "nids_model": {"nids_common"},
    "nids_dataset": {"nids_common"},
    "detector": {"nids_common", "nids_model"},
    "producer": {"nids_common", "nids_dataset"},
    "training": {"nids_common", "nids_model", "nids_dataset"},
    "incidents": {"nids_common"},
    HARNESS: RUNTIME | SERVICES,
    "bench": RUNTIME | SERVICES | {HARNESS},
    "scripts": RUNTIME | SERVICES | {HARNESS},
    "tests": RUNTIME | SERVICES | {HARNESS},
}
FOLDERS = tuple(ALLOWED)
# Imports no future edit of ALLOWED may permit.
NEVER = {("tests", "bench"), ("bench", "tests"), ("detector", "training")}

Graph = Mapping[str, Iterable[str]]


# -- the walk -------------------------------------------------------------------------------------
def module_files(root: Path, folders: Iterable[str]) -> dict[str, Path]:
    """Module name → file for every .py file under `folders` (a package's __init__ is the package)."""
    found = {}
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported_names(path: Path, module: str) -> set[str]:
    """Every name `path` imports anywhere in it: `import a.b` gives a.b, `from a import b` a.b (b may
    be a module or a name in a), relative imports resolved against `module`."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0]
                base = f"{parent}.{base}" if base else parent
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def module_graph(root: Path, folders: Iterable[str]) -> dict[str, set[str]]:
    """Module → the walked modules it imports: for each imported name, the longest prefix of it that
    is a module (`from a import b` is a.b when b is a module, else a)."""
    files = module_files(root, folders)

    def module_of(name: str) -> str | None:
        parts = name.split(".")
        return next((m for i in range(len(parts), 0, -1) if (m := ".".join(parts[:i])) in files), None)

    graph = {}
    for module, path in files.items():
        targets = {module_of(name) for name in imported_names(path, module)}
        graph[module] = {target for target in targets if target is not None and target != module}
    return graph


def folder_graph(modules: Graph) -> dict[str, dict[str, set[str]]]:
    """Top-level folder → imported folder → the modules that import it."""
    graph: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for module, targets in modules.items():
        top = module.split(".")[0]
        graph.setdefault(top, defaultdict(set))
        for target in targets:
            if (other := target.split(".")[0]) != top:
                graph[top][other].add(module)
    return graph


# -- the cycle finder -----------------------------------------------------------------------------
def strongly_connected(graph: Graph) -> list[set[str]]:
    """Tarjan's algorithm: the strongly connected components of `graph`."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, ()):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def cycles(graph: Graph) -> list[list[str]]:
    """One cycle through each component of more than one node (or a node importing itself), as the
    path start → … → start."""
    found = []
    for component in strongly_connected(graph):
        start = min(component)
        if len(component) > 1 or start in graph.get(start, ()):
            found.append(_shortest_cycle(graph, start, component))
    return sorted(found)


def _shortest_cycle(graph: Graph, start: str, within: set[str]) -> list[str]:
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for successor in sorted(set(graph.get(node, ())) & within):
            if successor == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if successor not in previous:
                previous[successor] = node
                queue.append(successor)
    raise AssertionError(f"{start} is on no cycle within {sorted(within)}")


def inside(modules: Graph, folder: str) -> dict[str, set[str]]:
    """The import graph between the modules of `folder` only."""
    mine = {module for module in modules if module.split(".")[0] == folder}
    return {module: set(modules[module]) & mine for module in mine}


# -- the repository -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def modules() -> dict[str, set[str]]:
    return module_graph(REPO, FOLDERS)


def test_the_walk_covers_every_folder(modules: dict[str, set[str]]) -> None:
    assert {module.split(".")[0] for module in modules} == set(FOLDERS)
    assert {"scripts.demo", "nids_harness.chaos", "tests.conftest", "bench.chaos"} <= modules.keys()


@pytest.mark.parametrize("folder", FOLDERS)
def test_each_folder_imports_only_its_lower_layers(modules: dict[str, set[str]], folder: str) -> None:
    imports = folder_graph(modules)[folder]
    forbidden = {other: sorted(importers) for other, importers in imports.items() if other not in ALLOWED[folder]}
    assert not forbidden, f"{folder} imports {forbidden}"


def test_the_layer_map_never_allows_the_forbidden_pairs() -> None:
    assert not [(a, b) for a, b in NEVER if b in ALLOWED[a]]


def test_no_cycle_between_top_level_folders(modules: dict[str, set[str]]) -> None:
    graph = folder_graph(modules)
    found = cycles(graph)
    assert not found, [" → ".join(cycle) for cycle in found]


@pytest.mark.parametrize("folder", FOLDERS)
def test_no_cycle_between_the_modules_of_a_folder(modules: dict[str, set[str]], folder: str) -> None:
    found = cycles(inside(modules, folder))
    assert not found, [" → ".join(cycle) for cycle in found]


# -- the finder itself, on graphs with known cycles ------------------------------------------------
def test_cycles_finds_a_cycle_and_the_shortest_path_round_it() -> None:
    graph = {"a": {"b"}, "b": {"c", "a"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "a"]]


def test_cycles_finds_each_cycle_and_a_self_import() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "x": {"y"}, "y": {"x", "a"}, "s": {"s"}, "t": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"], ["s", "s"], ["x", "y", "x"]]


def test_cycles_finds_none_in_an_acyclic_graph() -> None:
    diamond = {"top": {"left", "right"}, "left": {"bottom"}, "right": {"bottom"}, "bottom": set()}
    assert cycles(diamond) == []


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_folder_cycle_is_found_even_where_the_layer_map_allows_it(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "alpha/__init__.py": "",
            "alpha/one.py": "from beta.two import f\n",
            "beta/__init__.py": "",
            "beta/two.py": "def f():\n    import alpha.one\n",
        },
    )
    graph = folder_graph(module_graph(root, ("alpha", "beta")))
    assert cycles(graph) == [["alpha", "beta", "alpha"]]


def test_a_module_cycle_through_type_checking_and_deferred_imports_is_found(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/metrics.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.batch import Batch\n",
            "pkg/batch.py": "from pkg import reload\n",
            "pkg/reload.py": "def later():\n    import pkg.metrics\n",
            "pkg/free.py": "from pkg.batch import x\n",
        },
    )
    assert cycles(inside(module_graph(root, ("pkg",)), "pkg")) == [
        ["pkg.batch", "pkg.reload", "pkg.metrics", "pkg.batch"]
    ]


def test_relative_imports_are_resolved(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/sub/__init__.py": "from .inner import x\n",
            "pkg/sub/inner.py": "from .. import top\n",
            "pkg/top.py": "from .sub import inner\n",
        },
    )
    graph = module_graph(root, ("pkg",))
    assert graph["pkg.sub"] == {"pkg.sub.inner"}
    assert graph["pkg.sub.inner"] == {"pkg.top"}
    assert cycles(graph) == [["pkg.sub.inner", "pkg.top", "pkg.sub.inner"]]


def test_from_package_import_name_is_an_edge_to_the_package(tmp_path: Path) -> None:
    root = write(tmp_path, {"pkg/__init__.py": "X = 1\n", "pkg/a.py": "from pkg import X\nimport pkg.b.c\n"})
    write(root, {"pkg/b/__init__.py": "", "pkg/b/c.py": ""})
    assert module_graph(root, ("pkg",))["pkg.a"] == {"pkg", "pkg.b.c"}
