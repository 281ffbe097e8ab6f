"""The package's shape: no import cycle, small modules, dependencies pointing one way."""

from __future__ import annotations

import pytest

from tests.imports import MODULES, find_cycle, imports_of

#: No module of the package is longer than this.
MAX_LINES = 450


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


#: Layer -> the layers it must never import (docs/style.md: dependencies point one way).
FORBIDDEN = {
    "fanout.aws": ("fanout.runtime", "fanout.cli", "fanout.local", "fanout.testing"),
    "fanout.records": ("fanout.runtime", "fanout.cli", "fanout.local", "fanout.testing"),
    "fanout.spec": ("fanout.runtime", "fanout.aws", "fanout.records", "fanout.cli",
                    "fanout.local", "fanout.testing"),
    "fanout.pipelines": ("fanout.runtime", "fanout.aws", "fanout.records", "fanout.cli",
                         "fanout.local", "fanout.ui", "fanout.testing"),
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


#: The one runtime module that may name the DynamoDB store: it wires adapters to the logic.
WIRING = "fanout.runtime.context"
#: The concrete stores; the logic reaches records through the store interfaces
#: (fanout.records.store, fanout.records.gate_store).
CONCRETE_STORES = ("fanout.records.dynamo", "fanout.records.dynamo_gate")


def test_the_runtime_reaches_records_through_the_store_interfaces() -> None:
    # Given every runtime module but the wiring
    logic = [m for m in MODULES if m.startswith("fanout.runtime.") and m != WIRING]
    assert "fanout.runtime.gate" in logic and "fanout.runtime.dispatch" in logic
    # When their imports are read / Then none names a concrete store
    wrong = {f"{m} -> {i}" for m in logic for i in imports_of(m) if i in CONCRETE_STORES}
    assert not wrong, sorted(wrong)
    # And the wiring does (so the rule above is about a real edge)
    assert "fanout.records.dynamo" in imports_of(WIRING)


def test_the_dashboard_asset_allow_list_is_what_its_handler_imports() -> None:
    # Given the dashboard function's handler (its own asset: infra/dashboard_asset.py)
    from pathlib import Path

    from infra.dashboard_asset import DASHBOARD_MODULES
    from tests.imports import closure, handler_imports

    handler = Path(__file__).resolve().parents[2] / "lambdas" / "dashboard"
    reached = closure(handler_imports(handler))
    # Then its allow-list is exactly what it reaches: the app, the stack's runs, no more
    assert set(DASHBOARD_MODULES) == reached
    assert {"fanout.ui.app", "fanout.runs.stack", "fanout.ui.signin"} <= reached
    assert not [m for m in reached
                if m.startswith(("fanout.cli", "fanout.local", "fanout.testing"))]
