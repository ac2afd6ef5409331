"""The import map of docs/architecture.md: shared code ← runtime model / dataset ← services.

Walks every module's imports (top-level and deferred) with the ast module, so a stray import fails
here rather than in review.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("nids_common", "nids_model", "nids_dataset", "detector", "producer", "training")
# What each package may import besides itself: the layers of docs/architecture.md.
ALLOWED: dict[str, set[str]] = {
    "nids_common": set(),
    "nids_model": {"nids_common"},
    "nids_dataset": {"nids_common"},
    "detector": {"nids_common", "nids_model"},
    "producer": {"nids_common", "nids_dataset"},
    "training": {"nids_common", "nids_model", "nids_dataset"},
}


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found & set(PACKAGES)


def package_imports() -> dict[str, dict[str, set[str]]]:
    """package → imported package → the files that import it."""
    graph: dict[str, dict[str, set[str]]] = {package: defaultdict(set) for package in PACKAGES}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*.py"):
            for other in imported_packages(path) - {package}:
                graph[package][other].add(str(path.relative_to(REPO)))
    return graph


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_its_lower_layers(package: str) -> None:
    graph = package_imports()
    forbidden = {other: sorted(files) for other, files in graph[package].items() if other not in ALLOWED[package]}
    assert not forbidden, f"{package} imports {forbidden}"


def test_no_two_packages_import_each_other() -> None:
    graph = package_imports()
    cycles = [(a, b) for a in PACKAGES for b in graph[a] if a in graph.get(b, {})]
    assert not cycles


def test_the_walk_sees_deferred_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from training.train import run_training\n    import detector.cli\n")
    assert imported_packages(module) == {"training", "detector"}
