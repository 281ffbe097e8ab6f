"""The package's shape: no import cycle, small modules, dependencies pointing one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "fanout"
#: No module of the package is longer than this.
MAX_LINES = 450


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    return skipped


def _owner(name: str) -> str | None:
    """The package module ``name`` is, or is inside (None: not ours)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str) -> set[str]:
    """The package modules ``module`` imports anywhere (functions too), but under
    ``if TYPE_CHECKING:``."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    skipped = _type_checking_nodes(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    found = {_owner(n) for n in names if n == "fanout" or n.startswith("fanout.")}
    return {m for m in found if m is not None and m != module}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle_among_the_package_modules() -> None:
    # Given every import of every module, function-level ones included
    graph = {m: imports_of(m) for m in MODULES}
    # When walked / Then no module reaches itself
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    # A finder that cannot fail proves nothing: a planted circle is found.
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_a_function_level_import_counts() -> None:
    # An import placed inside a function to dodge a cycle is still an edge.
    module = "fanout.runtime.context"
    assert "fanout.records.dynamo" in imports_of(module)  # imported inside records()
    assert "fanout.records.store" not in imports_of(module)  # TYPE_CHECKING only


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_module_is_over_the_line_limit(module: str) -> None:
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines (at most {MAX_LINES})"


#: Layer -> the layers it must never import (STYLE.md: dependencies point one way).
FORBIDDEN = {
    "fanout.aws": ("fanout.runtime", "fanout.cli", "fanout.local", "fanout.testing"),
    "fanout.records": ("fanout.runtime", "fanout.cli", "fanout.local", "fanout.testing"),
    "fanout.spec": ("fanout.runtime", "fanout.aws", "fanout.records", "fanout.cli",
                    "fanout.local", "fanout.testing"),
    "fanout.runtime": ("fanout.cli", "fanout.local", "fanout.testing"),
    "fanout.local": ("fanout.cli", "fanout.testing"),
    "fanout.ui": ("fanout.cli", "fanout.testing"),
}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_dependencies_point_one_way(layer: str) -> None:
    wrong = {
        f"{m} -> {i}"
        for m in MODULES if m == layer or m.startswith(layer + ".")
        for i in imports_of(m) if i.startswith(FORBIDDEN[layer])
    }
    assert not wrong, sorted(wrong)
