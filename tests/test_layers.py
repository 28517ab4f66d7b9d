"""The import graph of the four packages: layers only point down, and no module imports itself
back through others (docs/architecture.md draws the same layers)."""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("raynas", "search_spaces", "predictors", "searchers")
#: bottom first; a module may import modules of its own layer and of the layers below it
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("values", ("raynas", "raynas.arch", "raynas.hashing", "raynas.io", "raynas.parallel", "raynas.storage", "raynas.losses",
                "raynas.loading", "raynas.progress", "raynas.devices")),
    ("search spaces", ("search_spaces",)),
    ("core", ("raynas.data", "raynas.data_specs", "raynas.images", "raynas.data_sources", "raynas.streaming", "raynas.graph", "raynas.graph_features", "raynas.benchmarks", "raynas.nb301_surrogate", "raynas.results", "raynas.report")),
    ("predictors", ("predictors",)),
    ("searchers", ("searchers",)),
    ("trainables, experiment, CLI", ("raynas.trainables", "raynas.experiment", "raynas.retrain", "raynas.export", "raynas.search_progress", "raynas.live_table", "raynas.cli")),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for package in PACKAGES for p in (REPO / package).rglob("*.py")}


def layer(module: str) -> int:
    """Index in :data:`LAYERS` of the most specific prefix matching ``module``."""
    matches = [(len(prefix), i) for i, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
               if module == prefix or module.startswith(prefix + ".")]  # fmt: skip
    if not matches:
        raise AssertionError(f"module {module} is in no layer of tests/test_layers.py: add it where it belongs")
    return max(matches)[1]


def imports(module: str) -> set[str]:
    """The project modules ``module`` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in MODULES}
    return found - {module}


GRAPH = nx.DiGraph([(m, i) for m in MODULES for i in imports(m)])


def test_every_module_has_a_layer():
    for module in MODULES:
        layer(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    upward = sorted(i for i in imports(module) if layer(i) > layer(module))
    assert not upward, f"{module} ({LAYERS[layer(module)][0]}) imports a higher layer: " + ", ".join(
        f"{i} ({LAYERS[layer(i)][0]})" for i in upward
    )


def test_no_import_cycles():
    """Package ``__init__`` modules import their members to register them; a member importing
    its package back is a cycle too."""
    cycles = sorted(nx.simple_cycles(GRAPH), key=len)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join([*c, c[0]]) for c in cycles[:5])
